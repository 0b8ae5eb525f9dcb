"""Spike-train statistics per population, computed on flat ``(ids, times)`` arrays.

Every function here reproduces an Elephant 1.2.1 routine exactly (the tests
check equality to 1e-12 against :mod:`cortexzoo.validation.elephant_route`),
but works on whole populations at once with numpy instead of one
``neo.SpikeTrain`` per neuron. Conventions copied from Elephant:

* rates: spikes in the window / window length (``mean_firing_rate``), in Hz;
* CV: ``scipy.stats.variation`` of the ISIs, i.e. population std (ddof=0) / mean;
* LV: ``3 * mean(((I[i+1] - I[i]) / (I[i+1] + I[i]))**2)`` (Shinomoto 2003);
* binning (``BinnedSpikeTrain``): bin = floor((t - t_start) * (1 / bin_size)),
  values within 1e-8 below the next integer are moved up into the next bin,
  the number of bins is floor(duration / bin_size) with the same tolerance,
  and spikes past the last full bin are dropped;
* correlation coefficients: Elephant's sparse formula, or ``np.corrcoef``
  when more than 10 % of the binned matrix is non-zero, exactly as Elephant
  chooses;
* complexity: ``Complexity(binary=True, spread=0)``, the number of distinct
  neurons spiking per bin;
* PSD: ``welch_psd`` of the population rate in Hz (``time_histogram(output='rate')``)
  with fixed ``len_segment``, Hann window, constant detrending, density scaling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.signal
import scipy.sparse

from cortexzoo.errors import CortexzooError

BINNING_TOLERANCE = 1e-8  # Elephant's default in BinnedSpikeTrain / round_binning_errors
ELEPHANT_SPARSITY_THRESHOLD = 0.1  # elephant.spike_train_correlation._SPARSITY_MEMORY_EFFICIENT_THR


@dataclass
class PopulationStatistics:
    """All statistics of one population of one run.

    Attributes
    ----------
    population : str
    n_neurons, n_spikes : int
        Neurons in the population; spikes in the analysis window.
    duration_ms : float
    rates_hz : numpy.ndarray
        One firing rate per neuron (silent neurons included, as 0 Hz).
    cv, lv : numpy.ndarray
        CV and LV of the neurons listed in ``cv_neurons`` / ``lv_neurons``.
    cv_neurons, lv_neurons : numpy.ndarray
        Neuron ids with enough spikes (see ``min_spikes_cv`` / ``min_spikes_lv``).
    min_spikes_cv, min_spikes_lv : int
    cc : numpy.ndarray
        Pairwise correlation coefficients (upper triangle) of the subsample.
    cc_neurons : numpy.ndarray
        The subsampled neuron ids.
    cc_n_eligible : int
        Neurons with at least one spike in the binned window (sampled from).
    cc_n_nonfinite : int
        Pairs dropped because a coefficient was not finite.
    synchrony : float
        Variance / mean of the population spike-count histogram.
    complexity : numpy.ndarray
        Distinct neurons spiking per bin, one value per bin.
    psd_freqs_hz, psd : numpy.ndarray
        Welch PSD of the population rate inside the band, in Hz^2/Hz.
    peaks_hz : numpy.ndarray
        Dominant peaks, most prominent first.
    """

    population: str
    n_neurons: int
    n_spikes: int
    duration_ms: float
    rates_hz: np.ndarray
    cv: np.ndarray
    cv_neurons: np.ndarray
    lv: np.ndarray
    lv_neurons: np.ndarray
    min_spikes_cv: int
    min_spikes_lv: int
    cc: np.ndarray
    cc_neurons: np.ndarray
    cc_n_eligible: int
    cc_n_nonfinite: int
    synchrony: float
    complexity: np.ndarray
    psd_freqs_hz: np.ndarray
    psd: np.ndarray
    peaks_hz: np.ndarray
    extra: dict = field(default_factory=dict)

    def sample(self, statistic: str) -> np.ndarray:
        """The sample behind a distribution statistic.

        Parameters
        ----------
        statistic : {'rates', 'cv', 'lv', 'cc', 'complexity'}

        Returns
        -------
        numpy.ndarray
        """
        return {"rates": self.rates_hz, "cv": self.cv, "lv": self.lv, "cc": self.cc,
                "complexity": self.complexity}[statistic]

    def summary(self) -> dict:
        """Scalars for ``statistics.csv``: means, counts, exclusions, peaks.

        Returns
        -------
        dict
        """
        def mean(x):
            return float(np.mean(x)) if len(x) else None

        return {
            "population": self.population,
            "n_neurons": self.n_neurons,
            "n_spikes": self.n_spikes,
            "mean_rate_hz": mean(self.rates_hz),
            "silent_neurons": int(np.sum(self.rates_hz == 0)),
            "mean_cv": mean(self.cv),
            "cv_neurons": len(self.cv),
            "cv_excluded": self.n_neurons - len(self.cv),
            "min_spikes_cv": self.min_spikes_cv,
            "mean_lv": mean(self.lv),
            "lv_neurons": len(self.lv),
            "lv_excluded": self.n_neurons - len(self.lv),
            "min_spikes_lv": self.min_spikes_lv,
            "mean_cc": mean(self.cc),
            "cc_subsample": len(self.cc_neurons),
            "cc_eligible": self.cc_n_eligible,
            "cc_pairs": len(self.cc),
            "cc_pairs_nonfinite_dropped": self.cc_n_nonfinite,
            "synchrony": self.synchrony,
            "mean_complexity": mean(self.complexity),
            "psd_peaks_hz": [float(f) for f in self.peaks_hz],
            **self.extra.get("stationarity", {}),
        }


def _round_bins(values):
    """Elephant's ``round_binning_errors`` (arrays), without its log message."""
    values = np.array(values, dtype=np.float64, copy=True)
    values[1 - BINNING_TOLERANCE <= values % 1] += 0.5
    return values.astype(np.int64)


