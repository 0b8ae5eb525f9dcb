"""The same statistics computed the standard way: neo spike trains through Elephant.

This is the reference the fast numpy statistics are checked against (tests and
benchmark), and the fallback of the SciUnit tests for models that only provide
``neo.SpikeTrain`` lists. It is slow because it needs one Python object and
one Elephant call per neuron; Elephant's warnings about empty trains and
binning corrections are expected here and silenced.
"""

from __future__ import annotations

import warnings

import numpy as np
import quantities as pq

from cortexzoo.validation.statistics import band_mask, dominant_peaks, subsample, welch_parameters


def rates(spiketrains) -> np.ndarray:
    """Rates in Hz with ``elephant.statistics.mean_firing_rate``.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain

    Returns
    -------
    numpy.ndarray
    """
    from elephant.statistics import mean_firing_rate

    return np.array([mean_firing_rate(st).rescale("Hz").magnitude.item() for st in spiketrains])


def cv_lv(spiketrains, min_spikes: int) -> dict:
    """CV and LV with ``elephant.statistics.isi``, ``cv`` and ``lv``.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain
    min_spikes : int
        Same meaning as in :func:`cortexzoo.validation.statistics.isi_variation`.

    Returns
    -------
    dict
        ``cv``, ``cv_neurons``, ``lv``, ``lv_neurons``.
    """
    from elephant.statistics import cv, isi, lv

    min_cv, min_lv = max(min_spikes, 2), max(min_spikes, 3)
    out = {"cv": [], "cv_neurons": [], "lv": [], "lv_neurons": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantities' per-call deprecation warning inside isi()
        _cv_lv_loop(spiketrains, min_cv, min_lv, out, cv, isi, lv)
    return {k: np.array(v) for k, v in out.items()}


def _cv_lv_loop(spiketrains, min_cv, min_lv, out, cv, isi, lv):
    for i, st in enumerate(spiketrains):
        if len(st) >= min_cv:
            intervals = isi(st)
            out["cv"].append(float(cv(intervals.magnitude)))
            out["cv_neurons"].append(i)
            if len(st) >= min_lv:
                out["lv"].append(float(lv(intervals)))
                out["lv_neurons"].append(i)


def correlation_coefficients(spiketrains, bin_ms, n_subsample, seed) -> dict:
    """Correlation coefficients with ``BinnedSpikeTrain`` and ``correlation_coefficient``.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain
    bin_ms : float
    n_subsample, seed : int
        Subsampling among neurons with a spike in the binned window, as in
        :func:`cortexzoo.validation.statistics.correlation_coefficients`.

    Returns
    -------
    dict
        ``cc``, ``neurons``, ``n_eligible``.
    """
    from elephant.conversion import BinnedSpikeTrain
    from elephant.spike_train_correlation import correlation_coefficient

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        binned = BinnedSpikeTrain(spiketrains, bin_size=bin_ms * pq.ms)
        eligible = np.flatnonzero(binned.get_num_of_spikes(axis=1) > 0)
        chosen = subsample(eligible, n_subsample, seed)
        matrix = correlation_coefficient(BinnedSpikeTrain([spiketrains[i] for i in chosen], bin_size=bin_ms * pq.ms))
    cc = matrix[np.triu_indices(len(chosen), 1)]
    return {"cc": cc[np.isfinite(cc)], "neurons": chosen, "n_eligible": len(eligible)}


def synchrony(spiketrains, bin_ms) -> float:
    """Variance / mean of ``elephant.statistics.time_histogram`` counts.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain
    bin_ms : float

    Returns
    -------
    float
    """
    from elephant.statistics import time_histogram

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hist = time_histogram(spiketrains, bin_size=bin_ms * pq.ms).magnitude.ravel()
    return float(np.var(hist) / np.mean(hist))


def complexity(spiketrains, bin_ms):
    """Per-bin complexity and complexity histogram with ``elephant.statistics.Complexity``.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain
    bin_ms : float

    Returns
    -------
    samples : numpy.ndarray
        ``Complexity.time_histogram`` values.
    histogram : numpy.ndarray
        ``Complexity.complexity_histogram``.
    """
    from elephant.statistics import Complexity

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpx = Complexity(spiketrains, bin_size=bin_ms * pq.ms, binary=True, spread=0)
    return cpx.time_histogram.magnitude.ravel().astype(np.int64), np.asarray(cpx.complexity_histogram)


def psd(spiketrains, settings_statistics):
    """Welch PSD of the population rate with ``time_histogram`` and ``welch_psd``.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain
    settings_statistics : dict
        The ``statistics`` table of the settings.

    Returns
    -------
    freqs, psd : numpy.ndarray
        Inside the band, in Hz and Hz^2/Hz.
    """
    from elephant.spectral import welch_psd
    from elephant.statistics import time_histogram

    s = settings_statistics
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rate = time_histogram(spiketrains, bin_size=s["psd_bin_ms"] * pq.ms, output="rate").rescale("Hz")
        freqs, power = welch_psd(rate, **welch_parameters(s))
    freqs = freqs.rescale("Hz").magnitude
    power = power.magnitude.ravel()
    band = band_mask(freqs, s["band_hz"])
    return freqs[band], power[band]


def population_statistics(spiketrains, settings) -> dict:
    """Every statistic of one population via Elephant, keyed like :class:`PopulationStatistics`.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain
        One per neuron, all on the analysis window.
    settings : dict

    Returns
    -------
    dict
    """
    s = settings["statistics"]
    iv = cv_lv(spiketrains, s["min_spikes_isi"])
    cc = correlation_coefficients(spiketrains, s["cc_bin_ms"], s["cc_subsample_neurons"], s["cc_seed"])
    cpx, cpx_hist = complexity(spiketrains, s["complexity_bin_ms"])
    freqs, power = psd(spiketrains, s)
    return {
        "rates_hz": rates(spiketrains), **iv,
        "cc": cc["cc"], "cc_neurons": cc["neurons"], "cc_n_eligible": cc["n_eligible"],
        "synchrony": synchrony(spiketrains, s["synchrony_bin_ms"]),
        "complexity": cpx, "complexity_histogram": cpx_hist,
        "psd_freqs_hz": freqs, "psd": power, "peaks_hz": dominant_peaks(freqs, power, s["n_peaks"]),
    }
