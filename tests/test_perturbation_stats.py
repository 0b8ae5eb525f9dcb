"""Perturbation statistics (validation/perturbation.py): identical twins, single-spike differences,
a planted exponential divergence, and the calibration of the growth-rate interval."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from response_synth import inhomogeneous_poisson

from cortexzoo.errors import CortexzooError
from cortexzoo.network.output import RunData
from cortexzoo.validation import perturbation_runs
from cortexzoo.validation.perturbation import (
    NETWORK,
    combine_perturbations,
    decorrelation_time,
    divergence_curve,
    growth_rate,
    mean_ci,
    perturbation_analysis,
    pooled_spikes,
    saturation_level,
)
from cortexzoo.validation.settings import load_settings
from cortexzoo.validation.spike_distances import first_divergence, van_rossum_distance

NU_HZ, T0, T_STOP = 20.0, 100.0, 600.0
LAMBDA = 0.02  # planted growth rate of the distance, 1/ms


def _poisson(rng, n):
    return inhomogeneous_poisson(lambda t, i: np.full(len(t), NU_HZ), n, 0.0, T_STOP, NU_HZ, rng)


def _planted(seed, n=4000, n0=2):
    """Twin runs whose diverged neurons grow as n0 * exp(2 * LAMBDA * (t - T0)), plus an independent run.

    Neuron i's trains are identical up to T_i and independent after, so the
    squared distance grows with the number of diverged neurons and the
    distance with half its rate, LAMBDA. All neurons have diverged
    ln(n / n0) / (2 LAMBDA) = 190 ms after T0.
    """
    rng = np.random.default_rng(seed)
    ids_a, times_a = _poisson(rng, n)
    diverge = T0 + np.log(np.maximum(np.arange(1, n + 1) / n0, 1.0)) / (2.0 * LAMBDA)
    ids_c, times_c = _poisson(rng, n)
    before, after = times_a < diverge[ids_a], times_c >= diverge[ids_c]
    perturbed = np.r_[ids_a[before], ids_c[after]], np.r_[times_a[before], times_c[after]]
    return {"P": (ids_a, times_a)}, {"P": perturbed}, {"P": _poisson(rng, n)}, {"P": n}


@pytest.fixture(scope="module")
def planted():
    return _planted(11)


@pytest.fixture(scope="module")
def planted_result(planted):
    return perturbation_analysis(*planted, T0, T_STOP, bin_ms=1.0, tau_ms=5.0)


def test_identical_runs_do_not_diverge():
    """Twin runs with the same spikes (in another order) give exactly zero distances, no neuron that differs,
    and no growth rate or decorrelation time.

    Catches distances that depend on the order spikes are stored in and
    rounding noise (~1e-8) passed off as divergence."""
    rng = np.random.default_rng(3)
    ids, times = _poisson(rng, 500)
    order = rng.permutation(len(ids))
    twin = {"P": (ids[order], times[order])}
    curve = divergence_curve(ids, times, *twin["P"], 500, T0, T_STOP)
    assert (curve[["count_distance", "van_rossum", "fraction_differs"]].to_numpy() == 0).all()
    assert np.all(np.isinf(first_divergence(ids, times, *twin["P"], 500, T0)))
    assert np.all(van_rossum_distance(ids, times, *twin["P"], 500, 5.0) == 0)
    res = perturbation_analysis({"P": (ids, times)}, twin, {"P": _poisson(rng, 500)}, {"P": 500}, T0, T_STOP)
    row = res.summary.iloc[0]
    assert row["fraction_differs"] == 0 and math.isnan(row["first_divergence_ms"])
    assert math.isnan(row["rate_per_ms"]) and row["note"] and math.isnan(row["decorrelation_time_ms"])


def test_one_shifted_spike():
    """A single spike moved by 0.1 ms: that neuron alone differs, from the earlier of the two spikes on,
    with van Rossum distance sqrt(2 - 2 exp(-0.1 / tau)); differences before t0 are ignored; a spike one
    run lacks counts from its own time.

    Catches a divergence time taken from the later spike, a fraction that
    counts neurons before they diverge, trains compared before t0, and a
    missing spike at the end of a train not counted as a difference."""
    rng = np.random.default_rng(4)
    n = 200
    ids, times = _poisson(rng, n)
    keep = ~np.isin(ids, [7, 8, 9])
    ids, times = np.r_[ids[keep], 7, 8, 9], np.r_[times[keep], 250.0, 50.0, 400.0]
    p_ids, p_times = ids.copy(), times.copy()
    p_times[-3] = 250.1  # neuron 7 shifted
    p_times[-2] = 55.0  # neuron 8 differs before t0 only
    p_ids, p_times = p_ids[:-1], p_times[:-1]  # neuron 9's spike at 400 ms is missing
    first = first_divergence(ids, times, p_ids, p_times, n, T0)
    assert first[7] == 250.0 and first[9] == 400.0 and np.isinf(np.delete(first, [7, 9])).all()
    curve = divergence_curve(ids, times, p_ids, p_times, n, T0, T_STOP)
    frac = curve.set_index("bin_end_ms")["fraction_differs"]
    assert frac[150.0] == 0 and frac[151.0] == 1 / n and frac[300.0] == 1 / n and frac[301.0] == 2 / n
    shifted = van_rossum_distance(ids[ids == 7], times[ids == 7], p_ids[p_ids == 7], p_times[p_ids == 7], n, 5.0)
    assert shifted[7] == pytest.approx(math.sqrt(2 - 2 * math.exp(-0.1 / 5.0)), rel=1e-9)


def test_planted_exponential_divergence_is_recovered(planted_result):
    """The planted growth rate LAMBDA lies in the reported interval and within 15 % of the estimate; the
    fraction of differing neurons grows at 2 LAMBDA; the decorrelation time is when 81 % of the neurons
    have diverged (distance at 90 % of the independent level), ~185 ms.

    Catches a rate in the wrong unit (1/s, log10), a fit window reaching into
    saturation (rate biased low), a saturation level from the wrong pair, and
    an interval that ignores the autocorrelation of neighbouring bins."""
    row = planted_result.summary.iloc[0]
    assert row["ci_low"] <= LAMBDA <= row["ci_high"]
    assert row["rate_per_ms"] == pytest.approx(LAMBDA, rel=0.15)
    assert 0 < row["fit_start_ms"] < row["fit_stop_ms"] < 190.0
    curves = planted_result.curves
    level = saturation_level(curves["independent_fraction_differs"])
    frac = growth_rate(curves["bin_end_ms"], curves["fraction_differs"], level)
    assert frac["rate_per_ms"] == pytest.approx(2 * LAMBDA, rel=0.1)
    assert 175.0 <= row["decorrelation_time_ms"] <= 200.0
    assert row["fraction_differs"] == 1.0


def test_growth_interval_covers_the_rate_on_autocorrelated_noise():
    """Over 300 exponential curves with AR(1) noise (r = 0.8) in log space, the 95 % interval covers the true
    rate in 90-99 % of cases, while the plain regression interval does not.

    Catches an interval that treats neighbouring bins as independent (it
    covers ~50 % here, the corrected one ~94 %)."""
    rng = np.random.default_rng(5)
    t = np.arange(0.0, 100.0)
    hits, plain = 0, 0
    for _ in range(300):
        noise = np.zeros(len(t))
        for k in range(1, len(t)):
            noise[k] = 0.8 * noise[k - 1] + rng.normal(0.0, 0.1)
        curve = 0.01 * np.exp(LAMBDA * t + noise)
        fit = growth_rate(t, curve, window_ms=(0.0, 100.0))
        hits += fit["ci_low"] <= LAMBDA <= fit["ci_high"]
        ols = scipy.stats.linregress(t, np.log(curve))
        plain += abs(ols.slope - LAMBDA) <= scipy.stats.t.ppf(0.975, len(t) - 2) * ols.stderr
    assert 0.90 <= hits / 300 <= 0.99
    assert plain / 300 < 0.8


def test_growth_window_and_decorrelation_time_on_a_clean_curve():
    """On ``min(L, a exp(rate t))`` the fit returns the rate exactly over [5 %, 50 %) of L, and the
    decorrelation time is the first time at 90 % of L.

    Catches window bounds placed on the wrong crossing, a fit that includes
    the saturated plateau, and a saturation level lowered by the first bins
    of the independent pair (which start from empty traces)."""
    t = np.arange(0.0, 300.0)
    curve = np.minimum(1.0, 1e-3 * np.exp(0.03 * t))
    fit = growth_rate(t, curve, saturation=1.0)
    assert fit["rate_per_ms"] == pytest.approx(0.03, rel=1e-9) and fit["r2"] == pytest.approx(1.0)
    assert fit["fit_start_ms"] == math.ceil(math.log(50.0) / 0.03)
    assert fit["fit_stop_ms"] == math.ceil(math.log(500.0) / 0.03)
    assert decorrelation_time(t, curve, 1.0) == math.ceil(math.log(900.0) / 0.03)
    assert math.isnan(decorrelation_time(t, 0.5 * curve, 1.0))
    assert growth_rate(t, curve)["note"].startswith("no saturation level")
    # An independent pair's curve still rising over its first bins: the level is its plateau.
    assert saturation_level(np.r_[np.linspace(0.0, 1.0, 50), np.ones(150)]) == 1.0


def test_mean_ci_is_the_one_sample_t_interval():
    """mean_ci == scipy's one-sample t interval, leaving NaN out and counting it; NaN interval for 1 value.

    Catches a normal instead of a t quantile (too narrow for few seeds) and NaN
    values propagated into the mean."""
    values = [0.021, 0.018, math.nan, 0.025, 0.019]
    out = mean_ci(values)
    ref = scipy.stats.ttest_1samp([0.021, 0.018, 0.025, 0.019], 0.0).confidence_interval(0.95)
    assert out["ci_low"] == pytest.approx(ref.low, rel=1e-12) and out["ci_high"] == pytest.approx(ref.high, rel=1e-12)
    assert out["n"] == 4 and out["n_undefined"] == 1
    assert math.isnan(mean_ci([0.02])["ci_low"])


def test_combine_perturbations_over_seeds(planted_result):
    """Several perturbations' summaries average per population and measure, with the planted rate inside.

    Catches rows mixed across populations and measures."""
    second = perturbation_analysis(*_planted(12, n=2000, n0=1), T0, T_STOP).summary
    table = combine_perturbations([planted_result.summary, second])
    assert list(table["measure"]) == ["rate_per_ms", "decorrelation_time_ms"]
    rate = table.set_index("measure").loc["rate_per_ms"]
    assert rate["n"] == 2 and rate["ci_low"] <= LAMBDA <= rate["ci_high"]
    assert isinstance(table, pd.DataFrame)


@pytest.mark.parametrize("call, match", [
    (lambda a, b: divergence_curve(*a, *b, 10, 100.0, 100.5), "No whole"),
    (lambda a, b: divergence_curve(*a, *b, 10, 100.0, 200.0, metric="l1"), "Unknown state distance metric"),
    (lambda a, b: divergence_curve(*a, *b, 10, 100.0, 200.0, tau_ms=-1.0), "time constant"),
    (lambda a, b: perturbation_analysis({"P": a}, {"P": b}, {"P": b}, {"P": 10}, 100.0, 200.0, curve="cc"),
     "Unknown divergence measure"),
])
def test_bad_inputs_raise_cortexzoo_error(call, match):
    """An analysis window shorter than a bin, unknown metrics or measures and a bad time constant are user
    errors with a fix."""
    a = (np.array([0, 1]), np.array([120.0, 150.0]))
    with pytest.raises(CortexzooError, match=match):
        call(a, a)


# Two populations of a small network for the pooled-network tests: a large one and a small one.
SIZES = {"L4E": 200, "L5I": 40}


def _network_run(name, spikes, stimulus=None):
    """An in-memory run of the two populations; ``stimulus``: perturbed at T0 (neuron 0 of L4E)."""
    meta = {"stimulus": {"kind": "none", "onsets_ms": []}}
    if stimulus:
        meta = {"stimulus": {"kind": "perturbation", "onsets_ms": [T0]},
                "config": {"stimulus": {"population": "L4E", "neuron": 0, "weight_pA": 1.0}}}
    return RunData(Path(name), meta, list(SIZES), dict(SIZES), spikes, 0.0, T_STOP)


def _kicked(spikes, diverged):
    """The run with one extra spike after T0 for each neuron of ``diverged`` (population -> local ids)."""
    out = dict(spikes)
    for pop, neurons in diverged.items():
        ids, times = spikes[pop]
        out[pop] = (np.r_[ids, neurons], np.r_[times, T0 + 1.0 + np.arange(len(neurons))])
    return out


def _seed_network(seed):
    rng = np.random.default_rng(seed)
    return {pop: _poisson(rng, n) for pop, n in SIZES.items()}


def test_pooled_spikes_offsets_each_population_by_the_sizes_before_it():
    """Catches pooled ids that overlap (no offset, or an offset by population index): every neuron of the network
    must keep an id of its own, the populations' in their order; and ids outside a population are refused,
    since pooled they would pass for neurons of the next population."""
    spikes = {"L4E": (np.array([0, 199, 5]), np.array([1.0, 2.0, 3.0])),
              "L5I": (np.array([0, 39]), np.array([4.0, 5.0]))}
    ids, times, n = pooled_spikes(spikes, SIZES, ["L4E", "L5I"])
    assert n == 240 and list(ids) == [0, 199, 5, 200, 239] and list(times) == [1.0, 2.0, 3.0, 4.0, 5.0]
    ids, _, _ = pooled_spikes(spikes, SIZES, ["L5I", "L4E"])
    assert list(ids) == [0, 39, 40, 239, 45]
    with pytest.raises(CortexzooError, match="outside 0..39"):
        pooled_spikes({**spikes, "L5I": (np.array([40]), np.array([1.0]))}, SIZES, ["L4E", "L5I"])


@pytest.mark.parametrize("diverged, fractions", [
    ({"L4E": list(range(30))}, {"L4E": 30 / 200, "L5I": 0.0, NETWORK: 30 / 240}),
    ({"L4E": list(range(30)), "L5I": list(range(10))}, {"L4E": 30 / 200, "L5I": 10 / 40, NETWORK: 40 / 240}),
])
def test_a_planted_divergence_shows_in_the_network_with_its_share_of_all_neurons(diverged, fractions):
    """30 planted L4E neurons that differ are 30 / 240 of the network; with 10 L5I neurons of the same local ids
    40 / 240. Catches a network fraction averaged over populations (0.075), one counted over the wrong number
    of neurons, and overlapping ids (neuron k of L4E and of L5I taken for one neuron: 30 / 240 in the second
    case)."""
    twin = _network_run("a", _seed_network(1))
    runs = {"a": twin, "b": _network_run("b", _seed_network(2))}
    kicked = _network_run("a-p0", _kicked(twin.spikes, diverged), stimulus=True)
    s = load_settings()["perturbation"]
    result = perturbation_runs._analyse_seed("a", runs, [kicked], "b", list(SIZES), s)
    table = result.table.set_index("population")
    assert list(table.index) == ["L4E", "L5I", NETWORK]
    for pop, fraction in fractions.items():
        assert table.loc[pop, "fraction_differs"] == pytest.approx(fraction, abs=1e-12), pop
    assert table.loc[NETWORK, "n_neurons"] == 240
    assert table.loc[NETWORK, "first_divergence_ms"] == 1.0
    assert NETWORK in set(result.curves["population"])


def test_network_rows_are_summarised_but_not_decided(monkeypatch):
    """The pooled network is in every model's summary (perturbation_summary.csv) and in perturbations.csv, but
    not among the measure rows that are decided. Catches the network decided as a ninth population, which
    enlarges every variant's family (here from 6 to 9 decisions) and so changes every q value."""
    networks = {label: _seed_network(k) for k, label in enumerate(["ref-1", "ref-2", "var-1", "var-2"])}
    runs = {label: _network_run(label, spikes) for label, spikes in networks.items()}
    kicked = {label: [_network_run(f"{label}-p0", _kicked(spikes, {"L4E": list(range(30))}), stimulus=True)]
              for label, spikes in networks.items()}
    monkeypatch.setattr(perturbation_runs, "_load_perturbed", lambda run: kicked[str(run.path)])
    measures, results = perturbation_runs.perturbation_tables(runs, [["ref-1", "ref-2"], ["var-1", "var-2"]],
                                                              list(SIZES), load_settings())
    assert set(measures["population"]) == set(SIZES)
    assert len(measures[["population", "measure"]].drop_duplicates()) == 2 * 3
    summary = perturbation_runs.model_summary(results, {"var": ["var-1", "var-2"]}, ["ref-1", "ref-2"], "ref")
    network = summary[summary["population"] == NETWORK].set_index(["model", "measure"])
    assert len(network) == 2 * 3
    assert network.loc[("ref", "fraction_differs"), "mean"] == pytest.approx(30 / 240)
    assert network.loc[("var", "fraction_differs"), "n"] == 2
    assert NETWORK in set(perturbation_runs.perturbation_table(results)["population"])
