"""Benchmark: numpy statistics + scores vs the Elephant route on a full-scale-sized input.

Run with ``python tests/benchmarks/bench_validation.py`` (not collected by pytest).
Input: synthetic Poisson runs with the PD14 population sizes (77,169 neurons),
10 s, per-neuron rates heterogeneous around PD14's population rates.

The Elephant route converts each population to ``neo.SpikeTrain`` objects
(timed separately and included) and runs the Elephant functions of
:mod:`cortexzoo.validation.elephant_route`; its scores use NetworkUnit's KS and
effect-size classes. NetworkUnit's Wasserstein score builds an n x m cost
matrix (20k x 20k for L23E: >1.6 GB, minutes), so both routes use the exact
1-D Wasserstein of the same definition; it is bounded that way, not skipped.
"""

import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from validation_synth import make_run  # noqa: E402

from cortexzoo.network.output import load_run  # noqa: E402
from cortexzoo.validation import elephant_route  # noqa: E402
from cortexzoo.validation import scores as S  # noqa: E402
from cortexzoo.validation.settings import DISTRIBUTION_STATISTICS, load_settings  # noqa: E402
from cortexzoo.validation.statistics import run_statistics  # noqa: E402

PD14_SIZES = {"L23E": 20683, "L23I": 5834, "L4E": 21915, "L4I": 5479,
              "L5E": 4850, "L5I": 1065, "L6E": 14395, "L6I": 2948}
PD14_RATES_HZ = {"L23E": 0.9, "L23I": 2.8, "L4E": 4.4, "L4I": 5.7, "L5E": 7.6, "L5I": 8.1, "L6E": 1.1, "L6I": 7.8}


def elephant_scores(ref, cand):
    """Scores with NetworkUnit score classes (KS, effect size) from Elephant-route statistics."""
    from networkunit.scores import effect_size, ks_distance

    out = {}
    for stat in DISTRIBUTION_STATISTICS:
        key = {"rates": "rates_hz"}.get(stat, stat)
        a, b = ref[key], cand[key]
        out[(stat, "ks")] = float(ks_distance.compute(a, b).score)
        out[(stat, "effect_size")] = float(effect_size.compute(a, b).score)
        out[(stat, "wasserstein")] = S.wasserstein(a, b)
    out[("synchrony", "relative_difference")] = S.relative_difference(ref["synchrony"], cand["synchrony"])
    out[("psd", "log_psd_rms")] = S.log_psd_rms(ref["psd"], cand["psd"])
    out[("psd", "peak_shift_hz")] = float(abs(cand["peaks_hz"][0] - ref["peaks_hz"][0]))
    return out


def main():
    settings = load_settings()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        paths = [make_run(Path(tmp) / name, seed=seed, populations=PD14_SIZES, rates_hz=PD14_RATES_HZ,
                          t_start_ms=500.0, t_stop_ms=10500.0) for name, seed in (("ref", 1), ("cand", 2))]
        ref_run, cand_run = (load_run(p) for p in paths)
        n_spikes = sum(len(cand_run.window(p)[0]) for p in PD14_SIZES)
        print(f"input: {sum(PD14_SIZES.values())} neurons, 10 s, {n_spikes} spikes "
              f"({n_spikes / sum(PD14_SIZES.values()) / 10:.2f} Hz mean); generated in {time.perf_counter() - t:.1f} s")

        ref_fast = run_statistics(ref_run, settings)  # the reference side is precomputed in both routes
        t = time.perf_counter()
        fast = run_statistics(cand_run, settings)
        fast_scores = {p: S.score_pair(ref_fast[p], fast[p]) for p in PD14_SIZES}
        t_fast = time.perf_counter() - t
        print(f"numpy route:    statistics + scores, 8 populations: {t_fast:7.2f} s")

        ref_slow = {p: elephant_route.population_statistics(ref_run.to_neo(p), settings) for p in PD14_SIZES}
        t_neo = t_stats = 0.0
        slow, slow_scores = {}, {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t_scores = time.perf_counter()
            for p in PD14_SIZES:
                t = time.perf_counter()
                trains = cand_run.to_neo(p)
                t_neo += time.perf_counter() - t
                t = time.perf_counter()
                slow[p] = elephant_route.population_statistics(trains, settings)
                t_stats += time.perf_counter() - t
                slow_scores[p] = elephant_scores(ref_slow[p], slow[p])
            t_slow = time.perf_counter() - t_scores
        print(f"Elephant route: statistics + scores, 8 populations: {t_slow:7.2f} s "
              f"(neo conversion {t_neo:.2f} s, Elephant statistics {t_stats:.2f} s)")
        print(f"speed-up: {t_slow / t_fast:.1f}x (target >= 20x); without neo conversion "
              f"{(t_slow - t_neo) / t_fast:.1f}x")

        worst_stat, worst_score = 0.0, 0.0
        for p in PD14_SIZES:
            f, s = fast[p], slow[p]
            for key in ("rates_hz", "cv", "lv", "cc", "complexity"):
                worst_stat = max(worst_stat, float(np.max(np.abs(np.asarray(getattr(f, key), float) - s[key]))))
            worst_stat = max(worst_stat, float(np.max(np.abs(f.psd - s["psd"]) / s["psd"])),
                             abs(f.synchrony - s["synchrony"]))
            assert np.array_equal(f.cc_neurons, s["cc_neurons"]) and np.array_equal(f.peaks_hz, s["peaks_hz"])
            for k, v in fast_scores[p].items():
                worst_score = max(worst_score, abs(v - slow_scores[p][k]))
        print(f"max |numpy - Elephant|: statistics {worst_stat:.3g} (PSD relative), scores {worst_score:.3g}")
        ok = worst_stat <= 1e-12 and worst_score <= 1e-12
        print("identical numbers (<= 1e-12):", "yes" if ok else "NO")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
