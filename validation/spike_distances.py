"""Distances between spike trains and between population states, on flat ``(ids, times)`` arrays.

Shared by :mod:`cortexzoo.validation.separability` (responses to stimuli,
trial against trial) and :mod:`cortexzoo.validation.perturbation` (a
perturbed run against its unperturbed twin).

:func:`first_divergence` tells, per neuron, when two runs' trains first
differ (exact equality of spike times).

Two distances, both summed over the neurons of a population:

* **van Rossum distance** (van Rossum 2001), exactly as
  ``elephant.spike_train_dissimilarity.van_rossum_distance`` defines it:
  each train is convolved with a causal exponential ``exp(-t / tau)`` (height
  1), and ``D**2 = (2 / tau) * integral (f_a - f_b)**2 dt`` over all time
  (the filter tails past the last spike included), so a single spike against
  an empty train is at distance 1. In closed form
  ``D**2 = sum_ij k(a_i, a_j) + sum_ij k(b_i, b_j) - 2 sum_ij k(a_i, b_j)``
  with ``k(s, t) = exp(-|s - t| / tau)``. A population's distance is
  ``sqrt(sum over neurons of D**2)``.
* **State distance** between population vectors read on a time grid of bins
  ``[t_k - bin, t_k)``: the spike counts of every neuron in the bin
  (``state="counts"``), or the same exponential traces read just before the
  bin's end ``t_k`` (``state="filtered"``: an instantaneous van Rossum
  distance, whose square integrated over time times ``2 / tau`` is the
  van Rossum distance squared). Bins follow Elephant's ``BinnedSpikeTrain``
  (:func:`cortexzoo.validation.statistics.bin_spikes`): a spike at exactly
  ``t_k`` belongs to the next bin.

State metrics (``metric``):

* ``"euclidean"``: ``||x - y||``, summed over the neurons (grows as
  ``sqrt(N)`` with the population size);
* ``"rms"`` (default): ``||x - y|| / sqrt(N)``, the root mean square
  difference per neuron, comparable between populations of different sizes
  (its square is the normalised distance of Keup et al. 2021, PRX 11:021064);
* ``"cosine"``: ``1 - x.y / (||x|| ||y||)``, blind to a common change of all
  rates; NaN when either vector is zero (a silent bin).
"""

from __future__ import annotations

import numpy as np
import scipy.signal

from cortexzoo.errors import CortexzooError
from cortexzoo.validation.statistics import bin_spikes

# exp(-41.5) < 1e-18: spike pairs farther apart than this many tau add less than
# double precision resolves next to a single spike's own term (1).
KERNEL_CUTOFF_TAU = 41.5
METRICS = ("euclidean", "rms", "cosine")
STATES = ("counts", "filtered")
# Elements of one (trials x neurons x bins) block of states held in memory at once.
BLOCK_ELEMENTS = 4_000_000


def _check_tau(tau_ms: float) -> None:
    if not (np.isfinite(tau_ms) and tau_ms > 0):
        raise CortexzooError(f"The van Rossum time constant must be a positive number of ms, got {tau_ms!r}.",
                             "Set tau_ms to e.g. 5.0.")


def _close_pairs(ids, times, tau_ms):
    """Yield ``(i, j, kernel)``: index pairs i < j of spikes of one neuron with ``exp(-(t_j - t_i) / tau)``.

    ``ids, times`` must be sorted by neuron, then time. Pairs are visited by
    lag ``j - i``; within a neuron the gap grows with the lag, so a spike
    whose pair at one lag is out of reach has none at larger lags, and the
    loop ends when no spike has a pair within ``KERNEL_CUTOFF_TAU * tau``.
    """
    reach = KERNEL_CUTOFF_TAU * tau_ms
    j = np.arange(1, len(ids))
    lag = 1
    while len(j):
        i = j - lag
        near = (ids[i] == ids[j]) & (times[j] - times[i] < reach)
        i, j = i[near], j[near]
        yield i, j, np.exp(-(times[j] - times[i]) / tau_ms)
        lag += 1
        j = j[j - lag >= 0]


def _by_neuron(ids, times, *extra):
    """Arrays sorted by neuron, then time (stable, so equal spikes keep their order)."""
    ids = np.asarray(ids, dtype=np.int64)
    times = np.asarray(times, dtype=np.float64)
    order = np.lexsort((times, ids))
    return (ids[order], times[order]) + tuple(np.asarray(e)[order] for e in extra)


