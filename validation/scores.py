"""Scores between two runs' statistics. Every score is a distance: lower is better.

* distributions: KS distance (``scipy.stats.ks_2samp`` statistic), Wasserstein
  distance after z-scoring both samples with their pooled mean and std
  (NetworkUnit's ``wasserstein_distance`` with ``norm='both'``, computed exactly
  in 1-D), and NetworkUnit's effect size ``|m1 - m2| / s_pooled``;
* spectra: RMS difference of ``log10`` PSDs over the band (in decades) and the
  shift of the dominant peak (Hz);
* synchrony: ``|candidate - reference| / reference``.

Natural variability (the null) is the same score between pairs of reference
seeds; see :func:`relative_to_null`. These distances are descriptive: they
grow with duration and network size for a fixed true difference, so decisions
come from the seed-level tests in :mod:`cortexzoo.validation.inference`.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from cortexzoo.validation.settings import DISTRIBUTION_STATISTICS


def _cdf_difference(a, b):
    """Differences of the two empirical CDFs at every sample point, and the gaps between points."""
    a, b = np.sort(a), np.sort(b)
    both = np.sort(np.concatenate([a, b]))
    diff = (np.searchsorted(a, both, side="right") / len(a)) - (np.searchsorted(b, both, side="right") / len(b))
    return diff, np.diff(both)


def ks_distance(a, b) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (equals ``scipy.stats.ks_2samp(a, b).statistic``).

    Computed directly so that large samples do not pay for scipy's exact p-value.

    Parameters
    ----------
    a, b : numpy.ndarray

    Returns
    -------
    float
    """
    diff, _ = _cdf_difference(a, b)
    return float(np.max(np.abs(diff)))


def _wasserstein_from_cdf(diff, gaps, pooled_std) -> float:
    # W1 = integral of |F_a - F_b|; z-scoring divides all gaps by the pooled std.
    if pooled_std == 0:
        return 0.0
    return float(np.sum(np.abs(diff[:-1]) * gaps) / pooled_std)


def wasserstein(a, b) -> float:
    """1-D Wasserstein distance of the samples z-scored with their pooled mean and std.

    Same definition as ``networkunit.scores.wasserstein_distance(norm='both')``
    (which solves it as a general transport problem in float32), equal to
    ``scipy.stats.wasserstein_distance`` of the z-scored samples.

    Parameters
    ----------
    a, b : numpy.ndarray

    Returns
    -------
    float
        0 when both samples are the same constant.
    """
    diff, gaps = _cdf_difference(a, b)
    return _wasserstein_from_cdf(diff, gaps, np.concatenate([a, b]).std())


def effect_size(a, b) -> float:
    """NetworkUnit's effect size ``|mean(a) - mean(b)| / s_pooled``.

    ``s_pooled`` combines the two ddof=0 standard deviations with weights n-1,
    exactly as ``networkunit.scores.effect_size`` does.

    Parameters
    ----------
    a, b : numpy.ndarray

    Returns
    -------
    float
    """
    n, m = len(a), len(b)
    pooled = np.sqrt(((n - 1.0) * np.std(a) ** 2 + (m - 1.0) * np.std(b) ** 2) / (n + m - 2.0))
    diff = abs(np.mean(a) - np.mean(b))
    if pooled == 0:
        return 0.0 if diff == 0 else float("inf")
    return float(diff / pooled)


def log_psd_rms(psd_a, psd_b) -> float:
    """RMS difference of ``log10`` PSDs on the same frequency grid, in decades.

    Parameters
    ----------
    psd_a, psd_b : numpy.ndarray

    Returns
    -------
    float
    """
    tiny = np.finfo(float).tiny  # a zero bin of a spiking population is not physical; avoid -inf
    d = np.log10(np.maximum(psd_a, tiny)) - np.log10(np.maximum(psd_b, tiny))
    return float(np.sqrt(np.mean(d * d)))


def relative_difference(reference: float, candidate: float) -> float:
    """``|candidate - reference| / reference``.

    Parameters
    ----------
    reference, candidate : float

    Returns
    -------
    float
    """
    if reference == 0:
        return 0.0 if candidate == 0 else float("inf")
    return abs(candidate - reference) / abs(reference)


DISTRIBUTION_SCORES = {"ks": ks_distance, "wasserstein": wasserstein, "effect_size": effect_size}


