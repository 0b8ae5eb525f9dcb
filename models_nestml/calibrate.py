"""Calibrate the model zoo to the PD14 reference LIF (``cortexzoo calibrate``).

A calibrated model is a fair single-neuron replacement of the PD14 LIF: the
PSP criterion fixes how input currents map onto it, and only parameters of
spike generation are fitted to the LIF's steady-state f-I curve (RMS rate
error plus a strong rheobase term). The method, the per-model choices and
their reasons are in ``docs/calibration.md``.

This module holds the recipes (:data:`MODELS`) and the orchestration:
:func:`fit_model` (grid search per model and cell type), :func:`run_calibration`
(all models, table, figure, catalogue) and :func:`catalogue_updates`. The
pieces live in their own modules:

* :mod:`cortexzoo.models.measure` -- NEST measurements (f-I curves, PSP,
  input scale, passive properties);
* :mod:`cortexzoo.models.fitting` -- loss, rheobase and search grids (no NEST);
* :mod:`cortexzoo.models.calibration_figures` -- the f-I figure;
* :mod:`cortexzoo.models.catalogue_edit` -- the catalogue write.
"""

from __future__ import annotations

import datetime
import itertools
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cortexzoo.errors import CortexzooError
from cortexzoo.models.calibration_figures import plot_fi_curves
from cortexzoo.models.catalogue import catalogue_path as default_catalogue_path
from cortexzoo.models.catalogue_edit import format_quantity, update_catalogue_text, write_catalogue_atomically
from cortexzoo.models.fitting import (
    LAMBDA_HZ_PER_PA,
    TARGET_RHEOBASE_PA,
    at_edge,
    candidate_losses,
    coarse_grids,
    loss,
    refine_grids,
    rheobase,
    rms_residual,
)
from cortexzoo.models.measure import LifTarget, fresh_kernel, measure_psp, simulate_fi, solve_input_scale
from cortexzoo.synapse import psc_over_psp

# Names other code imports from here; loss, rheobase and the loss constants live in fitting.
__all__ = ["FINAL_CURRENTS_PA", "FINAL_LADDER_PA", "LAMBDA_HZ_PER_PA", "LIF", "MODELS", "STAGES",
           "TARGET_PSP_MV", "TARGET_RHEOBASE_PA", "TAU_SYN_MS", "ModelCalibration", "catalogue_updates",
           "fit_model", "loss", "reference_psc_pA", "rheobase", "run_calibration"]

TAU_SYN_MS = 0.5
#: (RMS currents, rheobase ladder) per search stage, pA: a coarse grid, then two refinements
STAGES = (
    (np.arange(0.0, 1001.0, 100.0), np.arange(250.0, 501.0, 10.0)),
    (np.arange(0.0, 1001.0, 50.0), np.arange(330.0, 421.0, 2.5)),
    (np.arange(0.0, 1001.0, 50.0), np.arange(330.0, 421.0, 2.5)),
)
FINAL_CURRENTS_PA = np.arange(0.0, 1001.0, 10.0)
FINAL_LADDER_PA = np.arange(340.0, 421.0, 1.0)
TARGET_PSP_MV = 0.15

LIF = {"C_m": 250.0, "tau_m": 10.0, "E_L": -65.0, "V_reset": -65.0, "V_th": -50.0, "t_ref": 2.0,
       "tau_syn_ex": TAU_SYN_MS, "tau_syn_in": TAU_SYN_MS}


def reference_psc_pA() -> float:
    """The PD14 reference excitatory PSC (pA): 0.15 mV PSP in the LIF (87.8 pA).

    Returns
    -------
    float
    """
    return TARGET_PSP_MV * psc_over_psp(LIF["C_m"], LIF["tau_m"], TAU_SYN_MS)


@dataclass
class ModelCalibration:
    """How one catalogue model is calibrated.

    Attributes
    ----------
    base : dict
        ``{cell_type: params}``; cell type ``None`` means one set for E and I.
    free : dict
        Fitted parameter -> ``(low, high, n_coarse, unit, log_grid)``.
    scale_keys : tuple
        Current-like parameters multiplied by the input scale ``s``, which is
        solved from the PSP criterion (empty: the model shares the LIF
        membrane and has no input scale).
    scale_init : dict
        Initial ``s`` per cell type for the PSP iteration.
    units : dict
        Parameter -> unit written to the catalogue (missing: dimensionless).
    """

    base: dict
    free: dict
    scale_keys: tuple = ()
    scale_init: dict = field(default_factory=dict)
    units: dict = field(default_factory=dict)


