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

from cortexzoo.validation.statistics import (
    band_mask,
    cc_noise_floor,
    dominant_peaks,
    scalar_measures,
    shot_noise_floor,
    subsample,
    welch_parameters,
)


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


def cv_lv(spiketrains, min_isis_cv: int, min_isis_lv: int) -> dict:
    """CV and LV with ``elephant.statistics.isi``, ``cv`` and ``lv``.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain
    min_isis_cv, min_isis_lv : int
        Same meaning as in :func:`cortexzoo.validation.statistics.isi_variation`.

    Returns
    -------
    dict
        ``cv``, ``cv_neurons``, ``lv``, ``lv_neurons``.
    """
    from elephant.statistics import cv, isi, lv

    min_cv, min_lv = max(min_isis_cv, 1), max(min_isis_lv, 2)
    out = {"cv": [], "cv_neurons": [], "lv": [], "lv_neurons": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantities' per-call deprecation warning inside isi()
        _cv_lv_loop(spiketrains, min_cv, min_lv, out, cv, isi, lv)
    return {k: np.array(v) for k, v in out.items()}


def _cv_lv_loop(spiketrains, min_cv, min_lv, out, cv, isi, lv):
    for i, st in enumerate(spiketrains):
        if len(st) - 1 >= min_cv:
            intervals = isi(st)
            out["cv"].append(float(cv(intervals.magnitude)))
            out["cv_neurons"].append(i)
        if len(st) - 1 >= min_lv:
            out["lv"].append(float(lv(isi(st))))
            out["lv_neurons"].append(i)


def correlation_coefficients(spiketrains, bin_ms, n_subsample, seed, min_rate_hz) -> dict:
    """Correlation coefficients with ``BinnedSpikeTrain`` and ``correlation_coefficient``.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain
    bin_ms : float
    n_subsample, seed : int
    min_rate_hz : float
        Subsampling among neurons firing at >= this rate (``mean_firing_rate``),
        as in :func:`cortexzoo.validation.statistics.correlation_coefficients`.

    Returns
    -------
    dict
        ``cc``, ``neurons``, ``n_eligible``, ``n_bins``, ``noise_floor_sd``, ``subsample_rate_hz``.
    """
    from elephant.conversion import BinnedSpikeTrain
    from elephant.spike_train_correlation import correlation_coefficient

    rate = rates(spiketrains)
    eligible = np.flatnonzero(rate >= min_rate_hz)
    chosen = subsample(eligible, n_subsample, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # With nobody chosen, one train still gives the window's number of bins.
        binned = BinnedSpikeTrain([spiketrains[i] for i in chosen] if len(chosen) else spiketrains[:1],
                                  bin_size=bin_ms * pq.ms)
        matrix = correlation_coefficient(binned) if len(chosen) >= 2 else np.empty((len(chosen), len(chosen)))
    cc = matrix[np.triu_indices(len(chosen), 1)]
    return {"cc": cc[np.isfinite(cc)], "neurons": chosen, "n_eligible": len(eligible), "n_bins": binned.n_bins,
            "noise_floor_sd": cc_noise_floor(binned.n_bins),
            "subsample_rate_hz": float(np.mean(rate[chosen])) if len(chosen) else float("nan")}


def synchrony(spiketrains, bin_ms, n_subsample, seed) -> dict:
    """Variance / mean of ``elephant.statistics.time_histogram`` counts of the fixed subsample.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain
    bin_ms : float
    n_subsample, seed : int
        As in :func:`cortexzoo.validation.statistics.synchrony_subsample`.

    Returns
    -------
    dict
        ``synchrony`` and ``neurons``.
    """
    from elephant.statistics import time_histogram

    if len(spiketrains) < n_subsample:
        return {"synchrony": float("nan"), "neurons": np.empty(0, dtype=np.int64)}
    chosen = subsample(np.arange(len(spiketrains)), n_subsample, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hist = time_histogram([spiketrains[i] for i in chosen], bin_size=bin_ms * pq.ms).magnitude.ravel()
    mean = np.mean(hist)
    return {"synchrony": float(np.var(hist) / mean) if mean > 0 else float("nan"), "neurons": chosen}


def fano_factors(spiketrains, window_ms) -> tuple:
    """Per-neuron ``elephant.statistics.fanofactor`` over the train cut into consecutive windows.

    The windows are ``BinnedSpikeTrain`` bins of ``window_ms`` (Elephant's
    binning decides which window a spike on an edge belongs to); each
    window's spikes become one train passed to ``fanofactor``. Its ddof-0
    variance is rescaled by n / (n - 1) for n windows, to the unbiased
    variance :func:`cortexzoo.validation.statistics.fano_factors` uses.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain
    window_ms : float

    Returns
    -------
    ff : numpy.ndarray
        Neurons without spikes in the windows (``fanofactor`` gives NaN) left out.
    n_windows : int
    """
    from elephant.conversion import BinnedSpikeTrain
    from elephant.statistics import fanofactor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        binned = BinnedSpikeTrain(spiketrains, bin_size=window_ms * pq.ms)
    n_windows = binned.n_bins
    if n_windows < 2:
        return np.empty(0), n_windows
    ff = []
    for st, index in zip(spiketrains, binned.spike_indices):
        # spike_indices leaves out the spikes past the last whole window, the last ones in time.
        times = np.sort(st.magnitude)[:len(index)]
        # Plain arrays: fanofactor only counts each window's spikes (its duration check is for neo
        # trains; the windows here all have the same length by construction).
        cut = np.split(times, np.searchsorted(index, np.arange(1, n_windows)))
        ff.append(fanofactor(cut) * n_windows / (n_windows - 1))
    ff = np.array(ff, dtype=float)
    return ff[np.isfinite(ff)], n_windows


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
    """Welch PSD of the population rate with ``time_histogram`` and ``welch_psd``, and its shot-noise floor.

    Parameters
    ----------
    spiketrains : list of neo.SpikeTrain
    settings_statistics : dict
        The ``statistics`` table of the settings.

    Returns
    -------
    freqs, psd : numpy.ndarray
        Inside the band, in Hz and Hz^2/Hz.
    floor : float
        ``2 * mean rate / N``, Hz^2/Hz.
    """
    from elephant.spectral import welch_psd
    from elephant.statistics import time_histogram

    s = settings_statistics
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rate = time_histogram(spiketrains, bin_size=s["psd_bin_ms"] * pq.ms, output="rate").rescale("Hz")
        freqs, power = welch_psd(rate, **welch_parameters(s))
    floor = shot_noise_floor(float(np.mean(rate.magnitude)), len(spiketrains))
    freqs = freqs.rescale("Hz").magnitude
    power = power.magnitude.ravel()
    band = band_mask(freqs, s["band_hz"])
    return freqs[band], power[band], floor


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
        The fields, plus ``complexity_histogram``, ``measures`` and
        ``undefined_measures`` (derived from these arrays with
        :func:`cortexzoo.validation.statistics.scalar_measures`).
    """
    s = settings["statistics"]
    iv = cv_lv(spiketrains, s["min_isis_cv"], s["min_isis_lv"])
    cc = correlation_coefficients(spiketrains, s["cc_bin_ms"], s["cc_subsample_neurons"], s["cc_seed"],
                                  s["cc_min_rate_hz"])
    sync = synchrony(spiketrains, s["synchrony_bin_ms"], s["synchrony_subsample_neurons"], s["synchrony_seed"])
    cpx, cpx_hist = complexity(spiketrains, s["complexity_bin_ms"])
    freqs, power, floor = psd(spiketrains, s)
    fano = {w: fano_factors(spiketrains, w) for w in s["fano_windows_ms"]}
    out = {
        "n_neurons": len(spiketrains), "rates_hz": rates(spiketrains), **iv,
        "min_isis_cv": s["min_isis_cv"], "min_isis_lv": s["min_isis_lv"],
        "cc": cc["cc"], "cc_neurons": cc["neurons"], "cc_n_eligible": cc["n_eligible"],
        "cc_subsample_size": s["cc_subsample_neurons"], "cc_min_rate_hz": s["cc_min_rate_hz"],
        "cc_noise_floor_sd": cc["noise_floor_sd"], "cc_subsample_rate_hz": cc["subsample_rate_hz"],
        "synchrony": sync["synchrony"], "synchrony_neurons": sync["neurons"],
        "synchrony_subsample_size": s["synchrony_subsample_neurons"],
        "complexity": cpx, "complexity_histogram": cpx_hist,
        "psd_freqs_hz": freqs, "psd": power, "peaks_hz": dominant_peaks(freqs, power, s["n_peaks"]),
        "psd_floor": floor, "psd_floor_removed": power - floor,
        "fano": {w: ff for w, (ff, _) in fano.items()}, "fano_n_windows": {w: n for w, (_, n) in fano.items()},
    }
    out["measures"], out["undefined_measures"] = scalar_measures(out)
    return out
