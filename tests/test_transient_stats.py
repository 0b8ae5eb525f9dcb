"""Transient-response statistics (validation/transient.py) on planted responses; PSTH against Elephant."""

import math
import warnings

import numpy as np
import pytest
import quantities as pq
from response_synth import inhomogeneous_poisson, pulse_rate

from cortexzoo.errors import CortexzooError
from cortexzoo.network.output import to_neo
from cortexzoo.validation.transient import (
    ResponseCriterion,
    activation_sequence,
    align_trials,
    concatenate_trials,
    first_sustained,
    psth,
    response_measures,
    transient_analysis,
)

ONSETS = 200.0 + 250.0 * np.arange(30)
T_STOP = ONSETS[-1] + 250.0
N = 300
BASE_HZ, AMP_HZ, DURATION_MS = 5.0, 40.0, 20.0


def _population(rng, delay_ms, amp_hz=AMP_HZ):
    rate = pulse_rate(ONSETS, BASE_HZ, amp_hz, delay_ms, DURATION_MS)
    return inhomogeneous_poisson(rate, N, 0.0, T_STOP, BASE_HZ + amp_hz, rng)


@pytest.fixture(scope="module")
def planted_run():
    """Three populations: responses 10 ms and 15 ms after onset, and one that does not respond."""
    rng = np.random.default_rng(14)
    spikes = {"early": _population(rng, 10.0), "late": _population(rng, 15.0), "flat": _population(rng, 0.0, 0.0)}
    return spikes, {pop: N for pop in spikes}


@pytest.fixture(scope="module")
def analysis(planted_run):
    return transient_analysis(*planted_run, ONSETS, pre_ms=50.0, post_ms=100.0, bin_ms=1.0)


def test_delayed_population_has_later_latency(analysis):
    """A response planted 5 ms later gets a 5 ms later latency (±1 bin), and both sit at their planted onsets.

    Catches latencies measured from the window start instead of the onset,
    bins labelled by their right edge, and a criterion that fires on noise
    before the response (latency too early) or needs far more than the
    response (too late)."""
    lat = analysis.summary.set_index("population")["latency_ms"]
    assert abs(lat["late"] - lat["early"] - 5.0) <= 1.0
    assert abs(lat["early"] - 10.0) < 0.5 and abs(lat["late"] - 15.0) < 0.5


def test_peak_duration_and_baseline_match_the_planted_response(analysis):
    """Baseline 5 Hz, peak ~40 Hz above it inside the pulse, ~20 ms above threshold.

    Catches a peak not referred to the baseline, a rate not divided by the
    neurons and the bin (Hz per neuron), a duration counting bins before the
    latency or in bins instead of ms, and a time to peak outside the pulse."""
    row = analysis.summary.set_index("population").loc["early"]
    assert row["baseline_hz"] == pytest.approx(BASE_HZ, rel=0.1)
    # The peak is the maximum of 20 noisy bins at 45 Hz: SEM per bin ~ sqrt(45 / (300 * 30 * 1e-3)) = 2.2 Hz.
    assert AMP_HZ - 2.0 <= row["peak_hz"] <= AMP_HZ + 12.0
    assert 10.0 <= row["time_to_peak_ms"] < 10.0 + DURATION_MS
    assert abs(row["duration_ms"] - DURATION_MS) <= 2.0


def test_no_response_gives_nan_latency(analysis):
    """A population without a response has NaN latency and duration and no place in the sequence.

    Catches a criterion that turns Poisson noise into a response: without the
    SD term or the consecutive-bin requirement, some of the 100 post-onset
    bins of a flat PSTH exceed the threshold."""
    row = analysis.summary.set_index("population").loc["flat"]
    assert not row["responds"] and math.isnan(row["latency_ms"]) and math.isnan(row["duration_ms"])
    assert math.isnan(row["activation_rank"])
    assert analysis.sequence == ["early", "late"]


def test_activation_sequence_orders_by_latency():
    """Populations come out earliest first, ties in input order, non-responders left out.

    Catches sorting by name or by rank position, and NaN sorted as a latency."""
    assert activation_sequence({"L4E": 8.0, "L23E": 12.0, "L5E": math.nan, "L4I": 3.0, "L6E": 8.0}) == \
        ["L4I", "L4E", "L6E", "L23E"]


def test_per_trial_values(analysis):
    """One row per population and trial; the mean single-trial peak time lies inside the planted pulse.

    Catches trial rows computed from the trial-averaged curve (identical rows)
    or trials misaligned with their onsets."""
    trials = analysis.trials
    assert len(trials) == 3 * len(ONSETS)
    early = trials[trials["population"] == "early"]
    assert np.array_equal(early["onset_ms"].to_numpy(), ONSETS)
    assert early["peak_hz"].std() > 0
    assert 10.0 <= early["time_to_peak_ms"].median() < 10.0 + DURATION_MS


