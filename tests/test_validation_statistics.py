"""Validation statistics: numpy route == Elephant route (1e-12), known CV/LV/Fano, score definitions."""

import warnings

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
from validation_synth import renewal_spikes

from cortexzoo.network.output import RunWriter, load_run
from cortexzoo.validation import elephant_route
from cortexzoo.validation import scores as S
from cortexzoo.validation.settings import load_settings
from cortexzoo.validation.statistics import MEASURE_UNITS, isi_variation, population_statistics, run_statistics

TOL = 1e-12
# Elephant/quantities deprecation chatter from the reference route, not from cortexzoo.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


def _edge_case_population(rng, n=320, t0=200.0, t1=2200.0):
    """Heterogeneous rates incl. silent neurons, 1- and 2-spike neurons, spikes on bin edges and window ends."""
    rates = rng.gamma(1.5, 4.0, n)
    ids, times = renewal_spikes(rates, t0, t1, rng, grid_ms=0.1)
    keep = ~np.isin(ids, np.arange(0, 12))  # neurons 0..11 silent
    ids, times = ids[keep], times[keep]
    keep = ~np.isin(ids, np.arange(12, 30))  # 12..29: 1 or 2 spikes only
    ids, times = ids[keep], times[keep]
    few_ids = np.r_[np.arange(12, 30), np.arange(12, 30, 2)]
    few_t = np.round(rng.uniform(t0, t1, len(few_ids)), 1)
    # Exactly on bin edges of 2, 3 and 1 ms bins and of 10 and 100 ms Fano windows, at t_start (outside
    # the window) and t_stop (inside, past the last whole bin).
    edge_ids = np.r_[np.arange(30, 40), np.arange(40, 45)]
    edge_t = np.array([t0, t0 + 6.0, t0 + 12.0, 1000.2, 1500.3, t1, t1 - 3.0, t1 - 0.1, 600.0, 900.0,
                       t0 + 10.0, t0 + 100.0, 1210.0, t1 - 10.0, t1 - 100.0])
    ids = np.concatenate([ids, few_ids, edge_ids])
    times = np.concatenate([times, few_t, edge_t])
    return ids, times, n, t0, t1


@pytest.fixture(scope="module")
def edge_run(tmp_path_factory):
    rng = np.random.default_rng(2024)
    writer = RunWriter(tmp_path_factory.mktemp("x") / "run")
    ids, times, n, t0, t1 = _edge_case_population(rng)
    writer.write_spikes("P", ids, times)
    # A second, denser population: Elephant then switches to np.corrcoef for CCs.
    ids2, times2 = renewal_spikes(rng.gamma(4.0, 10.0, 60), t0, t1, rng, grid_ms=0.1)
    writer.write_spikes("Q", ids2, times2)
    return load_run(writer.finish({"populations": {"P": n, "Q": 60}, "analysis_window_ms": [t0, t1]}))


