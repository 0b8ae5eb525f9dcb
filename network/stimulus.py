"""Stimuli beyond the stationary state (issue 14): thalamic pulse trains, thalamic patterns, one perturbation.

A run config's ``[stimulus]`` table selects one ``kind``:

``none``
    The stationary network (the default).
``thalamic_pulses``
    ``count`` pulses of the thalamic population (902 neurons, PD14 Sec. 2.3)
    firing Poisson at ``rate_Hz`` for ``duration_ms``, every ``interval_ms``,
    the first ``onset_ms`` after the analysis window starts (PD14 Figs. 7-8 use
    one pulse of 120 Hz for 10 ms).
``thalamic_patterns``
    ``count`` trials; trial k presents pattern ``k mod patterns``: every
    thalamic neuron fires a *frozen* Poisson train of ``rate_Hz`` for
    ``duration_ms``, drawn from ``pattern_seed`` and the pattern index only,
    so the same pattern repeats exactly across trials and network seeds while
    the network's own noise differs (Haeusler & Maass 2006 separability).
``perturbation``
    One extra spike of neuron ``neuron`` of ``population`` at ``onset_ms``
    (London et al. 2010, Nature 466:123, "one extra spike"; Monteforte & Wolf
    2010, PRL 105:268104). ``mode`` says how:

    ``extra_spike`` (the default)
        Every network neuron the perturbed neuron projects to receives what it
        would receive had that neuron fired at ``onset_ms``: the same weight,
        delay, synapse model and receptor as the neuron's own connections. The
        same event in every model, whatever its input map. The neuron itself
        is not reset; ``weight_pA`` is not used (and refused if set).
    ``kick``
        One input of ``weight_pA`` (reference-LIF pA, mapped by the model's
        input map like every other input) arrives at the neuron at
        ``onset_ms``; the default (~17 mV LIF PSP) makes an LIF fire, but the
        mapped kick can stay below threshold in other models (the AdEx with
        conductances reaches -55.6 mV of its -50.4 mV threshold from rest at
        20000 pA), which then perturb nothing.

    Its devices are created and connected after everything else and draw no
    random numbers, so the same seed without them gives the unperturbed twin.

Times in the config are relative to the analysis window (the presimulation
depends on the model's warm-up); :func:`schedule` gives the absolute onsets
recorded in each run's metadata.
"""

from __future__ import annotations

import numpy as np

from cortexzoo.errors import CortexzooError
from cortexzoo.schema import Field

KINDS = ("none", "thalamic_pulses", "thalamic_patterns", "perturbation")
PERTURBATION_MODES = ("extra_spike", "kick")
# PD14 Sec. 2.3 / INM-6 stimulus_params.py: 902 thalamic neurons at 120 Hz for 10 ms.
STIMULUS_FIELDS = {
    "kind": Field(str, "none", "stimulus kind", choices=KINDS),
    "onset_ms": Field(float, 200.0, "first onset, ms after the analysis window starts", minimum=0.0),
    "count": Field(int, 10, "pulses or trials", minimum=1),
    "interval_ms": Field(float, 300.0, "onset-to-onset interval (ms); longer than the responses",
                         minimum=0.0, exclusive_minimum=True),
    "duration_ms": Field(float, 10.0, "pulse or pattern duration (ms)", minimum=0.0, exclusive_minimum=True),
    "rate_Hz": Field(float, 120.0, "rate of each thalamic neuron during a pulse or pattern", minimum=0.0),
    "patterns": Field(int, 2, "distinct patterns (thalamic_patterns)", minimum=1),
    "pattern_seed": Field(int, 1, "seed of the frozen patterns, independent of the network seed", minimum=1),
    "population": Field(str, "L23E", "population of the perturbed neuron (perturbation)"),
    "neuron": Field(int, 0, "index of the perturbed neuron within its population", minimum=0),
    "mode": Field(str, "extra_spike", "perturbation: 'extra_spike' (the neuron's targets receive one spike of it "
                  "through its own synapses) or 'kick' (one input of weight_pA into the neuron)",
                  choices=PERTURBATION_MODES),
    # 10 nA with tau_syn 0.5 ms moves the reference LIF by ~17 mV: an extra spike unless refractory.
    "weight_pA": Field(float, 10000.0, "perturbation mode 'kick' only: input to the perturbed neuron (reference-LIF "
                       "pA); unused by 'extra_spike'"),
}
# Which keys each kind reads; the others must stay unset (a run's identity holds only these).
_KEYS = {
    "none": (),
    "thalamic_pulses": ("onset_ms", "count", "interval_ms", "duration_ms", "rate_Hz"),
    "thalamic_patterns": ("onset_ms", "count", "interval_ms", "duration_ms", "rate_Hz", "patterns", "pattern_seed"),
    "perturbation": ("onset_ms", "population", "neuron", "mode", "weight_pA"),
}