def n_bins(t_start_ms: float, t_stop_ms: float, bin_ms: float) -> int:
    """Number of whole bins of ``bin_ms`` in the window, as Elephant counts them.

    Parameters
    ----------
    t_start_ms, t_stop_ms, bin_ms : float

    Returns
    -------
    int
    """
    value = (t_stop_ms - t_start_ms) / bin_ms
    if 1 - BINNING_TOLERANCE <= value % 1:
        value += 0.5
    return int(value)


def bin_spikes(times, t_start_ms: float, t_stop_ms: float, bin_ms: float):
    """Bin index of every spike, as ``elephant.conversion.BinnedSpikeTrain`` does.

    Parameters
    ----------
    times : numpy.ndarray
        Spike times in ms, inside ``[t_start_ms, t_stop_ms]``.
    t_start_ms, t_stop_ms, bin_ms : float

    Returns
    -------
    index : numpy.ndarray
        Bin index per spike (only for kept spikes).
    keep : numpy.ndarray of bool
        False for spikes past the last whole bin (Elephant drops them).
    nbins : int
    """
    nbins = n_bins(t_start_ms, t_stop_ms, bin_ms)
    index = _round_bins((np.asarray(times, dtype=np.float64) - t_start_ms) * (1.0 / bin_ms))
    keep = index < nbins
    return index[keep], keep, nbins


def spike_counts(ids, n_neurons: int) -> np.ndarray:
    """Spikes per neuron.

    Parameters
    ----------
    ids : numpy.ndarray
        0-based neuron ids, one per spike.
    n_neurons : int

    Returns
    -------
    numpy.ndarray of int
    """
    return np.bincount(np.asarray(ids, dtype=np.int64), minlength=n_neurons)


