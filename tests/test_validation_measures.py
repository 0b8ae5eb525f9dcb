"""Scalar measures measure what they say: known expectations on synthetic trains, and settings checks.

The numpy == Elephant equality of every measure is in ``test_validation_statistics.py``; these tests
check the measures' statistical properties: expectations that do not depend on rate, duration or
network size where the definition says so, and sampling-noise floors with the right size.
"""

import numpy as np
import pytest
from validation_synth import mip_spikes, renewal_spikes

from cortexzoo.errors import CortexzooError
from cortexzoo.validation.settings import load_settings
from cortexzoo.validation.statistics import (
    MEASURE_UNITS,
    measure_unit,
    population_statistics,
    synchrony_index,
)


def _stats(ids, times, n, t0, t1, **overrides):
    settings = load_settings({"statistics": overrides} if overrides else None)
    return population_statistics("X", ids, times, n, t0, t1, settings)


def test_isi_floors_count_intervals_and_measures_use_them():
    """CV takes neurons with >= 10 intervals (11 spikes), LV every neuron with >= 2 intervals.

    Fails when a floor counts spikes instead of intervals (off by one), when CV
    and LV share one floor, or when a measure averages over other neurons.
    """
    rng = np.random.default_rng(5)
    spikes = {0: 11, 1: 10, 2: 3, 3: 2}  # 10, 9, 2 and 1 intervals; neuron 4 silent
    ids = np.concatenate([np.full(k, i) for i, k in spikes.items()])
    times = np.concatenate([np.sort(rng.uniform(0.0, 1000.0, k)) for k in spikes.values()])
    s = _stats(ids, times, 5, 0.0, 1000.0, welch_segment_ms=500.0)
    np.testing.assert_array_equal(s.cv_neurons, [0])
    np.testing.assert_array_equal(s.lv_neurons, [0, 1, 2])
    assert (s.min_isis_cv, s.min_spikes_cv, s.min_isis_lv, s.min_spikes_lv) == (10, 11, 2, 3)
    m = s.measures()
    assert m["cv"] == s.cv[0] and m["lv"] == pytest.approx(np.mean(s.lv), abs=1e-15)
    assert m["rate_hz"] == pytest.approx(26 / 5)  # silent neuron included
    summary = s.summary()
    assert (summary["cv_neurons"], summary["lv_neurons"]) == (1, 3)


def test_cv_and_lv_poisson_expectations_barely_depend_on_rate():
    """Poisson trains at 2 and 20 Hz: mean CV agrees within 2 % over 40 s; LV is ~1 even over 5 s.

    Over 5 s, 2 Hz neurons have ~9 intervals, where the CV of n Poisson
    intervals is biased low by ~1.3 / n; the 10-interval floor must shrink the
    gap to the 20 Hz value compared with a 2-interval floor (fails when the
    floor is not applied). LV must stay at 1 with so few intervals (fails for
    an LV normalised by the number of intervals instead of interval pairs,
    which is 11 % low here).
    """
    rng = np.random.default_rng(8)
    trains = {}
    for t1 in (5000.0, 40000.0):
        for rate, n in ((2.0, 2000), (20.0, 300)):
            trains[t1, rate] = (*renewal_spikes(np.full(n, rate), 0.0, t1, rng), n)

    def measure(t1, rate, key, **floors):
        ids, times, n = trains[t1, rate]
        return _stats(ids, times, n, 0.0, t1, **floors).measures()[key]

    slow, fast = measure(40000.0, 2.0, "cv"), measure(40000.0, 20.0, "cv")
    assert abs(slow - fast) < 0.02 * fast and slow > 0.97, (slow, fast)
    gap_floor = measure(5000.0, 20.0, "cv") - measure(5000.0, 2.0, "cv")
    gap_none = measure(5000.0, 20.0, "cv", min_isis_cv=2) - measure(5000.0, 2.0, "cv", min_isis_cv=2)
    assert gap_floor < gap_none - 0.02, (gap_floor, gap_none)
    for rate in (2.0, 20.0):
        assert abs(measure(5000.0, rate, "lv") - 1.0) < 0.02


