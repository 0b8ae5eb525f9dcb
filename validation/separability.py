"""Stimulus separability: decorrelation curve and linear readout over time after stimulus onset.

P stimuli are each presented R times (under different background noise);
each presentation is a trial (:func:`cortexzoo.validation.transient.align_trials`,
several runs joined with :func:`~cortexzoo.validation.transient.concatenate_trials`)
with a class label. Following Häusler & Maass (2006) and Keup et al. (2021,
PRX 11:021064), a network separates stimuli when responses to different
stimuli (inter-class) move apart faster than responses to the same stimulus
(intra-class, the noise).

* **Decorrelation curve** (:func:`decorrelation_curve`): in every bin, the
  mean state distance over pairs of trials of different classes (inter) and
  of the same class (intra), their ratio and difference. States and metrics
  are those of :mod:`cortexzoo.validation.spike_distances`: spike counts per
  neuron in the bin (``state="counts"``) or exponential traces
  (``"filtered"``, an instantaneous van Rossum distance); ``"rms"`` by
  default, comparable across population sizes. Identical stimuli give a
  ratio of 1 in expectation; so do the pre-stimulus bins.
* **Van Rossum distance** (:func:`van_rossum_curve`): the exact van Rossum
  distance (Elephant's definition) between trials, summed over neurons, of
  the spikes in consecutive windows after onset, with its inter/intra means.
* **Linear readout** (:func:`readout_accuracy`): in every bin, the
  stratified cross-validated accuracy of a linear classifier (scikit-learn,
  standardised features) reading the class from the population state, with
  the chance level (frequency of the largest class) and the accuracy a
  chance-level readout exceeds with probability 5 % (binomial).

Pairs of trials are not independent samples (each trial enters many pairs),
so the curves carry no interval here: the unit of replication is the seed,
as for the stationary statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.stats

from cortexzoo.errors import CortexzooError
from cortexzoo.validation.spike_distances import (
    check_state,
    grid_states,
    pairwise_state_distances,
    van_rossum_matrix,
)
from cortexzoo.validation.transient import Trials, align_trials

CLASSIFIERS = ("logistic", "linear_svc")
# Largest (trials x neurons x bins) feature array the readout builds; beyond, subsample neurons.
MAX_READOUT_ELEMENTS = 50_000_000


def _labels(trials: Trials, labels) -> np.ndarray:
    """Labels as an array, checked against the trials."""
    labels = np.asarray(labels)
    if len(labels) != trials.n_trials:
        raise CortexzooError(f"{len(labels)} stimulus labels for {trials.n_trials} trials.",
                             "Give one label per stimulus onset, in onset order.")
    _, counts = np.unique(labels, return_counts=True)
    if len(counts) < 2 or counts.max() < 2:
        raise CortexzooError(
            f"Separability needs at least 2 stimuli and a stimulus shown at least twice; got "
            f"{len(counts)} stimuli shown {counts.tolist()} times.",
            "Present each stimulus pattern several times (repetitions under different noise).")
    return labels


def class_distances(distances, labels) -> dict:
    """Mean inter-class and intra-class distance of pairwise distance matrices.

    Parameters
    ----------
    distances : numpy.ndarray
        ``(..., n_trials, n_trials)``, symmetric.
    labels : numpy.ndarray
        Class of each trial.

    Returns
    -------
    dict
        ``inter``, ``intra`` (means over pairs i < j of different / equal
        class, NaN pairs ignored), ``ratio`` (inter / intra), ``difference``
        (inter - intra), ``n_inter_pairs``, ``n_intra_pairs``.
    """
    labels = np.asarray(labels)
    i, j = np.triu_indices(len(labels), 1)
    same = labels[i] == labels[j]
    pairs = np.asarray(distances)[..., i, j]
    with np.errstate(invalid="ignore", divide="ignore"):
        inter = _nanmean(pairs[..., ~same])
        intra = _nanmean(pairs[..., same])
        return {"inter": inter, "intra": intra, "ratio": inter / intra, "difference": inter - intra,
                "n_inter_pairs": int(np.sum(~same)), "n_intra_pairs": int(np.sum(same))}


def _nanmean(x):
    """Mean over the last axis ignoring NaN; NaN (no warning) when nothing is left."""
    n = np.sum(~np.isnan(x), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.nansum(x, axis=-1) / n, np.nan)


def _grid(trials: Trials, bin_ms: float, start_ms, stop_ms):
    """Start and number of whole bins of the analysis grid inside the trial window."""
    start = trials.start_ms if start_ms is None else float(start_ms)
    stop = trials.stop_ms if stop_ms is None else float(stop_ms)
    if not (bin_ms > 0 and trials.start_ms <= start < stop <= trials.stop_ms):
        raise CortexzooError(
            f"The analysis grid [{start:g}, {stop:g}) ms in {bin_ms:g} ms bins does not fit the trial window "
            f"[{trials.start_ms:g}, {trials.stop_ms:g}) ms.",
            "Choose start/stop inside the trial window and a positive bin width.")
    n_bins = math.floor((stop - start) / bin_ms + 1e-9)
    if n_bins < 1:
        raise CortexzooError(f"The analysis window is shorter than one {bin_ms:g} ms bin.", "Use a shorter bin.")
    return start, n_bins


def _time_columns(start: float, n_bins: int, bin_ms: float) -> dict:
    edges = start + bin_ms * np.arange(n_bins + 1)
    return {"bin_start_ms": edges[:-1], "bin_end_ms": edges[1:]}


def decorrelation_curve(trials: Trials, labels, bin_ms: float = 2.0, state: str = "counts", tau_ms: float = 5.0,
                        metric: str = "rms", start_ms=None, stop_ms=None) -> pd.DataFrame:
    """Inter- and intra-class state distance in every bin after (and before) stimulus onset.

    Parameters
    ----------
    trials : Trials
    labels : sequence
        Stimulus (class) of each trial.
    bin_ms : float
    state : {"counts", "filtered"}
        Counts per neuron in ``[bin_start, bin_end)``, or exponential traces
        (time constant ``tau_ms``) read just before ``bin_end``.
    tau_ms : float
    metric : {"euclidean", "rms", "cosine"}
    start_ms, stop_ms : float, optional
        Grid relative to onset; default: the whole trial window.

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``bin_start_ms``, ``bin_end_ms`` (relative to
        onset), ``inter``, ``intra``, ``ratio``, ``difference``,
        ``n_inter_pairs``, ``n_intra_pairs``.
    """
    labels = _labels(trials, labels)
    start, n_bins = _grid(trials, bin_ms, start_ms, stop_ms)
    dist = pairwise_state_distances(trials.trial, trials.ids, trials.times, trials.n_trials, trials.n_neurons,
                                    start, n_bins, bin_ms, state, tau_ms, metric)
    return pd.DataFrame({**_time_columns(start, n_bins, bin_ms), **class_distances(dist, labels)})


def van_rossum_curve(trials: Trials, labels, tau_ms: float = 5.0, window_ms: float = 10.0, start_ms=None,
                     stop_ms=None) -> pd.DataFrame:
    """Inter- and intra-class van Rossum distance of the spikes in consecutive windows.

    Each window's distance is Elephant's van Rossum distance of the trains
    cut to the window (their filter tails past its end included), summed
    over neurons (:func:`cortexzoo.validation.spike_distances.van_rossum_matrix`).

    Parameters
    ----------
    trials : Trials
    labels : sequence
    tau_ms : float
    window_ms : float
    start_ms, stop_ms : float, optional
        Default: the whole trial window.

    Returns
    -------
    pandas.DataFrame
        One row per window, columns as :func:`decorrelation_curve`.
    """
    labels = _labels(trials, labels)
    start, n_windows = _grid(trials, window_ms, start_ms, stop_ms)
    dist = np.empty((n_windows, trials.n_trials, trials.n_trials))
    for k in range(n_windows):
        lo = start + k * window_ms
        inside = (trials.times >= lo) & (trials.times < lo + window_ms)
        dist[k] = van_rossum_matrix(trials.trial[inside], trials.ids[inside], trials.times[inside],
                                    trials.n_trials, tau_ms)
    return pd.DataFrame({**_time_columns(start, n_windows, window_ms), **class_distances(dist, labels)})


def _classifier(name: str, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    if name == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    if name == "linear_svc":
        return make_pipeline(StandardScaler(), LinearSVC(random_state=seed))
    raise CortexzooError(f"Unknown readout classifier {name!r}.", f"Use one of {', '.join(CLASSIFIERS)}.")


def readout_accuracy(trials: Trials, labels, bin_ms: float = 5.0, state: str = "counts", tau_ms: float = 5.0,
                     start_ms=None, stop_ms=None, classifier: str = "logistic", n_splits: int = 5, seed: int = 0,
                     max_neurons=None) -> pd.DataFrame:
    """Cross-validated accuracy of a linear readout of the stimulus from the population state, per bin.

    Parameters
    ----------
    trials : Trials
    labels : sequence
    bin_ms : float
    state : {"counts", "filtered"}
        As for :func:`decorrelation_curve`.
    tau_ms : float
    start_ms, stop_ms : float, optional
        Default: the whole trial window.
    classifier : {"logistic", "linear_svc"}
        Multinomial logistic regression or a linear SVM, after standardising
        every neuron's feature.
    n_splits : int
        Folds of the stratified cross-validation (lowered to the size of the
        smallest class); folds are shuffled with ``seed``.
    seed : int
    max_neurons : int, optional
        Read out a seeded random subset of this many neurons (memory and
        time grow with trials x neurons x bins).

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``bin_start_ms``, ``bin_end_ms``, ``accuracy``
        (mean over folds), ``accuracy_sd`` (over folds), ``chance``,
        ``chance_upper95``, ``n_trials``, ``n_neurons``, ``n_splits``.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    labels = _labels(trials, labels)
    check_state(state, "rms", tau_ms)
    start, n_bins = _grid(trials, bin_ms, start_ms, stop_ms)
    _, counts = np.unique(labels, return_counts=True)
    splits = min(int(n_splits), int(counts.min()))
    if splits < 2:
        raise CortexzooError(f"A stimulus was shown only {counts.min()} time(s); cross-validation needs 2.",
                             "Present every stimulus at least twice (better 5 times or more).")
    neurons = np.arange(trials.n_neurons)
    if max_neurons is not None and max_neurons < trials.n_neurons:
        neurons = np.sort(np.random.default_rng(seed).choice(trials.n_neurons, int(max_neurons), replace=False))
    if trials.n_trials * len(neurons) * n_bins > MAX_READOUT_ELEMENTS:
        raise CortexzooError(
            f"The readout would hold {trials.n_trials} trials x {len(neurons)} neurons x {n_bins} bins in memory.",
            "Pass max_neurons (e.g. 1000), use wider bins or a shorter window.")
    x = grid_states(trials.trial, trials.ids, trials.times, trials.n_trials, neurons, start, n_bins, bin_ms, state,
                    tau_ms)
    folds = StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed)
    scores = np.array([cross_val_score(_classifier(classifier, seed), x[:, :, k], labels, cv=folds)
                       for k in range(n_bins)])
    chance = counts.max() / trials.n_trials
    return pd.DataFrame({
        **_time_columns(start, n_bins, bin_ms), "accuracy": scores.mean(axis=1), "accuracy_sd": scores.std(axis=1),
        "chance": chance,
        "chance_upper95": scipy.stats.binom.ppf(0.95, trials.n_trials, chance) / trials.n_trials,
        "n_trials": trials.n_trials, "n_neurons": len(neurons), "n_splits": splits})