def firing_rates(ids, n_neurons: int, duration_ms: float) -> np.ndarray:
    """Single-neuron firing rates in Hz (``elephant.statistics.mean_firing_rate``).

    Parameters
    ----------
    ids : numpy.ndarray
        Neuron id of every spike in the window.
    n_neurons : int
    duration_ms : float

    Returns
    -------
    numpy.ndarray
        One rate per neuron, silent neurons at 0 Hz.
    """
    # Same operation order as Elephant (count / ms, then rescale to Hz).
    return spike_counts(ids, n_neurons) / duration_ms * 1000.0


def isi_variation(ids, times, n_neurons: int, min_spikes: int, presorted: bool = False):
    """CV and LV of the inter-spike intervals of every neuron with enough spikes.

    Parameters
    ----------
    ids, times : numpy.ndarray
        Spikes of one population (any order).
    n_neurons : int
    min_spikes : int
        Neurons need at least this many spikes; at least 2 for CV and 3 for LV
        regardless, since Elephant's LV needs two intervals.
    presorted : bool
        True when the spikes are already ordered by neuron, then time.

    Returns
    -------
    dict
        ``cv``, ``cv_neurons``, ``lv``, ``lv_neurons``, ``min_spikes_cv``, ``min_spikes_lv``.
    """
    ids = np.asarray(ids, dtype=np.int64)
    times = np.asarray(times, dtype=np.float64)
    if not presorted:
        order = np.lexsort((times, ids))
        ids, times = ids[order], times[order]
    counts = spike_counts(ids, n_neurons)

    same = ids[1:] == ids[:-1]
    isi = np.diff(times)[same]
    owner = ids[1:][same]
    n_isi = np.maximum(counts - 1, 0)

    min_cv = max(int(min_spikes), 2)
    cv_neurons = np.flatnonzero(counts >= min_cv)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Two-pass mean/variance like numpy's std, per neuron via bincount.
        mean = np.bincount(owner, weights=isi, minlength=n_neurons) / n_isi
        dev = isi - mean[owner]
        var = np.bincount(owner, weights=dev * dev, minlength=n_neurons) / n_isi
        cv = np.sqrt(var) / mean

    min_lv = max(int(min_spikes), 3)
    lv_neurons = np.flatnonzero(counts >= min_lv)
    pair = owner[1:] == owner[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (np.diff(isi) / (isi[:-1] + isi[1:]))[pair]
        lv = 3.0 * np.bincount(owner[1:][pair], weights=ratio * ratio, minlength=n_neurons) / (n_isi - 1)

    return {
        "cv": cv[cv_neurons], "cv_neurons": cv_neurons, "min_spikes_cv": min_cv,
        "lv": lv[lv_neurons], "lv_neurons": lv_neurons, "min_spikes_lv": min_lv,
    }


def subsample(eligible, size: int, seed: int) -> np.ndarray:
    """Seeded random subsample of neuron ids, sorted.

    Parameters
    ----------
    eligible : numpy.ndarray
        Candidate neuron ids.
    size : int
        Wanted sample size; scaled down to ``len(eligible)`` when larger.
    seed : int

    Returns
    -------
    numpy.ndarray
    """
    eligible = np.asarray(eligible, dtype=np.int64)
    size = min(int(size), len(eligible))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(eligible, size=size, replace=False))