def test_psth_equals_elephant_time_histogram(planted_run):
    """Trial-averaged PSTH == ``elephant.statistics.time_histogram(output='rate')`` over all trials' trains
    (to 1e-12), with overlapping trial windows and spikes on bin edges; the SEM is the per-trial SD / sqrt(trials).

    Catches a binning convention that differs from Elephant's, spikes lost or
    double-counted where trial windows overlap, and a rate per population
    instead of per neuron."""
    from elephant.statistics import time_histogram

    ids, times = planted_run[0]["early"]
    onsets = np.array([300.0, 330.0, 700.0, 705.5])  # overlapping windows
    ids = np.r_[ids, [1, 2, 3, 4]]
    times = np.r_[times, [310.0, 330.0, 704.0, 281.0]]  # on bin edges and window starts
    trials = align_trials(ids, times, N, onsets, -20.0, 60.0)
    curve = psth(trials, bin_ms=2.0)
    trains = []
    for onset in onsets:
        inside = (times >= onset - 20.0) & (times < onset + 60.0)
        trains += to_neo(ids[inside], times[inside], N, onset - 20.0, onset + 60.0)
    # Elephant needs a common time axis: shift every trial onto [-20, 60).
    shifted = [st.time_shift(-(onsets[k // N]) * pq.ms) for k, st in enumerate(trains)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = time_histogram(shifted, 2.0 * pq.ms, output="rate").rescale("Hz").magnitude.ravel()
    assert np.max(np.abs(curve.rate_hz - ref)) <= 1e-12 * max(1.0, ref.max())
    assert np.allclose(curve.sem_hz, curve.trial_rates_hz.std(axis=0, ddof=1) / 2.0, rtol=1e-12)
    assert curve.time_ms[0] == -20.0 and curve.time_ms[-1] == 58.0


def test_concatenated_trials_give_the_same_psth(planted_run):
    """Trials of two runs joined equal the trials of one run with all onsets.

    Catches trial indices that collide after joining (counts merged into the
    first run's trials)."""
    ids, times = planted_run[0]["late"]
    whole = psth(align_trials(ids, times, N, ONSETS, -50.0, 100.0))
    parts = [align_trials(ids, times, N, ONSETS[:10], -50.0, 100.0),
             align_trials(ids, times, N, ONSETS[10:], -50.0, 100.0)]
    joined = psth(concatenate_trials(parts))
    assert np.array_equal(joined.trial_rates_hz, whole.trial_rates_hz)


def test_criterion_needs_consecutive_bins():
    """``min_bins`` consecutive bins over threshold make the onset; isolated bins do not.

    Catches counting bins above threshold anywhere instead of in a row."""
    assert first_sustained(np.array([1, 0, 1, 1, 0, 1, 1, 1], bool), 3) == 5
    assert first_sustained(np.array([1, 0, 1, 1], bool), 3) == -1
    time = np.arange(-5.0, 10.0)
    rate = np.array([1, 2, 1, 2, 1, 9, 0, 9, 9, 0, 9, 9, 9, 1, 1], float)
    out = response_measures(time, rate, 1.0, ResponseCriterion(k_sd=3.0, min_bins=3))
    assert out["latency_ms"] == 5.0 and out["duration_ms"] == 3.0
    assert out["peak_hz"] == pytest.approx(9 - 1.4) and out["time_to_peak_ms"] == 0.0


@pytest.mark.parametrize("call, match", [
    (lambda i, t: align_trials(i, t, 10, [], -10.0, 10.0), "No stimulus onsets"),
    (lambda i, t: align_trials(i, t, 10, [100.0], 10.0, 10.0), "is empty"),
    (lambda i, t: psth(align_trials(i, t, 10, [100.0], -10.0, 15.0), bin_ms=2.0), "whole number"),
    (lambda i, t: response_measures(np.arange(0.0, 5.0), np.ones(5), 1.0), "pre-stimulus"),
    (lambda i, t: ResponseCriterion(min_bins=0), "Invalid response criterion"),
])
def test_bad_inputs_raise_cortexzoo_error(call, match):
    """No onsets, an empty window, a window not on the bin grid, no baseline bins and a bad criterion are
    user errors with a fix, not numpy errors or silent NaNs."""
    ids, times = np.array([0, 1]), np.array([95.0, 101.0])
    with pytest.raises(CortexzooError, match=match):
        call(ids, times)