def resolve_stimulus(raw: dict, filled: dict, where: str, populations, t_sim_ms: float) -> dict:
    """The stimulus table a run uses: its kind and the keys that kind reads, checked.

    Parameters
    ----------
    raw : dict
        The ``[stimulus]`` table as written.
    filled : dict
        The same after :func:`cortexzoo.schema.check_table` (defaults filled in).
    where : str
        File and table for messages.
    populations : sequence of str
    t_sim_ms : float
        Analysis window; every onset must lie inside it.

    Returns
    -------
    dict
        ``{"kind": ..., <the keys it reads>}``.
    """
    kind = filled["kind"]
    keys, what = _keys_read(filled)
    unused = [k for k in raw if k != "kind" and k not in keys]
    if unused:
        raise CortexzooError(f"{where}: {', '.join(unused)} not used by {what}.",
                             f"{what} reads {', '.join(keys) or 'nothing else'}; remove the others.")
    out = {"kind": kind, **{k: filled[k] for k in keys}}
    if kind == "perturbation" and out["population"] not in populations:
        raise CortexzooError(f"{where} population = {out['population']!r} is not a PD14 population.",
                             f"Use one of {', '.join(populations)}.")
    if kind != "none":
        _check_times(out, where, t_sim_ms)
    return out


def _keys_read(filled: dict) -> tuple:
    """The keys a stimulus reads, and its name for messages (kind, and the mode of a perturbation)."""
    kind = filled["kind"]
    if kind != "perturbation":
        return _KEYS[kind], f"kind = {kind!r}"
    mode = filled["mode"]
    keys = _KEYS[kind] if mode == "kick" else tuple(k for k in _KEYS[kind] if k != "weight_pA")
    return keys, f"kind = {kind!r} with mode = {mode!r}"


def _check_times(stimulus: dict, where: str, t_sim_ms: float) -> None:
    """Times on the simulation grid, patterns that do not overlap, and everything inside the analysed window."""
    from cortexzoo.network.params import load_pd14

    step = load_pd14()["simulation"]["resolution_ms"]
    for key in ("onset_ms", "interval_ms", "duration_ms"):
        value = stimulus.get(key)
        if value is not None and abs(value / step - round(value / step)) > 1e-6:
            raise CortexzooError(f"{where} {key} = {value:g} is not a multiple of the {step:g} ms resolution.",
                                 f"Use a multiple of {step:g} ms (NEST delivers spikes on that grid).")
    if stimulus["kind"] == "thalamic_patterns" and stimulus["interval_ms"] < stimulus["duration_ms"]:
        raise CortexzooError(f"{where}: patterns of {stimulus['duration_ms']:g} ms every {stimulus['interval_ms']:g} "
                             "ms overlap.", "Make interval_ms at least duration_ms (better: longer than the response).")
    # a perturbation needs time after the kick to show its consequence
    last = schedule(stimulus, 0.0)["onsets_ms"][-1] + stimulus.get("duration_ms", 0.0)
    if last > t_sim_ms or (stimulus["kind"] == "perturbation" and last >= t_sim_ms):
        raise CortexzooError(f"{where}: the stimulus ends at {last:g} ms, at or after the {t_sim_ms:g} ms analysed.",
                             "Raise [simulation] t_sim_ms, or lower onset_ms, count or interval_ms.")


