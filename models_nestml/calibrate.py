"""Calibrate the model zoo to the PD14 reference LIF (``cortexzoo calibrate``).

Procedure, per catalogue model and cell type:

1. Start from a published parameter set placed in the PD14 context (PD14
   membrane where the model has one; see :data:`MODELS`).
2. Fit the model's free scale parameters (input scale, threshold, Phi gain)
   so that its steady-state f-I curve (DC 0..1 nA, rate counted after a
   1 s adaptation period, over the next 1 s) approximates the f-I curve of
   the PD14 LIF (iaf_psc_exp: 250 pF, 10 ms, E_L = V_reset = -65 mV,
   V_th = -50 mV, t_ref 2 ms; rheobase 375 pA), minimising the RMS rate
   difference. All parameter candidates x currents of one grid are
   simulated as unconnected neurons in ONE NEST network; a coarse grid is
   followed by a finer grid around the best point.
3. Map the PSC amplitude: one excitatory spike of the PD14 reference weight
   (87.8 pA, which gives a 0.15 mV PSP in the LIF) is sent to the calibrated
   neuron at rest; ``psc_per_reference_psc = 0.15 mV / PSP`` and the PSP
   with the mapped weight is measured again and reported.
4. Write the fitted parameters into the model's ``pd14`` (or
   ``pd14_by_type``) table, the weight factor, the measured rheobase and a
   ``[models.<name>.calibration]`` table (residual_Hz, psp_mV, date, ...)
   into catalogue.toml, editing only those lines, and plot all f-I curves.

Input scaling ``s`` divides every current-like parameter (capacitance,
conductances, current jumps) multiplies them by ``s``: the neuron then
sees ``I / s`` with unchanged time constants and dimensionless
dynamics.
"""

from __future__ import annotations

import datetime
import itertools
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cortexzoo.models.catalogue import CATALOGUE_PATH, load_catalogue

RESOLUTION_MS = 0.1
WARMUP_MS = 1000.0
MEASURE_MS = 1000.0
CURRENTS_PA = np.arange(0.0, 1001.0, 100.0)
FINAL_CURRENTS_PA = np.arange(0.0, 1001.0, 10.0)
REFERENCE_PSC_PA = 87.8
TARGET_PSP_MV = 0.15

LIF = {"C_m": 250.0, "tau_m": 10.0, "E_L": -65.0, "V_reset": -65.0, "V_th": -50.0, "t_ref": 2.0,
       "tau_syn_ex": 0.5, "tau_syn_in": 0.5}


def _scaled(base: dict, keys, s: float) -> dict:
    out = dict(base)
    for k in keys:
        out[k] = base[k] * s
    return out


@dataclass
class ModelCalibration:
    """How one catalogue model is calibrated.

    Attributes
    ----------
    base : dict
        ``{cell_type: params}``; cell type ``None`` means one set for E and I.
    free : dict
        Free parameter name -> (coarse grid, unit written to the catalogue, log grid?).
    apply : callable
        ``apply(base_params, **free_values) -> params`` for NEST.
    written : dict
        Free parameter -> list of (NEST parameter, unit) written to the catalogue.
    """

    base: dict
    free: dict
    apply: callable
    written: dict = field(default_factory=dict)