def van_rossum_distance(ids_a, times_a, ids_b, times_b, n_neurons: int, tau_ms: float) -> np.ndarray:
    """Van Rossum distance between the trains of the same neurons in two runs, one value per neuron.

    Equals ``elephant.spike_train_dissimilarity.van_rossum_distance([a_n, b_n],
    tau)[0, 1]`` for every neuron ``n``, without one ``neo.SpikeTrain`` per
    neuron. Neurons whose trains are identical get exactly 0.

    Parameters
    ----------
    ids_a, times_a, ids_b, times_b : numpy.ndarray
        Spikes of the two runs (0-based neuron ids, times in ms), any order.
    n_neurons : int
    tau_ms : float
        Time constant of the exponential filter.

    Returns
    -------
    numpy.ndarray
        ``(n_neurons,)``; the population distance is ``sqrt(sum(d**2))``.
    """
    _check_tau(tau_ms)
    ids_a, times_a = _by_neuron(ids_a, times_a)
    ids_b, times_b = _by_neuron(ids_b, times_b)
    # One merged, signed train per neuron: D**2 = sum_ij s_i s_j k(t_i, t_j) = n_a + n_b + 2 sum_{i<j} s_i s_j k.
    ids, times, sign = _by_neuron(np.r_[ids_a, ids_b], np.r_[times_a, times_b],
                                  np.r_[np.ones(len(ids_a)), -np.ones(len(ids_b))])
    sq = np.bincount(ids, minlength=n_neurons).astype(np.float64)
    for i, j, kernel in _close_pairs(ids, times, tau_ms):
        sq += 2.0 * np.bincount(ids[j], weights=sign[i] * sign[j] * kernel, minlength=n_neurons)
    dist = np.sqrt(np.maximum(sq, 0.0))
    dist[np.isinf(first_divergence(ids_a, times_a, ids_b, times_b, n_neurons))] = 0.0  # exact, not ~1e-8
    return dist


def _after(ids, times, t0_ms):
    """Spikes at or after t0, sorted by neuron, then time."""
    keep = np.asarray(times) >= t0_ms
    return _by_neuron(np.asarray(ids)[keep], np.asarray(times)[keep])


def _ranks(ids, n_neurons):
    """Spikes per neuron and the rank of every spike within its neuron (ids sorted)."""
    counts = np.bincount(ids, minlength=n_neurons)
    return counts, np.arange(len(ids)) - (np.cumsum(counts) - counts)[ids]


def first_divergence(ids_a, times_a, ids_b, times_b, n_neurons: int, t0_ms: float = -np.inf) -> np.ndarray:
    """Time at which each neuron's trains in two runs first differ, counting spikes at or after ``t0``.

    Parameters
    ----------
    ids_a, times_a, ids_b, times_b : numpy.ndarray
        Spikes of the two runs (absolute ms), any order.
    n_neurons : int
    t0_ms : float
        Spikes before it are ignored (default: none).

    Returns
    -------
    numpy.ndarray
        ``(n_neurons,)`` absolute times; ``inf`` where the trains are identical.
    """
    ids_a, times_a = _after(ids_a, times_a, t0_ms)
    ids_b, times_b = _after(ids_b, times_b, t0_ms)
    out = np.full(n_neurons, np.inf)
    for (ids, times), (ids_o, times_o) in (((ids_a, times_a), (ids_b, times_b)), ((ids_b, times_b), (ids_a, times_a))):
        counts_o, _ = _ranks(ids_o, n_neurons)
        _, rank = _ranks(ids, n_neurons)
        paired = rank < counts_o[ids]
        # The k-th spike of this train against the k-th of the other (ids_o is sorted like ids).
        other = times_o[(np.cumsum(counts_o) - counts_o)[ids[paired]] + rank[paired]]
        mine = times[paired]
        # The first unequal pair diverges at its earlier spike; later pairs and extra spikes come later still.
        mismatch = other != mine
        np.minimum.at(out, ids[paired][mismatch], np.minimum(other, mine)[mismatch])
        np.minimum.at(out, ids[~paired], times[~paired])  # spikes the other train lacks
    return out