@dataclass
class SeparabilityResult:
    """Separability analysis of one run (or of several runs' trials joined).

    Attributes
    ----------
    curves : pandas.DataFrame
        :func:`decorrelation_curve` rows of every population (column ``population``).
    readout : pandas.DataFrame
        :func:`readout_accuracy` rows of every population.
    summary : pandas.DataFrame
        One row per population of scalars for seed-level comparison, over the
        post-onset bins (``bin_start_ms >= 0``): ``ratio_mean``,
        ``ratio_peak``, ``ratio_peak_ms`` (bin end of the peak),
        ``accuracy_mean``, ``accuracy_peak``, ``accuracy_peak_ms``,
        ``chance``, ``chance_upper95``.
    """

    curves: pd.DataFrame
    readout: pd.DataFrame
    summary: pd.DataFrame


def _post_summary(curve: pd.DataFrame, readout: pd.DataFrame) -> dict:
    post, read = curve[curve["bin_start_ms"] >= 0], readout[readout["bin_start_ms"] >= 0]
    ratio, acc = post["ratio"].to_numpy(), read["accuracy"].to_numpy()
    has_ratio = np.isfinite(ratio).any()
    peak_r = int(np.nanargmax(ratio)) if has_ratio else 0
    peak_a = int(np.argmax(acc)) if len(acc) else 0
    return {"ratio_mean": float(np.nanmean(ratio)) if has_ratio else math.nan,
            "ratio_peak": float(ratio[peak_r]) if has_ratio else math.nan,
            "ratio_peak_ms": float(post["bin_end_ms"].iloc[peak_r]) if has_ratio else math.nan,
            "accuracy_mean": float(np.mean(acc)) if len(acc) else math.nan,
            "accuracy_peak": float(acc[peak_a]) if len(acc) else math.nan,
            "accuracy_peak_ms": float(read["bin_end_ms"].iloc[peak_a]) if len(acc) else math.nan,
            "chance": float(readout["chance"].iloc[0]), "chance_upper95": float(readout["chance_upper95"].iloc[0])}