def schedule(stimulus: dict, presim_ms: float) -> dict:
    """Absolute onsets (ms) and, for patterns, which pattern each trial shows.

    Parameters
    ----------
    stimulus : dict
        A resolved stimulus table.
    presim_ms : float
        Start of the analysis window.

    Returns
    -------
    dict
        ``kind``, ``onsets_ms`` (list), ``pattern_of_trial`` (list, patterns only),
        ``duration_ms`` where the kind has one.
    """
    kind = stimulus["kind"]
    if kind == "none":
        return {"kind": kind, "onsets_ms": []}
    count = stimulus.get("count", 1)
    onsets = presim_ms + stimulus["onset_ms"] + stimulus.get("interval_ms", 0.0) * np.arange(count)
    out = {"kind": kind, "onsets_ms": [round(float(t), 6) for t in onsets]}
    if "duration_ms" in stimulus:
        out["duration_ms"] = stimulus["duration_ms"]
    if kind == "thalamic_patterns":
        out["pattern_of_trial"] = [int(k % stimulus["patterns"]) for k in range(count)]
    return out


def pattern_trains(pattern: int, n_neurons: int, rate_Hz: float, duration_ms: float, seed: int,
                   resolution_ms: float) -> list:
    """The frozen spike trains of one thalamic pattern, relative to its onset.

    Parameters
    ----------
    pattern : int
    n_neurons : int
    rate_Hz, duration_ms : float
    seed : int
        ``pattern_seed``; with ``pattern`` it alone decides the trains.
    resolution_ms : float
        Times are on this grid, in ``[resolution_ms, duration_ms]`` and distinct per neuron.

    Returns
    -------
    list of numpy.ndarray
        One sorted array of times (ms) per neuron.
    """
    rng = np.random.default_rng([seed, pattern])
    steps = int(round(duration_ms / resolution_ms))
    p = rate_Hz * 1e-3 * resolution_ms  # Bernoulli per step: Poisson in the limit of small p
    hits = rng.random((n_neurons, steps)) < p
    return [(np.flatnonzero(row) + 1) * resolution_ms for row in hits]


def uses_thalamus(stimulus: dict) -> bool:
    """Whether the stimulus drives the thalamic population."""
    return stimulus["kind"] in ("thalamic_pulses", "thalamic_patterns")


def create_drivers(nest, stimulus: dict, presim_ms: float, n_thalamic: int, resolution_ms: float) -> list:
    """NEST devices that drive the thalamic parrots for a thalamic stimulus (none otherwise).

    Parameters
    ----------
    nest : module
    stimulus : dict
    presim_ms : float
    n_thalamic : int
    resolution_ms : float

    Returns
    -------
    list of (NodeCollection, str)
        Each device with its connection rule to the parrots (``all_to_all``
        for Poisson pulses: every parrot its own train; ``one_to_one`` for
        the frozen patterns).
    """
    plan = schedule(stimulus, presim_ms)
    if stimulus["kind"] == "thalamic_pulses":
        gens = nest.Create("poisson_generator", len(plan["onsets_ms"]),
                           params=[{"rate": stimulus["rate_Hz"], "start": t, "stop": t + stimulus["duration_ms"]}
                                   for t in plan["onsets_ms"]])
        return [(gens, "all_to_all")]
    if stimulus["kind"] == "thalamic_patterns":
        trains = [pattern_trains(p, n_thalamic, stimulus["rate_Hz"], stimulus["duration_ms"],
                                 stimulus["pattern_seed"], resolution_ms) for p in range(stimulus["patterns"])]
        times = [[] for _ in range(n_thalamic)]
        for onset, p in zip(plan["onsets_ms"], plan["pattern_of_trial"]):
            for k in range(n_thalamic):
                times[k].append(onset + trains[p][k])
        gens = nest.Create("spike_generator", n_thalamic)
        gens.set([{"spike_times": np.round(np.concatenate(t), 6).tolist()} for t in times])
        return [(gens, "one_to_one")]
    return []