def distribution_scores(a, b) -> dict:
    """KS, Wasserstein and effect size of two samples, sharing one sort.

    Parameters
    ----------
    a, b : numpy.ndarray

    Returns
    -------
    dict
        ``{"ks": ..., "wasserstein": ..., "effect_size": ...}``.
    """
    if len(a) == 0 or len(b) == 0:
        # A statistic no neuron qualifies for (e.g. CV with too few ISIs) has no distance.
        return {kind: float("nan") for kind in DISTRIBUTION_SCORES}
    diff, gaps = _cdf_difference(a, b)
    return {"ks": float(np.max(np.abs(diff))),
            "wasserstein": _wasserstein_from_cdf(diff, gaps, np.concatenate([a, b]).std()),
            "effect_size": effect_size(a, b)}


def score_pair(ref, cand) -> dict:
    """All scores between two :class:`PopulationStatistics` of the same population.

    Parameters
    ----------
    ref, cand : cortexzoo.validation.statistics.PopulationStatistics

    Returns
    -------
    dict
        ``{(statistic, kind): value}``.
    """
    out = {}
    for stat in DISTRIBUTION_STATISTICS:
        for kind, value in distribution_scores(ref.sample(stat), cand.sample(stat)).items():
            out[(stat, kind)] = value
    out[("synchrony", "relative_difference")] = relative_difference(ref.synchrony, cand.synchrony)
    out[("psd", "log_psd_rms")] = log_psd_rms(ref.psd, cand.psd)
    out[("psd", "peak_shift_hz")] = float(abs(cand.peaks_hz[0] - ref.peaks_hz[0]))
    return out


def null_scores(reference_stats: list) -> dict:
    """Scores between every pair of reference seeds.

    Parameters
    ----------
    reference_stats : list of PopulationStatistics
        One per reference seed, same population.

    Returns
    -------
    dict
        ``{(statistic, kind): numpy.ndarray}``, one value per pair (empty with one seed).
    """
    pairs = [score_pair(a, b) for a, b in itertools.combinations(reference_stats, 2)]
    keys = score_pair(reference_stats[0], reference_stats[0]).keys() if not pairs else pairs[0].keys()
    return {k: np.array([p[k] for p in pairs]) for k in keys}


def candidate_scores(reference_stats: list, cand) -> dict:
    """Candidate score: the mean of its scores against every reference seed.

    Parameters
    ----------
    reference_stats : list of PopulationStatistics
    cand : PopulationStatistics

    Returns
    -------
    dict
        ``{(statistic, kind): float}``.
    """
    each = [score_pair(ref, cand) for ref in reference_stats]
    return {k: float(np.mean([e[k] for e in each])) for k in each[0]}


def relative_to_null(raw: float, null) -> dict:
    """Express a raw distance as a multiple of natural variability (descriptive; decides nothing).

    Parameters
    ----------
    raw : float
    null : numpy.ndarray
        Reference-reference scores; empty when there is one reference seed.

    Returns
    -------
    dict
        ``null_mean``, ``null_max``, ``multiple_of_mean``, ``multiple_of_max``
        (None where undefined) and ``note`` explaining any missing or infinite
        value. The multiples grow with the duration and the network size for
        a fixed true difference; decisions come from
        :mod:`cortexzoo.validation.inference`.
    """
    null = np.asarray(null, dtype=float)
    empty = {"null_mean": None, "null_max": None, "multiple_of_mean": None, "multiple_of_max": None}
    if null.size == 0:
        return {**empty, "note": "single reference seed: no null distribution, raw score only"}
    if not np.all(np.isfinite(null)):
        return {**empty, "note": "undefined: natural variability is not finite (too few spikes or samples in the "
                                 "reference seeds)"}
    mean, top = float(null.mean()), float(null.max())
    if not math.isfinite(raw):
        return {**empty, "null_mean": mean, "null_max": top,
                "note": "undefined: the score is not finite (too few spikes or samples in the candidate)"}
    note = ""

    def multiple(scale):
        nonlocal note
        if scale > 0:
            return raw / scale
        note = "reference seeds agree exactly on this score (null is 0)"
        return 0.0 if raw == 0 else float("inf")

    return {"null_mean": mean, "null_max": top, "multiple_of_mean": multiple(mean), "multiple_of_max": multiple(top),
            "note": note}
