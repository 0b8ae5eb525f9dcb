"""Calibrate the model zoo to the PD14 reference LIF (``cortexzoo calibrate --rule <rule>``).

Three rules make a zoo model comparable to the PD14 LIF (``docs/calibration.md``):
``published`` (published cells, input scale from the PSP integral),
``psp_rheobase`` (PSP peak criterion, spike generation fitted to the LIF's DC
f-I with the rheobase pinned) and ``operating_point`` (a bias, and a gain
where listed, fitted to the LIF's rate response under PD14 working-point
shot noise). Each writes ``[models.<name>.rules.<rule>]`` into the catalogue.

This module holds the ``psp_rheobase`` search (:data:`MODELS`,
:func:`fit_model`), the orchestration (:func:`run_calibration`) and the
catalogue update (:func:`rule_updates`). The pieces live in their own modules:

* :mod:`cortexzoo.models.rules` -- published cells, recipes, PD14-membrane map (data);
* :mod:`cortexzoo.models.rule_fits` -- the ``published`` and ``operating_point`` rules;
* :mod:`cortexzoo.models.measure` -- NEST measurements (f-I curves, PSP,
  input scale, passive properties);
* :mod:`cortexzoo.models.operating_point` -- rate response under shot noise, bias fit;
* :mod:`cortexzoo.models.fitting` -- loss, rheobase and search grids (no NEST);
* :mod:`cortexzoo.models.calibration_figures`, :mod:`~cortexzoo.models.calibration_tables` -- outputs;
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
from cortexzoo.models import calibration_tables, rules
from cortexzoo.models.calibration_figures import plot_fi_curves, plot_rate_response
from cortexzoo.models.catalogue import RULES
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
from cortexzoo.models.measure import (
    LifTarget,
    fresh_kernel,
    measure_psp,
    measure_psp_trace,
    simulate_fi,
    solve_input_scale,
)
from cortexzoo.synapse import psc_over_psp

# Names other code imports from here; loss, rheobase and the loss constants live in fitting.
__all__ = ["FINAL_CURRENTS_PA", "FINAL_LADDER_PA", "LAMBDA_HZ_PER_PA", "LIF", "MODELS", "STAGES",
           "TARGET_PSP_MV", "TARGET_RHEOBASE_PA", "TAU_SYN_MS", "ModelCalibration", "RULES", "rule_updates",
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
        ``{"E": params, "I": params}``: the cells the search starts from.
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


def psp_rheobase_recipes() -> dict:
    """The ``psp_rheobase`` recipe of every model, from ``recipes.toml`` and ``cell_types.toml``.

    Returns
    -------
    dict
        Model -> :class:`ModelCalibration` with one base set per cell type:
        the published cell on the PD14 membrane (:func:`rules.map_to_pd14_membrane`).
    """
    out = {}
    for name, recipe in rules.load_recipes().items():
        spec = recipe.psp_rheobase
        free = {k: (float(v[0]), float(v[1]), int(v[2]), recipe.units.get(k, ""), v[3] == "log")
                for k, v in spec.get("free", {}).items()}
        base = {t: rules.map_to_pd14_membrane(recipe.cells[t], recipe.membrane) for t in rules.CELL_TYPES}
        out[name] = ModelCalibration(base=base, free=free,
                                     scale_keys=tuple(spec.get("input_scale", recipe.input_scale)),
                                     scale_init=dict(spec.get("scale_init", {})), units=recipe.units)
    return out


#: The ``psp_rheobase`` recipe of every model (see :func:`psp_rheobase_recipes`).
MODELS = psp_rheobase_recipes()


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


_METHODS = {
    "published": "published cells (models_nestml/cell_types.toml) untouched; input scale per cell type from the "
                 "PSP integral of the reference PSC at rest (docs/calibration.md)",
    "psp_rheobase": "cells on the PD14 membrane; input map from the PSP peak (0.15 mV for the 87.8 pA reference "
                    "PSC); spike-generation parameters fitted to the steady-state f-I of iaf_psc_exp (DC 0-1 nA, "
                    "rate after 1 s), loss = RMS + 2 Hz/pA x |rheobase - 375 pA| (docs/calibration.md)",
    "operating_point": "cells on the PD14 membrane (Izhikevich: input scale from the PSP integral); bias per cell "
                       "type (and the recipe's gain) fitted so that the rate under PD14 working-point shot noise "
                       "matches iaf_psc_exp over +-2 mV around the 4 working points of the type (docs/calibration.md)",
}


def run_calibration(out_dir: Path, models=None, write: bool = True, catalogue_path: Path | None = None,
                    progress=None, rule: str = "psp_rheobase", working_points: dict | None = None) -> dict:
    """Calibrate the models by one rule, write the catalogue's rule tables, tables and figures.

    Parameters
    ----------
    out_dir : pathlib.Path
        Folder for the tables and figures (``calibration.csv`` and
        ``fI_curves.png`` for ``psp_rheobase``, ``published.csv``,
        ``operating_points.csv`` and ``nu_<model>.png``); rows of models not
        calibrated now are kept.
    models : list of str, optional
        Subset of :data:`MODELS`; default all.
    write : bool
        Write the results into the catalogue (``[models.<name>.rules.<rule>]``).
    catalogue_path : pathlib.Path, optional
        Defaults to the catalogue in use.
    progress : callable, optional
        Receives status lines.
    rule : {"published", "psp_rheobase", "operating_point"}
    working_points : dict, optional
        ``{"E": [...], "I": [...]}`` of :class:`~cortexzoo.models.operating_point.WorkingPointInput`;
        required for ``operating_point`` (``cortexzoo calibrate`` passes
        :func:`cortexzoo.network.theory.working_point_inputs` by cell type).

    Returns
    -------
    dict
        Model -> ``{"types": {cell_type: result}, "psc_per_reference_psc", ...}``.
    """
    if rule not in RULES:
        raise CortexzooError(f"Unknown calibration rule {rule!r}.", f"Use one of {', '.join(RULES)}.")
    if rule == "operating_point" and not working_points:
        raise CortexzooError("The operating_point rule needs the working points.",
                             "Run it through `cortexzoo calibrate --rule operating_point`.")
    say = progress or (lambda msg: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    models = _known_models(models)
    t0 = time.perf_counter()
    if rule == "psp_rheobase":
        results = _fit_psp_rheobase(out_dir, models, say, t0)
    else:
        results = _fit_rule(out_dir, rule, models, working_points, say)
    if write:
        _write_catalogue(Path(catalogue_path or default_catalogue_path()), rule, results, say)
    say(f"calibration ({rule}) done in {time.perf_counter() - t0:.0f} s")
    return results


def _fit_psp_rheobase(out_dir: Path, models: list, say, t0: float) -> dict:
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
        # the PSP criterion makes the input map 1 for every type (reported: LIF PSP / model PSP of the E cell)
        ref = entry["types"]["E"]
        entry["psc_per_reference_psc"] = round(target_psp / ref["psp_mV"], 3)
        entry["psp_mV"] = ref["psp_mV"]
        results[name] = entry
    if set(models) == set(MODELS):  # the figure shows all models; a partial run keeps the last one
        plot_fi_curves(out_dir / "fI_curves.png", FINAL_CURRENTS_PA, reference, results)
    _table(out_dir / "calibration.csv", reference, results)
    return results


def _fit_rule(out_dir: Path, rule: str, models: list, working_points, say) -> dict:
    from cortexzoo.models import rule_fits

    recipes = rules.load_recipes()
    weight = reference_psc_pA()
    lif_integral = float(measure_psp_trace("iaf_psc_exp", [LIF], weight).integral_mV_ms[0])
    say(f"LIF reference: PSP integral {lif_integral:.4f} mV ms for {weight:.2f} pA")
    if rule == "published":
        results = {m: rule_fits.calibrate_published(m, recipes[m], weight, lif_integral, say) for m in models}
        calibration_tables.write_cells(out_dir / "published.csv", results)
        return results
    lif_curves = rule_fits.lif_reference_curves([wp for wps in working_points.values() for wp in wps], say)
    results = {}
    for m in models:
        results[m] = rule_fits.calibrate_operating_point(m, recipes[m], working_points, lif_curves, weight,
                                                         lif_integral, say)
        plot_rate_response(out_dir / f"nu_{m}.png", m, results[m], lif_curves["fine"], rule_fits.DEFAULT_FIT.offsets_mV)
    calibration_tables.write_cells(out_dir / "operating_point_cells.csv", results)
    calibration_tables.write_operating_points(out_dir / "operating_points.csv", results)
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
    say(f"{name} [{cell_type}]: {free}, scale {fit['scale']:.4g} -> residual "
        f"{fit['residual_Hz']:.2f} Hz, rheobase {fit['rheobase_pA']:.1f} pA, PSP {fit['psp_mV']:.4f} mV"
        f"{edge} ({time.perf_counter() - t0:.0f} s)")


def _write_catalogue(catalogue_path: Path, rule: str, results: dict, say) -> None:
    """One validated, atomic replacement after every fit is done (previous file kept as .bak)."""
    text = catalogue_path.read_text()
    updates = rule_updates(rule, results, datetime.date.today().isoformat())
    backup = write_catalogue_atomically(catalogue_path, update_catalogue_text(text, updates))
    say(f"catalogue updated: {catalogue_path} (previous version: {backup})")


def rule_updates(rule: str, results: dict, date: str) -> dict:
    """The catalogue values a calibration writes, for :func:`update_catalogue_text`.

    Per model, ``[models.<name>.rules.<rule>]`` gets the E cells' ``rheobase``
    (LIF pA; the DC check needs it), the per-type ``bias`` (operating_point),
    ``weights.psc_per_reference_psc`` (one number or per cell type), the
    complete parameter set of each cell type (``pd14_by_type.E``/``.I``, so
    the catalogue shows everything a run uses) and a ``provenance`` table.

    Parameters
    ----------
    rule : str
    results : dict
        As returned by :func:`run_calibration` for that rule.
    date : str
        ISO date for ``provenance.date``.

    Returns
    -------
    dict
        Dotted table name -> ``{key: value}``.
    """
    recipes = rules.load_recipes()
    updates = {}
    for name, entry in results.items():
        units = recipes[name].units
        prefix = f"models.{name}.rules.{rule}"
        provenance = {"method": _METHODS[rule], "date": date}
        for cell_type, fit in entry["types"].items():
            updates[f"{prefix}.pd14_by_type.{cell_type}"] = {
                p: format_quantity(v, units.get(p, "")) for p, v in fit["params"].items()
                if p not in ("V_m", "U_m")}  # initial state, set by the network
            provenance[cell_type] = _provenance(rule, fit)
        top = {"rheobase": format_quantity(_rheobase(rule, entry["types"]["E"]), "pA")}
        if "bias" in entry:
            top["bias"] = {t: format_quantity(v, "pA") for t, v in entry["bias"].items()}
        updates[prefix] = top
        scale = entry["psc_per_reference_psc"]
        updates[f"{prefix}.weights"] = {"psc_per_reference_psc": {t: format_quantity(v) for t, v in scale.items()}
                                        if isinstance(scale, dict) else format_quantity(scale)}
        updates[f"{prefix}.provenance"] = provenance
    return updates


def _rheobase(rule: str, fit: dict) -> float:
    return fit["rheobase_pA"] if rule == "psp_rheobase" else fit["report"]["rheobase_pA"]


def _provenance(rule: str, fit: dict) -> dict:
    """What a rule's fit reports for one cell type (rounded for the catalogue)."""
    if rule == "psp_rheobase":
        out = {"residual_Hz": fit["residual_Hz"], "rheobase_pA": fit["rheobase_pA"], "psp_mV": fit["psp_mV"],
               **{f"fitted_{k}": v for k, v in fit["free"].items()}, "input_scale": fit["scale"]}
    else:
        out = {"input_scale": fit["scale"], **fit["report"]}
    if rule == "operating_point":
        out.update(bias_mV=fit["fit"].bias_mV, loss=fit["fit"].loss, bias_at_edge=fit["fit"].at_edge,
                   gain_at_edge=any(fit["gain_at_edge"].values()) if fit.get("gain_at_edge") else False,
                   within_tolerance=f"{int(fit['check'].within_tolerance.sum())}/{len(fit['check'])}",
                   **{f"gain_{k}": v for k, v in fit["gain"].items()})
    return {k: (bool(v) if isinstance(v, (bool, np.bool_)) else round(float(v), 6)
                if isinstance(v, (int, float, np.floating)) else v) for k, v in out.items()}


def _table(path: Path, reference: dict, results: dict) -> None:
    """``calibration.csv`` of the psp_rheobase rule (rows of other models kept)."""
    import pandas as pd

    rows = [{"model": "iaf_psc_exp", "cell_type": "all", "fitted_parameters": "", "input_scale": 1.0,
             "residual_Hz": 0.0, "rheobase_pA": reference["rheobase_pA"], "psc_per_reference_psc": 1.0,
             "psp_mV": reference["psp_mV"], "at_edge": ""}]
    for name, entry in results.items():
        for cell_type, fit in entry["types"].items():
            rows.append({"model": name, "cell_type": cell_type,
                         "fitted_parameters": " ".join(f"{k}={v:.5g}" for k, v in fit["free"].items()),
                         "input_scale": fit["scale"], "residual_Hz": fit["residual_Hz"],
                         "rheobase_pA": fit["rheobase_pA"], "psc_per_reference_psc": entry["psc_per_reference_psc"],
                         "psp_mV": fit["psp_mV"], "at_edge": " ".join(fit["at_edge"])})
    calibration_tables.merge_rows(path, pd.DataFrame(rows))