def connect_perturbation(nest, stimulus: dict, presim_ms: float, populations, population: int, syn_spec: dict,
                         resolution_ms: float) -> None:
    """The perturbation's devices; call after every other Connect (they draw no random numbers).

    Parameters
    ----------
    nest : module
    stimulus : dict
        A resolved ``perturbation`` table.
    presim_ms : float
    populations : sequence of NodeCollection
        The network's populations: an extra spike reaches their neurons only.
    population : int
        Index in ``populations`` of the perturbed neuron's population.
    syn_spec : dict
        Mode ``kick``: Connect keywords of its input (``weight_pA`` already
        mapped to the model's units, and the excitatory receptor). Mode
        ``extra_spike``: the receptor keywords the neuron's own connections
        were made with (its cell type's); see :func:`connect_extra_spike`.
    resolution_ms : float
    """
    nodes, index = populations[population], stimulus["neuron"]
    if index >= len(nodes):
        raise CortexzooError(f"[stimulus] neuron = {index}, but {stimulus['population']} has "
                             f"{len(nodes)} neurons at this scale.", f"Use an index below {len(nodes)}.")
    onset = presim_ms + stimulus["onset_ms"]
    if stimulus["mode"] == "extra_spike":
        connect_extra_spike(nest, nodes[index], populations, onset, syn_spec)
        return
    gen = nest.Create("spike_generator", params={"spike_times": [round(onset - resolution_ms, 6)]})
    # a one-step delay: the kick arrives at the neuron at onset
    nest.Connect(gen, nodes[index], syn_spec={**syn_spec, "delay": resolution_ms})


def connect_extra_spike(nest, neuron, populations, spike_ms: float, receptor: dict) -> list:
    """Deliver one spike of ``neuron`` at ``spike_ms`` to every network neuron it projects to.

    Each of the neuron's connections to a neuron of ``populations`` is copied
    from a spike generator: same target, weight (an inhibitory one stays
    negative), delay, synapse model and receptor port. A spike generator's
    spike at t, like a neuron's spike at t, reaches its targets at t + delay,
    so every target receives exactly what it would have received had the
    neuron fired at ``spike_ms`` (London et al. 2010, Nature 466:123, "one
    extra spike"). The neuron itself is not touched: it is not reset, not
    refractory, does not adapt, and its recorded train holds no spike at
    ``spike_ms``. Its connections to devices (the spike recorder) are not
    copied. No random numbers are drawn.

    Parameters
    ----------
    nest : module
    neuron : NodeCollection
        One neuron, after every Connect (its outgoing connections are read).
    populations : sequence of NodeCollection
    spike_ms : float
        Time of the extra spike, on the simulation grid.
    receptor : dict
        Connect keywords of the port the neuron's connections use (empty for
        port 0). Not read from the connections: NEST reports the port a
        model's ``handles_test_event`` returns, which for NESTML models is the
        receptor type minus 1, and Connect needs the receptor type.

    Returns
    -------
    list of NodeCollection
        The spike generators, one per synapse model (NEST lets a device send
        through one synapse model only).
    """
    keys = ("target", "weight", "delay", "synapse_model")
    conns = nest.GetConnections(source=neuron)
    if len(conns) == 0:
        return []
    got = conns.get(keys)
    targets, weights, delays, models = (np.atleast_1d(np.asarray(got[k])) for k in keys)
    network = np.concatenate([np.asarray(p.tolist(), dtype=np.int64) for p in populations])
    to_neurons = np.isin(targets, network)
    generators = []
    for model in sorted(set(models[to_neurons])):
        mine = to_neurons & (models == model)
        gen = nest.Create("spike_generator", params={"spike_times": [round(spike_ms, 6)]})
        # arrays of node ids: one connection per pair, repeated targets (multapses) included
        nest.Connect(np.full(int(mine.sum()), gen.global_id, dtype=np.int64), targets[mine].astype(np.int64),
                     "one_to_one", {"synapse_model": str(model), "weight": weights[mine].astype(float),
                                    "delay": delays[mine].astype(float), **receptor})
        generators.append(gen)
    return generators
