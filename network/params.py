"""PD14 parameters: the data file, the run config, and everything derived from them.

Derivations follow the INM-6 reference package (``microcircuit`` 1.0,
network.py ``__derive_parameters`` and helpers.py) so that our network and
theirs are the same model at every scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cortexzoo.errors import CortexzooError
from cortexzoo.network.stimulus import STIMULUS_FIELDS, resolve_stimulus
from cortexzoo.schema import REQUIRED, Field, check_table, read_toml
from cortexzoo.synapse import psc_over_psp

PD14_PATH = Path(__file__).resolve().parent / "pd14.toml"


def load_pd14(path: Path | None = None) -> dict:
    """Read the PD14 parameter file.

    Parameters
    ----------
    path : pathlib.Path, optional
        Defaults to ``network/pd14.toml``.

    Returns
    -------
    dict
    """
    return read_toml(path or PD14_PATH, "PD14 parameter file")


POPULATIONS = tuple(load_pd14()["populations"])

# pd14.toml keys a run may not override, and why. The builder and the run identity read these
# from the file itself (or fix them), so an override would be recorded but never simulated.
FIXED_PD14_KEYS = {
    "populations": "every table, override and output is keyed by the PD14 population names",
    "cell_types": "the E/I roles of the populations are part of the model, not a parameter",
    "synapses.rule": "the network builder always connects with fixed_total_number",
    "simulation.resolution_ms": "the presimulation length and the run identity read the file's resolution",
    # Not read by the network: the neurons' own parameters come from the catalogue and [neuron] params.
    "reference_neuron.E_L_mV": "the network never reads it; set neuron parameters with params = { E_L = ... }",
    "reference_neuron.V_th_mV": "the network never reads it; set neuron parameters with params = { V_th = ... }",
}


def check_pd14_overrides(overrides: dict, where: str = "[network] pd14", pd14: dict | None = None) -> dict:
    """Validate overrides of ``network/pd14.toml`` values and give them the file's types.

    Overrides have the file's nesting, e.g. ``{"synapses": {"g": -4.4}, "bg_rate_Hz": 7.6}``.
    A list replaces the file's list as a whole and must have its length.

    Parameters
    ----------
    overrides : dict
        The ``pd14`` table of a ``[network]`` table or a variant.
    where : str
        File and key for messages, e.g. ``"quick.toml [network] pd14"``.
    pd14 : dict, optional
        Parameter file contents; defaults to ``network/pd14.toml``.

    Returns
    -------
    dict
        The overrides, ints where the file has ints and floats where it has floats.

    Raises
    ------
    CortexzooError
        Naming the key path and the allowed keys for an unknown or fixed key, a
        value where the file has a table (or the reverse), a list of the wrong
        length or a value of the wrong type.
    """
    return _checked_override(overrides, pd14 or load_pd14(), "", where)


def merge_pd14_overrides(base: dict, over: dict) -> dict:
    """Deep merge: tables merge key by key, any other value of ``over`` replaces ``base``'s.

    Parameters
    ----------
    base, over : dict
        The parameter file or an override table, and the overrides to put over it.

    Returns
    -------
    dict
        A new dict; ``base`` and ``over`` are not modified.
    """
    out = dict(base)
    for key, value in over.items():
        both_tables = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge_pd14_overrides(out[key], value) if both_tables else value
    return out


def apply_pd14_overrides(pd14: dict, overrides: dict, where: str = "[network] pd14") -> dict:
    """The parameter file with validated overrides merged in (see :func:`check_pd14_overrides`).

    Parameters
    ----------
    pd14 : dict
        Parameter file contents (not modified).
    overrides : dict
    where : str
        File and key for messages.

    Returns
    -------
    dict
    """
    return merge_pd14_overrides(pd14, check_pd14_overrides(overrides, where, pd14))


def _key_path(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def _overridable(table: dict, path: str) -> list:
    """Keys of a pd14.toml table an override may name (tables only if something in them may change)."""
    out = []
    for key, value in table.items():
        sub = _key_path(path, key)
        if sub in FIXED_PD14_KEYS or (isinstance(value, dict) and not _overridable(value, sub)):
            continue
        out.append(f"[{sub}]" if isinstance(value, dict) else key)
    return out


def _checked_override(value, current, path: str, where: str):
    """``value`` checked against the file's ``current`` value at ``path``, with the file's types."""
    name = f"{where}.{path}" if path else where
    table = f"[{path}] of network/pd14.toml" if path else "network/pd14.toml (top level)"
    if isinstance(current, dict):
        if not isinstance(value, dict):
            raise CortexzooError(f"{name} = {value!r}: network/pd14.toml has a table here, not a value.",
                                 f"Give a table of keys of {table}: {', '.join(_overridable(current, path))}.")
        out = {}
        for key, sub_value in value.items():
            sub = _key_path(path, key)
            if key not in current or sub in FIXED_PD14_KEYS:
                why = f"cannot be overridden: {FIXED_PD14_KEYS[sub]}" if sub in FIXED_PD14_KEYS else "unknown key"
                allowed = _overridable(current, path)
                raise CortexzooError(f"{where}.{sub}: {why}.",
                                     f"Keys of {table} that may be overridden: {', '.join(allowed)}." if allowed
                                     else f"Nothing in {table} may be overridden; remove {sub}.")
            out[key] = _checked_override(sub_value, current[key], sub, where)
        return out
    if isinstance(value, dict):
        raise CortexzooError(f"{name} is a table, but network/pd14.toml has a value here ({current!r}).",
                             f"Give a value like the file's: {path} = {current!r}.")
    if isinstance(current, list):
        if not isinstance(value, list) or len(value) != len(current):
            raise CortexzooError(f"{name} = {value!r}: network/pd14.toml has a list of {len(current)} entries here.",
                                 f"Give all {len(current)} entries (per population, or per row and column of a "
                                 f"matrix, in the order {', '.join(POPULATIONS)}).")
        return [_checked_override(v, c, f"{path}[{i}]", where) for i, (v, c) in enumerate(zip(value, current))]
    return _checked_scalar(value, current, name)


def _checked_scalar(value, current, name: str):
    """A number, string or boolean of the file's type (an integral float is accepted for an int)."""
    if isinstance(current, (bool, str)):
        if type(value) is not type(current):
            raise CortexzooError(f"{name} = {value!r} has the wrong type.",
                                 f"network/pd14.toml has {current!r} here; give a value of that type.")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CortexzooError(f"{name} = {value!r}: expected a finite number.",
                             f"network/pd14.toml has {current!r} here.")
    if isinstance(current, int):
        if value != int(value):
            raise CortexzooError(f"{name} = {value!r}: expected an integer.", f"network/pd14.toml has {current!r} here.")
        return int(value)
    return float(value)