def van_rossum_matrix(groups, ids, times, n_groups: int, tau_ms: float) -> np.ndarray:
    """Van Rossum distance between every pair of groups of trains (e.g. trials), summed over neurons.

    ``D[g, h]**2 = sum over neurons n of D(train of n in g, train of n in h)**2``,
    with Elephant's definition (see the module docstring), from the kernel
    sums ``K[g, h] = sum_n sum_ij exp(-|t_gi - t_hj| / tau)``.

    Parameters
    ----------
    groups, ids, times : numpy.ndarray
        Group (trial) index, neuron id and time of every spike; times should
        be aligned (e.g. relative to each trial's onset).
    n_groups : int
    tau_ms : float

    Returns
    -------
    numpy.ndarray
        ``(n_groups, n_groups)`` symmetric, zero diagonal.
    """
    _check_tau(tau_ms)
    ids, times, groups = _by_neuron(ids, times, np.asarray(groups, dtype=np.int64))
    pairs = np.zeros(n_groups * n_groups)  # sum of k over spike pairs i < j, at (group of i, group of j)
    for i, j, kernel in _close_pairs(ids, times, tau_ms):
        pairs += np.bincount(groups[i] * n_groups + groups[j], weights=kernel, minlength=n_groups * n_groups)
    pairs = pairs.reshape(n_groups, n_groups)
    # Every spike with itself (k = 1), then each pair in both orders.
    kernel_sums = np.diag(np.bincount(groups, minlength=n_groups).astype(np.float64)) + pairs + pairs.T
    diag = np.diag(kernel_sums)
    sq = np.maximum(diag[:, None] + diag[None, :] - 2.0 * kernel_sums, 0.0)
    np.fill_diagonal(sq, 0.0)
    return np.sqrt(sq)


def grid_states(groups, ids, times, n_groups: int, neurons: np.ndarray, t_start_ms: float, n_bins: int,
                bin_ms: float, state: str = "counts", tau_ms: float = 5.0) -> np.ndarray:
    """Population states of some neurons on a time grid, one per group (trial or run).

    Parameters
    ----------
    groups, ids, times : numpy.ndarray
        Group index, neuron id and time of every spike (times on the grid's
        clock, e.g. relative to stimulus onset).
    n_groups : int
    neurons : numpy.ndarray
        Sorted neuron ids to return states of (spikes of others are ignored).
    t_start_ms : float
        Start of the grid; spikes before it are ignored.
    n_bins : int
        Bins ``[t_start + k * bin, t_start + (k + 1) * bin)``, k = 0 .. n_bins - 1.
    bin_ms : float
    state : {"counts", "filtered"}
        Spike counts per bin, or the exponential trace (height 1, time
        constant ``tau_ms``) just before each bin's end (see the module docstring).
    tau_ms : float

    Returns
    -------
    numpy.ndarray
        ``(n_groups, len(neurons), n_bins)``.
    """
    check_state(state, "rms", tau_ms)
    ids = np.asarray(ids, dtype=np.int64)
    times = np.asarray(times, dtype=np.float64)
    rows = np.searchsorted(neurons, ids)
    mine = rows < len(neurons)
    mine[mine] = neurons[rows[mine]] == ids[mine]
    mine &= times >= t_start_ms
    index, keep, _ = bin_spikes(times[mine] - t_start_ms, 0.0, n_bins * bin_ms, bin_ms)
    cell = (np.asarray(groups, dtype=np.int64)[mine][keep] * len(neurons) + rows[mine][keep]) * n_bins + index
    if state == "counts":
        weights = None
    else:
        # A spike at t inside the bin ending at t_k adds exp(-(t_k - t) / tau) to the trace read at t_k;
        # the recursion trace_k = trace_(k-1) * exp(-bin / tau) + input_k then carries it on exactly.
        weights = np.exp(-((index + 1) * bin_ms - (times[mine][keep] - t_start_ms)) / tau_ms)
    flat = np.bincount(cell, weights=weights, minlength=n_groups * len(neurons) * n_bins)
    out = flat.reshape(n_groups, len(neurons), n_bins).astype(np.float64)
    if state == "filtered":
        out = scipy.signal.lfilter([1.0], [1.0, -np.exp(-bin_ms / tau_ms)], out, axis=-1)
    return out


def check_state(state: str, metric: str, tau_ms: float) -> None:
    """Raise :class:`CortexzooError` for an unknown state or metric or a bad time constant.

    Parameters
    ----------
    state, metric : str
    tau_ms : float
    """
    if state not in STATES:
        raise CortexzooError(f"Unknown population state {state!r}.", f"Use one of {', '.join(STATES)}.")
    if metric not in METRICS:
        raise CortexzooError(f"Unknown state distance metric {metric!r}.", f"Use one of {', '.join(METRICS)}.")
    if state == "filtered":
        _check_tau(tau_ms)


