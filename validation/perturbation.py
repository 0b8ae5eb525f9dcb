"""Perturbation sensitivity: how fast a perturbed run diverges from its unperturbed twin.

Two runs with the same seed and input, one of them perturbed at ``t0`` (an
extra spike, or one spike shifted by 0.1 ms). NEST is deterministic for a
seed and thread count, so every difference after ``t0`` is caused by the
perturbation. Per population, over bins ``[t0 + k * bin, t0 + (k + 1) * bin)``
(times in the tables are relative to ``t0``):

* ``count_distance``: state distance of the spike counts per neuron in the
  bin; ``van_rossum``: state distance of the exponential traces just before
  the bin's end (an instantaneous van Rossum distance), both with the metric
  of :mod:`cortexzoo.validation.spike_distances` (``"rms"`` by default);
* ``fraction_differs``: fraction of neurons whose spike trains at or after
  ``t0`` already differ before the bin's end. Trains are the same only when
  their spike times are exactly equal (no tolerance: a twin run reproduces
  times bit for bit); a neuron's divergence time is the earlier of the first
  pair of spikes that differ (or the first spike one train has and the other
  lacks)
  (:func:`cortexzoo.validation.spike_distances.first_divergence`).

**Growth rate** (:func:`growth_rate`): least-squares slope of ``log(curve)``
against time, in 1/ms, over a stated window where the divergence grows
exponentially: by default from the first time the curve reaches ``low`` of
its saturation level to the first time it reaches ``high`` of it (each
sustained for ``min_bins`` bins), the saturation level being the curve of
two independent runs (two different seeds; :func:`saturation_level`). Its
confidence interval is the regression's t interval with an effective
number of points for the autocorrelated residuals (neighbouring bins of a
filtered curve share ``tau`` of memory); it describes one run's fit, so
compare models with the interval over perturbations and seeds
(:func:`mean_ci`, :func:`combine_perturbations`).

**Decorrelation time** (:func:`decorrelation_time`): the first time the
curve reaches the independent-runs level within a relative tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.stats

from cortexzoo.errors import CortexzooError
from cortexzoo.validation.spike_distances import first_divergence, paired_state_distance
from cortexzoo.validation.transient import first_sustained

CURVES = ("van_rossum", "count_distance", "fraction_differs")
#: Name of the pooled whole-network pseudo-population (:func:`pooled_spikes`): every neuron of the
#: analysed populations counted once. A single kicked neuron first reaches a few neurons of each
#: population, so a small population (L5I has ~50 neurons at N = 0.05) diverges by whole neurons in
#: too few steps for a growth rate; pooled, the fraction that differs rises in steps of 1/N_total.
NETWORK = "network"


def divergence_curve(ids_a, times_a, ids_b, times_b, n_neurons: int, t0_ms: float, t_stop_ms: float,
                     bin_ms: float = 1.0, tau_ms: float = 5.0, metric: str = "rms") -> pd.DataFrame:
    """Distance between two runs of one population in every bin after ``t0``.

    Parameters
    ----------
    ids_a, times_a, ids_b, times_b : numpy.ndarray
        Spikes of the two runs (absolute ms).
    n_neurons : int
    t0_ms, t_stop_ms : float
        The perturbation time and the end of the analysis.
    bin_ms : float
    tau_ms : float
        Time constant of the van Rossum traces.
    metric : {"euclidean", "rms", "cosine"}

    Returns
    -------
    pandas.DataFrame
        One row per whole bin: ``bin_start_ms``, ``bin_end_ms`` (relative
        to t0), ``count_distance``, ``van_rossum``, ``fraction_differs``.
    """
    n_bins = math.floor((t_stop_ms - t0_ms) / bin_ms + 1e-9) if bin_ms > 0 else 0
    if n_bins < 1:
        raise CortexzooError(f"No whole {bin_ms:g} ms bin between t0 = {t0_ms:g} ms and t_stop = {t_stop_ms:g} ms.",
                             "Simulate past the perturbation by at least one bin, with a positive bin width.")
    edges = bin_ms * np.arange(n_bins + 1)
    grid = (n_neurons, t0_ms, n_bins, bin_ms)
    curves = {name: paired_state_distance(ids_a, times_a, ids_b, times_b, *grid, state, tau_ms, metric)
              for name, state in (("count_distance", "counts"), ("van_rossum", "filtered"))}
    diverged = np.sort(first_divergence(ids_a, times_a, ids_b, times_b, n_neurons, t0_ms)) - t0_ms
    fraction = np.searchsorted(diverged, edges[1:], side="left") / n_neurons
    return pd.DataFrame({"bin_start_ms": edges[:-1], "bin_end_ms": edges[1:], **curves, "fraction_differs": fraction})


def pooled_spikes(spikes: dict, sizes: dict, populations) -> tuple:
    """All populations' spikes as those of one population, each population's ids offset by the sizes before it.

    Population ``populations[k]`` keeps its neurons, numbered from
    ``sizes[populations[0]] + ... + sizes[populations[k - 1]]`` on, so every
    neuron of the network has an id of its own: a neuron that differs counts
    once, and the pooled fraction that differs is the neuron-weighted mean of
    the populations' fractions.

    Parameters
    ----------
    spikes : dict
        Population -> ``(ids, times)``, ids local to the population (0 ..
        size - 1, as in ``RunData.spikes``).
    sizes : dict
        Population -> number of neurons.
    populations : sequence of str
        The populations to pool, in the order that sets the offsets.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, int)
        Pooled ids and times (concatenated in population order) and the
        number of neurons pooled.

    Raises
    ------
    CortexzooError
        When an id lies outside its population (it would be taken for a
        neuron of another population).
    """
    ids, times, offset = [], [], 0
    for pop in populations:
        pop_ids, pop_times = spikes[pop]
        pop_ids = np.asarray(pop_ids, dtype=np.int64)
        if pop_ids.size and (pop_ids.min() < 0 or pop_ids.max() >= sizes[pop]):
            raise CortexzooError(f"Population {pop} has neuron ids outside 0..{sizes[pop] - 1}, so pooled they "
                                 "would overlap another population's neurons.",
                                 "Give ids local to each population (as load_run returns them).")
        ids.append(pop_ids + offset)
        times.append(np.asarray(pop_times, dtype=np.float64))
        offset += int(sizes[pop])
    return np.concatenate([np.array([], np.int64), *ids]), np.concatenate([np.array([]), *times]), offset


def saturation_level(independent_curve) -> float:
    """Level of a divergence measure between two independent runs: its mean over the second half of the bins.

    The second half, because the curves of :func:`divergence_curve` start at
    ``t0`` from empty traces and a cumulative fraction, so the first bins of
    an independent pair are still on their way to the stationary level.

    Parameters
    ----------
    independent_curve : numpy.ndarray

    Returns
    -------
    float
    """
    x = np.asarray(independent_curve, dtype=float)
    return float(np.nanmean(x[len(x) // 2:])) if len(x) else math.nan


def growth_rate(time_ms, curve, saturation: float = math.nan, window_ms=None, low: float = 0.05,
                high: float = 0.5, min_bins: int = 3, level: float = 0.95) -> dict:
    """Exponential growth rate of a divergence curve: slope of ``log(curve)`` over the fit window.

    Parameters
    ----------
    time_ms, curve : numpy.ndarray
        Times (e.g. bin ends after t0) and the divergence measure.
    saturation : float
        Level of two independent runs (:func:`saturation_level`); needed
        unless ``window_ms`` is given.
    window_ms : tuple of float, optional
        Fit window ``[start, stop)`` on ``time_ms``. Default: from the first
        sustained crossing of ``low * saturation`` to the first of
        ``high * saturation``.
    low, high : float
        Fractions of the saturation level bounding the default window.
    min_bins : int
        Bins a crossing must last.
    level : float
        Confidence level of the interval.

    Returns
    -------
    dict
        ``rate_per_ms``, ``ci_low``, ``ci_high``, ``intercept``, ``r2``,
        ``fit_start_ms``, ``fit_stop_ms``, ``n_points`` (positive points
        fitted), ``effective_points`` (after the autocorrelation
        correction), ``note`` (why the rate or its interval is NaN, else empty).
    """
    t, y = np.asarray(time_ms, float), np.asarray(curve, float)
    start, stop, note = _fit_window(t, y, saturation, window_ms, low, high, min_bins)
    use = (t >= start) & (t < stop) & (y > 0) & np.isfinite(y)
    out = {"rate_per_ms": math.nan, "ci_low": math.nan, "ci_high": math.nan, "intercept": math.nan,
           "r2": math.nan, "fit_start_ms": start, "fit_stop_ms": stop, "n_points": int(use.sum()),
           "effective_points": math.nan, "note": note}
    if note:
        return out
    if use.sum() < 3:
        return {**out, "note": f"only {int(use.sum())} positive points in the fit window; the fit needs 3"}
    fit = scipy.stats.linregress(t[use], np.log(y[use]))
    se, df = _autocorrelated_se(t[use], np.log(y[use]), fit)
    out.update(rate_per_ms=float(fit.slope), intercept=float(fit.intercept), r2=float(fit.rvalue ** 2),
               effective_points=df + 2.0)
    if not df >= 1:
        return {**out, "note": "the fit window's residuals are too autocorrelated for an interval"}
    half = scipy.stats.t.ppf(0.5 + level / 2.0, df) * se
    return {**out, "ci_low": float(fit.slope - half), "ci_high": float(fit.slope + half)}


def _autocorrelated_se(x, y, fit):
    """Slope SE and degrees of freedom corrected for lag-1 autocorrelated residuals (Santer et al. 2000).

    Neighbouring bins share the filter's memory (and the network's), so the
    n residuals carry fewer independent values: n_eff = n (1 - r) / (1 + r)
    with r their lag-1 autocorrelation (negative r counts as 0), the residual
    variance is divided by n_eff - 2 instead of n - 2, and the t quantile
    uses n_eff - 2 degrees of freedom. Measured (tests/test_perturbation_stats.py
    setups): on 300 log-linear curves with AR(1) noise (r = 0.8) the plain
    interval covers the true rate in 50 % of cases, this one in 94 %; on 40
    planted spike-train divergences (1 ms bins, tau 5 ms), 68 % and 97.5 %.
    """
    res = y - (fit.intercept + fit.slope * x)
    r = float(np.corrcoef(res[:-1], res[1:])[0, 1]) if len(res) > 3 and np.std(res) > 0 else 0.0
    r = min(max(r, 0.0), 0.999) if np.isfinite(r) else 0.0
    n = len(x)
    df = n * (1.0 - r) / (1.0 + r) - 2.0
    return (fit.stderr * math.sqrt((n - 2) / df) if df > 0 else math.nan), df


def _fit_window(t, y, saturation, window_ms, low, high, min_bins):
    """Start, stop and (when there is none) why not, of the growth fit window."""
    if window_ms is not None:
        return float(window_ms[0]), float(window_ms[1]), ""
    if not (np.isfinite(saturation) and saturation > 0):
        return math.nan, math.nan, "no saturation level (independent runs) to place the fit window"
    begin = first_sustained(y >= low * saturation, min_bins)
    end = first_sustained(y >= high * saturation, min_bins)
    if begin < 0:
        return math.nan, math.nan, f"the divergence never reaches {low:g} of the independent-runs level"
    stop = float(t[end]) if end >= 0 else float(t[-1]) + 1.0
    return float(t[begin]), stop, ""


def decorrelation_time(time_ms, curve, saturation: float, tolerance: float = 0.1, min_bins: int = 3) -> float:
    """First time the divergence reaches the independent-runs level within ``tolerance``, for ``min_bins`` bins.

    Parameters
    ----------
    time_ms, curve : numpy.ndarray
    saturation : float
        Level of two independent runs (:func:`saturation_level`).
    tolerance : float
        Relative: reached when ``curve >= (1 - tolerance) * saturation``.
    min_bins : int

    Returns
    -------
    float
        NaN when never reached (or no level).
    """
    if not (np.isfinite(saturation) and saturation > 0):
        return math.nan
    hit = first_sustained(np.asarray(curve, float) >= (1.0 - tolerance) * saturation, min_bins)
    return float(np.asarray(time_ms, float)[hit]) if hit >= 0 else math.nan


def mean_ci(values, level: float = 0.95) -> dict:
    """Mean over perturbations or seeds with its t-based confidence interval.

    Parameters
    ----------
    values : sequence of float
        NaN values (undefined) are left out and counted.
    level : float

    Returns
    -------
    dict
        ``mean``, ``sd``, ``ci_low``, ``ci_high`` (NaN with fewer than 2
        values), ``n``, ``n_undefined``.
    """
    x = np.asarray(values, dtype=float)
    ok = x[np.isfinite(x)]
    out = {"mean": float(np.mean(ok)) if len(ok) else math.nan, "sd": math.nan, "ci_low": math.nan,
           "ci_high": math.nan, "n": len(ok), "n_undefined": int(len(x) - len(ok))}
    if len(ok) >= 2:
        sd = float(np.std(ok, ddof=1))
        low, high = scipy.stats.t.interval(level, len(ok) - 1, loc=out["mean"], scale=sd / math.sqrt(len(ok)))
        out.update(sd=sd, ci_low=float(low), ci_high=float(high))
    return out


@dataclass
class PerturbationResult:
    """Divergence of a perturbed run from its twin, per population.

    Attributes
    ----------
    curves : pandas.DataFrame
        :func:`divergence_curve` rows of every population (column
        ``population``), plus the independent pair's ``van_rossum`` /
        ``count_distance`` / ``fraction_differs`` as ``independent_<name>``.
    summary : pandas.DataFrame
        One row per population: ``population``, ``n_neurons``,
        ``fraction_differs`` (at the end), ``first_divergence_ms`` (earliest
        neuron, after t0), ``curve`` (the measure fitted),
        ``saturation``, the :func:`growth_rate` fields and
        ``decorrelation_time_ms``.
    """

    curves: pd.DataFrame
    summary: pd.DataFrame


def perturbation_analysis(unperturbed: dict, perturbed: dict, independent: dict, sizes: dict, t0_ms: float,
                          t_stop_ms: float, bin_ms: float = 1.0, tau_ms: float = 5.0, metric: str = "rms",
                          curve: str = "van_rossum", fit_options=None, tolerance: float = 0.1,
                          populations=None) -> PerturbationResult:
    """Divergence curves, growth rate and decorrelation time of every population.

    Parameters
    ----------
    unperturbed, perturbed : dict
        Population -> ``(ids, times)`` (``RunData.spikes``) of the twin runs.
    independent : dict
        The same for a run with another seed; its distance to ``unperturbed``
        is the saturation level.
    sizes : dict
        Population -> number of neurons.
    t0_ms, t_stop_ms : float
    bin_ms, tau_ms : float
    metric : {"euclidean", "rms", "cosine"}
    curve : {"van_rossum", "count_distance", "fraction_differs"}
        The measure whose growth rate and decorrelation time are reported.
    fit_options : dict, optional
        Extra keyword arguments of :func:`growth_rate` (``window_ms``,
        ``low``, ``high``, ``min_bins``, ``level``).
    tolerance : float
        Of :func:`decorrelation_time`.
    populations : list of str, optional

    Returns
    -------
    PerturbationResult
    """
    if curve not in CURVES:
        raise CortexzooError(f"Unknown divergence measure {curve!r}.", f"Use one of {', '.join(CURVES)}.")
    parts, rows = [], []
    for pop in list(populations or unperturbed):
        args = (sizes[pop], t0_ms, t_stop_ms, bin_ms, tau_ms, metric)
        mine = divergence_curve(*unperturbed[pop], *perturbed[pop], *args)
        ref = divergence_curve(*unperturbed[pop], *independent[pop], *args)
        parts.append(mine.assign(population=pop, **{f"independent_{c}": ref[c] for c in CURVES}))
        level = saturation_level(ref[curve])
        first = np.min(first_divergence(*unperturbed[pop], *perturbed[pop], sizes[pop], t0_ms))
        rows.append({"population": pop, "n_neurons": int(sizes[pop]),
                     "fraction_differs": float(mine["fraction_differs"].iloc[-1]),
                     "first_divergence_ms": float(first - t0_ms) if np.isfinite(first) else math.nan,
                     "curve": curve, "saturation": level,
                     **growth_rate(mine["bin_end_ms"], mine[curve], level, **(fit_options or {})),
                     "decorrelation_time_ms": decorrelation_time(mine["bin_end_ms"], mine[curve], level, tolerance)})
    return PerturbationResult(curves=pd.concat(parts, ignore_index=True), summary=pd.DataFrame(rows))


def combine_perturbations(summaries, measures=("rate_per_ms", "decorrelation_time_ms"), level: float = 0.95):
    """Average summaries of several perturbations or seeds per population, with t intervals.

    Parameters
    ----------
    summaries : sequence of pandas.DataFrame
        :attr:`PerturbationResult.summary` tables.
    measures : sequence of str
        Columns to average.
    level : float

    Returns
    -------
    pandas.DataFrame
        One row per population and measure with the :func:`mean_ci` fields.
    """
    table = pd.concat(list(summaries), ignore_index=True)
    rows = [{"population": pop, "measure": m, **mean_ci(group[m], level)}
            for pop, group in table.groupby("population", sort=False) for m in measures]
    return pd.DataFrame(rows)