# Izhikevich (2003), Fig. 2 of the paper: regular spiking (E) and fast spiking (I).
# C_m is the input scale (pA -> mV/ms), I_b a constant drive in the model's own units.
_IZH_RS = {"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0, "V_th": 30.0, "C_m": 1.0, "I_b": 0.0,
           "V_m": -70.0, "U_m": -14.0}
_IZH_FS = {"a": 0.1, "b": 0.2, "c": -65.0, "d": 2.0, "V_th": 30.0, "C_m": 1.0, "I_b": 0.0,
           "V_m": -70.0, "U_m": -14.0}
# Izhikevich (2007), ch. 8: RS pyramidal cell; FS-like = the book's FS interneuron without
# its cubic U(v) nonlinearity (b = d = 0). C_m, b, d are multiplied by the input scale s;
# k is fitted (rheobase).
_IZH07_RS = {"C_m": 100.0, "k": 0.7, "v_r": -60.0, "v_t": -40.0, "V_peak": 35.0, "a": 0.03, "b": -2.0,
             "c": -50.0, "d": 100.0, "V_m": -60.0, "U_m": 0.0}
_IZH07_FS = {"C_m": 20.0, "k": 1.0, "v_r": -55.0, "v_t": -40.0, "V_peak": 25.0, "a": 0.2, "b": 0.0,
             "c": -45.0, "d": 0.0, "V_m": -55.0, "U_m": 0.0}
# AdEx: the LIF's membrane and refractoriness, Brette & Gerstner (2005) adaptation.
_ADEX = {"C_m": 250.0, "g_L": 25.0, "E_L": -65.0, "V_reset": -65.0, "t_ref": 2.0, "Delta_T": 2.0,
         "V_th": -50.0, "V_peak": 0.0, "a": 4.0, "b": 80.5, "tau_w": 144.0, "V_m": -65.0}
# MAT2: the LIF's membrane, Kobayashi et al. (2009) / NEST default threshold kinetics.
_MAT2 = {"C_m": 250.0, "tau_m": 10.0, "E_L": -65.0, "t_ref": 2.0, "tau_1": 10.0, "tau_2": 200.0,
         "alpha_1": 37.0, "alpha_2": 2.0, "omega": -50.0, "V_m": -65.0}
# GLIF level 5: the LIF's membrane, reset to E_L as the LIF; threshold and ASC kinetics of
# NEST's glif_psc defaults (Teeter et al. 2018). The slow ASC amplitude is scaled with the
# conductance (PD14 25 nS / NEST default 9.43 nS) so that ASC/g, its voltage effect, is kept.
_G_RATIO = 25.0 / 9.43
_GLIF = {"C_m": 250.0, "g": 25.0, "E_L": -65.0, "V_reset": -65.0, "V_th": -50.0, "t_ref": 2.0,
         "th_spike_add": 0.37, "th_spike_decay": 0.009, "voltage_reset_fraction": 0.0, "voltage_reset_add": 0.0,
         "th_voltage_index": 0.005, "th_voltage_decay": 0.09, "asc_decay_1": 0.003, "asc_decay_2": 0.1,
         "asc_amps_1": -9.18 * _G_RATIO, "asc_amps_2": -198.94 * _G_RATIO, "asc_r_1": 1.0, "asc_r_2": 1.0,
         "spike_dependent_threshold": True, "after_spike_currents": True, "adapting_threshold": True,
         "V_m": -65.0}
# Galves-Loecherbach: the LIF's membrane; linear Phi (r = 1) with the escape gain gamma of the
# accepted earlier calibration (a per-step probability at 0.1 ms; hazard 1.16 /(ms mV)).
_GL = {"C_m": 250.0, "tau_m": 10.0, "E_L": -65.0, "V_reset": -65.0, "t_ref": 2.0, "phi_type": 1, "r": 1.0,
       "gamma": 0.115949, "V_rheo": -50.0, "V_m": -65.0}

_U_LIF = {"C_m": "pF", "g_L": "nS", "g": "nS", "tau_m": "ms", "E_L": "mV", "V_reset": "mV", "t_ref": "ms",
          "V_th": "mV"}
_U_IZH = {"c": "mV", "d": "mV", "V_th": "mV", "C_m": "pF", "I_b": "mV/ms"}
_U_IZH07 = {"C_m": "pF", "k": "nS/mV", "v_r": "mV", "v_t": "mV", "V_peak": "mV", "a": "1/ms", "b": "nS",
            "c": "mV", "d": "pA"}