def test_cc_noise_floor_and_excess_sd():
    """The CC noise floor is the SD of independent trains' CCs; the excess SD is the spread beyond it.

    Independent Poisson trains: SD(cc) = 1/sqrt(n_bins) within 5 %, mean ~0,
    excess SD far below the floor. Half the neurons correlated through shared
    spikes (exact pairwise count correlation c, the other pairs 0, p the
    fraction of correlated pairs in the subsample): the mean CC is c p and
    the excess variance is the true spread p (1 - p) c^2 plus a known extra
    sampling variance of the correlated pairs. Shared spikes make the counts'
    joint fourth moment larger than for Gaussian data, so n_bins * Var(r) is
    1 + c / (nu * bin) for those pairs instead of 1 (the delta-method
    variance of r, dominated by E[x^2 y^2] / (var x var y)); here that is 2.
    Within 10 %; with the floor not subtracted (or subtracted unsquared) it
    would be 40 % too high (or 0). Fails also for a floor from the wrong bin
    count and for a subsample that ignores the rate floor.
    """
    rng = np.random.default_rng(13)
    n, t1 = 400, 20000.0
    ids, times = renewal_spikes(np.full(n, 10.0), 0.0, t1, rng)
    ids = np.concatenate([ids, np.full(3, n)])  # one extra neuron at 0.15 Hz: never eligible
    times = np.concatenate([times, [100.0, 5000.0, 9000.0]])
    s = _stats(ids, times, n + 1, 0.0, t1)
    m = s.measures()
    assert s.cc_noise_floor_sd == pytest.approx(1 / np.sqrt(10000))
    assert len(s.cc_neurons) == 100 and s.cc_n_eligible == n and n not in s.cc_neurons
    assert abs(np.std(s.cc) / s.cc_noise_floor_sd - 1) < 0.05
    assert abs(m["cc"]) < 3 * s.cc_noise_floor_sd / np.sqrt(len(s.cc))
    assert m["cc_excess_sd"] < 0.3 * s.cc_noise_floor_sd
    assert s.cc_subsample_rate_hz == pytest.approx(10.0, rel=0.03)

    c = 0.1 ** 2 * 20.0 / 10.0  # copy_prob^2 * shared rate / rate = 0.02, twice the noise floor
    ids_a, times_a = mip_spikes(n // 2, 10.0, 20.0, 0.1, 0.0, t1, rng)
    ids_b, times_b = renewal_spikes(np.full(n // 2, 10.0), 0.0, t1, rng)
    s = _stats(np.concatenate([ids_a, ids_b + n // 2]), np.concatenate([times_a, times_b]), n, 0.0, t1)
    in_a = np.sum(s.cc_neurons < n // 2)
    p = in_a * (in_a - 1) / (len(s.cc_neurons) * (len(s.cc_neurons) - 1))
    m = s.measures()
    assert m["cc"] == pytest.approx(c * p, rel=0.15)
    extra = p * s.cc_noise_floor_sd ** 2 * c / (10.0 * 0.002)  # (1 + c / (nu * bin)) - 1, times the floor^2
    assert m["cc_excess_sd"] == pytest.approx(np.sqrt(p * (1 - p) * c ** 2 + extra), rel=0.1)


@pytest.mark.parametrize("copy_prob", [0.0, 0.05])
def test_synchrony_of_fixed_subsample_does_not_grow_with_population_size(copy_prob):
    """Synchrony of the fixed 100-neuron subsample is the same for 200 and 2000 neurons.

    Poisson trains with pairwise count correlation c (0 or 0.02): the index of
    n summed trains is 1 + (n - 1) c, so 1 or 2.98 for the subsample, while
    the whole population's index (the old definition) reaches 41 at 2000
    neurons. Fails for synchrony over the whole population or over a
    subsample whose size follows the population.
    """
    rng = np.random.default_rng(21)
    c, t1 = copy_prob ** 2 * 40.0 / 5.0, 20000.0
    values = {}
    for n in (200, 2000):
        ids, times = mip_spikes(n, 5.0, 40.0, copy_prob, 0.0, t1, rng)
        s = _stats(ids, times, n, 0.0, t1)
        values[n] = s.measures()["synchrony"]
        assert len(s.synchrony_neurons) == 100 and s.summary()["synchrony_subsample"] == 100
        assert values[n] == pytest.approx(1 + 99 * c, rel=0.1), (n, values[n])
    assert abs(values[200] - values[2000]) < 0.1 * (1 + 99 * c)
    if copy_prob:
        assert synchrony_index(times, 0.0, t1, 3.0) > 10 * values[2000]  # what the fixed size removes
    small = _stats(ids[ids < 60], times[ids < 60], 60, 0.0, t1)
    assert np.isnan(small.synchrony) and "fewer than the fixed synchrony subsample" in small.undefined_measures()[
        "synchrony"]


def test_floor_removed_psd_band_power_is_zero_for_poisson_at_every_size():
    """Independent Poisson neurons: floor-removed band power ~0 within its sampling error, for N = 100 and 1000.

    The raw band power of such a population is the shot-noise floor 2 nu / N
    times the band width, so it shrinks with N and would make spectra of
    different network sizes differ for no network reason. Over 10 seeds the
    floor-removed band power must be 0 within 3 standard errors (~1 % of the
    floor's band power): fails for a one-sided/two-sided mix-up (factor 2), a
    floor from the summed instead of the per-neuron rate, or a floor not
    subtracted.
    """
    t1, rate = 20000.0, 10.0
    for n in (100, 1000):
        rng = np.random.default_rng(n)
        power, raw = [], []
        for _ in range(10):
            ids, times = renewal_spikes(np.full(n, rate), 0.0, t1, rng)
            s = _stats(ids, times, n, 0.0, t1)
            assert s.psd_floor == pytest.approx(2 * s.measures()["rate_hz"] / n, rel=1e-3)
            power.append(s.measures()["psd_band_power_hz2"])
            raw.append(np.trapezoid(s.psd, s.psd_freqs_hz))
        power, raw = np.array(power), np.array(raw)
        se = np.std(power, ddof=1) / np.sqrt(len(power))
        assert abs(np.mean(power)) < 3 * se, (n, power)
        assert se < 0.01 * np.mean(raw), (n, se, np.mean(raw))  # the check is sharp: ~1 % of the floor
        assert np.mean(raw) == pytest.approx(2 * rate / n * 199, rel=0.02)


def test_measure_keys_units_and_fano_names():
    """``measures()`` has exactly the documented keys with a unit each; every NaN has a reason.

    Fails when a key is renamed or missing (the inference code keys on them),
    when a Fano window's name is not ``ff_<w:g>ms``, or a NaN lacks its reason.
    """
    rng = np.random.default_rng(2)
    ids, times = renewal_spikes(np.full(50, 5.0), 0.0, 3000.0, rng)
    s = _stats(ids, times, 50, 0.0, 3000.0, fano_windows_ms=[2.5, 100.0])
    m, why = s.measures(), s.undefined_measures()
    assert list(m) == [*MEASURE_UNITS, "ff_2.5ms", "ff_100ms"]
    assert set(why) == {k for k, v in m.items() if np.isnan(v)} == {"cc", "cc_excess_sd", "synchrony"}
    assert all(measure_unit(k) for k in m)
    assert MEASURE_UNITS["psd_band_power_hz2"] == "Hz^2" and MEASURE_UNITS["psd_peak_power"] == "Hz^2/Hz"


def test_old_and_bad_statistics_settings_are_refused():
    """``min_spikes_isi`` names its replacements; new keys with impossible values are refused.

    Fails when an old settings file silently keeps the biased 2-interval CV, or
    when a bad floor, rate, seed or Fano window list passes unnoticed.
    """
    with pytest.raises(CortexzooError, match="min_isis_cv.*min_isis_lv"):
        load_settings({"statistics": {"min_spikes_isi": 3}})
    bad = {"min_isis_cv": 1, "min_isis_lv": 1, "cc_min_rate_hz": 0.0, "synchrony_subsample_neurons": 0,
           "cc_seed": -1, "synchrony_seed": 1.5, "fano_windows_ms": [10.0, 10], "band_hz": [1.0, 600.0]}
    for key, value in bad.items():
        with pytest.raises(CortexzooError, match=key):
            load_settings({"statistics": {key: value}})
    with pytest.raises(CortexzooError, match="fano_windows_ms"):
        load_settings({"statistics": {"fano_windows_ms": []}})
    defaults = load_settings()["statistics"]
    assert (defaults["min_isis_cv"], defaults["min_isis_lv"], defaults["cc_subsample_neurons"],
            defaults["cc_min_rate_hz"], defaults["synchrony_subsample_neurons"], defaults["band_hz"],
            defaults["fano_windows_ms"]) == (10, 2, 100, 1.0, 100, [1.0, 200.0], [100.0, 500.0])