def neuron_blocks(n_neurons: int, n_groups: int, n_bins: int):
    """Sorted neuron-id blocks small enough that one block of states fits ``BLOCK_ELEMENTS``.

    Parameters
    ----------
    n_neurons, n_groups, n_bins : int

    Returns
    -------
    list of numpy.ndarray
    """
    size = max(1, BLOCK_ELEMENTS // max(1, n_groups * n_bins))
    return [np.arange(lo, min(lo + size, n_neurons)) for lo in range(0, n_neurons, size)]


def pairwise_state_distances(groups, ids, times, n_groups: int, n_neurons: int, t_start_ms: float, n_bins: int,
                             bin_ms: float, state: str = "counts", tau_ms: float = 5.0,
                             metric: str = "rms") -> np.ndarray:
    """State distance between every pair of groups (trials) in every bin.

    Computed from the Gram matrices of the states, accumulated over blocks of
    neurons, so memory stays bounded for large populations; the cost is
    ``n_groups**2 * n_neurons * n_bins``.

    Parameters
    ----------
    groups, ids, times : numpy.ndarray
        As for :func:`grid_states`.
    n_groups, n_neurons : int
    t_start_ms : float
    n_bins : int
    bin_ms : float
    state : {"counts", "filtered"}
    tau_ms : float
    metric : {"euclidean", "rms", "cosine"}

    Returns
    -------
    numpy.ndarray
        ``(n_bins, n_groups, n_groups)``.
    """
    check_state(state, metric, tau_ms)
    gram = np.zeros((n_bins, n_groups, n_groups))
    for block in neuron_blocks(n_neurons, n_groups, n_bins):
        x = grid_states(groups, ids, times, n_groups, block, t_start_ms, n_bins, bin_ms, state, tau_ms)
        x = np.ascontiguousarray(x.transpose(2, 0, 1))  # (bins, groups, neurons)
        gram += x @ x.transpose(0, 2, 1)
    norm2 = np.diagonal(gram, axis1=1, axis2=2)
    sq = np.maximum(norm2[:, :, None] + norm2[:, None, :] - 2.0 * gram, 0.0)
    every = np.arange(n_groups)
    sq[:, every, every] = 0.0
    return _metric(metric, sq, gram, norm2[:, :, None], norm2[:, None, :], n_neurons)


def _metric(metric, sq, dot, norm2_a, norm2_b, n_neurons):
    """The chosen metric from squared differences, dot products and squared norms of the states."""
    if metric == "cosine":
        with np.errstate(invalid="ignore", divide="ignore"):
            return 1.0 - dot / np.sqrt(norm2_a * norm2_b)
    return np.sqrt(sq / n_neurons) if metric == "rms" else np.sqrt(sq)


def paired_state_distance(ids_a, times_a, ids_b, times_b, n_neurons: int, t_start_ms: float, n_bins: int,
                          bin_ms: float, state: str = "counts", tau_ms: float = 5.0,
                          metric: str = "rms") -> np.ndarray:
    """State distance between two runs of the same neurons in every bin, from the differences directly.

    Unlike :func:`pairwise_state_distances` (Gram matrices), the states are
    subtracted neuron by neuron, so two identical runs give exactly 0.

    Parameters
    ----------
    ids_a, times_a, ids_b, times_b : numpy.ndarray
        Spikes of the two runs.
    n_neurons, t_start_ms, n_bins, bin_ms, state, tau_ms, metric
        As for :func:`pairwise_state_distances`.

    Returns
    -------
    numpy.ndarray
        ``(n_bins,)``.
    """
    check_state(state, metric, tau_ms)
    # Both runs sorted the same way, so the states of identical trains are summed in the same order.
    ids_a, times_a = _by_neuron(ids_a, times_a)
    ids_b, times_b = _by_neuron(ids_b, times_b)
    groups = np.r_[np.zeros(len(ids_a), np.int64), np.ones(len(ids_b), np.int64)]
    ids, times = np.r_[ids_a, ids_b], np.r_[times_a, times_b]
    sums = np.zeros((3, n_bins))  # ||a - b||**2, ||a||**2, ||b||**2
    for block in neuron_blocks(n_neurons, 2, n_bins):
        a, b = grid_states(groups, ids, times, 2, block, t_start_ms, n_bins, bin_ms, state, tau_ms)
        sums += [np.sum((a - b) ** 2, axis=0), np.sum(a * a, axis=0), np.sum(b * b, axis=0)]
    return _metric(metric, sums[0], 0.5 * (sums[1] + sums[2] - sums[0]), sums[1], sums[2], n_neurons)