def _compare(fast, slow):
    """Max abs (and relative for the PSD) differences, asserting equal shapes, ids, counts and NaN measures."""
    diffs = {}
    for key in ("rates_hz", "cv", "lv", "cc", "complexity", "psd_freqs_hz"):
        a, b = np.asarray(getattr(fast, key), float), np.asarray(slow[key], float)
        assert a.shape == b.shape, key
        diffs[key] = float(np.max(np.abs(a - b))) if a.size else 0.0
    for key in ("cv_neurons", "lv_neurons", "cc_neurons", "synchrony_neurons"):
        np.testing.assert_array_equal(getattr(fast, key), slow[key])
    diffs["psd_rel"] = float(np.max(np.abs(fast.psd - slow["psd"]) / slow["psd"]))
    diffs["psd_floor_rel"] = abs(fast.psd_floor - slow["psd_floor"]) / slow["psd_floor"]
    diffs["psd_floor_removed_rel"] = float(np.max(np.abs(fast.psd_floor_removed - slow["psd_floor_removed"])
                                                  / slow["psd"]))
    diffs["synchrony"] = abs(fast.synchrony - slow["synchrony"]) if np.isfinite(slow["synchrony"]) else 0.0
    assert np.isnan(fast.synchrony) == np.isnan(slow["synchrony"])
    for window, ff in slow["fano"].items():
        assert fast.fano[window].shape == ff.shape and fast.fano_n_windows[window] == slow["fano_n_windows"][window]
        diffs[f"ff_{window}"] = float(np.max(np.abs(fast.fano[window] - ff))) if ff.size else 0.0
    for key in ("cc_noise_floor_sd", "cc_subsample_rate_hz"):
        diffs[key] = abs(getattr(fast, key) - slow[key])
    np.testing.assert_array_equal(np.bincount(fast.complexity), slow["complexity_histogram"])
    np.testing.assert_array_equal(fast.peaks_hz, slow["peaks_hz"])
    assert fast.cc_n_eligible == slow["cc_n_eligible"]
    # The scalar measures: same keys, NaN in the same places for the same reasons, equal values.
    mine, theirs = fast.measures(), slow["measures"]
    assert list(mine) == list(theirs)
    assert fast.undefined_measures() == slow["undefined_measures"]
    assert {k for k, v in mine.items() if np.isnan(v)} == set(slow["undefined_measures"])
    for key, value in theirs.items():
        if np.isfinite(value):
            diffs[f"measure {key}"] = abs(mine[key] - value) / max(1.0, abs(value))
    return diffs


SETTINGS_CASES = {
    # Defaults: Q (60 neurons) is below the CC and synchrony subsample sizes, so its measures are undefined.
    "defaults": {},
    # Coarse CC bins (Elephant's np.corrcoef branch for Q), small subsamples so Q is defined, other floors.
    "coarse": {"cc_bin_ms": 20.0, "min_isis_cv": 2, "min_isis_lv": 3, "cc_subsample_neurons": 40,
               "cc_min_rate_hz": 3.0, "synchrony_subsample_neurons": 50, "fano_windows_ms": [3.0, 250.0]},
}


@pytest.mark.parametrize("case", SETTINGS_CASES)
def test_every_statistic_equals_elephant(edge_run, case):
    """Every array and scalar measure of the numpy route equals the Elephant route (1e-12).

    Fails for any deviation from Elephant's conventions (binning tolerance,
    dropped spikes past the last bin, ddof, the ISI/interval thresholds, the
    CC eligibility by rate, which neurons the fixed subsamples hold, the
    Fano windows' edges, the shot-noise floor) and for undefined measures
    that differ between the routes or lack a reason.
    """
    settings = load_settings({"statistics": {"welch_segment_ms": 500.0, **SETTINGS_CASES[case]}})
    fast_all = run_statistics(edge_run, settings)
    for pop in edge_run.populations:
        fast = fast_all[pop]
        slow = elephant_route.population_statistics(edge_run.to_neo(pop), settings)
        diffs = _compare(fast, slow)
        assert max(diffs.values()) <= TOL, diffs
    p, q = fast_all["P"], fast_all["Q"]
    # The edge cases really are in the data: silent neurons, < 3 spikes, a spike at t_stop.
    assert np.sum(p.rates_hz == 0) >= 12
    assert p.n_neurons - len(p.lv) >= 30
    raw_times = edge_run.spikes["P"][1]
    assert np.any(raw_times == edge_run.t_start_ms) and np.any(raw_times == edge_run.t_stop_ms)
    # Both defined and undefined measures were compared.
    assert not np.isnan(list(p.measures().values())).any()
    if case == "defaults":
        assert set(q.undefined_measures()) == {"cc", "cc_excess_sd", "synchrony"}
        assert "only 60 neurons fire at >= 1 Hz" in q.undefined_measures()["cc"]
        assert len(q.cc) > 0  # the CC distribution stays available on the smaller sample
        assert p.cv_neurons.size < p.lv_neurons.size  # the 10-interval floor excluded neurons LV keeps
    else:
        assert not q.undefined_measures()
    assert set(p.measures()) == set(MEASURE_UNITS) | {f"ff_{w:g}ms" for w in settings["statistics"]["fano_windows_ms"]}