def _positive_finite(value):
    return None if np.isfinite(value) else "must be finite"


# The run config: one simulation of the PD14 network with one neuron model.
SIMULATION_FIELDS = {
    "seed": Field(int, 55, "NEST rng_seed (integer >= 1)", minimum=1),
    "threads": Field(int, 1, "OpenMP threads for NEST", minimum=1),
    "t_presim_ms": Field(float, 500.0, "presimulation in ms, discarded from analysis (at least warmup_factor x "
                         "the model's slowest time constant)", minimum=0.0),
    "warmup_factor": Field(float, 5.0, "the presimulation lasts at least this many of the model's slowest time "
                           "constants (catalogue: slowest_time_constant)", minimum=0.0),
    "t_sim_ms": Field(float, 1000.0, "analysed simulation time in ms", minimum=0.0, exclusive_minimum=True),
    # A population mean above this over 100 ms is no cortical state (PD14 populations fire 1-10 Hz; the
    # shipped stimulus experiments' reference stays below 60 Hz in every 100 ms window), but the runaway
    # state of unstable models (Izhikevich 2003: 2.5 kHz) costs hours; network/pd14.py RateGuard.
    "max_rate_Hz": Field(float, 300.0, "stop the run, keeping it as a runaway finding, when a population's mean "
                         "rate over a 100 ms window exceeds this", minimum=0.0, exclusive_minimum=True),
}
NETWORK_FIELDS = {
    # Defaults are the small scale of experiments/quick.toml: a forgotten [network]
    # table must not start a 15 GB full-scale run. Full scale is N = K = 1.
    "N_scaling": Field(float, 0.1, "scale of population sizes (0 < N_scaling <= 1; full scale 1)", minimum=0.0,
                       exclusive_minimum=True, check=_positive_finite),
    "K_scaling": Field(float, 0.25, "scale of in-degrees (0 < K_scaling <= 1; full scale 1), weights "
                       "compensated by 1/sqrt(K)", minimum=0.0, exclusive_minimum=True, check=_positive_finite),
    "background": Field(str, "poisson", "background input type", choices=("poisson", "dc")),
    "V0_type": Field(str, "optimized", "initial membrane potentials", choices=("optimized", "original")),
    "thalamic_input": Field(bool, False, "switch the thalamic pulse on"),
    # PD14 fixes the thalamic in-degree per target neuron; the INM-6 package scales the synapse
    # count with K_scaling only, so at N_scaling = 0.1 every L4/L6 neuron gets 10x the intended
    # thalamic in-degree. "pd14" keeps the in-degree (x K_scaling); "reference_package" reproduces it.
    "thalamic_indegree": Field(str, "pd14", "thalamic synapse numbers: in-degree kept under N scaling (pd14) or "
                               "scaled with K only as in the INM-6 package (reference_package)",
                               choices=("pd14", "reference_package")),
    "allow_subthreshold": Field(bool, False, "allow populations whose mean external drive is below rheobase"),
    # With K_scaling < 1 a DC current replaces the mean input the removed synapses carried.
    # van Albada et al. (2015, PLoS Comput Biol 11:e1004490) compute it from the network's own
    # rates; the INM-6 package uses the LIF's full-scale rates for every model.
    "k_compensation": Field(str, "self_consistent", "rates the K-scaling DC is computed from: the simulated "
                            "model's own (self_consistent) or the LIF's full-scale rates (reference_rates)",
                            choices=("self_consistent", "reference_rates")),
    "compensation_window_ms": Field(float, 500.0, "self-consistent compensation: window over which rates are "
                                    "measured before each DC update", minimum=50.0),
    "compensation_tolerance": Field(float, 0.05, "self-consistent compensation: converged when, over the last four "
                                    "windows, every population's mean measured rate is within this fraction (or "
                                    "0.1 Hz, or two standard errors) of the mean assumed one", minimum=0.0,
                                    exclusive_minimum=True),
    "compensation_max_windows": Field(int, 20, "self-consistent compensation: give up after this many windows",
                                      minimum=2),
    "pd14": Field(dict, {}, "overrides of network/pd14.toml values with the file's nesting, e.g. "
                  "{ synapses = { g = -4.4 }, bg_rate_Hz = 7.6 }"),
}
NEURON_FIELDS = {
    "model": Field(str, REQUIRED, "catalogue name of the neuron model (see `cortexzoo models`)"),
    "params": Field(dict, {}, "parameter overrides for all populations, e.g. {V_th = '-52 mV'}"),
    "by_population": Field(dict, {}, "per-population overrides, e.g. [neuron.by_population.L4E]"),
    "calibration": Field(str, "", "calibration rule whose catalogue values are used: published, psp_rheobase or "
                         "operating_point (docs/calibration.md); empty: the model's default_rule"),
}
RUN_TABLES = {"simulation": SIMULATION_FIELDS, "network": NETWORK_FIELDS, "neuron": NEURON_FIELDS,
              "stimulus": STIMULUS_FIELDS}


