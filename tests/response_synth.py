"""Synthetic inhomogeneous Poisson spike trains with planted responses, for the transient,
separability and perturbation statistics tests."""

import numpy as np


def inhomogeneous_poisson(rate_hz, n_neurons, t_start_ms, t_stop_ms, rate_max_hz, rng):
    """Independent inhomogeneous Poisson trains by thinning, flat and sorted by time.

    Parameters
    ----------
    rate_hz : callable
        ``rate_hz(times_ms, ids) -> rates`` (vectorised), at most ``rate_max_hz``.
    n_neurons : int
    t_start_ms, t_stop_ms, rate_max_hz : float
    rng : numpy.random.Generator

    Returns
    -------
    ids, times : numpy.ndarray
    """
    n = rng.poisson(rate_max_hz * n_neurons * (t_stop_ms - t_start_ms) / 1000.0)
    times = rng.uniform(t_start_ms, t_stop_ms, n)
    ids = rng.integers(0, n_neurons, n)
    keep = rng.random(n) * rate_max_hz < rate_hz(times, ids)
    order = np.argsort(times[keep], kind="stable")
    return ids[keep][order], times[keep][order]


def pulse_rate(onsets_ms, base_hz, amp_hz, delay_ms, duration_ms):
    """Rate function: ``base`` plus ``amp`` during ``[onset + delay, onset + delay + duration)`` of every onset."""
    onsets = np.asarray(onsets_ms, float)

    def rate(times, ids):
        since = times[:, None] - onsets[None, :] - delay_ms
        on = np.any((since >= 0) & (since < duration_ms), axis=1)
        return base_hz + amp_hz * on
    return rate


def pattern_rate(onsets_ms, labels, patterns, base_hz, duration_ms):
    """Rate function of stimulus patterns: neuron i fires at ``patterns[label][i]`` Hz during the stimulus.

    Parameters
    ----------
    onsets_ms, labels : sequence
        Onset and pattern index of every presentation.
    patterns : numpy.ndarray
        ``(n_patterns, n_neurons)`` rates in Hz during the stimulus.
    base_hz, duration_ms : float
    """
    onsets = np.asarray(onsets_ms, float)
    labels = np.asarray(labels)

    def rate(times, ids):
        k = np.searchsorted(onsets, times, side="right") - 1
        inside = (k >= 0) & (times - onsets[np.maximum(k, 0)] < duration_ms)
        out = np.full(len(times), float(base_hz))
        out[inside] = patterns[labels[k[inside]], ids[inside]]
        return out
    return rate