def separability_analysis(spikes: dict, sizes: dict, onsets_ms, labels, pre_ms: float = 20.0,
                          post_ms: float = 100.0, bin_ms: float = 5.0, state: str = "counts",
                          metric: str = "rms", tau_ms: float = 5.0, readout_options=None,
                          populations=None) -> SeparabilityResult:
    """Decorrelation curve, readout accuracy and their summary for every population of a run.

    Parameters
    ----------
    spikes, sizes : dict
        ``RunData.spikes`` and ``RunData.sizes``.
    onsets_ms : sequence of float
        Stimulus onsets (absolute, ms).
    labels : sequence
        Stimulus of each onset.
    pre_ms, post_ms : float
        Trial window ``[onset - pre, onset + post)``.
    bin_ms : float
        Bin of the curve and of the readout.
    state, metric : str
        See :func:`decorrelation_curve`.
    tau_ms : float
    readout_options : dict, optional
        Extra keyword arguments of :func:`readout_accuracy` (``classifier``,
        ``n_splits``, ``seed``, ``max_neurons``).
    populations : list of str, optional

    Returns
    -------
    SeparabilityResult
    """
    curves, readouts, rows = [], [], []
    for pop in list(populations or spikes):
        trials = align_trials(*spikes[pop], sizes[pop], onsets_ms, -pre_ms, post_ms)
        curve = decorrelation_curve(trials, labels, bin_ms, state, tau_ms, metric)
        read = readout_accuracy(trials, labels, bin_ms, state, tau_ms, **(readout_options or {}))
        curves.append(curve.assign(population=pop))
        readouts.append(read.assign(population=pop))
        rows.append({"population": pop, **_post_summary(curve, read)})
    return SeparabilityResult(curves=pd.concat(curves, ignore_index=True),
                              readout=pd.concat(readouts, ignore_index=True), summary=pd.DataFrame(rows))