@dataclass(frozen=True)
class RunConfig:
    """A validated, fully resolved run configuration.

    Attributes
    ----------
    simulation, network, neuron : dict
        The three tables with defaults filled in.
    stimulus : dict
        The stimulus kind and the keys it reads (:mod:`cortexzoo.network.stimulus`).
    """

    simulation: dict
    network: dict
    neuron: dict
    stimulus: dict

    def as_dict(self) -> dict:
        """The resolved config as nested plain dicts."""
        return {"simulation": dict(self.simulation), "network": dict(self.network), "neuron": dict(self.neuron),
                "stimulus": dict(self.stimulus)}


def parse_run_config(raw: dict, where: str = "run config") -> RunConfig:
    """Validate a run config (as read from TOML) and fill in defaults.

    Parameters
    ----------
    raw : dict
        Tables ``[simulation]``, ``[network]`` and ``[neuron]``.
    where : str
        File name for messages.

    Returns
    -------
    RunConfig

    Raises
    ------
    CortexzooError
        Naming the file, table and key for every problem: unknown keys,
        wrong types, negative scales, unknown model, background type or population.
    """
    from cortexzoo.models.catalogue import get_model
    from cortexzoo.models.units import to_nest

    unknown = [k for k in raw if k not in RUN_TABLES]
    if unknown:
        raise CortexzooError(f"{where}: unknown table(s) {unknown}.", f"Allowed tables: {list(RUN_TABLES)}.")
    tables = {name: check_table(raw.get(name, {}), fields, f"{where} [{name}]") for name, fields in RUN_TABLES.items()}
    # Stored with the file's types, so that g = -4 and g = -4.0 give one run identity.
    tables["network"]["pd14"] = check_pd14_overrides(tables["network"]["pd14"], f"{where} [network] pd14")
    for key in ("N_scaling", "K_scaling"):
        if tables["network"][key] > 1.0:
            raise CortexzooError(f"{where} [network] {key} = {tables['network'][key]} is above 1 (full scale).",
                                 f"{key} must be in (0, 1].")
    neuron = tables["neuron"]
    get_model(neuron["model"])  # unknown model -> error listing the catalogue
    if neuron["calibration"]:
        try:  # unknown rule, or no values for it yet -> what to run
            get_model(neuron["model"], neuron["calibration"])
        except CortexzooError as err:
            table = "" if "[variants." in where or "[reference]" in where else " [neuron]"
            raise CortexzooError(f"{where}{table} calibration = {neuron['calibration']!r}: {err.problem}",
                                 err.fix) from None
    bad_pops = [p for p in neuron["by_population"] if p not in POPULATIONS]
    if bad_pops:
        raise CortexzooError(
            f"{where} [neuron.by_population]: unknown population(s) {bad_pops}.",
            f"PD14 populations are: {', '.join(POPULATIONS)}.",
        )
    # Check that override values parse, so errors surface before anything runs.
    for key, value in neuron["params"].items():
        to_nest(value, where=f"{where} [neuron.params] {key}")
    for pop, table in neuron["by_population"].items():
        for key, value in table.items():
            to_nest(value, where=f"{where} [neuron.by_population.{pop}] {key}")
    tables["stimulus"] = resolve_stimulus(raw.get("stimulus", {}), tables["stimulus"], f"{where} [stimulus]",
                                          POPULATIONS, tables["simulation"]["t_sim_ms"])
    return RunConfig(**tables)