_U_ADEX = dict(_U_LIF, Delta_T="mV", V_peak="mV", a="nS", b="pA", tau_w="ms")
_U_MAT2 = dict(_U_LIF, tau_1="ms", tau_2="ms", alpha_1="mV", alpha_2="mV", omega="mV")
_U_GLIF = dict(_U_LIF, th_spike_add="mV", th_spike_decay="1/ms", voltage_reset_add="mV", th_voltage_index="1/ms",
               th_voltage_decay="1/ms", asc_decay_1="1/ms", asc_decay_2="1/ms", asc_amps_1="pA", asc_amps_2="pA")
_U_GL = dict(_U_LIF, gamma="1/mV", V_rheo="mV")

#: The calibration recipe of every model.
MODELS = {
    "izhikevich_nestml": ModelCalibration(
        base={"E": _IZH_RS, "I": _IZH_FS},
        free={"I_b": (-2.0, 4.0, 13, "mV/ms", False)},
        scale_keys=("C_m",), scale_init={"E": 200.0, "I": 200.0},
        units=_U_IZH,
    ),
    "izhikevich2007_nestml": ModelCalibration(
        base={"E": _IZH07_RS, "I": _IZH07_FS},
        free={"k": (0.3, 30.0, 11, "nS/mV", True)},
        scale_keys=("C_m", "b", "d"), scale_init={"E": 2.5, "I": 7.0},
        units=_U_IZH07,
    ),
    "aeif_psc_exp_nestml": ModelCalibration(
        base={None: _ADEX},
        free={"V_th": (-60.0, -40.0, 9, "mV", False), "Delta_T": (0.25, 6.0, 6, "mV", True)},
        units=_U_ADEX,
    ),
    "mat2_psc_exp_nestml": ModelCalibration(
        base={None: _MAT2},
        free={"omega": (-56.0, -44.0, 13, "mV", False)},
        units=_U_MAT2,
    ),
    "glif_psc_nestml": ModelCalibration(
        base={None: _GLIF},
        free={"V_th": (-58.0, -44.0, 15, "mV", False)},
        units=_U_GLIF,
    ),
    "galves_loecherbach_nestml": ModelCalibration(
        base={None: _GL},
        free={"V_rheo": (-56.0, -44.0, 13, "mV", False)},
        units=_U_GL,
    ),
}


def _candidates(name: str, cal: ModelCalibration, cell_type, combos: list, names: list, target_psp, weight):
    base = cal.base[cell_type]
    sets = [dict(base, **dict(zip(names, c))) for c in combos]
    scales = np.ones(len(sets))
    if cal.scale_keys:
        sets, scales = solve_input_scale(name, sets, cal.scale_keys, cal.scale_init[cell_type], target_psp, weight)
    return sets, scales


def fit_model(name: str, cell_type, lif: LifTarget, target_psp: float, weight_pA: float) -> dict:
    """Fit the spike-generation parameters of one model (and cell type) to the LIF.

    Each stage of :data:`STAGES` simulates every point of the product grid
    at once; the next stage searches a finer grid around the best point.

    Parameters
    ----------
    name : str
        Catalogue (and NEST) model name, a key of :data:`MODELS`.
    cell_type : str or None
        ``"E"``, ``"I"`` or None.
    lif : callable
        LIF rates at given currents.
    target_psp : float
        PSP (mV) of the reference PSC in the LIF.
    weight_pA : float
        The reference PSC.

    Returns
    -------
    dict
        ``free`` (best values), ``params`` (full NEST parameter set), ``scale``
        (input scale, 1 without one), ``loss`` and ``at_edge`` (fitted
        parameters whose best value lies on the edge of their bounds).
    """
    cal = MODELS[name]
    names, bounds = list(cal.free), list(cal.free.values())
    grids = coarse_grids(bounds)
    best = None
    for rms_currents, ladder in STAGES:
        if best is not None:
            grids = refine_grids(grids, bounds, best["free"].values())
        combos = list(itertools.product(*grids))
        sets, scales = _candidates(name, cal, cell_type, combos, names, target_psp, weight_pA)
        currents = np.concatenate([rms_currents, ladder])
        rates = simulate_fi(fresh_kernel(), name, sets, currents)
        losses = candidate_losses(currents, rates, lif(rms_currents))
        i = int(np.argmin(losses))
        best = {"free": dict(zip(names, combos[i])), "params": sets[i], "scale": float(scales[i]),
                "loss": float(losses[i])}
    best["at_edge"] = at_edge(best["free"], cal.free)
    return best