def test_dense_population_uses_corrcoef_branch(edge_run):
    from elephant.conversion import BinnedSpikeTrain
    import quantities as pq

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sparsity = BinnedSpikeTrain(edge_run.to_neo("Q"), bin_size=20 * pq.ms).sparsity
    assert sparsity > 0.1  # so the 20 ms case above compared against np.corrcoef


def test_cv_single_interval_neurons_agree_with_scipy():
    """With a 1-interval floor, 2-spike neurons get CV 0 (``scipy.stats.variation``); LV needs 2 intervals.

    Fails when the floor counts spikes instead of intervals, or when LV takes a single interval.
    """
    ids = np.array([0, 0, 1, 1, 1, 2])
    times = np.array([1.0, 4.0, 1.0, 2.0, 5.0, 3.0])
    iv = isi_variation(ids, times, 4, min_isis_cv=1, min_isis_lv=1)
    np.testing.assert_array_equal(iv["cv_neurons"], [0, 1])
    np.testing.assert_array_equal(iv["lv_neurons"], [1])  # LV needs two intervals regardless
    assert iv["cv"][0] == 0.0  # one interval: std 0, as scipy.stats.variation
    np.testing.assert_allclose(iv["cv"][1], np.std([1.0, 3.0]) / 2.0, rtol=0, atol=TOL)
    np.testing.assert_allclose(iv["lv"][0], 3 * ((3.0 - 1.0) / 4.0) ** 2, rtol=0, atol=TOL)


def renewal_fano_factor(rate_hz, shape, bin_ms, n_intervals=60):
    """Expected variance / mean of the spike count in a bin for a stationary gamma renewal train.

    ``Var N(T) / E N(T) = 1 + (2 / T) * integral_0^T (T - tau) (rho(tau) - lambda) dtau``
    with the renewal density ``rho(tau) = sum_n f_n(tau)``, ``f_n`` the density of
    n successive intervals (gamma with shape ``n * shape``). Poisson: exactly 1.
    Independent trains of equal rate have the same ratio for their summed counts,
    so this is also the population's synchrony index.
    """
    lam = rate_hz / 1000.0  # per ms
    scale = 1.0 / (lam * shape)

    def rho(tau):
        return sum(scipy.stats.gamma.pdf(tau, n * shape, scale=scale) for n in range(1, n_intervals + 1))

    excess, _ = scipy.integrate.quad(lambda tau: (bin_ms - tau) * (rho(tau) - lam), 0.0, bin_ms)
    return 1.0 + 2.0 * excess / bin_ms


