"""Membrane potential of each calibrated cell at PD14's working points (issue 12).

Why
---
The ``operating_point`` rule matches *rates* at the 8 working points. Whether a
model reaches them the LIF's way -- a mean membrane potential several mV below
threshold and spikes from fluctuations of a few mV -- is a separate question:
a cell with a short effective membrane time constant (the fitted Izhikevich
cells: ~1 ms against the LIF's 10 ms) filters the same shot noise into a
smaller SD of V. This module measures, for every model and cell type under a
calibration rule, the mean and SD of V at each working point of its cell type,
next to the LIF's (measured, and NNMT's free-membrane prediction).

Method (a choice, documented in docs/calibration.md)
-----------------------------------------------------
Unconnected neurons receive exactly the Poisson input of
:func:`cortexzoo.models.operating_point.measure_rate_response` (same
generators, weights, input map and rule bias). V is sampled every step after
a warm-up. Samples from ``exclude_ms[0]`` before to ``exclude_ms[1]`` after
each of the neuron's spikes are dropped, so that the spike itself, the reset
and the refractory clamp (2 ms in PD14) do not enter: what remains is the
subthreshold trajectory the input drives. Per neuron the mean and SD of the
kept samples are taken; the table gives their averages over neurons
(``sigma_V_mV`` is the root-mean-square of the per-neuron SDs, i.e. the
stationary within-neuron fluctuation the theory describes).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from cortexzoo.errors import CortexzooError
from cortexzoo.models import operating_point as op

#: Samples dropped around each spike (ms before, ms after): spike upstroke, reset and PD14's 2 ms refractory
#: period plus 3 ms of the return from reset, which the input does not drive.
EXCLUDE_MS = (1.0, 5.0)
N_NEURONS = 20
# Slow variables (GLIF 333 ms, MAT2 200 ms, AdEx 144 ms) settle within the warm-up (op.WARMUP_MS, 3x the
# slowest); 2 s of V at 20 neurons gives the SD to well under 1 % (about 4e5 correlated samples per point).
MEASURE_MS = 2000.0


def subthreshold_moments(v_mV: np.ndarray, t_ms: np.ndarray, spike_times_ms, exclude_ms=EXCLUDE_MS) -> tuple:
    """Mean and SD of one neuron's V outside the windows around its spikes.

    Parameters
    ----------
    v_mV, t_ms : numpy.ndarray
        Samples of V and their times, same length, times increasing.
    spike_times_ms : array_like
        The neuron's spike times.
    exclude_ms : (float, float)
        Dropped from ``before`` ms before to ``after`` ms after each spike.

    Returns
    -------
    (float, float, float)
        Mean (mV), SD (mV, ddof 0) and the fraction of samples kept; NaN for
        mean and SD when no sample is kept.
    """
    v_mV, t_ms = np.asarray(v_mV, dtype=float), np.asarray(t_ms, dtype=float)
    if v_mV.shape != t_ms.shape:
        raise CortexzooError(f"Membrane: {v_mV.size} V samples but {t_ms.size} sample times.",
                             "Pass the multimeter's V_m and times of one neuron.")
    keep = np.ones(t_ms.size, dtype=bool)
    before, after = exclude_ms
    for ts in np.asarray(spike_times_ms, dtype=float):
        lo, hi = np.searchsorted(t_ms, [ts - before, ts + after], side="left")
        keep[lo:hi] = False
    if not keep.any():
        return np.nan, np.nan, 0.0
    kept = v_mV[keep]
    return float(kept.mean()), float(kept.std()), float(keep.mean())


def measure_membrane(nest_model: str, params: dict, populations, v_name: str, *, n_neurons: int = N_NEURONS,
                     warmup_ms: float = op.WARMUP_MS, measure_ms: float = MEASURE_MS, seed: int = 1,
                     current_scale: float = 1.0, bias_pA: float = 0.0, current_name: str = "I_e",
                     exclude_ms=EXCLUDE_MS) -> pd.DataFrame:
    """Rate, mean V and SD of V of a model at PD14 working points (no offset, fluctuation factor 1).

    Parameters
    ----------
    nest_model : str
    params : dict
        NEST parameters of every neuron.
    populations : sequence of operating_point.WorkingPointInput
    v_name : str
        The model's membrane-potential state (catalogue role ``membrane_potential``).
    n_neurons : int
        Neurons per working point.
    warmup_ms, measure_ms : float
        V and spikes are used in ``(warmup_ms, warmup_ms + measure_ms]``.
    seed : int
    current_scale, bias_pA, current_name
        As in :func:`cortexzoo.models.operating_point.measure_rate_response`.
    exclude_ms : (float, float)
        See :func:`subthreshold_moments`.

    Returns
    -------
    pandas.DataFrame
        One row per population: ``population, rate_Hz, mean_V_mV, sigma_V_mV,
        kept_fraction, n_neurons``.
    """
    from cortexzoo.models import ready_kernel

    points = list(populations)
    nest = ready_kernel(threads=1, resolution_ms=op.RESOLUTION_MS, seed=seed)
    neurons = op._create_neurons(nest, nest_model, params, {}, points, np.zeros(1), np.ones(1), n_neurons,
                                 current_scale, bias_pA, None, current_name)
    op._connect_inputs(nest, nest_model, neurons, points, n_neurons, np.ones(1), current_scale, None, None)
    window = {"start": float(warmup_ms), "stop": float(warmup_ms + measure_ms)}
    meter = nest.Create("multimeter", params={"record_from": [v_name], "interval": op.RESOLUTION_MS, **window})
    recorder = nest.Create("spike_recorder", params=window)
    nest.Connect(meter, neurons)
    nest.Connect(neurons, recorder)
    nest.Simulate(float(warmup_ms + measure_ms))
    return _membrane_rows(points, neurons, meter.events, recorder.events, v_name, n_neurons, measure_ms, exclude_ms)


def _membrane_rows(points, neurons, samples, spikes, v_name, n_neurons, measure_ms, exclude_ms) -> pd.DataFrame:
    gids = np.asarray(neurons.tolist())
    senders, times, v = (np.asarray(samples[k]) for k in ("senders", "times", v_name))
    s_senders, s_times = np.asarray(spikes["senders"]), np.asarray(spikes["times"])
    rows = []
    for i, wp in enumerate(points):
        moments = []
        for gid in gids[i * n_neurons:(i + 1) * n_neurons]:
            mine = senders == gid
            moments.append(subthreshold_moments(v[mine], times[mine], s_times[s_senders == gid], exclude_ms))
        mean, sd, kept = np.array(moments).T
        n_spikes = np.isin(s_senders, gids[i * n_neurons:(i + 1) * n_neurons]).sum()
        rows.append({"population": wp.population, "rate_Hz": n_spikes / (n_neurons * measure_ms * 1e-3),
                     "mean_V_mV": float(np.nanmean(mean)), "sigma_V_mV": float(np.sqrt(np.nanmean(sd ** 2))),
                     "kept_fraction": float(kept.mean()), "n_neurons": int(n_neurons)})
    return pd.DataFrame(rows)


def working_point_membrane(by_type: dict, rule: str = "operating_point", models=None, *,
                           n_neurons: int = N_NEURONS, measure_ms: float = MEASURE_MS, progress=None) -> pd.DataFrame:
    """The membrane table of every zoo model (or ``models``) under one rule, with the LIF's rows.

    Parameters
    ----------
    by_type : dict
        ``{"E": [...], "I": [...]}`` working points
        (:func:`cortexzoo.network.theory.working_point_inputs_by_type`).
    rule : str
        Calibration rule whose cells, input map and bias are used.
    models : sequence of str, optional
        Catalogue names; default every model that has ``rule``.
    n_neurons : int
    measure_ms : float
    progress : callable, optional

    Returns
    -------
    pandas.DataFrame
        ``model, rule, cell_type, population, mu_mV, sigma_mV`` (the input, LIF
        terms), ``sigma_V_theory_mV`` (NNMT's free-membrane SD of the LIF),
        ``rate_Hz, mean_V_mV, sigma_V_mV, kept_fraction, n_neurons``, and
        ``sigma_V_vs_lif`` (model SD / measured LIF SD at the same point).
    """
    from cortexzoo.models.calibrate import LIF
    from cortexzoo.models.catalogue import get_model, model_rules, raw_models

    say = progress or (lambda msg: None)
    # the reference LIF is measured once below; its NESTML twin stays in as a control (ratio 1)
    names = list(models) if models else [m for m in raw_models() if rule in model_rules(m) and m != "iaf_psc_exp"]
    t0 = time.perf_counter()
    frames = [_rows("iaf_psc_exp", rule, t, wps, dict(LIF), "V_m", 1.0, 0.0, n_neurons, measure_ms)
              for t, wps in by_type.items()]
    say(f"iaf_psc_exp: measured ({time.perf_counter() - t0:.0f} s)")
    for name in names:
        spec = get_model(name, rule)
        for cell_type, wps in by_type.items():
            frames.append(_rows(spec.nest_model, rule, cell_type, wps, spec.params_for(cell_type=cell_type),
                                spec.role("membrane_potential"), spec.scale_for(cell_type),
                                float(spec.bias_pA.get(cell_type, 0.0)), n_neurons, measure_ms,
                                current_name=spec.role("bias_current"), label=name))
        say(f"{name}: measured ({time.perf_counter() - t0:.0f} s)")
    table = pd.concat(frames, ignore_index=True)
    lif_sd = table[table.model == "iaf_psc_exp"].set_index("population").sigma_V_mV
    table["sigma_V_vs_lif"] = table.sigma_V_mV / table.population.map(lif_sd)
    return table


def _rows(nest_model, rule, cell_type, wps, params, v_name, scale, bias, n_neurons, measure_ms, *,
          current_name="I_e", label=None) -> pd.DataFrame:
    measured = measure_membrane(nest_model, params, wps, v_name, n_neurons=n_neurons, measure_ms=measure_ms,
                                current_scale=scale, bias_pA=bias, current_name=current_name)
    inputs = pd.DataFrame([{"population": wp.population, "mu_mV": wp.mu_mV, "sigma_mV": wp.sigma_mV,
                            "sigma_V_theory_mV": wp.sigma_V_mV} for wp in wps])
    out = inputs.merge(measured, on="population")
    out.insert(0, "cell_type", cell_type)
    out.insert(0, "rule", rule if label else "-")
    out.insert(0, "model", label or nest_model)
    return out
