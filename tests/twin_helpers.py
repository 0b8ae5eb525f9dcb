"""Shared drives and comparisons for the twin tests (NESTML model vs NEST built-in).

Both neurons of a twin pair get exactly the same input: the current
generators are step_current_generators (a noise_generator would give each
target its own noise), and spike input passes through one parrot_neuron per
spike source, so both neurons see the same spike trains.
"""

from __future__ import annotations

import numpy as np

T_SIM_MS = 10_000.0


def dc_steps(rheobase_pA: float, t_sim_ms: float = T_SIM_MS) -> dict:
    """Step-current parameters: a staircase of DC levels around the rheobase.

    Parameters
    ----------
    rheobase_pA : float
        Rough rheobase of the model, to place the levels.
    t_sim_ms : float
        Simulated time.

    Returns
    -------
    dict
        ``amplitude_times`` and ``amplitude_values`` for a step_current_generator.
    """
    factors = [0.0, 0.8, 1.1, 1.5, 0.5, 2.0, 3.0, 1.2, 0.0, 2.5]
    times = np.linspace(0.0, t_sim_ms, len(factors), endpoint=False) + 1.0
    return {"amplitude_times": times, "amplitude_values": np.array(factors) * rheobase_pA}


def noisy_current(mean_pA: float, std_pA: float, seed: int = 7, dt_ms: float = 1.0,
                  t_sim_ms: float = T_SIM_MS) -> dict:
    """Step-current parameters for a piecewise-constant Gaussian noisy current.

    Parameters
    ----------
    mean_pA, std_pA : float
        Mean and standard deviation of the amplitudes.
    seed : int
        Seed of numpy's generator (the same current for both twins).
    dt_ms : float
        Duration of each constant piece.
    t_sim_ms : float
        Simulated time.

    Returns
    -------
    dict
        ``amplitude_times`` and ``amplitude_values``.
    """
    rng = np.random.default_rng(seed)
    times = np.arange(1.0, t_sim_ms, dt_ms)
    return {"amplitude_times": times, "amplitude_values": mean_pA + std_pA * rng.standard_normal(len(times))}


def run_pair(nest, builtin: str, builtin_params: dict, nestml: str, nestml_params: dict,
             currents=(), spikes=None, record=("V_m",), record_builtin=None, t_sim_ms: float = T_SIM_MS):
    """Simulate a built-in neuron and its NESTML twin side by side.

    Parameters
    ----------
    nest : module
        A reset NEST kernel with the cortexzoo module installed.
    builtin, nestml : str
        Model names.
    builtin_params, nestml_params : dict
        Parameters of each (the same values, in each model's names).
    currents : sequence of dict
        step_current_generator parameters; each generator drives both neurons.
    spikes : dict, optional
        ``{"exc_rate": Hz, "inh_rate": Hz, "exc_weight": pA, "inh_weight": pA (negative)}``;
        Poisson trains through parrots into both neurons (NESTML: ports exc_spikes/inh_spikes,
        built-in: receptor 0, sign-routed).
    record : sequence of str
        Recordables of the NESTML model.
    record_builtin : sequence of str, optional
        The built-in's names for the same recordables; defaults to ``record``.
    t_sim_ms : float
        Simulated time.

    Returns
    -------
    dict
        ``spikes_builtin``, ``spikes_nestml`` (arrays of ms) and
        ``traces_builtin``, ``traces_nestml`` (name -> array, keyed by the NESTML name).
    """
    record_builtin = list(record_builtin or record)
    a = nest.Create(builtin, params=builtin_params)
    b = nest.Create(nestml, params=nestml_params)
    for params in currents:
        gen = nest.Create("step_current_generator", params=params)
        nest.Connect(gen, a)
        nest.Connect(gen, b)
    if spikes:
        rtypes = b.get("receptor_types")
        for kind, port in (("exc", "EXC_SPIKES"), ("inh", "INH_SPIKES")):
            pg = nest.Create("poisson_generator", params={"rate": float(spikes[f"{kind}_rate"])})
            parrot = nest.Create("parrot_neuron")
            nest.Connect(pg, parrot)
            w = float(spikes[f"{kind}_weight"])
            nest.Connect(parrot, a, syn_spec={"weight": w, "delay": 1.0})
            nest.Connect(parrot, b, syn_spec={"weight": w, "delay": 1.0, "receptor_type": rtypes[port]})
    sr = nest.Create("spike_recorder", 2)
    nest.Connect(a, sr[0])
    nest.Connect(b, sr[1])
    h = nest.resolution
    mm_a = nest.Create("multimeter", params={"record_from": record_builtin, "interval": h})
    mm_b = nest.Create("multimeter", params={"record_from": list(record), "interval": h})
    nest.Connect(mm_a, a)
    nest.Connect(mm_b, b)
    nest.Simulate(t_sim_ms)
    ev_a, ev_b = mm_a.events, mm_b.events
    return {
        "spikes_builtin": np.asarray(sr[0].events["times"]),
        "spikes_nestml": np.asarray(sr[1].events["times"]),
        "traces_builtin": {r: np.asarray(ev_a[rb]) for r, rb in zip(record, record_builtin)},
        "traces_nestml": {r: np.asarray(ev_b[r]) for r in record},
    }