def load_run_config(path) -> RunConfig:
    """Read and validate a run config TOML file.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    RunConfig
    """
    return parse_run_config(read_toml(path, "Config file"), where=str(path))


def num_synapses_from_conn_probs(conn_probs, n_target, n_source):
    """Total synapse numbers that give the connection probabilities with multapses.

    Parameters
    ----------
    conn_probs : numpy.ndarray
        Target x source connection probabilities.
    n_target, n_source : numpy.ndarray
        Population sizes.

    Returns
    -------
    numpy.ndarray
        Target x source synapse numbers (not rounded).
    """
    prod = np.outer(n_target, n_source).astype(float)
    return np.log(1.0 - np.asarray(conn_probs)) / np.log((prod - 1.0) / prod)


@dataclass(frozen=True)
class DerivedNetwork:
    """Numbers the network builder needs, all in reference-LIF terms (pA, ms, Hz).

    Attributes
    ----------
    populations, cell_types : tuple of str
    num_neurons : numpy.ndarray
    num_synapses : numpy.ndarray
        Target x source.
    weight_mean_pA : numpy.ndarray
        Target x source reference PSCs (before the model's weight mapping).
    delay_mean_ms : numpy.ndarray
        Target x source.
    weight_ext_pA : float
    ext_indegree : numpy.ndarray
    bg_rate_Hz : float
    dc_pA : numpy.ndarray
        Constant current per population (DC background and K-scaling compensation).
    mean_ext_drive_pA : numpy.ndarray
        Mean external input current per population (DC plus mean Poisson current).
    thalamus : dict or None
        num_neurons, num_synapses (per population), weight_pA, rate/start/duration.
    pd14 : dict
        The parameter file with the run's ``[network] pd14`` overrides applied.
    """

    populations: tuple
    cell_types: tuple
    num_neurons: np.ndarray
    num_synapses: np.ndarray
    weight_mean_pA: np.ndarray
    delay_mean_ms: np.ndarray
    weight_ext_pA: float
    ext_indegree: np.ndarray
    bg_rate_Hz: float
    dc_pA: np.ndarray
    mean_ext_drive_pA: np.ndarray
    thalamus: dict | None
    pd14: dict