@pytest.mark.parametrize("shape", [1.0, 4.0])
def test_gamma_trains_give_known_cv_lv_synchrony_and_fano(shape):
    """CV, LV, rates and the synchrony index of gamma renewal trains equal their theoretical values.

    Fails for a wrong ISI statistic (CV/LV formula, intervals across neurons, a
    missing normalisation) and for a wrong synchrony index: std instead of
    variance, counts per neuron instead of per population, or a bin width other
    than ``synchrony_bin_ms``. With 20 ms bins the two cases differ clearly: a
    Poisson population gives exactly 1, the more regular shape-4 trains about 0.8.
    The per-neuron Fano factors fail for a wrong counting window, a variance
    over neurons instead of over windows, or windows that drop or double-count
    spikes.
    """
    rng = np.random.default_rng(11)
    n, rate, bin_ms, t0, t1 = 400, 10.0, 20.0, 1000.0, 121000.0
    ids, times = renewal_spikes(np.full(n, rate), 0.0, t1, rng, shape=shape)
    # renewal_spikes starts in renewal equilibrium; the first second is left out all the same, so the
    # check does not depend on that.
    keep = times > t0
    # All 400 neurons in the synchrony subsample, for the precision the check below needs.
    settings = load_settings({"statistics": {"synchrony_bin_ms": bin_ms, "synchrony_subsample_neurons": n,
                                             "fano_windows_ms": [10.0, 100.0]}})
    s = population_statistics("G", ids[keep], times[keep], n, t0, t1, settings)
    # ~1200 ISIs per neuron: finite-sample bias of CV is ~1/(4 n), far below the tolerance.
    assert abs(np.mean(s.cv) - 1 / np.sqrt(shape)) < 0.02
    assert abs(np.mean(s.lv) - 3 / (2 * shape + 1)) < 0.02
    assert len(s.cv) == n
    assert abs(np.mean(s.rates_hz) - rate) < 0.2
    # 6000 bins of ~80 spikes: the estimate's standard error is ~0.02; the two cases lie 0.2 apart.
    expected = renewal_fano_factor(rate, shape, bin_ms)
    assert expected == pytest.approx(1.0 if shape == 1.0 else 0.8, abs=0.02)  # the theory itself
    assert abs(s.synchrony - expected) < 0.05, (s.synchrony, expected)
    # Fano factor per neuron in 10 and 100 ms windows: the same renewal theory, one neuron at a time
    # (~12000 and 1200 windows per neuron, 400 neurons: standard errors well below 0.01).
    for window in (10.0, 100.0):
        ff = s.measures()[f"ff_{window:g}ms"]
        assert abs(ff - renewal_fano_factor(rate, shape, window)) < 0.02, (window, ff)
    if shape == 4.0:  # regular trains: the two windows differ, so a window mix-up fails
        assert renewal_fano_factor(rate, shape, 100.0) < renewal_fano_factor(rate, shape, 10.0) - 0.1


def test_distribution_scores_match_scipy_and_networkunit():
    from networkunit.scores import effect_size, ks_distance, wasserstein_distance

    rng = np.random.default_rng(3)
    a, b = rng.gamma(2.0, 1.0, 700), rng.gamma(2.5, 1.1, 500)
    b[:40] = a[:40]  # ties across samples
    assert abs(S.ks_distance(a, b) - scipy.stats.ks_2samp(a, b).statistic) <= TOL
    assert abs(S.ks_distance(a, b) - float(ks_distance.compute(a, b).score)) <= TOL
    assert abs(S.effect_size(a, b) - float(effect_size.compute(a, b).score)) <= TOL
    # NetworkUnit solves the transport problem in float32 with OpenCV: agree to float32 precision.
    nu = float(wasserstein_distance.compute(a[:300], b[:200]).score)
    assert abs(S.wasserstein(a[:300], b[:200]) - nu) <= 1e-5 * max(1.0, nu)
    z = np.concatenate([a, b])
    zs = scipy.stats.wasserstein_distance((a - z.mean()) / z.std(), (b - z.mean()) / z.std())
    assert abs(S.wasserstein(a, b) - zs) <= TOL
    assert S.distribution_scores(a, b) == {"ks": S.ks_distance(a, b), "wasserstein": S.wasserstein(a, b),
                                           "effect_size": S.effect_size(a, b)}
    assert S.ks_distance(a, a) == 0 and S.wasserstein(a, a) == 0 and S.effect_size(a, a) == 0


def test_relative_to_null_definitions():
    """Catches multiples divided by the wrong null summary (distances are descriptive: no decision)."""
    rel = S.relative_to_null(0.3, [0.1, 0.2, 0.3])
    assert rel["multiple_of_mean"] == pytest.approx(1.5) and rel["multiple_of_max"] == pytest.approx(1.0)
    assert "matches" not in rel and "status" not in rel
    single = S.relative_to_null(0.3, [])
    assert single["multiple_of_max"] is None and "single reference seed" in single["note"]
    zero = S.relative_to_null(0.2, [0.0, 0.0])
    assert zero["multiple_of_max"] == np.inf and zero["note"]