def max_spike_shift(t_a, t_b) -> float:
    """Largest difference between paired spike times (inf if the counts differ).

    Parameters
    ----------
    t_a, t_b : array_like
        Spike times in ms.

    Returns
    -------
    float
    """
    t_a, t_b = np.sort(np.asarray(t_a)), np.sort(np.asarray(t_b))
    if len(t_a) != len(t_b):
        return float("inf")
    return float(np.max(np.abs(t_a - t_b))) if len(t_a) else 0.0


def matched_spikes(t_a, t_b, tol_ms: float = 0.1 + 1e-9) -> tuple:
    """Pair two spike trains one-to-one within ``tol_ms`` (greedy in time, which is optimal in 1-D).

    Parameters
    ----------
    t_a, t_b : array_like
        Spike times in ms.
    tol_ms : float
        Largest time difference of a pair.

    Returns
    -------
    tuple of (int, int)
        Number of pairs, and the larger of the two spike counts.
    """
    t_a, t_b = np.sort(t_a), np.sort(t_b)
    i = j = pairs = 0
    while i < len(t_a) and j < len(t_b):
        if abs(t_a[i] - t_b[j]) <= tol_ms:
            pairs, i, j = pairs + 1, i + 1, j + 1
        elif t_a[i] < t_b[j]:
            i += 1
        else:
            j += 1
    return pairs, max(len(t_a), len(t_b))


def nestml_interface(path) -> tuple:
    """Parameters and state (name -> NESTML type) and input ports (name -> is spike) of a .nestml file.

    Parameters
    ----------
    path : pathlib.Path

    Returns
    -------
    tuple of (dict, dict, dict)
    """
    from pynestml.frontend.pynestml_frontend import init_predefined
    from pynestml.utils.logger import Logger, LoggingLevel
    from pynestml.utils.model_parser import ModelParser

    Logger.init_logger(LoggingLevel.ERROR)
    init_predefined()
    model = ModelParser.parse_file(str(path)).get_model_list()[0]

    def declared(blocks):
        return {v.get_name(): str(d.get_data_type()) for blk in blocks for d in blk.get_declarations()
                for v in d.get_variables()}

    ports = {p.get_name(): p.is_spike() for blk in model.get_input_blocks() for p in blk.get_input_ports()}
    return declared(model.get_parameters_blocks()), declared(model.get_state_blocks()), ports


def simulate_pairs(nest, models: dict, t_sim_ms: float, record=(), interval_ms: float = 0.1) -> list:
    """Simulate neuron pairs (one neuron per drive and model, inputs already connected) and collect them.

    Parameters
    ----------
    nest : module
    models : dict
        Model label (e.g. ``"gsl"``, ``"fast"``) -> NodeCollection, one neuron per drive.
    t_sim_ms : float
    record : sequence of str
        State variables to record every ``interval_ms`` (e.g. ``("V_m", "w")``).
    interval_ms : float

    Returns
    -------
    list of dict
        Per drive: spike times per label and, per recorded variable, ``<first part of its name>_<label>``
        traces, e.g. ``V_gsl``, ``w_fast``.
    """
    rec = nest.Create("spike_recorder")
    meters = {}
    for name, nodes in models.items():
        nest.Connect(nodes, rec)
        if record:
            meters[name] = nest.Create("multimeter", params={"record_from": list(record), "interval": interval_ms})
            nest.Connect(meters[name], nodes)
    nest.Simulate(t_sim_ms)
    out = [{} for _ in range(len(next(iter(models.values()))))]
    for name, nodes in models.items():
        for k, node in enumerate(nodes):
            out[k][name] = rec.events["times"][rec.events["senders"] == node.global_id]
            for var in record:
                mine = meters[name].events["senders"] == node.global_id
                out[k][f"{var.split('_')[0]}_{name}"] = meters[name].events[var][mine]
    return out
