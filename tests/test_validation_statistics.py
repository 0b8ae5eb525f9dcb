"""Validation statistics: numpy route == Elephant route (1e-12), known CV/LV, score definitions."""

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
from cortexzoo.validation.statistics import isi_variation, population_statistics, run_statistics

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
    # Exactly on bin edges of 2, 3 and 1 ms bins, at t_start (outside the window) and t_stop (inside).
    edge_ids = np.arange(30, 40)
    edge_t = np.array([t0, t0 + 6.0, t0 + 12.0, 1000.2, 1500.3, t1, t1 - 3.0, t1 - 0.1, 600.0, 900.0])
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
    """Max abs (and relative for the PSD) differences, asserting equal shapes and ids."""
    diffs = {}
    for key in ("rates_hz", "cv", "lv", "cc", "complexity", "psd_freqs_hz"):
        a, b = np.asarray(getattr(fast, key), float), np.asarray(slow[key], float)
        assert a.shape == b.shape, key
        diffs[key] = float(np.max(np.abs(a - b))) if a.size else 0.0
    for key in ("cv_neurons", "lv_neurons", "cc_neurons"):
        np.testing.assert_array_equal(getattr(fast, key), slow[key])
    diffs["psd_rel"] = float(np.max(np.abs(fast.psd - slow["psd"]) / slow["psd"]))
    diffs["synchrony"] = abs(fast.synchrony - slow["synchrony"])
    np.testing.assert_array_equal(np.bincount(fast.complexity), slow["complexity_histogram"])
    np.testing.assert_array_equal(fast.peaks_hz, slow["peaks_hz"])
    assert fast.cc_n_eligible == slow["cc_n_eligible"]
    return diffs


@pytest.mark.parametrize("cc_bin_ms, min_spikes", [(2.0, 3), (20.0, 2)])
def test_every_statistic_equals_elephant(edge_run, cc_bin_ms, min_spikes):
    settings = load_settings({"statistics": {"welch_segment_ms": 500.0, "cc_bin_ms": cc_bin_ms,
                                             "min_spikes_isi": min_spikes}})
    fast_all = run_statistics(edge_run, settings)
    for pop in edge_run.populations:
        fast = fast_all[pop]
        slow = elephant_route.population_statistics(edge_run.to_neo(pop), settings)
        diffs = _compare(fast, slow)
        assert max(diffs.values()) <= TOL, diffs
    p = fast_all["P"]
    # The edge cases really are in the data: silent neurons, < 3 spikes, a spike at t_stop.
    assert np.sum(p.rates_hz == 0) >= 12
    assert p.n_neurons - len(p.lv) >= 30
    if min_spikes == 2:
        assert np.sum(p.cv == 0) >= 9  # the 2-spike neurons (one interval) are in and agree
    raw_times = edge_run.spikes["P"][1]
    assert np.any(raw_times == edge_run.t_start_ms) and np.any(raw_times == edge_run.t_stop_ms)


def test_dense_population_uses_corrcoef_branch(edge_run):
    from elephant.conversion import BinnedSpikeTrain
    import quantities as pq

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sparsity = BinnedSpikeTrain(edge_run.to_neo("Q"), bin_size=20 * pq.ms).sparsity
    assert sparsity > 0.1  # so the 20 ms case above compared against np.corrcoef


def test_cv_min_spikes_below_three_keeps_two_spike_neurons():
    ids = np.array([0, 0, 1, 1, 1, 2])
    times = np.array([1.0, 4.0, 1.0, 2.0, 5.0, 3.0])
    iv = isi_variation(ids, times, 4, min_spikes=2)
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
def test_gamma_trains_give_known_cv_lv_and_synchrony(shape):
    """CV, LV, rates and the synchrony index of gamma renewal trains equal their theoretical values.

    Fails for a wrong ISI statistic (CV/LV formula, intervals across neurons, a
    missing normalisation) and for a wrong synchrony index: std instead of
    variance, counts per neuron instead of per population, or a bin width other
    than ``synchrony_bin_ms``. With 20 ms bins the two cases differ clearly: a
    Poisson population gives exactly 1, the more regular shape-4 trains about 0.8.
    """
    rng = np.random.default_rng(11)
    n, rate, bin_ms, t0, t1 = 400, 10.0, 20.0, 1000.0, 121000.0
    ids, times = renewal_spikes(np.full(n, rate), 0.0, t1, rng, shape=shape)
    # renewal_spikes starts in renewal equilibrium; the first second is left out all the same, so the
    # check does not depend on that.
    keep = times > t0
    settings = load_settings({"statistics": {"synchrony_bin_ms": bin_ms}})
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
    rel = S.relative_to_null(0.3, [0.1, 0.2, 0.3])
    assert rel["multiple_of_mean"] == pytest.approx(1.5) and rel["multiple_of_max"] == pytest.approx(1.0)
    assert rel["matches"] is True
    assert S.relative_to_null(0.31, [0.1, 0.2, 0.3])["matches"] is False
    single = S.relative_to_null(0.3, [])
    assert single["matches"] is None and "single reference seed" in single["note"]
    zero = S.relative_to_null(0.2, [0.0, 0.0])
    assert zero["multiple_of_max"] == np.inf and zero["matches"] is False and zero["note"]