def correlation_matrix(counts) -> np.ndarray:
    """Pearson correlation matrix of binned spike counts, as Elephant computes it.

    Parameters
    ----------
    counts : numpy.ndarray or scipy.sparse matrix
        ``(n_neurons, n_bins)`` spike counts.

    Returns
    -------
    numpy.ndarray
        ``(n_neurons, n_neurons)``.
    """
    sparse = scipy.sparse.csr_matrix(counts)
    nbins = sparse.shape[1]
    if sparse.nnz / (sparse.shape[0] * nbins) > ELEPHANT_SPARSITY_THRESHOLD:
        return np.corrcoef(sparse.toarray())
    # elephant.spike_train_correlation._covariance_sparse with corrcoef_norm=True;
    # the sparse integer product is exact, as in Elephant.
    n = np.asarray(sparse.sum(axis=1)).ravel()
    res = (sparse @ sparse.T).toarray() - np.outer(n, n) / nbins
    std = np.sqrt(res.diagonal())[np.newaxis, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        res /= std.T * std
    return res


def correlation_coefficients(ids, times, n_neurons, t_start_ms, t_stop_ms, bin_ms, n_subsample, seed):
    """Pairwise correlation coefficients of binned spike counts on a seeded subsample.

    Neurons are sampled among those with at least one spike in the binned
    window, so that no coefficient is undefined because of a silent neuron.

    Parameters
    ----------
    ids, times : numpy.ndarray
    n_neurons : int
    t_start_ms, t_stop_ms, bin_ms : float
    n_subsample : int
        Wanted subsample size (scaled down to the number of eligible neurons).
    seed : int

    Returns
    -------
    dict
        ``cc`` (upper-triangle coefficients, finite only), ``neurons``,
        ``n_eligible``, ``n_nonfinite``.
    """
    ids = np.asarray(ids, dtype=np.int64)
    index, keep, nbins = bin_spikes(times, t_start_ms, t_stop_ms, bin_ms)
    ids = ids[keep]
    eligible = np.flatnonzero(spike_counts(ids, n_neurons) > 0)
    chosen = subsample(eligible, n_subsample, seed)
    row = np.full(n_neurons, -1, dtype=np.int64)
    row[chosen] = np.arange(len(chosen))
    mine = row[ids] >= 0
    counts = scipy.sparse.csr_matrix((np.ones(int(mine.sum()), dtype=np.int64), (row[ids[mine]], index[mine])),
                                     shape=(len(chosen), nbins))  # duplicates are summed: spike counts
    if len(chosen) < 2:
        cc = np.empty(0)
    else:
        cc = correlation_matrix(counts)[np.triu_indices(len(chosen), 1)]
    finite = np.isfinite(cc)
    return {"cc": cc[finite], "neurons": chosen, "n_eligible": len(eligible), "n_nonfinite": int(np.sum(~finite))}


def population_histogram(times, t_start_ms, t_stop_ms, bin_ms) -> np.ndarray:
    """Population spike-count histogram (``elephant.statistics.time_histogram``, counts).

    Parameters
    ----------
    times : numpy.ndarray
    t_start_ms, t_stop_ms, bin_ms : float

    Returns
    -------
    numpy.ndarray of int
    """
    index, _, nbins = bin_spikes(times, t_start_ms, t_stop_ms, bin_ms)
    return np.bincount(index, minlength=nbins)


def synchrony_index(times, t_start_ms, t_stop_ms, bin_ms) -> float:
    """Variance / mean of the population spike-count histogram (PD14's synchrony).

    Parameters
    ----------
    times : numpy.ndarray
    t_start_ms, t_stop_ms, bin_ms : float

    Returns
    -------
    float
    """
    hist = population_histogram(times, t_start_ms, t_stop_ms, bin_ms)
    return float(np.var(hist) / np.mean(hist))


def complexity(ids, times, t_start_ms, t_stop_ms, bin_ms, presorted=False) -> np.ndarray:
    """Distinct neurons spiking per bin (``Complexity(binary=True, spread=0).time_histogram``).

    Parameters
    ----------
    ids, times : numpy.ndarray
    t_start_ms, t_stop_ms, bin_ms : float
    presorted : bool
        True when the spikes are already ordered by neuron, then time (saves a sort).

    Returns
    -------
    numpy.ndarray of int
        One value per bin; ``np.bincount`` of it is Elephant's ``complexity_histogram``.
    """
    ids = np.asarray(ids, dtype=np.int64)
    times = np.asarray(times, dtype=np.float64)
    if not presorted:
        order = np.lexsort((times, ids))
        ids, times = ids[order], times[order]
    index, keep, nbins = bin_spikes(times, t_start_ms, t_stop_ms, bin_ms)
    ids = ids[keep]
    # Sorted by neuron and time, repeated (neuron, bin) pairs are adjacent.
    first = np.ones(len(ids), dtype=bool)
    first[1:] = (ids[1:] != ids[:-1]) | (index[1:] != index[:-1])
    return np.bincount(index[first], minlength=nbins)


def welch_parameters(settings: dict) -> dict:
    """Segment length (samples) and overlap for Welch from the settings.

    Parameters
    ----------
    settings : dict
        The ``statistics`` table of the settings.

    Returns
    -------
    dict
        ``len_segment`` and ``overlap``.
    """
    return {"len_segment": int(round(settings["welch_segment_ms"] / settings["psd_bin_ms"])),
            "overlap": float(settings["welch_overlap"])}


def band_mask(freqs, band_hz) -> np.ndarray:
    """Frequencies inside ``[low, high]`` (inclusive, tolerant to rounding).

    Parameters
    ----------
    freqs : numpy.ndarray
    band_hz : sequence of two floats

    Returns
    -------
    numpy.ndarray of bool
    """
    return (freqs >= band_hz[0] - 1e-9) & (freqs <= band_hz[1] + 1e-9)


def population_rate_psd(times, n_neurons, t_start_ms, t_stop_ms, bin_ms, len_segment, overlap):
    """Welch PSD of the population rate (Hz per neuron), like ``elephant.spectral.welch_psd``.

    Parameters
    ----------
    times : numpy.ndarray
    n_neurons : int
    t_start_ms, t_stop_ms, bin_ms : float
    len_segment : int
        Samples per Welch segment.
    overlap : float
        Fraction of segment overlap.

    Returns
    -------
    freqs : numpy.ndarray
        In Hz.
    psd : numpy.ndarray
        In Hz^2/Hz.
    """
    hist = population_histogram(times, t_start_ms, t_stop_ms, bin_ms)
    if len(hist) < len_segment:
        raise CortexzooError(
            f"The Welch segment ({len_segment} samples) is longer than the analysis window ({len(hist)} samples).",
            "Lower statistics.welch_segment_ms or simulate longer.",
        )
    rate = hist / (n_neurons * bin_ms) * 1000.0
    return scipy.signal.welch(rate, fs=1000.0 / bin_ms, window="hann", nperseg=len_segment,
                              noverlap=int(len_segment * overlap), nfft=None, detrend="constant",
                              return_onesided=True, scaling="density", axis=-1)


def dominant_peaks(freqs, psd, n_peaks: int) -> np.ndarray:
    """The most prominent local maxima of ``log10(psd)``.

    Parameters
    ----------
    freqs, psd : numpy.ndarray
        Already restricted to the band.
    n_peaks : int

    Returns
    -------
    numpy.ndarray
        Peak frequencies, most prominent first; the global maximum when the
        spectrum has no interior local maximum.
    """
    logpsd = np.log10(np.maximum(psd, np.finfo(float).tiny))
    peaks, props = scipy.signal.find_peaks(logpsd, prominence=0)
    if len(peaks) == 0:
        return np.array([freqs[np.argmax(logpsd)]])
    order = np.argsort(-props["prominences"], kind="stable")[:n_peaks]
    return freqs[peaks[order]]


def population_statistics(population, ids, times, n_neurons, t_start_ms, t_stop_ms, settings) -> PopulationStatistics:
    """All statistics of one population.

    Parameters
    ----------
    population : str
    ids, times : numpy.ndarray
        Spikes inside the analysis window (as ``RunData.window`` returns them).
    n_neurons : int
    t_start_ms, t_stop_ms : float
    settings : dict
        Full settings (see :func:`cortexzoo.validation.settings.load_settings`).

    Returns
    -------
    PopulationStatistics
    """
    s = settings["statistics"]
    ids = np.asarray(ids, dtype=np.int64)
    times = np.asarray(times, dtype=np.float64)
    order = np.lexsort((times, ids))  # by neuron, then time; shared by ISI and complexity
    ids, times = ids[order], times[order]
    duration = t_stop_ms - t_start_ms
    iv = isi_variation(ids, times, n_neurons, s["min_spikes_isi"], presorted=True)
    cc = correlation_coefficients(ids, times, n_neurons, t_start_ms, t_stop_ms, s["cc_bin_ms"],
                                  s["cc_subsample_neurons"], s["cc_seed"])
    freqs, psd = population_rate_psd(times, n_neurons, t_start_ms, t_stop_ms, s["psd_bin_ms"], **welch_parameters(s))
    band = band_mask(freqs, s["band_hz"])
    return PopulationStatistics(
        population=population, n_neurons=int(n_neurons), n_spikes=int(len(ids)), duration_ms=float(duration),
        rates_hz=firing_rates(ids, n_neurons, duration),
        cv=iv["cv"], cv_neurons=iv["cv_neurons"], lv=iv["lv"], lv_neurons=iv["lv_neurons"],
        min_spikes_cv=iv["min_spikes_cv"], min_spikes_lv=iv["min_spikes_lv"],
        cc=cc["cc"], cc_neurons=cc["neurons"], cc_n_eligible=cc["n_eligible"], cc_n_nonfinite=cc["n_nonfinite"],
        synchrony=synchrony_index(times, t_start_ms, t_stop_ms, s["synchrony_bin_ms"]),
        complexity=complexity(ids, times, t_start_ms, t_stop_ms, s["complexity_bin_ms"], presorted=True),
        psd_freqs_hz=freqs[band], psd=psd[band],
        peaks_hz=dominant_peaks(freqs[band], psd[band], s["n_peaks"]),
        extra={"stationarity": stationarity(times, n_neurons, t_start_ms, t_stop_ms)},
    )


def stationarity(times, n_neurons: int, t_start_ms: float, t_stop_ms: float) -> dict:
    """Population rate in the first and second half of the window, their drift and its Poisson z-score.

    A run whose slow variables have not settled (too short a warm-up) or whose
    activity runs away shows a rate that changes between the halves. Under a
    stationary Poisson-like count the difference of the two halves' counts has
    variance n1 + n2, so ``z = (n2 - n1) / sqrt(n1 + n2)``; network
    fluctuations make real runs spread wider, so treat ``|z|`` as a flag to
    look, not a test.

    Parameters
    ----------
    times : numpy.ndarray
        Spike times in the window.
    n_neurons : int
    t_start_ms, t_stop_ms : float

    Returns
    -------
    dict
        ``rate_first_half_hz``, ``rate_second_half_hz``, ``relative_drift``
        ((second - first) / mean, NaN when silent) and ``drift_z``.
    """
    middle = 0.5 * (t_start_ms + t_stop_ms)
    n1 = int(np.sum(np.asarray(times) <= middle))
    n2 = int(len(times)) - n1
    half_s = 0.5 * (t_stop_ms - t_start_ms) / 1000.0
    r1, r2 = n1 / n_neurons / half_s, n2 / n_neurons / half_s
    total = n1 + n2
    return {"rate_first_half_hz": r1, "rate_second_half_hz": r2,
            "relative_drift": (r2 - r1) / (0.5 * (r1 + r2)) if total else float("nan"),
            "drift_z": (n2 - n1) / np.sqrt(total) if total else float("nan")}


def run_statistics(run, settings, populations=None) -> dict:
    """Statistics of every population of a loaded run.

    Parameters
    ----------
    run : cortexzoo.network.output.RunData
    settings : dict
    populations : list of str, optional
        Defaults to all populations of the run.

    Returns
    -------
    dict
        Population -> :class:`PopulationStatistics`.
    """
    out = {}
    for pop in populations or run.populations:
        ids, times = run.window(pop)
        out[pop] = population_statistics(pop, ids, times, run.sizes[pop], run.t_start_ms, run.t_stop_ms, settings)
    return out