_IZH_RS = {"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0, "V_th": 30.0}
_IZH_FS = {"a": 0.1, "b": 0.2, "c": -65.0, "d": 2.0, "V_th": 30.0}
_IZH07_RS = {"C_m": 100.0, "k": 0.7, "v_r": -60.0, "v_t": -40.0, "V_peak": 35.0, "a": 0.03, "b": -2.0,
             "c": -50.0, "d": 100.0, "V_m": -60.0, "U_m": 0.0}
# FS-like: the book's FS cell without its cubic U(v) nonlinearity (b = d = 0)
_IZH07_FS = {"C_m": 20.0, "k": 1.0, "v_r": -55.0, "v_t": -40.0, "V_peak": 25.0, "a": 0.2, "b": 0.0,
             "c": -45.0, "d": 0.0, "V_m": -55.0, "U_m": 0.0}
_IZH07_CURRENT_LIKE = ("C_m", "k", "b", "d")
_ADEX = {"C_m": 250.0, "g_L": 25.0, "E_L": -65.0, "V_reset": -65.0, "t_ref": 2.0, "Delta_T": 2.0,
         "V_th": -50.0, "V_peak": 0.0, "a": 4.0, "b": 80.5, "tau_w": 144.0, "V_m": -65.0}
_ADEX_CURRENT_LIKE = ("C_m", "g_L", "a", "b")
_MAT2 = {"C_m": 250.0, "tau_m": 10.0, "E_L": -65.0, "t_ref": 2.0, "tau_1": 10.0, "tau_2": 200.0,
         "alpha_1": 37.0, "alpha_2": 2.0, "omega": -50.0, "V_m": -65.0}
_GLIF = {"C_m": 250.0, "g": 25.0, "E_L": -65.0, "V_reset": -65.0, "V_th": -50.0, "t_ref": 2.0,
         "th_spike_add": 0.37, "th_spike_decay": 0.009, "voltage_reset_fraction": 0.0, "voltage_reset_add": 0.0,
         "th_voltage_index": 0.005, "th_voltage_decay": 0.09, "asc_decay_1": 0.003, "asc_decay_2": 0.1,
         "asc_amps_1": -9.18, "asc_amps_2": -198.94, "asc_r_1": 1.0, "asc_r_2": 1.0,
         "spike_dependent_threshold": True, "after_spike_currents": True, "adapting_threshold": True,
         "V_m": -65.0}
_GLIF_CURRENT_LIKE = ("C_m", "g", "asc_amps_1", "asc_amps_2")
_GL = {"C_m": 250.0, "tau_m": 10.0, "E_L": -65.0, "V_reset": -65.0, "t_ref": 2.0, "phi_type": 1, "r": 1.0,
       "gamma": 0.01, "V_rheo": -50.0, "V_m": -65.0}

#: The calibration recipe of every model; grids are (low, high, n) and log-spaced where marked.
MODELS = {
    "izhikevich_nestml": ModelCalibration(
        base={"E": _IZH_RS, "I": _IZH_FS},
        free={"C_m": ((10.0, 1000.0, 21), "pF", True)},
        apply=lambda b, C_m: dict(b, C_m=C_m),
        written={"C_m": [("C_m", "pF")]},
    ),
    "izhikevich2007_nestml": ModelCalibration(
        base={"E": _IZH07_RS, "I": _IZH07_FS},
        free={"s": ((0.2, 20.0, 21), "", True)},
        apply=lambda b, s: _scaled(b, _IZH07_CURRENT_LIKE, s),
        written={"s": [("C_m", "pF"), ("k", "nS/mV"), ("b", "nS"), ("d", "pA")]},
    ),
    "aeif_psc_exp_nestml": ModelCalibration(
        base={None: _ADEX},
        free={"s": ((0.2, 2.0, 7), "", True), "V_th": ((-60.0, -35.0, 6), "mV", False)},
        apply=lambda b, s, V_th: dict(_scaled(b, _ADEX_CURRENT_LIKE, s), V_th=V_th),
        written={"s": [("C_m", "pF"), ("g_L", "nS"), ("a", "nS"), ("b", "pA")], "V_th": [("V_th", "mV")]},
    ),
    "mat2_psc_exp_nestml": ModelCalibration(
        base={None: _MAT2},
        free={"s": ((0.2, 2.0, 7), "", True), "omega": ((-60.0, -35.0, 6), "mV", False)},
        apply=lambda b, s, omega: dict(_scaled(b, ("C_m",), s), omega=omega),
        written={"s": [("C_m", "pF")], "omega": [("omega", "mV")]},
    ),
    "glif_psc_nestml": ModelCalibration(
        base={None: _GLIF},
        free={"s": ((0.2, 2.0, 7), "", True), "V_th": ((-60.0, -35.0, 6), "mV", False)},
        apply=lambda b, s, V_th: dict(_scaled(b, _GLIF_CURRENT_LIKE, s), V_th=V_th),
        written={"s": [("C_m", "pF"), ("g", "nS"), ("asc_amps_1", "pA"), ("asc_amps_2", "pA")],
                 "V_th": [("V_th", "mV")]},
    ),
    "galves_loecherbach_nestml": ModelCalibration(
        base={None: _GL},
        free={"gamma": ((1e-3, 0.3, 7), "1/mV", True), "V_rheo": ((-56.0, -44.0, 6), "mV", False)},
        apply=lambda b, gamma, V_rheo: dict(b, gamma=gamma, V_rheo=V_rheo),
        written={"gamma": [("gamma", "1/mV")], "V_rheo": [("V_rheo", "mV")]},
    ),
}


def _grid(low, high, n, log):
    return np.geomspace(low, high, n) if log else np.linspace(low, high, n)


def simulate_fi(nest, model: str, param_sets: list, currents, seed: int = 1) -> np.ndarray:
    """Steady-state rates of many unconnected neurons in one NEST network.

    Parameters
    ----------
    nest : module
        NEST, already reset with the cortexzoo module installed.
    model : str
        NEST model name.
    param_sets : list of dict
        One parameter set per candidate.
    currents : array_like
        DC amplitudes (pA), given through ``I_e``.
    seed : int
        Unused placeholder for symmetry with the kernel seed (the kernel is seeded by the caller).

    Returns
    -------
    numpy.ndarray
        Rates in Hz, shape ``(len(param_sets), len(currents))``.
    """
    currents = np.asarray(currents, dtype=float)
    pops = []
    for params in param_sets:
        pop = nest.Create(model, len(currents), params=params)
        pop.set({"I_e": currents.tolist()} if len(currents) > 1 else {"I_e": float(currents[0])})
        pops.append(pop)
    allpop = pops[0]
    for p in pops[1:]:
        allpop = allpop + p
    sr = nest.Create("spike_recorder", params={"start": WARMUP_MS, "stop": WARMUP_MS + MEASURE_MS})
    nest.Connect(allpop, sr)
    nest.Simulate(WARMUP_MS + MEASURE_MS)
    counts = np.bincount(np.asarray(sr.events["senders"]) - allpop.global_id[0] if sr.n_events else [],
                         minlength=len(allpop))[: len(allpop)]
    return counts.reshape(len(param_sets), len(currents)) / (MEASURE_MS / 1000.0)


def _fresh_kernel(seed=1):
    from cortexzoo.models import ready_kernel

    return ready_kernel(threads=1, resolution_ms=RESOLUTION_MS, seed=seed)


def lif_fi(currents) -> np.ndarray:
    """f-I curve (Hz) of the PD14 reference LIF (NEST's iaf_psc_exp), simulated.

    Parameters
    ----------
    currents : array_like
        DC amplitudes in pA.

    Returns
    -------
    numpy.ndarray
    """
    nest = _fresh_kernel()
    return simulate_fi(nest, "iaf_psc_exp", [LIF], currents)[0]


def fit_model(name: str, cell_type, target_coarse: np.ndarray) -> dict:
    """Fit the free parameters of one model (and cell type) to the LIF f-I curve.

    Parameters
    ----------
    name : str
        Catalogue (and NEST) model name, a key of :data:`MODELS`.
    cell_type : str or None
        ``"E"``, ``"I"`` or None.
    target_coarse : numpy.ndarray
        The LIF rates at :data:`CURRENTS_PA`.

    Returns
    -------
    dict
        ``free`` (best values), ``params`` (full NEST parameter set) and
        ``residual_Hz`` (RMS rate difference on the coarse current grid).
    """
    cal = MODELS[name]
    base = cal.base[cell_type]
    names = list(cal.free)
    grids = [_grid(*cal.free[n][0][:3], cal.free[n][2]) for n in names]
    best = None
    for stage in range(2):
        combos = list(itertools.product(*grids))
        sets = [cal.apply(base, **dict(zip(names, c))) for c in combos]
        rates = simulate_fi(_fresh_kernel(), name, sets, CURRENTS_PA)
        rms = np.sqrt(np.mean((rates - target_coarse[None, :]) ** 2, axis=1))
        i = int(np.argmin(rms))
        best = (dict(zip(names, combos[i])), float(rms[i]))
        if stage == 0:
            # refine: a finer grid spanning the neighbouring coarse points
            refined = []
            for n, g, v in zip(names, grids, combos[i]):
                j = int(np.argmin(np.abs(g - v)))
                lo, hi = g[max(j - 1, 0)], g[min(j + 1, len(g) - 1)]
                log = cal.free[n][2]
                refined.append(_grid(lo, hi, 5 if len(names) > 1 else 11, log))
            grids = refined
    free, residual = best
    return {"free": free, "params": cal.apply(base, **free), "residual_Hz": residual}


def measure_psp(name: str, params: dict, weight_pA: float) -> float:
    """Peak PSP (mV) of one excitatory spike of ``weight_pA`` at rest.

    Parameters
    ----------
    name : str
        NEST model name (cortexzoo interface: port ``exc_spikes``).
    params : dict
        Neuron parameters.
    weight_pA : float
        Synaptic weight.

    Returns
    -------
    float
    """
    nest = _fresh_kernel()
    n = nest.Create(name, params=dict(params, I_e=0.0))
    sg = nest.Create("spike_generator", params={"spike_times": [600.0]})
    receptor = n.get("receptor_types")["EXC_SPIKES"]
    nest.Connect(sg, n, syn_spec={"weight": float(weight_pA), "delay": 1.0, "receptor_type": receptor})
    mm = nest.Create("multimeter", params={"record_from": ["V_m"], "interval": RESOLUTION_MS, "start": 590.0})
    nest.Connect(mm, n)
    nest.Simulate(700.0)
    ev = mm.events
    t, v = np.asarray(ev["times"]), np.asarray(ev["V_m"])
    rest = v[t <= 601.0][-1]
    return float(np.max(v[t > 601.0]) - rest)


def _fmt(value: float, unit: str) -> str:
    text = f"{value:.6g}"
    return f'"{text} {unit}"' if unit else text


def _section_bounds(lines, header):
    """Index range of a TOML table body; None if the table is absent."""
    start = None
    for i, line in enumerate(lines):
        if line.strip() == f"[{header}]":
            start = i + 1
        elif start is not None and line.lstrip().startswith("["):
            return start, i
    return (start, len(lines)) if start is not None else None


def set_toml_values(text: str, header: str, values: dict) -> str:
    """Set ``key = value`` lines in one TOML table, keeping everything else.

    Missing keys are appended to the table; a missing table is appended
    after the last table of the same model.

    Parameters
    ----------
    text : str
        The TOML document.
    header : str
        Table name, e.g. ``"models.aeif_psc_exp_nestml.pd14"``.
    values : dict
        Key -> value already written as TOML (e.g. ``'"250 pF"'``).

    Returns
    -------
    str
    """
    lines = text.split("\n")
    bounds = _section_bounds(lines, header)
    if bounds is None:
        model_prefix = ".".join(header.split(".")[:2])
        last = max((i for i, line in enumerate(lines)
                    if line.strip().startswith(f"[{model_prefix}]") or line.strip().startswith(f"[{model_prefix}.")),
                   default=None)
        if last is None:
            insert_at = len(lines)
        else:
            b = _section_bounds(lines, lines[last].strip()[1:-1])
            insert_at = b[1]
        # keep the next model's leading comment block with that model
        while insert_at > 0 and (lines[insert_at - 1].strip() == "" or lines[insert_at - 1].startswith("#")):
            insert_at -= 1
        lines[insert_at:insert_at] = ["", f"[{header}]", ""]
        bounds = (insert_at + 2, insert_at + 2)
    start, end = bounds
    for key, value in values.items():
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for i in range(start, end):
            if pattern.match(lines[i]):
                comment = ""
                if "#" in lines[i].split("=", 1)[1]:
                    comment = "  #" + lines[i].split("=", 1)[1].split("#", 1)[1]
                lines[i] = f"{key} = {value}{comment}"
                break
        else:
            j = end
            while j > start and lines[j - 1].strip() == "":
                j -= 1
            lines.insert(j, f"{key} = {value}")
            end += 1
    return "\n".join(lines)


def rheobase(currents, rates) -> float:
    """Smallest current with a non-zero rate (NaN if none).

    Parameters
    ----------
    currents, rates : array_like

    Returns
    -------
    float
    """
    firing = np.nonzero(np.asarray(rates) > 0)[0]
    return float(np.asarray(currents)[firing[0]]) if len(firing) else float("nan")


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
        Model -> ``{"types": {cell_type: fit result}, "psc_per_reference_psc", "psp_mV", ...}``.
    """
    say = progress or (lambda msg: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    catalogue_path = Path(catalogue_path or CATALOGUE_PATH)
    models = list(models or MODELS)
    t0 = time.perf_counter()
    target = lif_fi(CURRENTS_PA)
    lif_final = lif_fi(FINAL_CURRENTS_PA)
    say(f"LIF reference f-I: rheobase {rheobase(FINAL_CURRENTS_PA, lif_final):.0f} pA, "
        f"{target[-1]:.1f} Hz at {CURRENTS_PA[-1]:.0f} pA")
    results = {}
    for name in models:
        cal = MODELS[name]
        entry = {"types": {}}
        for cell_type in cal.base:
            fit = fit_model(name, cell_type, target)
            fit["rates"] = simulate_fi(_fresh_kernel(), name, [fit["params"]], FINAL_CURRENTS_PA)[0]
            fit["rheobase_pA"] = rheobase(FINAL_CURRENTS_PA, fit["rates"])
            entry["types"][cell_type] = fit
            say(f"{name} [{cell_type or 'E/I'}]: {fit['free']} -> residual {fit['residual_Hz']:.2f} Hz "
                f"({time.perf_counter() - t0:.0f} s)")
        ref_type = "E" if "E" in cal.base else None
        params = entry["types"][ref_type]["params"]
        psp_ref = measure_psp(name, params, REFERENCE_PSC_PA)
        factor = TARGET_PSP_MV / psp_ref
        # one correction step for models whose PSP is not linear in the weight
        factor *= TARGET_PSP_MV / measure_psp(name, params, REFERENCE_PSC_PA * factor)
        entry["psc_per_reference_psc"] = factor
        entry["psp_mV"] = measure_psp(name, params, REFERENCE_PSC_PA * factor)
        say(f"{name}: PSP of the reference PSC {psp_ref:.4f} mV -> psc_per_reference_psc {factor:.4g}, "
            f"PSP {entry['psp_mV']:.4f} mV")
        results[name] = entry
    _plot(out_dir / "fI_curves.png", lif_final, results)
    _table(out_dir / "calibration.csv", results)
    if write:
        _write_catalogue(catalogue_path, results)
        load_catalogue(catalogue_path)  # the edited catalogue must still validate
    say(f"calibration done in {time.perf_counter() - t0:.0f} s")
    return results


def _write_catalogue(path: Path, results: dict) -> None:
    text = path.read_text()
    today = datetime.date.today().isoformat()
    for name, entry in results.items():
        cal = MODELS[name]
        residuals, rheobases = {}, {}
        for cell_type, fit in entry["types"].items():
            values = {}
            for free_name, targets in cal.written.items():
                for param, unit in targets:
                    values[param] = _fmt(fit["params"][param], unit)
            header = f"models.{name}.pd14" + (f"_by_type.{cell_type}" if cell_type else "")
            text = set_toml_values(text, header, values)
            residuals[cell_type or "all"] = round(fit["residual_Hz"], 3)
            rheobases[cell_type or "all"] = fit["rheobase_pA"]
        rheo = rheobases.get("E", rheobases.get("all"))
        text = set_toml_values(text, f"models.{name}", {"rheobase": _fmt(rheo, "pA")})
        text = set_toml_values(text, f"models.{name}.weights",
                               {"psc_per_reference_psc": f"{entry['psc_per_reference_psc']:.6g}"})
        fitted = {t or "all": {k: round(float(v), 6) for k, v in fit["free"].items()}
                  for t, fit in entry["types"].items()}
        calib = {
            "method": '"grid fit of steady-state f-I (DC 0-1 nA, rate after 1 s) to iaf_psc_exp PD14; see calibrate.py"',
            "residual_Hz": _inline(residuals),
            "fitted": _inline(fitted),
            "psp_mV": f"{entry['psp_mV']:.4f}",
            "date": f'"{today}"',
        }
        text = set_toml_values(text, f"models.{name}.calibration", calib)
    path.write_text(text)


def _inline(d: dict) -> str:
    def val(v):
        if isinstance(v, dict):
            return _inline(v)
        return f"{v}"

    return "{ " + ", ".join(f"{k} = {val(v)}" for k, v in d.items()) + " }"


def _table(path: Path, results: dict) -> None:
    rows = ["model,cell_type,free_parameters,residual_Hz,rheobase_pA,psc_per_reference_psc,psp_mV"]
    for name, entry in results.items():
        for cell_type, fit in entry["types"].items():
            free = " ".join(f"{k}={v:.5g}" for k, v in fit["free"].items())
            rows.append(f"{name},{cell_type or 'all'},{free},{fit['residual_Hz']:.3f},{fit['rheobase_pA']:.0f},"
                        f"{entry['psc_per_reference_psc']:.5g},{entry['psp_mV']:.4f}")
    path.write_text("\n".join(rows) + "\n")


def _plot(path: Path, lif_rates, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    ax.plot(FINAL_CURRENTS_PA, lif_rates, "k-", lw=3, label="PD14 LIF (iaf_psc_exp)")
    for name, entry in results.items():
        for cell_type, fit in entry["types"].items():
            label = name.replace("_nestml", "") + (f" {cell_type}" if cell_type else "")
            ax.plot(FINAL_CURRENTS_PA, fit["rates"], lw=1.2,
                    label=f"{label} (RMS {fit['residual_Hz']:.1f} Hz)")
    ax.set_xlabel("DC input (pA)")
    ax.set_ylabel("steady-state rate (Hz), after 1 s")
    ax.set_title("f-I curves calibrated to the PD14 LIF")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
