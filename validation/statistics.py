"""Spike-train statistics per population, computed on flat ``(ids, times)`` arrays.

Every array statistic here reproduces an Elephant 1.2.1 routine exactly (the
tests check equality to 1e-12 against :mod:`cortexzoo.validation.elephant_route`),
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
  with fixed ``len_segment``, Hann window, constant detrending, density scaling;
* Fano factor: ``fanofactor`` of one neuron's train cut into consecutive
  windows (the windows binned as ``BinnedSpikeTrain`` bins them).

On top of the arrays, :meth:`PopulationStatistics.measures` gives one scalar
per measure and run (:data:`MEASURE_UNITS`), built so that its expectation
does not grow with the duration or the network size: fixed-size neuron
subsamples for CC and synchrony, a rate floor for CC eligibility, an ISI
count floor for CV, and the Poisson shot-noise floor removed from the PSD.
Seeds can then be compared with ordinary two-sample tests
(:mod:`cortexzoo.validation.inference`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.integrate
import scipy.signal
import scipy.sparse

from cortexzoo.errors import CortexzooError

BINNING_TOLERANCE = 1e-8  # Elephant's default in BinnedSpikeTrain / round_binning_errors
ELEPHANT_SPARSITY_THRESHOLD = 0.1  # elephant.spike_train_correlation._SPARSITY_MEMORY_EFFICIENT_THR

# Units of the scalar measures; ``ff_<w>ms`` (one per Fano window) are ratios, unit "1".
MEASURE_UNITS = {
    "rate_hz": "Hz",
    "lv": "1",
    "cv": "1",
    "cc": "1",
    "cc_excess_sd": "1",
    "synchrony": "1",
    "psd_band_power_hz2": "Hz^2",
    "psd_peak_hz": "Hz",
    "psd_peak_power": "Hz^2/Hz",
}
# Units of the measures of stimulus experiments (validation/responses.py): not statistics of a
# population's stationary activity, so kept apart from MEASURE_UNITS (what PopulationStatistics gives).
RESPONSE_UNITS = {
    # responses to thalamic pulses (validation/transient.py, validation/responses.py)
    "baseline_hz": "Hz",
    "latency_ms": "ms",
    "peak_hz": "Hz",
    "time_to_peak_ms": "ms",
    "duration_ms": "ms",
    "response_fraction": "1",
    # responses to thalamic patterns (validation/separability.py): inter/intra distance and readout accuracy
    "separation_ratio": "1",
    "separation_peak": "1",
    "readout_accuracy": "1",
    "readout_peak": "1",
    # divergence after one extra input spike (validation/perturbation.py, validation/perturbation_runs.py)
    "divergence_rate_per_ms": "1/ms",
    "decorrelation_time_ms": "ms",
    "fraction_differs": "1",
}


def fano_key(window_ms: float) -> str:
    """Measure name of the Fano factor with counting window ``window_ms``, e.g. ``ff_10ms``.

    Parameters
    ----------
    window_ms : float

    Returns
    -------
    str
    """
    return f"ff_{window_ms:g}ms"


def measure_unit(name: str) -> str:
    """Unit of a measure of :meth:`PopulationStatistics.measures`.

    Parameters
    ----------
    name : str

    Returns
    -------
    str
        From :data:`MEASURE_UNITS` or :data:`RESPONSE_UNITS`; ``"1"`` for the Fano
        factors ``ff_<w>ms``.
    """
    if name in MEASURE_UNITS or name in RESPONSE_UNITS:
        return {**MEASURE_UNITS, **RESPONSE_UNITS}[name]
    if name.startswith("ff_") and name.endswith("ms"):
        return "1"
    raise KeyError(f"Unknown measure {name!r}")


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
        Neuron ids with enough inter-spike intervals (``min_isis_cv`` / ``min_isis_lv``).
    min_spikes_cv, min_spikes_lv : int
        The same thresholds counted in spikes (intervals + 1).
    cc : numpy.ndarray
        Pairwise correlation coefficients (upper triangle, finite only) of the subsample.
    cc_neurons : numpy.ndarray
        The subsampled neuron ids: ``cc_subsample_size`` neurons drawn among the
        ``cc_n_eligible`` ones firing at >= ``cc_min_rate_hz``, or all of them
        when fewer are eligible (then the scalar CC measures are undefined).
    cc_n_eligible : int
        Neurons firing at >= ``cc_min_rate_hz`` in the window (sampled from).
    cc_n_nonfinite : int
        Pairs dropped because a coefficient was not finite.
    synchrony : float
        Variance / mean of the spike-count histogram of the fixed synchrony
        subsample (``synchrony_neurons``); NaN when undefined.
    complexity : numpy.ndarray
        Distinct neurons spiking per bin, one value per bin.
    psd_freqs_hz, psd : numpy.ndarray
        Welch PSD of the population rate inside the band, in Hz^2/Hz.
    peaks_hz : numpy.ndarray
        Dominant peaks of ``psd``, most prominent first.
    min_isis_cv, min_isis_lv : int
        Inter-spike intervals a neuron needs for CV / LV.
    cc_subsample_size : int
        The fixed CC subsample size asked for (``cc_subsample_neurons``).
    cc_min_rate_hz : float
    cc_noise_floor_sd : float
        ``1 / sqrt(n_bins)``: SD of the Pearson CC of two independent trains.
    cc_subsample_rate_hz : float
        Mean rate of ``cc_neurons`` (CC grows with rate, de la Rocha et al. 2007).
    synchrony_neurons : numpy.ndarray
        The fixed synchrony subsample; empty when the population is smaller.
    synchrony_subsample_size : int
    psd_floor : float
        Shot-noise floor ``2 * nu / N`` of the population rate, Hz^2/Hz.
    psd_floor_removed : numpy.ndarray
        ``psd - psd_floor`` inside the band.
    fano : dict
        Counting window (ms) -> Fano factor of every neuron with spikes in it.
    fano_n_windows : dict
        Counting window (ms) -> number of consecutive windows in the analysis window.
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
    min_isis_cv: int
    min_isis_lv: int
    cc_subsample_size: int
    cc_min_rate_hz: float
    cc_noise_floor_sd: float
    cc_subsample_rate_hz: float
    synchrony_neurons: np.ndarray
    synchrony_subsample_size: int
    psd_floor: float
    psd_floor_removed: np.ndarray
    fano: dict
    fano_n_windows: dict
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

    def measures(self) -> dict:
        """One scalar per measure of this run, NaN when undefined.

        Returns
        -------
        dict
            ``rate_hz``, ``lv``, ``cv``, ``cc``, ``cc_excess_sd``, ``synchrony``,
            ``psd_band_power_hz2``, ``psd_peak_hz``, ``psd_peak_power`` and one
            ``ff_<w>ms`` per Fano window; see :func:`scalar_measures`.
        """
        return scalar_measures(vars(self))[0]

    def undefined_measures(self) -> dict:
        """Why each NaN measure of :meth:`measures` is undefined.

        Returns
        -------
        dict
            Measure name -> reason, only for undefined measures.
        """
        return scalar_measures(vars(self))[1]

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
            "min_isis_cv": self.min_isis_cv,
            "min_spikes_cv": self.min_spikes_cv,
            "mean_lv": mean(self.lv),
            "lv_neurons": len(self.lv),
            "lv_excluded": self.n_neurons - len(self.lv),
            "min_isis_lv": self.min_isis_lv,
            "min_spikes_lv": self.min_spikes_lv,
            "mean_cc": mean(self.cc),
            "cc_subsample": len(self.cc_neurons),
            "cc_eligible": self.cc_n_eligible,
            "cc_subsample_rate_hz": self.cc_subsample_rate_hz,
            "cc_noise_floor_sd": self.cc_noise_floor_sd,
            "cc_pairs": len(self.cc),
            "cc_pairs_nonfinite_dropped": self.cc_n_nonfinite,
            "synchrony": self.synchrony,
            "synchrony_subsample": len(self.synchrony_neurons),
            "mean_complexity": mean(self.complexity),
            "psd_floor": self.psd_floor,
            "psd_peaks_hz": [float(f) for f in self.peaks_hz],
            **self.extra.get("stationarity", {}),
        }


def scalar_measures(s) -> tuple:
    """Scalar measures and the reasons for undefined ones, from the statistics' fields.

    Shared by :class:`PopulationStatistics` and the Elephant route
    (:func:`cortexzoo.validation.elephant_route.population_statistics`), so
    both derive the measures the same way from their own arrays.

    Parameters
    ----------
    s : mapping
        The fields of :class:`PopulationStatistics` (at least ``n_neurons``,
        ``rates_hz``, ``cv``, ``lv``, ``min_isis_cv``, ``min_isis_lv``, ``cc``,
        ``cc_n_eligible``, ``cc_subsample_size``, ``cc_min_rate_hz``,
        ``cc_noise_floor_sd``, ``synchrony``, ``synchrony_neurons``,
        ``synchrony_subsample_size``, ``psd_freqs_hz``, ``psd_floor``,
        ``psd_floor_removed``, ``fano``, ``fano_n_windows``).

    Returns
    -------
    values : dict
        Measure -> float (NaN when undefined).
    reasons : dict
        Measure -> why it is undefined.

    Notes
    -----
    * ``rate_hz``: mean rate over all neurons, silent ones included.
    * ``lv``: mean LV over neurons with >= ``min_isis_lv`` intervals. LV is
      unbiased for Poisson trains with any number of intervals >= 2:
      each term ``3 ((I1 - I2) / (I1 + I2))**2`` has expectation 1
      (Shinomoto et al. 2003), so its mean does not depend on rate or duration.
    * ``cv``: mean CV over neurons with >= ``min_isis_cv`` intervals. The CV of
      n Poisson intervals is biased low by about 1.3 / n (0.88 at n = 10,
      0.97 at n = 40), so the floor bounds, but does not remove, its dependence
      on rate x duration.
    * ``cc``: mean pairwise CC of the fixed-size subsample of neurons firing
      at >= ``cc_min_rate_hz`` (CCs grow with rate, de la Rocha et al. 2007, so
      the rate floor and the recorded subsample rate matter).
      ``cc_excess_sd = sqrt(max(var(cc) - cc_noise_floor_sd**2, 0))``: the
      spread of the CCs beyond the sampling noise of independent trains.
      Correlations made of synchronous spikes carry more sampling noise than
      that: a pair with count correlation c has ``n_bins * Var(r) ~ 1 + c /
      (nu * bin)`` (the counts' joint fourth moment), so ``cc_excess_sd``
      includes ``floor * sqrt(mean(c / (nu * bin)))`` besides the true spread
      (tests/test_validation_measures.py checks both parts); that part shrinks
      as ``1 / sqrt(duration)``.
    * ``synchrony``: variance / mean of the summed counts of a fixed-size
      subsample; for the whole population it grows with the population size
      as ``1 + (N - 1) * c`` for a pairwise count correlation ``c``.
    * ``psd_band_power_hz2``: integral (trapezoid) over the band of the PSD
      minus the shot-noise floor; ``psd_peak_hz`` / ``psd_peak_power``: argmax
      and maximum of that floor-removed PSD in the band.
    * ``ff_<w>ms``: mean over neurons with spikes of var (ddof 1) / mean of
      their counts in consecutive windows of w ms.
    """
    values, reasons = {}, {}

    def put(name, value, reason=None):
        values[name] = float("nan") if reason else float(value)
        if reason:
            reasons[name] = reason

    put("rate_hz", np.mean(s["rates_hz"]) if s["n_neurons"] else 0.0,
        None if s["n_neurons"] else "the population has no neurons")
    for name, key in (("lv", "min_isis_lv"), ("cv", "min_isis_cv")):
        sample = s[name]
        put(name, np.mean(sample) if len(sample) else 0.0,
            None if len(sample) else f"no neuron has the {s[key]} inter-spike intervals {name.upper()} needs "
                                     f"(statistics.{key})")
    _cc_measures(s, put)
    _synchrony_measure(s, put)
    _psd_measures(s, put)
    for window, ff in s["fano"].items():
        n_windows = s["fano_n_windows"][window]
        if n_windows < 2:
            why = f"the analysis window holds {n_windows} window(s) of {window:g} ms; a Fano factor needs 2"
        else:
            why = None if len(ff) else "no neuron spikes in the counting windows"
        put(fano_key(window), np.mean(ff) if len(ff) else 0.0, why)
    return values, reasons


def _cc_measures(s, put):
    cc = s["cc"]
    if s["cc_n_eligible"] < s["cc_subsample_size"]:
        why = (f"only {s['cc_n_eligible']} neurons fire at >= {s['cc_min_rate_hz']:g} Hz, fewer than the fixed "
               f"CC subsample of {s['cc_subsample_size']} (statistics.cc_subsample_neurons, cc_min_rate_hz)")
    elif len(cc) == 0:
        why = "no pair of the CC subsample has a finite correlation coefficient"
    else:
        why = None
    put("cc", np.mean(cc) if why is None else 0.0, why)
    excess = math.sqrt(max(float(np.var(cc)) - s["cc_noise_floor_sd"] ** 2, 0.0)) if why is None else 0.0
    put("cc_excess_sd", excess, why)


def _synchrony_measure(s, put):
    if len(s["synchrony_neurons"]) == 0:
        why = (f"the population has {s['n_neurons']} neurons, fewer than the fixed synchrony subsample of "
               f"{s['synchrony_subsample_size']} (statistics.synchrony_subsample_neurons)")
    else:
        why = None if np.isfinite(s["synchrony"]) else "the synchrony subsample has no spikes in whole bins"
    put("synchrony", s["synchrony"], why)


def _psd_measures(s, put):
    excess = np.asarray(s["psd_floor_removed"])
    why = None if s["psd_floor"] > 0 and len(excess) else "the population has no spikes in the analysed bins"
    if why:
        for name in ("psd_band_power_hz2", "psd_peak_hz", "psd_peak_power"):
            put(name, 0.0, why)
        return
    freqs = np.asarray(s["psd_freqs_hz"])
    peak = int(np.argmax(excess))
    put("psd_band_power_hz2", scipy.integrate.trapezoid(excess, freqs))
    put("psd_peak_hz", freqs[peak])
    put("psd_peak_power", excess[peak])


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


def isi_variation(ids, times, n_neurons: int, min_isis_cv: int, min_isis_lv: int = 2, presorted: bool = False):
    """CV and LV of the inter-spike intervals of every neuron with enough intervals.

    Parameters
    ----------
    ids, times : numpy.ndarray
        Spikes of one population (any order).
    n_neurons : int
    min_isis_cv, min_isis_lv : int
        Intervals a neuron needs for CV / LV; at least 1 for CV and 2 for LV
        regardless, since Elephant's LV needs two consecutive intervals.
    presorted : bool
        True when the spikes are already ordered by neuron, then time.

    Returns
    -------
    dict
        ``cv``, ``cv_neurons``, ``lv``, ``lv_neurons``, ``min_isis_cv``,
        ``min_isis_lv`` and the same thresholds in spikes, ``min_spikes_cv``,
        ``min_spikes_lv``.
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

    min_cv = max(int(min_isis_cv), 1)
    cv_neurons = np.flatnonzero(n_isi >= min_cv)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Two-pass mean/variance like numpy's std, per neuron via bincount.
        mean = np.bincount(owner, weights=isi, minlength=n_neurons) / n_isi
        dev = isi - mean[owner]
        var = np.bincount(owner, weights=dev * dev, minlength=n_neurons) / n_isi
        cv = np.sqrt(var) / mean

    min_lv = max(int(min_isis_lv), 2)
    lv_neurons = np.flatnonzero(n_isi >= min_lv)
    pair = owner[1:] == owner[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = (np.diff(isi) / (isi[:-1] + isi[1:]))[pair]
        lv = 3.0 * np.bincount(owner[1:][pair], weights=ratio * ratio, minlength=n_neurons) / (n_isi - 1)

    return {
        "cv": cv[cv_neurons], "cv_neurons": cv_neurons, "min_isis_cv": min_cv, "min_spikes_cv": min_cv + 1,
        "lv": lv[lv_neurons], "lv_neurons": lv_neurons, "min_isis_lv": min_lv, "min_spikes_lv": min_lv + 1,
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


def correlation_coefficients(ids, times, n_neurons, t_start_ms, t_stop_ms, bin_ms, n_subsample, seed,
                             min_rate_hz=1.0):
    """Pairwise correlation coefficients of binned spike counts on a seeded subsample.

    Neurons are sampled among those firing at ``>= min_rate_hz`` in the
    window. A rate floor, unlike "at least one spike", selects the same kind
    of neuron whatever the duration (at 2 s, a 0.5 Hz neuron usually has a
    spike; the floor does not change), and it keeps silent neurons, whose CC
    is undefined, out. CCs grow with the rate (de la Rocha et al. 2007,
    Nature 448:802), hence the recorded mean rate of the subsample.

    Parameters
    ----------
    ids, times : numpy.ndarray
        Spikes in the window, any order.
    n_neurons : int
    t_start_ms, t_stop_ms, bin_ms : float
    n_subsample : int
        Wanted subsample size (scaled down to the number of eligible neurons).
    seed : int
    min_rate_hz : float
        Rate floor for eligibility.

    Returns
    -------
    dict
        ``cc`` (upper-triangle coefficients, finite only), ``neurons``,
        ``n_eligible``, ``n_nonfinite``, ``n_bins``, ``noise_floor_sd``
        (``1 / sqrt(n_bins)``, the SD of the CC of two independent trains)
        and ``subsample_rate_hz`` (NaN for an empty subsample).
    """
    ids = np.asarray(ids, dtype=np.int64)
    rates = firing_rates(ids, n_neurons, t_stop_ms - t_start_ms)
    eligible = np.flatnonzero(rates >= min_rate_hz)
    chosen = subsample(eligible, n_subsample, seed)
    index, keep, nbins = bin_spikes(times, t_start_ms, t_stop_ms, bin_ms)
    ids = ids[keep]
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
    return {"cc": cc[finite], "neurons": chosen, "n_eligible": len(eligible), "n_nonfinite": int(np.sum(~finite)),
            "n_bins": nbins, "noise_floor_sd": cc_noise_floor(nbins),
            "subsample_rate_hz": float(np.mean(rates[chosen])) if len(chosen) else float("nan")}


def cc_noise_floor(nbins: int) -> float:
    """SD of the Pearson CC of two independent count series of ``nbins`` bins, ``1 / sqrt(nbins)``.

    For independent series with finite fourth moments ``sqrt(n) * r`` tends
    to a standard normal whatever the count distribution, so this is the
    sampling noise every measured CC carries; true network CCs (~1e-3 at
    PD14 rates) are far below it for runs of seconds.

    Parameters
    ----------
    nbins : int

    Returns
    -------
    float
        NaN without bins.
    """
    return 1.0 / math.sqrt(nbins) if nbins > 0 else float("nan")


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
    """Variance / mean of the whole population's spike-count histogram (PD14's synchrony).

    Grows with the population size for correlated neurons; the measure uses
    :func:`synchrony_subsample` instead.

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


def synchrony_subsample(ids, times, n_neurons, t_start_ms, t_stop_ms, bin_ms, n_subsample, seed) -> dict:
    """Synchrony index (variance / mean of the summed spike counts) of a fixed-size subsample.

    For N neurons with pairwise count correlation c the index of their summed
    counts is about ``F * (1 + (N - 1) * c)`` (F the single-neuron Fano
    factor), so on a whole population it grows with the network size; a
    fixed number of neurons, drawn uniformly (silent ones included) with a
    fixed seed, makes it comparable across network sizes.

    Parameters
    ----------
    ids, times : numpy.ndarray
        Spikes in the window.
    n_neurons : int
    t_start_ms, t_stop_ms, bin_ms : float
    n_subsample, seed : int

    Returns
    -------
    dict
        ``synchrony`` (NaN when the population is smaller than the subsample
        or the subsample has no spikes in whole bins) and ``neurons`` (empty
        when the population is smaller).
    """
    if n_neurons < n_subsample:
        return {"synchrony": float("nan"), "neurons": np.empty(0, dtype=np.int64)}
    chosen = subsample(np.arange(n_neurons), n_subsample, seed)
    member = np.zeros(n_neurons, dtype=bool)
    member[chosen] = True
    hist = population_histogram(np.asarray(times)[member[np.asarray(ids, dtype=np.int64)]],
                                t_start_ms, t_stop_ms, bin_ms)
    mean = np.mean(hist) if len(hist) else 0.0
    return {"synchrony": float(np.var(hist) / mean) if mean > 0 else float("nan"), "neurons": chosen}


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


def population_rate(times, n_neurons, t_start_ms, t_stop_ms, bin_ms) -> np.ndarray:
    """Population rate in Hz per neuron (``time_histogram(output='rate')``).

    Parameters
    ----------
    times : numpy.ndarray
    n_neurons : int
    t_start_ms, t_stop_ms, bin_ms : float

    Returns
    -------
    numpy.ndarray
        One value per whole bin.
    """
    hist = population_histogram(times, t_start_ms, t_stop_ms, bin_ms)
    return hist / (n_neurons * bin_ms) * 1000.0


def rate_psd(rate, bin_ms, len_segment, overlap):
    """Welch PSD of a rate signal, like ``elephant.spectral.welch_psd``.

    Parameters
    ----------
    rate : numpy.ndarray
        In Hz, sampled every ``bin_ms``.
    bin_ms : float
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
    if len(rate) < len_segment:
        raise CortexzooError(
            f"The Welch segment ({len_segment} samples) is longer than the analysis window ({len(rate)} samples).",
            "Lower statistics.welch_segment_ms or simulate longer.",
        )
    return scipy.signal.welch(rate, fs=1000.0 / bin_ms, window="hann", nperseg=len_segment,
                              noverlap=int(len_segment * overlap), nfft=None, detrend="constant",
                              return_onesided=True, scaling="density", axis=-1)


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
    return rate_psd(population_rate(times, n_neurons, t_start_ms, t_stop_ms, bin_ms), bin_ms, len_segment, overlap)


def shot_noise_floor(mean_rate_hz: float, n_neurons: int) -> float:
    """One-sided PSD of the mean rate of N independent Poisson neurons, ``2 * nu / N`` (Hz^2/Hz).

    A Poisson train of rate nu has a flat two-sided spectrum nu; the mean of
    N independent ones has nu / N, one-sided 2 nu / N. Binned Poisson counts
    are independent, so the binned rate has exactly this flat expectation
    up to Nyquist. Any point process's spectrum tends to its rate at high
    frequencies, so this is also the high-frequency limit for non-Poisson
    neurons. Welch's per-segment mean removal lowers the expectation in the
    first frequency bin above 0 (1/6 less with a Hann window), which is
    negligible next to the band's sampling error.

    Parameters
    ----------
    mean_rate_hz : float
        Mean rate per neuron of the analysed signal.
    n_neurons : int

    Returns
    -------
    float
    """
    return 2.0 * mean_rate_hz / n_neurons


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


def fano_factors(ids, times, n_neurons, t_start_ms, t_stop_ms, window_ms, presorted=False):
    """Per-neuron Fano factor of spike counts in consecutive windows.

    Each neuron's train is cut into the n consecutive windows of ``window_ms``
    that fit in the analysis window (binned like ``BinnedSpikeTrain``,
    spikes past the last whole window dropped); its Fano factor is the
    variance / mean of those counts. Poisson: 1 for every window; regular
    firing lowers it towards CV^2 for long windows, slow rate changes and
    bursts raise it.

    The variance is the unbiased one (ddof 1): ``elephant.statistics.fanofactor``
    of the cut trains uses ddof 0, whose expectation is (n - 1) / n of the
    Fano factor (5 % low for 100 ms windows in a 2 s run), a dependence on the
    duration; this is Elephant's value times n / (n - 1).

    Parameters
    ----------
    ids, times : numpy.ndarray
    n_neurons : int
    t_start_ms, t_stop_ms, window_ms : float
    presorted : bool
        True when the spikes are already ordered by neuron, then time.

    Returns
    -------
    ff : numpy.ndarray
        One value per neuron with spikes in the windows, in neuron order;
        empty with fewer than 2 windows.
    n_windows : int
    """
    ids = np.asarray(ids, dtype=np.int64)
    times = np.asarray(times, dtype=np.float64)
    if not presorted:
        order = np.lexsort((times, ids))
        ids, times = ids[order], times[order]
    index, keep, n_windows = bin_spikes(times, t_start_ms, t_stop_ms, window_ms)
    ids = ids[keep]
    if n_windows < 2:
        return np.empty(0), n_windows
    # Sorted by neuron and time, the spikes of one (neuron, window) are a run: its length is the count.
    start = np.ones(len(ids), dtype=bool)
    start[1:] = (ids[1:] != ids[:-1]) | (index[1:] != index[:-1])
    first = np.flatnonzero(start)
    count = np.diff(np.append(first, len(ids))).astype(np.float64)
    owner = ids[first]
    total = np.bincount(owner, weights=count, minlength=n_neurons)
    mean = total / n_windows
    # Two-pass variance: deviations of the non-empty windows plus the empty windows' mean**2 each.
    dev = count - mean[owner]
    empty = n_windows - np.bincount(owner, minlength=n_neurons)
    var = (np.bincount(owner, weights=dev * dev, minlength=n_neurons) + empty * mean * mean) / (n_windows - 1)
    active = total > 0
    return var[active] / mean[active], n_windows


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
    order = np.lexsort((times, ids))  # by neuron, then time; shared by ISI, complexity and Fano
    ids, times = ids[order], times[order]
    window = (n_neurons, t_start_ms, t_stop_ms)
    iv = isi_variation(ids, times, n_neurons, s["min_isis_cv"], s["min_isis_lv"], presorted=True)
    cc = correlation_coefficients(ids, times, *window, s["cc_bin_ms"], s["cc_subsample_neurons"], s["cc_seed"],
                                  min_rate_hz=s["cc_min_rate_hz"])
    sync = synchrony_subsample(ids, times, *window, s["synchrony_bin_ms"], s["synchrony_subsample_neurons"],
                               s["synchrony_seed"])
    rate = population_rate(times, *window, s["psd_bin_ms"])
    freqs, psd = rate_psd(rate, s["psd_bin_ms"], **welch_parameters(s))
    floor = shot_noise_floor(float(np.mean(rate)), n_neurons)
    band = band_mask(freqs, s["band_hz"])
    fano = {w: fano_factors(ids, times, *window, w, presorted=True) for w in s["fano_windows_ms"]}
    return PopulationStatistics(
        population=population, n_neurons=int(n_neurons), n_spikes=int(len(ids)),
        duration_ms=float(t_stop_ms - t_start_ms), rates_hz=firing_rates(ids, n_neurons, t_stop_ms - t_start_ms),
        cv=iv["cv"], cv_neurons=iv["cv_neurons"], lv=iv["lv"], lv_neurons=iv["lv_neurons"],
        min_spikes_cv=iv["min_spikes_cv"], min_spikes_lv=iv["min_spikes_lv"],
        min_isis_cv=iv["min_isis_cv"], min_isis_lv=iv["min_isis_lv"],
        cc=cc["cc"], cc_neurons=cc["neurons"], cc_n_eligible=cc["n_eligible"], cc_n_nonfinite=cc["n_nonfinite"],
        cc_subsample_size=int(s["cc_subsample_neurons"]), cc_min_rate_hz=float(s["cc_min_rate_hz"]),
        cc_noise_floor_sd=cc["noise_floor_sd"], cc_subsample_rate_hz=cc["subsample_rate_hz"],
        synchrony=sync["synchrony"], synchrony_neurons=sync["neurons"],
        synchrony_subsample_size=int(s["synchrony_subsample_neurons"]),
        complexity=complexity(ids, times, t_start_ms, t_stop_ms, s["complexity_bin_ms"], presorted=True),
        psd_freqs_hz=freqs[band], psd=psd[band], peaks_hz=dominant_peaks(freqs[band], psd[band], s["n_peaks"]),
        psd_floor=floor, psd_floor_removed=psd[band] - floor,
        fano={w: ff for w, (ff, _) in fano.items()}, fano_n_windows={w: n for w, (_, n) in fano.items()},
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
