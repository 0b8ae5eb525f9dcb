"""Planted differences on real PD14 runs: decisions flag what was changed, not the reference itself,
and the effects do not depend on the analysed duration."""

import warnings

import numpy as np
import pytest

from cortexzoo.network.output import RunWriter, load_run
from cortexzoo.network.params import parse_run_config
from cortexzoo.network.run import run_network
from cortexzoo.validation.pipeline import ValidationWarning, validate

BASE = {"simulation": {"threads": 2, "t_presim_ms": 200.0, "t_sim_ms": 2000.0},
        "network": {"N_scaling": 0.05, "K_scaling": 0.25, "background": "poisson"}}
N_REF = 5
# N = 0.05 has populations of 53 neurons (L5I): below the fixed 100-neuron CC/synchrony subsamples,
# so those measures are undefined there; these settings keep the test about the decisions.
SETTINGS = {"statistics": {"cc_subsample_neurons": 40, "synchrony_subsample_neurons": 40}}
PLANTED = {"model": "iaf_psc_exp", "by_population": {"L4E": {"I_e": "200 pA"}}}


def run(tmp, name, seed, neuron):
    cfg = parse_run_config({"simulation": {**BASE["simulation"], "seed": seed}, "network": BASE["network"],
                            "neuron": neuron})
    return run_network(cfg, tmp / name)


def first_part(run_dir, out, duration_ms):
    """A copy of a run that keeps only the first ``duration_ms`` of its analysis window."""
    data = load_run(run_dir)
    writer = RunWriter(out)
    for pop in data.populations:
        ids, times = data.window(pop)
        keep = times < data.t_start_ms + duration_ms
        writer.write_spikes(pop, ids[keep], times[keep])
    meta = {**data.metadata, "analysis_window_ms": [data.t_start_ms, data.t_start_ms + duration_ms]}
    return writer.finish(meta)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("planted")
    refs = [run(tmp, f"ref{s}", s, {"model": "iaf_psc_exp"}) for s in range(1, N_REF + 1)]
    same = [run(tmp, "same", 101, {"model": "iaf_psc_exp"})]
    # Planted: 200 pA of extra constant drive into L4E only (about half its rheobase).
    # Three seeds: Welch's test with two variant seeds has about one degree of freedom.
    planted = [run(tmp, f"l4e_drive{s}", s, PLANTED) for s in (102, 103, 104)]
    return {"tmp": tmp, "refs": refs, "variants": {"same": same, "l4e_drive": planted}}


@pytest.fixture(scope="module")
def result(runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ValidationWarning)  # 1 seed of "same": a stated warning
        return validate(runs["refs"], runs["variants"], runs["tmp"] / "validation", settings=SETTINGS,
                        make_figures=False)


def decisions(result, model):
    return result.scores[result.scores["model"] == model].set_index(["population", "measure"])


def test_another_reference_seed_is_consistent(result):
    """Catches an uncorrected or miscalibrated test: a further seed of the reference must not differ."""
    d = decisions(result, "same")
    assert (d["decision"] == "differs").sum() == 0
    assert d["decision"].str.startswith("undefined").sum() == 0


def test_extra_l4e_drive_is_flagged_on_l4e_rates(result):
    """Catches a decision that misses a planted rate increase or puts it on the wrong population."""
    d = decisions(result, "l4e_drive")
    row = d.loc[("L4E", "rate_hz")]
    assert row["decision"] == "differs" and row["effect"] > 0 and row["effect_ci_low"] > 0
    assert row["unit"] == "Hz"
    summary = result.summary.set_index("model")
    assert summary.loc["l4e_drive", "differs"] >= 1 and summary.loc["same", "differs"] == 0
    assert list(result.summary["model"])[0] == "same"  # fewest differences first


def test_effects_do_not_grow_with_the_analysed_duration(runs, result):
    """The same comparison over the first 1 s and over all 2 s: every defined effect agrees within
    the two confidence intervals (they overlap) and the L4E rate effect is the same within 15 %.
    Catches an effect size that scales with the amount of data (as the old multiples of natural
    variability did, growing with sqrt(T)) or a measure whose expectation depends on T."""
    short = runs["tmp"] / "short"
    refs = [first_part(p, short / p.name, 1000.0) for p in runs["refs"]]
    variants = {k: [first_part(p, short / p.name, 1000.0) for p in v] for k, v in runs["variants"].items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ValidationWarning)
        half = validate(refs, variants, short / "validation", settings=SETTINGS, make_figures=False)
    key = ["model", "population", "measure"]
    both = result.scores.merge(half.scores, on=key, suffixes=("_2s", "_1s"))
    defined = both[np.isfinite(both["effect_ci_low_2s"]) & np.isfinite(both["effect_ci_low_1s"])]
    assert len(defined) > 100
    overlap = (defined["effect_ci_low_2s"] <= defined["effect_ci_high_1s"]) & \
              (defined["effect_ci_low_1s"] <= defined["effect_ci_high_2s"])
    # 95 % intervals of strongly dependent halves: allow a few chance non-overlaps among ~150.
    assert overlap.mean() >= 0.97, defined.loc[~overlap, key]
    rate = defined.set_index(key).loc[("l4e_drive", "L4E", "rate_hz")]
    assert rate["relative_effect_1s"] == pytest.approx(rate["relative_effect_2s"], rel=0.15)
