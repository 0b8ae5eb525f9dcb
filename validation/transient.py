"""Responses to repeated transient stimuli (PD14 Figs. 7-8): PSTH, latency, peak, duration, layer sequence.

Input per population: the flat ``(ids, times)`` arrays of a run (as
:class:`cortexzoo.network.output.RunData` holds them, absolute times in ms),
the population size, and the stimulus onset times. Each onset starts a trial
``[onset + start, onset + stop)`` (``start = -pre``, ``stop = post``);
trials may overlap, a spike then counts in each.

**PSTH.** Spikes of each trial binned as ``elephant.statistics.time_histogram``
bins them (``BinnedSpikeTrain``: bins ``[left, left + bin)``, Elephant's
rounding tolerance), divided by ``n_neurons * bin``: the rate in Hz per
neuron of each trial; the PSTH is their mean over trials, with the SEM over
trials (SD with ddof 1 / sqrt(trials)). Times are bins' left edges relative
to onset: a value t means ``[t, t + bin)`` after the onset. ``-pre`` and
``post`` must be multiples of the bin so that a bin edge falls on the onset.

**Response criterion** (:class:`ResponseCriterion`), on a rate curve (the
PSTH, or one trial's rate):

* baseline = mean of the pre-stimulus bins, ``baseline_sd`` = their SD
  (ddof 1), i.e. the bin-to-bin fluctuation of that curve;
* threshold = baseline + max(``k_sd`` * baseline_sd, ``min_excess_hz``);
* onset latency = left edge of the first post-onset bin that starts a run of
  ``min_bins`` consecutive bins all strictly above the threshold; NaN when
  there is none (no response). With Poisson noise, requiring several bins
  keeps the chance of a false onset small: at ``k_sd = 3`` one bin exceeds
  by chance with probability ~1e-3, three in a row ~1e-9 per position;
* peak response = maximum of the post-onset curve minus the baseline (Hz),
  time to peak = left edge of that bin (first maximum), both after onset;
  both are reported even without a response (then they measure the noise);
* response duration = time above threshold from the latency on (number of
  post-onset bins above threshold at or after the latency, times the bin);
  NaN when there is no response.

**Layer sequence**: populations ordered by latency (:func:`activation_sequence`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cortexzoo.errors import CortexzooError
from cortexzoo.validation.statistics import bin_spikes

# Relative tolerance for "the window is a whole number of bins".
_GRID_TOLERANCE = 1e-9


@dataclass(frozen=True)
class ResponseCriterion:
    """When a rate curve counts as responding (see the module docstring).

    Attributes
    ----------
    k_sd : float
        Threshold in baseline SDs above the baseline mean.
    min_bins : int
        Consecutive bins above threshold that make the onset.
    min_excess_hz : float
        Smallest excess over the baseline that counts, so that a silent or
        nearly constant baseline (SD ~ 0) does not turn single spikes into a
        response.
    """

    k_sd: float = 3.0
    min_bins: int = 3
    min_excess_hz: float = 0.0

    def __post_init__(self):
        if not (self.k_sd >= 0 and self.min_excess_hz >= 0 and int(self.min_bins) == self.min_bins
                and self.min_bins >= 1):
            raise CortexzooError(f"Invalid response criterion {self}.",
                                 "Use k_sd >= 0, min_excess_hz >= 0 and an integer min_bins >= 1.")


@dataclass
class Trials:
    """Spikes of one population cut into trials aligned on stimulus onsets.

    Attributes
    ----------
    trial, ids : numpy.ndarray
        Trial index and neuron id of every spike in a trial window.
    times : numpy.ndarray
        Spike times relative to the trial's onset, in ms.
    onsets_ms : numpy.ndarray
        Absolute onset of each trial.
    n_neurons : int
    start_ms, stop_ms : float
        The trial window ``[start, stop)`` relative to onset.
    """

    trial: np.ndarray
    ids: np.ndarray
    times: np.ndarray
    onsets_ms: np.ndarray
    n_neurons: int
    start_ms: float
    stop_ms: float

    @property
    def n_trials(self) -> int:
        """Number of trials."""
        return len(self.onsets_ms)


@dataclass
class Psth:
    """Trial-aligned PSTH of one population.

    Attributes
    ----------
    time_ms : numpy.ndarray
        Left bin edges relative to onset.
    bin_ms : float
    rate_hz : numpy.ndarray
        Mean over trials, Hz per neuron.
    sem_hz : numpy.ndarray
        SEM over trials (NaN with one trial).
    trial_rates_hz : numpy.ndarray
        ``(n_trials, n_bins)``: each trial's rate per neuron.
    """

    time_ms: np.ndarray
    bin_ms: float
    rate_hz: np.ndarray
    sem_hz: np.ndarray
    trial_rates_hz: np.ndarray = field(repr=False)


def _is_multiple(value: float, step: float) -> bool:
    ratio = value / step
    return abs(ratio - round(ratio)) <= _GRID_TOLERANCE * max(1.0, abs(ratio))


def align_trials(ids, times, n_neurons: int, onsets_ms, start_ms: float, stop_ms: float) -> Trials:
    """Cut a population's spikes into trials ``[onset + start, onset + stop)``.

    Parameters
    ----------
    ids, times : numpy.ndarray
        Spikes of one population (absolute times in ms), any order.
    n_neurons : int
    onsets_ms : sequence of float
        Stimulus onsets (absolute, ms).
    start_ms, stop_ms : float
        Trial window relative to onset, e.g. ``(-50.0, 100.0)``.

    Returns
    -------
    Trials
    """
    onsets = np.asarray(onsets_ms, dtype=np.float64).ravel()
    if len(onsets) == 0 or not np.all(np.isfinite(onsets)):
        raise CortexzooError("No stimulus onsets (or a non-finite one) to align the trials on.",
                             "Pass the onset times (ms) of the stimuli that were given.")
    if not stop_ms > start_ms:
        raise CortexzooError(f"The trial window [{start_ms}, {stop_ms}) ms is empty.",
                             "Give a window (start, stop) relative to onset with stop > start.")
    ids = np.asarray(ids, dtype=np.int64)
    times = np.asarray(times, dtype=np.float64)
    order = np.argsort(times, kind="stable")
    ids, times = ids[order], times[order]
    parts = []
    for k, onset in enumerate(onsets):
        lo, hi = np.searchsorted(times, [onset + start_ms, onset + stop_ms], side="left")
        parts.append((np.full(hi - lo, k), ids[lo:hi], times[lo:hi] - onset))
    trial, tid, trel = (np.concatenate(p) for p in zip(*parts))
    return Trials(trial=trial, ids=tid, times=trel, onsets_ms=onsets, n_neurons=int(n_neurons),
                  start_ms=float(start_ms), stop_ms=float(stop_ms))


def concatenate_trials(parts) -> Trials:
    """Join trials of the same population and window from several runs (e.g. one per noise seed).

    Parameters
    ----------
    parts : sequence of Trials
        Same ``n_neurons``, ``start_ms`` and ``stop_ms``.

    Returns
    -------
    Trials
        Trials numbered in the order of ``parts``.
    """
    parts = list(parts)
    shapes = {(p.n_neurons, p.start_ms, p.stop_ms) for p in parts}
    if len(shapes) != 1:
        raise CortexzooError(f"Cannot join trials of different populations or windows: {sorted(shapes)}.",
                             "Align every run's trials with the same population and window.")
    offsets = np.cumsum([0] + [p.n_trials for p in parts])
    return Trials(trial=np.concatenate([p.trial + off for p, off in zip(parts, offsets)]),
                  ids=np.concatenate([p.ids for p in parts]), times=np.concatenate([p.times for p in parts]),
                  onsets_ms=np.concatenate([p.onsets_ms for p in parts]), n_neurons=parts[0].n_neurons,
                  start_ms=parts[0].start_ms, stop_ms=parts[0].stop_ms)


def psth(trials: Trials, bin_ms: float = 1.0) -> Psth:
    """Trial-averaged PSTH (Hz per neuron) with its SEM over trials.

    Parameters
    ----------
    trials : Trials
    bin_ms : float
        ``-start`` and ``stop`` of the trial window must be multiples of it.

    Returns
    -------
    Psth
    """
    if not (bin_ms > 0 and _is_multiple(trials.start_ms, bin_ms) and _is_multiple(trials.stop_ms, bin_ms)):
        raise CortexzooError(
            f"The trial window [{trials.start_ms:g}, {trials.stop_ms:g}) ms is not a whole number of "
            f"{bin_ms:g} ms bins on each side of the onset.",
            "Choose pre and post durations that are multiples of the bin width.")
    # Relative to the window start, as Elephant bins a train that starts there.
    index, keep, n_bins = bin_spikes(trials.times - trials.start_ms, 0.0, trials.stop_ms - trials.start_ms, bin_ms)
    counts = np.bincount(trials.trial[keep] * n_bins + index, minlength=trials.n_trials * n_bins)
    rates = counts.reshape(trials.n_trials, n_bins) / (trials.n_neurons * bin_ms) * 1000.0
    sem = rates.std(axis=0, ddof=1) / math.sqrt(trials.n_trials) if trials.n_trials > 1 else np.full(n_bins, np.nan)
    time = trials.start_ms + bin_ms * np.arange(n_bins)
    return Psth(time_ms=time, bin_ms=float(bin_ms), rate_hz=rates.mean(axis=0), sem_hz=sem, trial_rates_hz=rates)


def first_sustained(above, min_bins: int) -> int:
    """Index of the first run of ``min_bins`` consecutive True values, or -1.

    Parameters
    ----------
    above : numpy.ndarray of bool
    min_bins : int

    Returns
    -------
    int
    """
    above = np.asarray(above, dtype=bool)
    if len(above) < min_bins:
        return -1
    runs = np.convolve(above.astype(np.int64), np.ones(int(min_bins), dtype=np.int64), mode="valid")
    hits = np.flatnonzero(runs == min_bins)
    return int(hits[0]) if len(hits) else -1


def response_measures(time_ms, rate_hz, bin_ms: float, criterion: ResponseCriterion = ResponseCriterion()) -> dict:
    """Baseline, latency, peak, time to peak and duration of one rate curve.

    Parameters
    ----------
    time_ms : numpy.ndarray
        Left bin edges relative to onset.
    rate_hz : numpy.ndarray
    bin_ms : float
    criterion : ResponseCriterion

    Returns
    -------
    dict
        ``baseline_hz``, ``baseline_sd_hz``, ``threshold_hz``, ``responds``,
        ``latency_ms``, ``peak_hz`` (above baseline), ``time_to_peak_ms``,
        ``duration_ms``; see the module docstring.
    """
    time_ms, rate_hz = np.asarray(time_ms, float), np.asarray(rate_hz, float)
    tol = _GRID_TOLERANCE * bin_ms
    pre = time_ms + bin_ms <= tol
    post = time_ms >= -tol
    if pre.sum() < 2 or not post.any():
        raise CortexzooError(
            f"The trial window has {int(pre.sum())} pre-stimulus and {int(post.sum())} post-stimulus bins; "
            "the baseline needs at least 2 and the response 1.",
            "Lengthen the pre-stimulus window (pre_ms) or shorten the bin.")
    baseline, sd = float(np.mean(rate_hz[pre])), float(np.std(rate_hz[pre], ddof=1))
    threshold = baseline + max(criterion.k_sd * sd, criterion.min_excess_hz)
    t_post, r_post = time_ms[post], rate_hz[post]
    above = r_post > threshold
    onset = first_sustained(above, criterion.min_bins)
    peak = int(np.argmax(r_post))
    return {
        "baseline_hz": baseline, "baseline_sd_hz": sd, "threshold_hz": threshold, "responds": onset >= 0,
        "latency_ms": float(t_post[onset]) if onset >= 0 else math.nan,
        "peak_hz": float(r_post[peak] - baseline), "time_to_peak_ms": float(t_post[peak]),
        "duration_ms": float(np.sum(above[onset:]) * bin_ms) if onset >= 0 else math.nan,
    }


def activation_sequence(latencies: dict) -> list:
    """Populations ordered by onset latency, earliest first; non-responding (NaN) ones left out.

    Parameters
    ----------
    latencies : dict
        Population -> latency in ms (NaN: no response).

    Returns
    -------
    list of str
        Ties keep the order of ``latencies``.
    """
    responding = [(lat, k, pop) for k, (pop, lat) in enumerate(latencies.items()) if np.isfinite(lat)]
    return [pop for _, _, pop in sorted(responding)]


@dataclass
class TransientResult:
    """Transient-response analysis of one run.

    Attributes
    ----------
    psths : dict
        Population -> :class:`Psth`.
    summary : pandas.DataFrame
        One row per population: ``population``, ``n_neurons``, ``n_trials``,
        the :func:`response_measures` of its PSTH, and ``activation_rank``
        (1 = earliest, equal latencies share the lower rank; NaN without a
        response).
    trials : pandas.DataFrame
        One row per population and trial: ``population``, ``trial``,
        ``onset_ms`` and the :func:`response_measures` of that trial's rate
        curve (its own baseline), for trial-level spread.
    sequence : list of str
        :func:`activation_sequence` of the PSTH latencies.
    """

    psths: dict
    summary: pd.DataFrame
    trials: pd.DataFrame
    sequence: list


def transient_analysis(spikes: dict, sizes: dict, onsets_ms, pre_ms: float = 50.0, post_ms: float = 100.0,
                       bin_ms: float = 1.0, criterion: ResponseCriterion = ResponseCriterion(),
                       populations=None) -> TransientResult:
    """PSTHs and response measures of every population of a run, per trial and trial-averaged.

    Parameters
    ----------
    spikes : dict
        Population -> ``(ids, times)`` with absolute times (``RunData.spikes``).
    sizes : dict
        Population -> number of neurons (``RunData.sizes``).
    onsets_ms : sequence of float
        Stimulus onsets (absolute, ms).
    pre_ms, post_ms : float
        Trial window ``[onset - pre, onset + post)``; multiples of ``bin_ms``.
    bin_ms : float
    criterion : ResponseCriterion
    populations : list of str, optional
        Defaults to all of ``spikes``, in its order.

    Returns
    -------
    TransientResult
    """
    populations = list(populations or spikes)
    psths, rows, trial_rows = {}, [], []
    for pop in populations:
        trials = align_trials(*spikes[pop], sizes[pop], onsets_ms, -pre_ms, post_ms)
        psths[pop] = curve = psth(trials, bin_ms)
        rows.append({"population": pop, "n_neurons": int(sizes[pop]), "n_trials": trials.n_trials,
                     **response_measures(curve.time_ms, curve.rate_hz, bin_ms, criterion)})
        for k, rate in enumerate(curve.trial_rates_hz):
            trial_rows.append({"population": pop, "trial": k, "onset_ms": float(trials.onsets_ms[k]),
                               **response_measures(curve.time_ms, rate, bin_ms, criterion)})
    summary = pd.DataFrame(rows)
    sequence = activation_sequence(dict(zip(summary["population"], summary["latency_ms"])))
    summary["activation_rank"] = summary["latency_ms"].rank(method="min")  # ties share a rank; NaN stays NaN
    return TransientResult(psths=psths, summary=summary, trials=pd.DataFrame(trial_rows), sequence=sequence)