def run_calibration(out_dir: Path, models=None, write: bool = True, catalogue_path: Path | None = None,
                    progress=None) -> dict:
    """Calibrate the models, update the catalogue and plot the f-I curves.

    Parameters
    ----------
    out_dir : pathlib.Path
        Folder for ``fI_curves.png`` and ``calibration.csv``.
    models : list of str, optional
        Subset of :data:`MODELS`; default all.
    write : bool
        Write the results into the catalogue.
    catalogue_path : pathlib.Path, optional
        Defaults to ``models_nestml/catalogue.toml``.
    progress : callable, optional
        Receives status lines.

    Returns
    -------
    dict
        Model -> ``{"types": {cell_type: fit result}, "psc_per_reference_psc", "psp_mV"}``;
        a fit result has ``free``, ``params``, ``scale``, ``rates`` (at
        :data:`FINAL_CURRENTS_PA`), ``residual_Hz``, ``rheobase_pA``,
        ``psp_mV`` and ``at_edge``.
    """
    say = progress or (lambda msg: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    catalogue_path = Path(catalogue_path or default_catalogue_path())
    models = _known_models(models)
    t0 = time.perf_counter()
    weight = reference_psc_pA()
    lif = LifTarget(LIF)
    target_psp = float(measure_psp("iaf_psc_exp", [LIF], weight)[0])
    final = np.concatenate([FINAL_CURRENTS_PA, FINAL_LADDER_PA])
    lif_final = lif(final)
    say(f"LIF reference: PSP {target_psp:.4f} mV for {weight:.2f} pA, rheobase {rheobase(final, lif_final):.1f} pA, "
        f"{lif_final[len(FINAL_CURRENTS_PA) - 1]:.1f} Hz at {FINAL_CURRENTS_PA[-1]:.0f} pA")
    reference = {"rates": lif_final[: len(FINAL_CURRENTS_PA)], "psp_mV": target_psp,
                 "rheobase_pA": rheobase(final, lif_final)}
    results = {}
    for name in models:
        entry = {"types": {}}
        for cell_type in MODELS[name].base:
            fit = fit_model(name, cell_type, lif, target_psp, weight)
            entry["types"][cell_type] = _final_curve(name, fit, final, reference["rates"], weight)
            _report_fit(say, name, cell_type, fit, t0)
        # the network scales all its currents by one factor per model: from the E cell (or the only one)
        ref = entry["types"]["E" if "E" in MODELS[name].base else None]
        entry["psc_per_reference_psc"] = round(target_psp / ref["psp_mV"], 3)
        entry["psp_mV"] = ref["psp_mV"]
        results[name] = entry
    plot_fi_curves(out_dir / "fI_curves.png", FINAL_CURRENTS_PA, reference, results)
    _table(out_dir / "calibration.csv", reference, results)
    if write:
        _write_catalogue(catalogue_path, results, say)
    say(f"calibration done in {time.perf_counter() - t0:.0f} s")
    return results


def _known_models(models) -> list:
    models = list(models or MODELS)
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise CortexzooError(f"No calibration recipe for {', '.join(map(repr, unknown))}.",
                             f"Recipes exist for: {', '.join(MODELS)} (models_nestml/calibrate.py MODELS).")
    return models


def _final_curve(name: str, fit: dict, final, lif_rates, weight: float) -> dict:
    """Add the fit's f-I curve on the final currents, its residual, rheobase and PSP."""
    rates = simulate_fi(fresh_kernel(), name, [fit["params"]], final)[0]
    fit["rates"] = rates[: len(FINAL_CURRENTS_PA)]
    fit["rheobase_pA"] = rheobase(final, rates)
    fit["residual_Hz"] = rms_residual(fit["rates"], lif_rates)
    fit["psp_mV"] = float(measure_psp(name, [fit["params"]], weight)[0])
    return fit


def _report_fit(say, name: str, cell_type, fit: dict, t0: float) -> None:
    edge = f"  AT EDGE: {fit['at_edge']}" if fit["at_edge"] else ""
    free = ", ".join(f"{k}={v:.4g}" for k, v in fit["free"].items())
    say(f"{name} [{cell_type or 'E/I'}]: {free}, scale {fit['scale']:.4g} -> residual "
        f"{fit['residual_Hz']:.2f} Hz, rheobase {fit['rheobase_pA']:.1f} pA, PSP {fit['psp_mV']:.4f} mV"
        f"{edge} ({time.perf_counter() - t0:.0f} s)")


def _write_catalogue(catalogue_path: Path, results: dict, say) -> None:
    """One validated, atomic replacement after every fit is done (previous file kept as .bak)."""
    text = catalogue_path.read_text()
    updates = catalogue_updates(results, tomllib.loads(text), datetime.date.today().isoformat())
    backup = write_catalogue_atomically(catalogue_path, update_catalogue_text(text, updates))
    say(f"catalogue updated: {catalogue_path} (previous version: {backup})")


_METHOD = ("PSP criterion fixes the input mapping (0.15 mV for the 87.8 pA reference PSC); spike-generation "
           "parameters fitted to the steady-state f-I of iaf_psc_exp PD14 (DC 0-1 nA, rate after 1 s), "
           "loss = RMS + 2 Hz/pA x |rheobase - 375 pA|; see calibrate.py")


def catalogue_updates(results: dict, catalogue: dict, date: str) -> dict:
    """The catalogue values a calibration writes, for :func:`update_catalogue_text`.

    Per model: the full parameter set of each fit (not only the fitted
    values, so the catalogue shows what was calibrated) in ``pd14`` or
    ``pd14_by_type.<E|I>``, the E cells' ``rheobase`` (the one the DC check
    needs most), ``weights.psc_per_reference_psc`` and the ``calibration`` table.

    Parameters
    ----------
    results : dict
        As returned by :func:`run_calibration` (models of :data:`MODELS`).
    catalogue : dict
        The current catalogue as parsed TOML: per-type parameters that the
        common ``pd14`` table already holds with the same value stay there.
    date : str
        ISO date for ``calibration.date``.

    Returns
    -------
    dict
        Dotted table name -> ``{key: value}``.
    """
    updates = {}
    for name, entry in results.items():
        cal, prefix = MODELS[name], f"models.{name}"
        common = catalogue.get("models", {}).get(name, {}).get("pd14", {})
        residuals, rheobases, psps, fitted = {}, {}, {}, {}
        for cell_type, fit in entry["types"].items():
            values = {p: format_quantity(v, cal.units.get(p, "")) for p, v in fit["params"].items()
                      if p not in ("V_m", "U_m")}  # initial state, set by the network
            if cell_type:  # what the common pd14 table already says (same value and type) is not repeated
                values = {p: v for p, v in values.items() if not (type(common.get(p)) is type(v) and common[p] == v)}
            updates[f"{prefix}.pd14" + (f"_by_type.{cell_type}" if cell_type else "")] = values
            key = cell_type or "all"
            residuals[key] = round(float(fit["residual_Hz"]), 3)
            rheobases[key] = round(float(fit["rheobase_pA"]), 1)
            psps[key] = round(float(fit["psp_mV"]), 4)
            fitted[key] = {k: round(float(v), 6) for k, v in fit["free"].items()}
            if cal.scale_keys:
                fitted[key]["s_psp"] = round(float(fit["scale"]), 6)
        updates[prefix] = {"rheobase": format_quantity(rheobases.get("E", rheobases.get("all")), "pA")}
        updates[f"{prefix}.weights"] = {"psc_per_reference_psc": format_quantity(entry["psc_per_reference_psc"])}
        updates[f"{prefix}.calibration"] = {
            "method": _METHOD,
            "residual_Hz": residuals,
            "rheobase_pA": rheobases,
            "fitted": fitted,
            "psp_mV": psps if len(psps) > 1 else next(iter(psps.values())),
            "date": date,
        }
    return updates


def _table(path: Path, reference: dict, results: dict) -> None:
    rows = ["model,cell_type,fitted_parameters,input_scale,residual_Hz,rheobase_pA,psc_per_reference_psc,psp_mV,"
            "at_edge"]
    rows.append(f"iaf_psc_exp,all,,1,0.000,{reference['rheobase_pA']:.1f},1,{reference['psp_mV']:.4f},")
    for name, entry in results.items():
        for cell_type, fit in entry["types"].items():
            free = " ".join(f"{k}={v:.5g}" for k, v in fit["free"].items())
            rows.append(f"{name},{cell_type or 'all'},{free},{fit['scale']:.5g},{fit['residual_Hz']:.3f},"
                        f"{fit['rheobase_pA']:.1f},{entry['psc_per_reference_psc']:.5g},{fit['psp_mV']:.4f},"
                        f"{' '.join(fit['at_edge'])}")
    path.write_text("\n".join(rows) + "\n")
