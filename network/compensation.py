"""Self-consistent K-scaling compensation: the DC comes from the simulated model's own rates.

With in-degrees scaled by K < 1 and weights by 1/sqrt(K), the mean recurrent
input would shrink by sqrt(K); a DC current per population replaces the
missing part, ``tau_syn (1 - sqrt(K)) sum_j w_ij K_ij nu_j`` (van Albada,
Helias & Diesmann 2015, PLoS Comput Biol 11:e1004490, Eq. 7 and section
"Preserving mean and variance"). The INM-6 package (and ``k_compensation =
"reference_rates"``) puts the LIF's full-scale rates into ``nu_j`` for every
model; with K = 0.25 half of the mean recurrent input is then frozen at LIF
values, pulling every model towards LIF rates. Here ``nu_j`` are the rates of
the network being simulated, found as a fixed point:

1. Build the scaled network with the model, DC from the LIF's rates as a start,
   and let the initial transient pass (one window).
2. Feed the network's own rates back: every :data:`STEP_MS` the population
   rates of that step update a low-pass filtered estimate (time constant
   ``compensation_window_ms``), and the DC is set from the estimate. This is
   the full-scale network's mean input with a slow filter in the loop; with
   the network's strongly negative rate gain (more assumed inhibition, less
   drive) a discrete "simulate a window, then correct" iteration oscillated
   with growing amplitude (measured on the LIF: gain about -4 at N = 0.03,
   K = 0.1), while the filtered loop is stable for any negative gain.
3. Converged when, over the last four windows, every population's mean
   estimate and mean measured rate agree within ``compensation_tolerance``
   (relative), 0.1 Hz or two standard errors of the measured rate (from the
   spread of the four windows: small networks fluctuate more than their
   counting noise). The result is the mean estimate of those windows; without
   convergence after ``compensation_max_windows`` the last four are used and
   the run's metadata says so.

The result depends on the model and its parameters, the scale, the network
and the thread count, not on a run's seed or durations: it is computed once
(seed :data:`SEED`) and cached per key in ``<cache>/compensation/``; every run
records the rates, the DC and the iteration history in its metadata.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import time

import numpy as np

from cortexzoo.network.params import RunConfig, load_pd14

SEED = 20150813  # one seed for every compensation (van Albada et al. 2015 publication date)
# Feedback step. The discrete loop is stable while step (1 - gain) / window < 2 (gain about -4 to
# -15 here), and each step sets every neuron's bias (~40 ms for 2,300 neurons), so not much shorter.
STEP_MS = 50.0
ABSOLUTE_TOLERANCE_HZ = 0.1
STABLE_WINDOWS = 4  # windows whose means are compared; their spread measures the rate noise


def needs_compensation(config: RunConfig) -> bool:
    """True when this run's DC comes from a self-consistent compensation.

    Parameters
    ----------
    config : RunConfig

    Returns
    -------
    bool
    """
    return config.network["K_scaling"] < 1.0 and config.network["k_compensation"] == "self_consistent"


def filter_step(estimate, measured, step_ms: float, tau_ms: float) -> np.ndarray:
    """One step of the low-pass filter of the rate estimate (exact for a constant input over the step).

    Parameters
    ----------
    estimate, measured : array_like
        Rates in Hz per population.
    step_ms, tau_ms : float

    Returns
    -------
    numpy.ndarray
    """
    estimate = np.asarray(estimate, dtype=float)
    return estimate + (1.0 - np.exp(-step_ms / tau_ms)) * (np.asarray(measured, dtype=float) - estimate)


def within_tolerance(assumed, measured, relative: float, noise_sd_Hz=0.0,
                     absolute_Hz: float = ABSOLUTE_TOLERANCE_HZ) -> bool:
    """True when every measured rate lies within tolerance of the assumed one.

    The tolerance of a population is the largest of ``relative`` x its rate,
    ``absolute_Hz`` and two standard errors of the measured rate
    (``noise_sd_Hz``): a finite window of a small network cannot measure its
    rate better than its own fluctuations.

    Parameters
    ----------
    assumed, measured : array_like
    relative : float
    noise_sd_Hz : array_like or float
        Standard error of each measured rate.
    absolute_Hz : float

    Returns
    -------
    bool
    """
    assumed, measured = np.asarray(assumed, dtype=float), np.asarray(measured, dtype=float)
    allowed = np.maximum.reduce([relative * assumed, np.full_like(assumed, absolute_Hz),
                                 2.0 * np.broadcast_to(noise_sd_Hz, assumed.shape)])
    return bool(np.all(np.abs(measured - assumed) <= allowed))


def feedback_loop(measure, start_rates, window_ms: float, tolerance: float, max_windows: int,
                  step_ms: float = STEP_MS) -> dict:
    """Run the filtered rate feedback until the estimate agrees with the measured rates.

    Parameters
    ----------
    measure : callable
        ``measure(estimate) -> measured``: set the DC for the estimated rates,
        simulate ``step_ms`` and return the rates measured in that step (Hz).
    start_rates : array_like
    window_ms : float
        Filter time constant and length of a convergence window.
    tolerance : float
    max_windows : int
    step_ms : float

    Returns
    -------
    dict
        ``rates_Hz`` (mean estimate over the last :data:`STABLE_WINDOWS`
        windows), ``converged``, ``windows`` and ``history`` (per window the
        mean estimate and the measured rate).
    """
    estimate = np.asarray(start_rates, dtype=float)
    steps = max(1, int(round(window_ms / step_ms)))
    history, converged = [], False
    for window in range(1, max_windows + 1):
        estimates, rates = [], []
        for _ in range(steps):
            rates.append(measure(estimate))
            estimate = filter_step(estimate, rates[-1], step_ms, window_ms)
            estimates.append(estimate)
        history.append({"window": window, "assumed_Hz": np.mean(estimates, axis=0).round(4).tolist(),
                        "measured_Hz": np.mean(rates, axis=0).round(4).tolist()})
        if window >= STABLE_WINDOWS and _agree(history[-STABLE_WINDOWS:], tolerance):
            converged = True
            break
    last = history[-STABLE_WINDOWS:]
    rates_Hz = np.mean([h["assumed_Hz"] for h in last], axis=0)
    return {"rates_Hz": rates_Hz.tolist(), "converged": converged, "windows": len(history), "history": history}


def _agree(windows: list, tolerance: float) -> bool:
    """Mean estimate and mean measured rate of the last windows agree within tolerance and noise."""
    assumed = np.mean([w["assumed_Hz"] for w in windows], axis=0)
    measured = np.array([w["measured_Hz"] for w in windows])
    standard_error = measured.std(axis=0, ddof=1) / np.sqrt(len(windows))
    return within_tolerance(assumed, measured.mean(axis=0), tolerance, standard_error)


def compensation_rates(config: RunConfig, key: str, progress=None) -> dict:
    """The self-consistent compensation of a run config, from the cache or computed now.

    Parameters
    ----------
    config : RunConfig
    key : str
        :func:`cortexzoo.network.identity.compensation_key` of ``config``.
    progress : callable, optional

    Returns
    -------
    dict
        As :func:`feedback_loop`, plus ``key``, ``seed`` and ``dc_pA``.
    """
    from cortexzoo.models.build import cache_root

    say = progress or (lambda message: None)
    folder = cache_root() / "compensation"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.json"
    # Parallel jobs of one model (several seeds) compute it once; the others wait and read it.
    # Where the filesystem has no flock (some cluster filesystems) each job computes it: the
    # result is deterministic and written by an atomic rename.
    with open(folder / f"{key}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
        except OSError:
            pass
        cached = _read_cached(path)
        if cached is not None:
            return cached
        say(f"self-consistent K-scaling compensation for {config.neuron['model']} (once per model and scale)")
        t0 = time.perf_counter()
        result = _simulate_compensation(config, say)
        result.update(key=key, seed=SEED, seconds=round(time.perf_counter() - t0, 1))
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(path)
        state = "converged" if result["converged"] else "NOT converged"
        say(f"compensation {state} after {result['windows']} windows: rates "
            f"{', '.join(f'{r:.2f}' for r in result['rates_Hz'])} Hz")
        return result


def _read_cached(path) -> dict | None:
    """A cached result, or None when absent or unreadable (then it is computed again)."""
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) and "rates_Hz" in result else None


def _simulate_compensation(config: RunConfig, say) -> dict:
    from cortexzoo.network.pd14 import build_network

    window = config.network["compensation_window_ms"]
    # The stationary network's compensation: a stimulus (pulses, patterns, one perturbing spike) would
    # make the DC depend on it, and a perturbed run would differ from its twin before the perturbation.
    config = dataclasses.replace(config, stimulus={"kind": "none"})
    nest, nodes, spec, net = build_network(config, seed=SEED, say=say)
    set_dc = _dc_setter(nodes, config, spec)
    set_dc(net.dc_pA)
    nest.Simulate(window)  # the initial transient is not a rate
    sizes = np.asarray(net.num_neurons, dtype=float)
    # Recorders cannot be reset inside Prepare/Cleanup: count differences of their totals.
    counted = [np.array([r.n_events for r in nodes.recorders], dtype=float)]

    def measure(estimate):
        set_dc(_dc_for(config, estimate))
        nest.Run(STEP_MS)
        counted.append(np.array([r.n_events for r in nodes.recorders], dtype=float))
        return (counted[-1] - counted[-2]) / sizes / (STEP_MS / 1000.0)

    nest.Prepare()  # many short Run calls between parameter changes, as NEST intends for this
    try:
        result = feedback_loop(measure, net.pd14["full_mean_rates_Hz"], window,
                               config.network["compensation_tolerance"], config.network["compensation_max_windows"])
    finally:
        nest.Cleanup()
    result["dc_pA"] = np.round(_dc_for(config, result["rates_Hz"]), 6).tolist()
    return result


def _dc_for(config: RunConfig, rates_Hz) -> np.ndarray:
    from cortexzoo.network.params import derive

    return derive(config.network, rates_Hz=rates_Hz).dc_pA


def _dc_setter(nodes, config: RunConfig, spec):
    """Set each population's bias to the model's weight of a DC (pA), unless the config overrides the bias."""
    role = spec.role("bias_current")
    pd14 = load_pd14()
    cell_type = dict(zip(pd14["populations"], pd14["cell_types"]))

    def set_dc(dc_pA):
        for i, pop in enumerate(nodes.names):
            overrides = {**config.neuron["params"], **config.neuron["by_population"].get(pop, {})}
            if role not in overrides:
                nodes.populations[i].set({role: spec.bias_current(dc_pA[i], cell_type[pop])})

    return set_dc