def derive(network: dict, pd14: dict | None = None, rates_Hz=None, thalamus_needed: bool = False) -> DerivedNetwork:
    """Derive sizes, synapse numbers, weights and currents for a scaled PD14.

    Parameters
    ----------
    network : dict
        The ``[network]`` table of a :class:`RunConfig`; its ``pd14`` overrides
        (if any) are applied to the parameter file first.
    pd14 : dict, optional
        Parameter file contents; defaults to ``network/pd14.toml``.
    rates_Hz : sequence of float, optional
        Population rates the K-scaling compensation assumes; defaults to the
        LIF's full-scale rates (``full_mean_rates_Hz``). The self-consistent
        compensation (:mod:`cortexzoo.network.compensation`) passes the
        simulated model's own.
    thalamus_needed : bool
        Derive the thalamic projection even without ``thalamic_input`` (a
        thalamic ``[stimulus]`` drives it).

    Returns
    -------
    DerivedNetwork
    """
    # Every number below, and net.pd14 that the builder reads, sees the run's overrides.
    pd14 = apply_pd14_overrides(pd14 or load_pd14(), network.get("pd14", {}))
    n_scale, k_scale = network["N_scaling"], network["K_scaling"]
    full_n = np.array(pd14["full_num_neurons"], dtype=float)
    conn = np.array(pd14["conn_probs"], dtype=float)
    syn, ref = pd14["synapses"], pd14["reference_neuron"]
    tau_syn = ref["tau_syn_ms"]
    n_pops = len(pd14["populations"])

    full_syn = num_synapses_from_conn_probs(conn, full_n, full_n)
    num_neurons = np.round(full_n * n_scale).astype(int)
    num_synapses = np.round(full_syn * n_scale * k_scale).astype(int)
    k_ext_full = np.array(pd14["K_ext"], dtype=float)
    ext_indegree = np.round(k_ext_full * k_scale).astype(int)

    exc_cols = np.array([t == "E" for t in pd14["cell_types"]])
    psp = np.where(exc_cols[None, :], syn["PSP_exc_mean_mV"], syn["PSP_exc_mean_mV"] * syn["g"]) * np.ones((n_pops, 1))
    l23e, l4e = pd14["populations"].index("L23E"), pd14["populations"].index("L4E")
    psp[l23e, l4e] *= syn["L4E_to_L23E_factor"]
    delay = np.where(exc_cols[None, :], syn["delay_exc_mean_ms"], syn["delay_inh_mean_ms"]) * np.ones((n_pops, 1))

    factor = psc_over_psp(ref["C_m_pF"], ref["tau_m_ms"], tau_syn)
    weight = psp * factor
    weight_ext = syn["PSP_exc_mean_mV"] * factor
    bg_rate = pd14["bg_rate_Hz"]
    if network["background"] == "dc":
        dc = bg_rate * k_ext_full * weight_ext * tau_syn * 1e-3
    else:
        dc = np.zeros(n_pops)

    if k_scale != 1.0:
        # Keep mean input constant when in-degrees shrink [INM6 adjust_weights_and_input_to_synapse_scaling]
        rates = np.array(pd14["full_mean_rates_Hz"] if rates_Hz is None else rates_Hz, dtype=float)
        indegree_full = full_syn / full_n[:, None]
        input_rec = np.sum(weight * indegree_full * rates, axis=1)
        dc = dc + 1e-3 * tau_syn * (1.0 - np.sqrt(k_scale)) * input_rec
        if network["background"] == "poisson":
            dc = dc + 1e-3 * tau_syn * (1.0 - np.sqrt(k_scale)) * weight_ext * k_ext_full * bg_rate
        weight = weight / np.sqrt(k_scale)
        weight_ext = weight_ext / np.sqrt(k_scale)

    mean_poisson = (weight_ext * ext_indegree * bg_rate * tau_syn * 1e-3
                    if network["background"] == "poisson" else np.zeros(n_pops))

    thalamus = None
    if thalamus_needed or network.get("thalamic_input"):
        th = pd14["thalamus"]
        n_th_syn = num_synapses_from_conn_probs(
            np.array(th["conn_probs"])[None, :], np.array([th["num_neurons"]]), full_n)[0]
        w_th = th["PSP_mV"] * factor
        if network.get("thalamic_indegree", "pd14") == "pd14":
            n_th_syn = n_th_syn * n_scale  # same in-degree per target neuron at any N_scaling
        if k_scale != 1.0:
            n_th_syn = n_th_syn * k_scale
            w_th = w_th / np.sqrt(k_scale)
        thalamus = {"num_neurons": th["num_neurons"], "num_synapses": np.round(n_th_syn).astype(int),
                    "weight_pA": w_th, "rate_Hz": th["rate_Hz"], "start_ms": th["start_ms"],
                    "duration_ms": th["duration_ms"], "delay_mean_ms": th["delay_mean_ms"],
                    "delay_rel_std": th["delay_rel_std"]}

    return DerivedNetwork(
        populations=tuple(pd14["populations"]), cell_types=tuple(pd14["cell_types"]),
        num_neurons=num_neurons, num_synapses=num_synapses, weight_mean_pA=weight, delay_mean_ms=delay,
        weight_ext_pA=float(weight_ext), ext_indegree=ext_indegree, bg_rate_Hz=bg_rate, dc_pA=dc,
        mean_ext_drive_pA=dc + mean_poisson, thalamus=thalamus, pd14=pd14,
    )
