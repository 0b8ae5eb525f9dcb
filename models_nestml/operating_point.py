"""Rate response of a neuron model at PD14's operating point (issue 12).

Why
---
PD14 neurons are fluctuation driven: their mean free membrane potential sits
6-13 mV below threshold and spikes come from fluctuations of 3-4 mV (SD of
V). A model that matches the LIF's DC f-I curve far above rheobase can still
respond quite differently there. The ``operating_point`` calibration rule
therefore matches the stationary rate response nu(mu, sigma) of a model to
the PD14 LIF's at the 8 working points and in a neighbourhood around each.
This module provides the pieces that rule needs:

* :func:`cortexzoo.network.theory.working_point_inputs` -- the Poisson input each population receives
  in the full-scale network (N = K = 1, Poisson background) when every
  population fires at ``pd14.toml``'s ``full_mean_rates_Hz``, with its mean
  and noise amplitude and the mean-field LIF rate
  (:mod:`cortexzoo.network.theory`).
* :func:`measure_rate_response` -- one NEST network of unconnected neurons,
  each driven by Poisson generators that reproduce that input, moved around
  the working point in mean (a DC offset) and in fluctuation size (a weight
  factor).
* :func:`tolerance_Hz`, :func:`fit_bias`, :func:`residual_table` -- pure
  functions for the fit of a bias and the acceptance check.

Conventions
-----------
* ``mu_mV`` is the mean free membrane potential of the reference LIF
  relative to E_L and ``sigma_mV`` NNMT's noise amplitude (the SD of V is
  ``sigma / sqrt(2) * sqrt(tau_m / (tau_m + tau_syn))``), as in
  :mod:`cortexzoo.network.theory`. They describe the *input* in LIF terms,
  whatever model receives it.
* A mean-input offset ``dmu`` (mV) is the DC ``dmu * G_LIF`` (pA) with
  ``G_LIF = C_m / tau_m = 25 nS`` of the reference LIF: it moves the LIF's
  mu by exactly ``dmu``.
* A fluctuation factor ``f`` multiplies every input weight by ``f`` and
  divides every input rate by ``f``: mu is kept, sigma^2 is multiplied by
  ``f`` (sigma by sqrt(f)).
* ``current_scale`` is the model's input mapping (model pA = scale x LIF
  pA, the catalogue's ``psc_per_reference_psc``); it multiplies every weight
  and every LIF-equivalent current. ``bias_pA`` is the model's own constant
  current (model pA, not scaled).
* A fitted bias ``b`` (mV, :func:`fit_bias`) is an equivalent mean shift:
  the model with the extra current ``b * G_LIF * current_scale`` pA
  (:func:`bias_current_pA`) responds at offset ``d`` as it did at ``d + b``
  without it. A model that is 1 mV too excitable needs ``b = -1 mV``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cortexzoo.errors import CortexzooError

RESOLUTION_MS = 0.1
# The PD14 reference LIF (PD14 Table 5; catalogue iaf_psc_exp, network/pd14.toml reference_neuron;
# tests/test_operating_point.py checks they agree): tau_syn of every input, and C_m / tau_m,
# the DC (pA) that moves the LIF's mean input by 1 mV.
TAU_SYN_MS = 0.5
G_LIF_NS = 250.0 / 10.0
#: Mean-input neighbourhood the calibration samples (mV around each working point).
OFFSETS_MV = np.arange(-8.0, 8.0 + 1e-9, 0.5)
# Rate precision: the relative counting error is 1/sqrt(spikes), so 10 % needs 100 spikes:
# 100 neuron-seconds per point at 1 Hz. (Driven in isolation at its working point, L2/3E
# fires only 0.35-0.4 Hz, 16 % there; its 0.3 Hz tolerance floor is still 5 standard
# errors.) Warm-up is paid per neuron, so few neurons measured long beat many measured
# briefly: 25 neurons x 4 s. Cost (iaf_psc_exp, 8 populations x 33 offsets = 6600
# neurons, 5 s simulated): 119 s wall on a loaded 2-core machine, 3.6 ms per
# neuron-second. For a per-point acceptance check measure the 8 working points alone
# with more neurons (e.g. 200 x 5 s: 25 s).
N_NEURONS = 25
MEASURE_MS = 4000.0
# Longer than the slowest adaptation of the zoo models with their PD14 parameters
# (GLIF's slow after-spike current 1/0.003 ms = 333 ms; MAT2 tau_2 200 ms; AdEx 144 ms)
# by 3x, so slow variables are close to steady state when counting starts.
WARMUP_MS = 1000.0
#: Acceptance (issue 12): residual <= this fraction of the LIF rate or the floor, whichever is larger.
TOLERANCE_REL = 0.10
TOLERANCE_FLOOR_HZ = 0.3
#: Step of the bias scan in :func:`fit_bias` (mV); the best step is then polished.
BIAS_SCAN_STEP_MV = 0.01


@dataclass(frozen=True)
class WorkingPointInput:
    """The stationary input of one PD14 population at the reference operating point.

    Attributes
    ----------
    population : str
    rates_Hz : tuple of float
        Total Poisson rate of each input group (sum of K_ij nu_j, plus
        K_ext nu_bg in the group of the external weight).
    weights_pA : tuple of float
        Reference-LIF PSC amplitude of each group (inhibitory negative),
        one group per distinct weight.
    mu_mV : float
        Mean input relative to E_L (:func:`theory.input_moments`).
    sigma_mV : float
        NNMT's noise amplitude.
    sigma_V_mV : float
        SD of the LIF's free membrane potential.
    rate_lif_Hz : float
        Mean-field LIF rate at (mu, sigma) (:func:`theory.lif_rate`).
    """

    population: str
    rates_Hz: tuple
    weights_pA: tuple
    mu_mV: float
    sigma_mV: float
    sigma_V_mV: float
    rate_lif_Hz: float


@dataclass(frozen=True)
class BiasFit:
    """Result of :func:`fit_bias`.

    Attributes
    ----------
    bias_mV : float
        Equivalent mean shift b (see the module's conventions).
    loss : float
        Sum of squared tolerance-normalised residuals at ``bias_mV``.
    residuals_Hz : numpy.ndarray
        ``nu_model(d + b) - nu_lif(d)``, shape (populations, neighbourhood).
    normalised : numpy.ndarray
        The residuals divided by :func:`tolerance_Hz` of the LIF rates.
    at_edge : bool
        True when b lies on the edge of what the offset grid can shift to
        (the true optimum may lie beyond: widen the grid).
    """

    bias_mV: float
    loss: float
    residuals_Hz: np.ndarray
    normalised: np.ndarray
    at_edge: bool


def bias_current_pA(bias_mV: float, current_scale: float = 1.0) -> float:
    """The model current (pA) that realises a fitted bias ``b`` (mV).

    Parameters
    ----------
    bias_mV : float
        As returned in :attr:`BiasFit.bias_mV`.
    current_scale : float
        The model's input mapping (model pA per LIF pA).

    Returns
    -------
    float
        ``bias_mV * G_LIF * current_scale``; pass it as ``bias_pA``.
    """
    return float(bias_mV) * G_LIF_NS * float(current_scale)


def measure_rate_response(nest_model: str, params: dict, populations, offsets_mV=(0.0,), sigma_factors=(1.0,),
                          *, params_by_population: dict | None = None, n_neurons: int = N_NEURONS,
                          warmup_ms: float = WARMUP_MS, measure_ms: float = MEASURE_MS, seed: int = 1,
                          current_scale: float = 1.0, bias_pA: float = 0.0, exc_port=None, inh_port=None,
                          tau_syn_names: tuple | None = None, current_name: str = "I_e", threads: int = 1,
                          progress=None) -> pd.DataFrame:
    """Stationary rates of a model under PD14 working-point input, all points in one simulation.

    Every (population, sigma factor, offset) point is ``n_neurons``
    unconnected neurons. Each input group of a population is one
    ``poisson_generator`` connected to all neurons of that population and
    factor (NEST sends every target its own independent spike train).

    Parameters
    ----------
    nest_model : str
        NEST model name (built-in or from the cortexzoo NESTML module).
    params : dict
        NEST parameters of every neuron (e.g. ``ModelSpec.params_for()``).
    populations : sequence of WorkingPointInput
        Working points (:func:`cortexzoo.network.theory.working_point_inputs`).
    offsets_mV : sequence of float
        Mean-input offsets dmu (mV, LIF-equivalent).
    sigma_factors : sequence of float
        Fluctuation factors f (> 0): weights x f, rates / f.
    params_by_population : dict, optional
        ``{population: {param: value}}`` overrides (e.g. E/I parameter sets).
    n_neurons : int
        Neurons per point.
    warmup_ms, measure_ms : float
        Spikes are counted in ``(warmup_ms, warmup_ms + measure_ms]``.
    seed : int
        NEST ``rng_seed``.
    current_scale : float
        Model pA per LIF pA; multiplies weights and offset currents.
    bias_pA : float
        Added to every neuron's ``current_name`` (model pA).
    exc_port, inh_port : int or str, optional
        Receptor (number or NESTML port name) for positive / negative
        weights. Default: ``exc_spikes`` / ``inh_spikes`` when the model has
        them in ``receptor_types``, else port 0 (sign-routed built-ins).
    tau_syn_names : (str, str), optional
        The model's excitatory and inhibitory synaptic time constants, set to
        PD14's 0.5 ms. Default: ``tau_syn_exc/tau_syn_inh`` or
        ``tau_syn_ex/tau_syn_in``, whichever the model has.
    current_name : str
        Constant-current parameter; its value in ``params`` (default 0) is
        kept and the offset and bias currents are added.
    threads : int
        NEST threads.
    progress : callable, optional
        Receives status lines.

    Returns
    -------
    pandas.DataFrame
        One row per point: ``population, dmu_mV, sigma_factor, mu_mV``
        (working point + dmu), ``sigma_mV`` (x sqrt(f)), ``n_neurons,
        n_spikes, rate_Hz``.
    """
    from cortexzoo.models import ready_kernel

    say = progress or (lambda msg: None)
    points = _resolve_populations(populations)
    offsets = np.asarray(offsets_mV, dtype=float)
    factors = np.asarray(sigma_factors, dtype=float)
    _check_measure_args(factors, n_neurons, measure_ms)
    t0 = time.perf_counter()
    nest = ready_kernel(threads=threads, resolution_ms=RESOLUTION_MS, seed=seed)
    neurons = _create_neurons(nest, nest_model, params, params_by_population or {}, points, offsets, factors,
                              n_neurons, current_scale, bias_pA, tau_syn_names, current_name)
    _connect_inputs(nest, nest_model, neurons, points, len(offsets) * n_neurons, factors, current_scale,
                    exc_port, inh_port)
    recorder = nest.Create("spike_recorder", params={"start": float(warmup_ms), "stop": float(warmup_ms + measure_ms)})
    nest.Connect(neurons, recorder)
    say(f"{nest_model}: {len(neurons)} neurons built ({time.perf_counter() - t0:.1f} s); "
        f"simulating {warmup_ms + measure_ms:.0f} ms")
    nest.Simulate(float(warmup_ms + measure_ms))
    say(f"{nest_model}: simulated in {time.perf_counter() - t0:.1f} s")
    counts = _spike_counts(recorder, neurons).reshape(len(points), len(factors), len(offsets), n_neurons).sum(axis=3)
    return _rate_rows(points, offsets, factors, counts, n_neurons, measure_ms)


def _resolve_populations(populations) -> list:
    populations = list(populations)
    if not all(isinstance(p, WorkingPointInput) for p in populations):
        raise CortexzooError("Operating point: populations must be WorkingPointInput objects.",
                             "Pass cortexzoo.network.theory.working_point_inputs() (or a selection of it).")
    return populations


def _check_measure_args(factors, n_neurons, measure_ms) -> None:
    if not np.all(factors > 0):
        raise CortexzooError(f"Operating point: sigma factors must be positive, got {factors.tolist()}.",
                             "A factor f multiplies weights and divides rates; use e.g. (0.5, 1, 2).")
    if n_neurons < 1 or measure_ms <= 0:
        raise CortexzooError(f"Operating point: n_neurons = {n_neurons}, measure_ms = {measure_ms} measure nothing.",
                             "Use at least one neuron and a positive measurement window.")


def _tau_syn_names(nest, nest_model, names) -> tuple:
    if names is not None:
        return tuple(names)
    defaults = nest.GetDefaults(nest_model)
    for pair in (("tau_syn_exc", "tau_syn_inh"), ("tau_syn_ex", "tau_syn_in")):
        if all(name in defaults for name in pair):
            return pair
    raise CortexzooError(f"Operating point: model {nest_model!r} has no tau_syn_exc/inh or tau_syn_ex/in.",
                         "Pass tau_syn_names=(excitatory, inhibitory) (the catalogue's tau_syn roles).")


def _create_neurons(nest, nest_model, params, by_population, points, offsets, factors, n_neurons, current_scale,
                    bias_pA, tau_syn_names, current_name):
    """All neurons, in (population, factor, offset, neuron) order, with their constant currents."""
    tau_syn = TAU_SYN_MS
    tau_names = _tau_syn_names(nest, nest_model, tau_syn_names)
    per_point = np.repeat(offsets * G_LIF_NS * current_scale, n_neurons)  # offset currents of one factor block
    allpop = None
    for wp in points:
        p = {**params, **by_population.get(wp.population, {}), **dict.fromkeys(tau_names, tau_syn)}
        base = float(p.get(current_name, 0.0)) + float(bias_pA)
        pop = nest.Create(nest_model, len(factors) * len(per_point), params=p)
        pop.set({current_name: (base + np.tile(per_point, len(factors))).tolist()})
        allpop = pop if allpop is None else allpop + pop
    return allpop


def _ports(nest, nest_model, exc_port, inh_port) -> dict:
    """Connect keywords for positive and negative weights: receptor_type only when not port 0.

    NEST checks the port of every connection when receptor_type is given,
    even 0, which makes Connect markedly slower (see network/pd14.py).
    """
    types = {k.lower(): int(v) for k, v in nest.GetDefaults(nest_model).get("receptor_types", {}).items()}
    out = {}
    for sign, port, cortexzoo_port in ((1, exc_port, "exc_spikes"), (-1, inh_port, "inh_spikes")):
        if port is None:
            port = cortexzoo_port if cortexzoo_port in types else 0
        if isinstance(port, str):
            if port.lower() not in types:
                raise CortexzooError(f"Operating point: model {nest_model!r} has no input port {port!r}.",
                                     f"Its receptor types are {sorted(types)}.")
            port = types[port.lower()]
        out[sign] = {"receptor_type": port} if port != 0 else {}
    return out


def _connect_inputs(nest, nest_model, neurons, points, block, factors, current_scale, exc_port, inh_port) -> None:
    """One poisson_generator per (population, factor, weight group), to that block's neurons."""
    ports = _ports(nest, nest_model, exc_port, inh_port)
    start = 0
    for wp in points:
        for f in factors:
            targets = neurons[start:start + block]
            start += block
            for rate, weight in zip(wp.rates_Hz, wp.weights_pA):
                gen = nest.Create("poisson_generator", params={"rate": rate / f})
                nest.Connect(gen, targets, "all_to_all",
                             {"weight": weight * f * current_scale, "delay": RESOLUTION_MS,
                              **ports[1 if weight > 0 else -1]})


def _spike_counts(recorder, neurons) -> np.ndarray:
    gids = np.asarray(neurons.tolist())
    senders = np.asarray(recorder.events["senders"], dtype=int)
    return np.bincount(np.searchsorted(gids, senders), minlength=len(gids))


def _rate_rows(points, offsets, factors, counts, n_neurons, measure_ms) -> pd.DataFrame:
    rows = []
    for i, wp in enumerate(points):
        for k, f in enumerate(factors):
            for j, dmu in enumerate(offsets):
                rows.append({"population": wp.population, "dmu_mV": float(dmu), "sigma_factor": float(f),
                             "mu_mV": wp.mu_mV + float(dmu), "sigma_mV": wp.sigma_mV * np.sqrt(f),
                             "n_neurons": int(n_neurons), "n_spikes": int(counts[i, k, j]),
                             "rate_Hz": counts[i, k, j] / (n_neurons * measure_ms * 1e-3)})
    return pd.DataFrame(rows)


def tolerance_Hz(rate_lif):
    """Acceptance tolerance of a rate residual (issue 12).

    Parameters
    ----------
    rate_lif : float or array_like
        LIF rate(s) in Hz.

    Returns
    -------
    numpy.ndarray or float
        ``max(0.10 * rate_lif, 0.3 Hz)``, elementwise.
    """
    return np.maximum(TOLERANCE_REL * np.asarray(rate_lif, dtype=float), TOLERANCE_FLOOR_HZ)


def fit_bias(offsets_mV, model_rates, lif_rates, neighbourhood_mV) -> BiasFit:
    """The mean shift b that best maps the model's rate response onto the LIF's.

    Minimises ``sum_{p, d} ((nu_model_p(d + b) - nu_lif_p(d)) / tolerance_Hz(nu_lif_p(d)))^2``
    over populations p and neighbourhood offsets d; ``nu_model`` is
    interpolated linearly between grid offsets. b may range only so far
    that every ``d + b`` stays on the grid. Search: a scan in
    :data:`BIAS_SCAN_STEP_MV` steps (the loss can have several minima with
    noisy rates), then a bounded 1-D minimisation within one step.

    Parameters
    ----------
    offsets_mV : array_like
        Increasing grid of offsets at which the model was measured.
    model_rates : array_like
        Model rates, shape (populations, offsets).
    lif_rates : array_like
        LIF rates at the neighbourhood offsets, shape (populations, neighbourhood).
    neighbourhood_mV : array_like
        Offsets d (within the grid) where the responses should agree.

    Returns
    -------
    BiasFit
    """
    from scipy.optimize import minimize_scalar

    grid, model, lif, hood = _check_fit_args(offsets_mV, model_rates, lif_rates, neighbourhood_mV)
    scale = tolerance_Hz(lif)
    low, high = grid[0] - hood.min(), grid[-1] - hood.max()

    def loss(b):
        return float(np.sum(((_interp_rows(grid, model, hood + b) - lif) / scale) ** 2))

    scan = np.linspace(low, high, max(2, int(np.ceil((high - low) / BIAS_SCAN_STEP_MV)) + 1))
    i = int(np.argmin([loss(b) for b in scan]))
    step = scan[1] - scan[0]
    polished = minimize_scalar(loss, bounds=(max(low, scan[i] - step), min(high, scan[i] + step)), method="bounded",
                               options={"xatol": 1e-6})
    b = float(polished.x) if polished.fun <= loss(scan[i]) else float(scan[i])
    residuals = _interp_rows(grid, model, hood + b) - lif
    return BiasFit(bias_mV=b, loss=loss(b), residuals_Hz=residuals, normalised=residuals / scale,
                   at_edge=bool(np.isclose(b, low, atol=step) or np.isclose(b, high, atol=step)))


def _check_fit_args(offsets_mV, model_rates, lif_rates, neighbourhood_mV):
    grid = np.asarray(offsets_mV, dtype=float)
    model = np.atleast_2d(np.asarray(model_rates, dtype=float))
    lif = np.atleast_2d(np.asarray(lif_rates, dtype=float))
    hood = np.asarray(neighbourhood_mV, dtype=float)
    if grid.ndim != 1 or len(grid) < 2 or np.any(np.diff(grid) <= 0):
        raise CortexzooError("fit_bias: offsets_mV must be an increasing grid of at least two offsets.",
                             "Pass the offsets the model rates were measured at, e.g. OFFSETS_MV.")
    if model.shape[1] != len(grid) or lif.shape != (model.shape[0], len(hood)):
        raise CortexzooError(f"fit_bias: shapes do not match: model rates {model.shape} for {len(grid)} offsets, "
                             f"LIF rates {lif.shape} for {len(hood)} neighbourhood offsets.",
                             "model_rates is (populations, offsets), lif_rates (populations, neighbourhood).")
    # the grid need not contain the neighbourhood itself (a second stage measures around the
    # first stage's bias), only be wider than it, so that some shift b puts d + b on the grid
    if hood.max() - hood.min() >= grid[-1] - grid[0]:
        raise CortexzooError(f"fit_bias: neighbourhood {hood.min()}..{hood.max()} mV leaves no room to shift "
                             f"within the grid {grid[0]}..{grid[-1]} mV.",
                             "Measure the model on a wider offset grid than the neighbourhood.")
    return grid, model, lif, hood


def _interp_rows(grid, rates, at) -> np.ndarray:
    return np.stack([np.interp(at, grid, row) for row in rates])


def residual_table(measured: pd.DataFrame, rate_lif_Hz) -> pd.DataFrame:
    """Model against LIF rates point by point, with the acceptance check.

    Parameters
    ----------
    measured : pandas.DataFrame
        Rows of :func:`measure_rate_response` for the model (typically the
        working points: ``dmu_mV == 0``, ``sigma_factor == 1``, one row per
        population).
    rate_lif_Hz : array_like
        The LIF's rate at each row's point, in row order (e.g. a LIF
        measurement's ``rate_Hz`` or ``theory.lif_rate(mu_mV, sigma_mV)``).

    Returns
    -------
    pandas.DataFrame
        ``population, dmu_mV, sigma_factor, mu_mV, sigma_mV, rate_lif_Hz,
        rate_model_Hz, residual_Hz`` (model - LIF), ``relative_residual``
        (residual / LIF rate; inf for a silent LIF), ``tolerance_Hz,
        within_tolerance``.
    """
    lif = np.asarray(rate_lif_Hz, dtype=float)
    if lif.shape != (len(measured),):
        raise CortexzooError(f"residual_table: {lif.size} LIF rates for {len(measured)} measured rows.",
                             "Give one LIF rate per row, in the rows' order.")
    residual = measured.rate_Hz.to_numpy() - lif
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(lif > 0, residual / lif, np.where(residual == 0, 0.0, np.inf))
    tol = tolerance_Hz(lif)
    return pd.DataFrame({
        "population": measured.population.to_numpy(), "dmu_mV": measured.dmu_mV.to_numpy(),
        "sigma_factor": measured.sigma_factor.to_numpy(), "mu_mV": measured.mu_mV.to_numpy(),
        "sigma_mV": measured.sigma_mV.to_numpy(), "rate_lif_Hz": lif, "rate_model_Hz": measured.rate_Hz.to_numpy(),
        "residual_Hz": residual, "relative_residual": relative, "tolerance_Hz": tol,
        "within_tolerance": np.abs(residual) <= tol,
    })
