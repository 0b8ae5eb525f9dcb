"""Synthetic spike data and run directories for the validation tests and benchmark."""

import numpy as np

from cortexzoo.network.output import RunWriter

# A 4-population miniature with PD14-like rates (Hz).
POPULATIONS = {"L23E": 400, "L23I": 120, "L4E": 400, "L4I": 120}
RATES_HZ = {"L23E": 1.0, "L23I": 3.0, "L4E": 4.0, "L4I": 6.0}


def renewal_spikes(rates_hz, t_start_ms, t_stop_ms, rng, shape=1.0, grid_ms=None):
    """Stationary gamma renewal trains (shape 1: Poisson), flat and sorted by time.

    Parameters
    ----------
    rates_hz : numpy.ndarray
        One rate per neuron.
    t_start_ms, t_stop_ms : float
    rng : numpy.random.Generator
    shape : float
        Gamma shape k: CV = 1/sqrt(k), LV = 3/(2k+1).
    grid_ms : float, optional
        Round times to this grid (NEST-like); duplicates within a neuron are dropped.

    Returns
    -------
    ids, times : numpy.ndarray
    """
    duration = t_stop_ms - t_start_ms
    rates = np.asarray(rates_hz, float)
    m = int(np.ceil(rates.max() * duration / 1000.0 * 1.3 + 10 * np.sqrt(rates.max() * duration / 1000.0) + 10))
    scale = np.where(rates > 0, 1000.0 / np.maximum(rates, 1e-300) / shape, np.inf)
    isi = rng.gamma(shape, 1.0, size=(len(rates), m)) * scale[:, None]
    # Equilibrium start: the forward recurrence time of a renewal process, a uniform fraction of a
    # length-biased interval (Gamma(k + 1) for gamma intervals; exponential for Poisson). A uniform
    # fraction of an ordinary interval put the first spikes too early: the first half of a 3 s window
    # had ~50 % more spikes than the second at 1 Hz (found by the stationarity check).
    isi[:, 0] = rng.gamma(shape + 1.0, 1.0, size=len(rates)) * scale * rng.uniform(size=len(rates))
    times = t_start_ms + np.cumsum(isi, axis=1)
    ids = np.broadcast_to(np.arange(len(rates))[:, None], times.shape)
    keep = times < t_stop_ms
    ids, times = ids[keep], times[keep]
    if grid_ms:
        times = np.round(times / grid_ms) * grid_ms
        keep = times > t_start_ms
        ids, times = ids[keep], times[keep]
        uniq = np.unique(np.stack([ids, np.round(times / grid_ms).astype(np.int64)]), axis=1)
        ids, times = uniq[0], uniq[1] * grid_ms
    order = np.argsort(times, kind="stable")
    return ids[order].astype(np.int64), times[order]


def mip_spikes(n, rate_hz, shared_rate_hz, copy_prob, t_start_ms, t_stop_ms, rng):
    """Poisson trains correlated through a shared "mother" train (multiple interaction process).

    Every neuron copies each spike of one Poisson mother train (``shared_rate_hz``)
    with probability ``copy_prob``, at the same time, and adds independent Poisson
    spikes up to ``rate_hz``. Each train is Poisson at ``rate_hz``, and the spike
    counts of two neurons in any bin have correlation coefficient exactly
    ``copy_prob**2 * shared_rate_hz / rate_hz`` (shared spikes fall in the same bin).

    Parameters
    ----------
    n : int
    rate_hz, shared_rate_hz, copy_prob : float
        ``copy_prob * shared_rate_hz`` must not exceed ``rate_hz``.
    t_start_ms, t_stop_ms : float
    rng : numpy.random.Generator

    Returns
    -------
    ids, times : numpy.ndarray
        Sorted by time.
    """
    own_rate = rate_hz - copy_prob * shared_rate_hz
    assert own_rate >= 0, "copy_prob * shared_rate_hz exceeds rate_hz"
    mother = rng.uniform(t_start_ms, t_stop_ms, rng.poisson(shared_rate_hz * (t_stop_ms - t_start_ms) / 1000.0))
    copies = rng.random((n, len(mother))) < copy_prob
    shared_ids, which = np.nonzero(copies)
    own_ids, own_t = renewal_spikes(np.full(n, own_rate), t_start_ms, t_stop_ms, rng)
    ids = np.concatenate([shared_ids, own_ids])
    times = np.concatenate([mother[which], own_t])
    order = np.argsort(times, kind="stable")
    return ids[order].astype(np.int64), times[order]


def neuron_rates(n, mean_hz, rng):
    """Heterogeneous per-neuron rates (gamma, shape 2) with the given mean."""
    return rng.gamma(2.0, mean_hz / 2.0, size=n)


def make_run(path, seed, rates_hz=None, populations=None, t_start_ms=100.0, t_stop_ms=3100.0, rate_seed=7,
             sync=None, silent=()):
    """Write a synthetic Poisson run directory.

    Parameters
    ----------
    path : pathlib.Path
    seed : int
        Seed of the spike realisation.
    rates_hz : dict, optional
        Population -> mean rate (default ``RATES_HZ``).
    populations : dict, optional
        Population -> size (default ``POPULATIONS``).
    t_start_ms, t_stop_ms : float
        Analysis window; spikes are generated only inside it.
    rate_seed : int
        Seed of the per-neuron rates, shared by all seeds of one "model".
    sync : dict, optional
        Population -> (events, fraction): inject that many synchronous events
        in which that fraction of the neurons spike within 0.5 ms.
    silent : sequence of str
        Populations without any spike.

    Returns
    -------
    pathlib.Path
    """
    populations = populations or POPULATIONS
    rates_hz = {**RATES_HZ, **(rates_hz or {})}
    rate_rng = np.random.default_rng(rate_seed)
    rng = np.random.default_rng(seed)
    writer = RunWriter(path)
    for pop, n in populations.items():
        rates = neuron_rates(n, rates_hz[pop], rate_rng)
        if pop in silent:
            ids, times = np.empty(0, np.int64), np.empty(0)
        else:
            ids, times = renewal_spikes(rates, t_start_ms, t_stop_ms, rng, grid_ms=0.1)
            if sync and pop in sync:
                events, fraction = sync[pop]
                at = rng.uniform(t_start_ms + 1, t_stop_ms - 1, events)
                who = [rng.choice(n, int(fraction * n), replace=False) for _ in at]
                extra_ids = np.concatenate(who)
                extra_t = np.round((np.repeat(at, [len(w) for w in who]) + rng.uniform(0, 0.5, len(extra_ids))) / 0.1) * 0.1
                ids, times = np.concatenate([ids, extra_ids]), np.concatenate([times, extra_t])
        writer.write_spikes(pop, ids, times)
    return writer.finish({"populations": populations, "analysis_window_ms": [t_start_ms, t_stop_ms], "seed": seed})
