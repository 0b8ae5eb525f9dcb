"""Build and simulate the PD14 microcircuit with any catalogue neuron model.

The network asks the model catalogue for the NEST model name, its PD14
parameters, the weight mapping and its ports; it never names a model's own
parameters. Construction uses NEST's bulk ``Connect`` with ``nest.random``
parameters only, never Python loops over neurons.
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import dataclass, field

import numpy as np

from cortexzoo.errors import CortexzooError
from cortexzoo.models.catalogue import ModelSpec, model_spec
from cortexzoo.models.units import to_nest
from cortexzoo.network.params import DerivedNetwork, RunConfig, derive, load_pd14
from cortexzoo.network.stimulus import connect_perturbation, create_drivers, uses_thalamus


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MB.

    Returns
    -------
    float
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass
class SimulationResult:
    """What a finished simulation hands to the writer.

    Attributes
    ----------
    spikes : dict
        Population -> (ids 0-based within the population, times in ms).
    timings_s : dict
        Wall time per phase: create, connect, presim, sim.
    counts : dict
        Neurons and synapses per population and in total.
    peak_memory_mb : float
    derived : dict
        Derived network numbers (weights, DC, in-degrees) in JSON-able form.
    neuron_parameters : dict
        Population -> {parameter: value as NEST reports it after creation}.
    compensation : dict or None
        The self-consistent K-scaling compensation used (rates, DC, history).
    presim_ms, slowest_time_constant_ms : float
        The presimulation that was run, and the model time constant it covers.
    runaway : dict or None
        Set when the rate guard stopped the run (:class:`RateGuard`): where
        and when a population passed ``[simulation] max_rate_Hz``. The spikes
        then end at ``runaway["stopped_at_ms"]``.
    """

    spikes: dict
    timings_s: dict
    counts: dict
    peak_memory_mb: float
    derived: dict = field(default_factory=dict)
    neuron_parameters: dict = field(default_factory=dict)
    compensation: dict | None = None
    presim_ms: float = 0.0
    slowest_time_constant_ms: float = 0.0
    runaway: dict | None = None


@dataclass
class RateGuard:
    """Stops a simulation whose network has run away to rates no cortical state has.

    A network that switches to a high-rate state (e.g. Izhikevich 2003 cells
    under strong input: 2.5 kHz per neuron, docs/scale_fidelity.md) costs
    hundreds of times the wall time of a healthy one, and its statistics mean
    nothing. After every ``window_ms`` of model time the mean rate of each
    population over that window is compared with ``max_rate_Hz``; the first
    window above it ends the run, which is then kept as a finding
    (``SimulationResult.runaway``) instead of simulated to the end.

    Attributes
    ----------
    recorders : NodeCollection
        One spike recorder per population, recording from t = 0.
    sizes : list of int
    populations : list of str
    max_rate_Hz : float
    window_ms : float
    """

    recorders: object
    sizes: list
    populations: list
    max_rate_Hz: float
    window_ms: float = 100.0
    _last: np.ndarray = None
    _since_ms: float = 0.0

    def check(self, now_ms: float) -> dict | None:
        """The runaway record when a population's rate since the last check exceeds the ceiling, else None.

        Spans shorter than ``window_ms`` are left to the next call.

        Parameters
        ----------
        now_ms : float
            Model time reached.

        Returns
        -------
        dict or None
        """
        span_ms = now_ms - self._since_ms
        if span_ms < self.window_ms - 1e-9:  # a short span would turn a few spikes of a small population into a rate
            return None
        counts = np.atleast_1d(np.asarray(self.recorders.get("n_events"), dtype=float))
        last = self._last if self._last is not None else np.zeros_like(counts)
        rates = (counts - last) / (np.asarray(self.sizes, float) * span_ms / 1000.0)
        start, self._last, self._since_ms = self._since_ms, counts, now_ms
        worst = int(np.argmax(rates))
        if not rates[worst] > self.max_rate_Hz:
            return None
        return {"population": self.populations[worst], "rate_Hz": round(float(rates[worst]), 1),
                "window_ms": [round(start, 6), round(now_ms, 6)], "stopped_at_ms": round(now_ms, 6),
                "max_rate_Hz": self.max_rate_Hz,
                "rates_Hz": {p: round(float(r), 1) for p, r in zip(self.populations, rates)}}


def check_rheobase(config: RunConfig, spec: ModelSpec, net: DerivedNetwork) -> list:
    """Populations whose constant drive leaves them below rheobase.

    With DC background the constant current is the only external drive, so a
    population below rheobase cannot start firing on its own (the reference
    package's small default is silent for this reason). With Poisson
    background neurons are driven by fluctuations, so no check is made.

    Parameters
    ----------
    config : RunConfig
    spec : ModelSpec
    net : DerivedNetwork

    Returns
    -------
    list of tuple
        ``(population, drive_pA, rheobase_pA)`` for each offending population.
    """
    if config.network["background"] != "dc" or spec.rheobase_pA is None:
        return []
    # The rheobase is in reference-LIF pA, like the drive; a rule's bias is already in it (measured with it).
    drive = net.mean_ext_drive_pA
    return [(pop, float(d), spec.rheobase_pA) for pop, d in zip(net.populations, drive) if d < spec.rheobase_pA]


def check_neuron_parameters(config: RunConfig, where: str = "[neuron]", nest=None) -> None:
    """Refuse parameter overrides the neuron model does not have, before anything runs.

    NEST would only complain once the network is being created (after earlier
    runs of an experiment have already been simulated), with a traceback.

    Parameters
    ----------
    config : RunConfig
    where : str
        File and table for the message, e.g. ``"quick.toml [variants.adex]"``.
    nest : module, optional
        A NEST kernel that already has the model; one is made if not given.

    Raises
    ------
    CortexzooError
        Naming the unknown parameter(s) and listing the model's parameters.
    """
    overrides = set(config.neuron["params"])
    for table in config.neuron["by_population"].values():
        overrides |= set(table)
    if not overrides:
        return
    spec = model_spec(config)
    if nest is None:
        from cortexzoo.models.kernel import ready_kernel

        nest = ready_kernel(install_module=spec.is_nestml)
    defaults = nest.GetDefaults(spec.nest_model)
    unknown = sorted(overrides - set(defaults))
    if unknown:
        known = sorted(k for k, v in defaults.items()
                       if isinstance(v, (int, float, bool)) and not k.startswith("__") and k not in _NOT_PARAMETERS)
        raise CortexzooError(
            f"{where}: model {spec.name} ({spec.nest_model}) has no parameter(s) {', '.join(map(repr, unknown))}.",
            f"Its parameters are: {', '.join(known)}.",
        )


# Read-only entries of GetDefaults that are not neuron parameters.
_NOT_PARAMETERS = {"global_id", "local", "thread", "vp", "model_id", "thread_local_id", "frozen", "element_type",
                   "archiver_length", "t_spike", "node_uses_wfr", "post_trace", "Ca", "beta_Ca", "tau_Ca",
                   "tau_minus", "tau_minus_triplet"}


def resolved_neuron_parameters(config: RunConfig, spec: ModelSpec | None = None,
                               net: DerivedNetwork | None = None) -> dict:
    """The neuron parameters each population gets: catalogue, network roles, then config overrides.

    Pure (no NEST): the run's identity hashes this before anything is simulated.

    Parameters
    ----------
    config : RunConfig
    spec : ModelSpec, optional
        The config's model; looked up when not given.
    net : DerivedNetwork, optional
        The derived network; derived when not given.

    Returns
    -------
    dict
        Population -> {parameter: value in NEST units}.
    """
    spec = spec or model_spec(config)
    net = net or derive(config.network)
    tau_syn = net.pd14["reference_neuron"]["tau_syn_ms"]
    out = {}
    for i, pop in enumerate(net.populations):
        params = spec.params_for(pop, net.cell_types[i])
        params[spec.role("tau_syn_exc")] = tau_syn
        params[spec.role("tau_syn_inh")] = tau_syn
        params[spec.role("bias_current")] = spec.bias_current(net.dc_pA[i], net.cell_types[i])
        overrides = {**config.neuron["params"], **config.neuron["by_population"].get(pop, {})}
        for key, value in overrides.items():
            params[key] = to_nest(value, where=f"[neuron] {key}")
        out[pop] = params
    return out


def _normal(nest, mean, std, low, high):
    """A normal ``nest.random`` parameter redrawn into [low, high]; plain mean when std is 0."""
    if std == 0:
        return mean
    return nest.math.redraw(nest.random.normal(mean=mean, std=std), min=low, max=high)


@dataclass
class _Nodes:
    """What construction created: populations, their recorders and the external inputs."""

    names: tuple
    populations: list
    models: list
    recorders: object
    background: object = None
    thalamus: object = None
    thalamic_generator: object = None
    stimulus_drivers: list = None


def simulate_pd14(config: RunConfig, progress=None) -> SimulationResult:
    """Build the PD14 network for one config, simulate it and collect spikes.

    The steps are named after what they do: refuse a silent network, create,
    connect, simulate, collect. Their NEST calls come in the reference
    package's order, so the same seed gives the same spikes.

    Parameters
    ----------
    config : RunConfig
        A validated run config.
    progress : callable, optional
        Receives one-line progress messages.

    Returns
    -------
    SimulationResult

    Raises
    ------
    CortexzooError
        When a population would sit below rheobase and ``allow_subthreshold`` is false.
    """
    from cortexzoo.models.kernel import import_nest

    from cortexzoo.network.compensation import compensation_rates, needs_compensation
    from cortexzoo.network.identity import compensation_key

    say = progress or (lambda msg: None)
    import_nest()  # loading NEST's libraries is not network construction
    spec = model_spec(config)
    low = _refuse_silent_network(config, spec, derive(config.network))
    compensation = compensation_rates(config, compensation_key(config), say) if needs_compensation(config) else None
    net = derive(config.network, rates_Hz=compensation and compensation["rates_Hz"],
                 thalamus_needed=uses_thalamus(config.stimulus))
    presim = presim_ms(config, spec)
    timings = {}
    t0 = time.perf_counter()
    nest, nodes = _create(config, spec, net, say, presim=presim)
    timings["create"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _connect(nest, nodes, config, spec, net, say, presim=presim)
    timings["connect"] = time.perf_counter() - t0
    guard = RateGuard(nodes.recorders, [len(p) for p in nodes.populations], list(net.populations),
                      config.simulation["max_rate_Hz"])
    runaway = None
    for phase, duration in (("presim", presim), ("sim", config.simulation["t_sim_ms"])):
        t0 = time.perf_counter()
        if not runaway:  # a run stopped in the presimulation has no analysed phase to simulate
            runaway = _run_with_progress(nest, duration, phase, say, guard)
        timings[phase] = time.perf_counter() - t0
    if runaway:
        say(f"stopped at {runaway['stopped_at_ms']:g} ms: the network ran away ({runaway['population']} at "
            f"{runaway['rate_Hz']:g} Hz over {runaway['window_ms'][0]:g}-{runaway['window_ms'][1]:g} ms, above "
            f"[simulation] max_rate_Hz = {runaway['max_rate_Hz']:g}); kept as a finding, not analysed")
    return SimulationResult(
        runaway=runaway,
        spikes=_collect_spikes(nodes, net), timings_s=timings, counts=_counts(nest, net),
        peak_memory_mb=peak_memory_mb(), derived=_derived(spec, net, low),
        neuron_parameters=_parameters_in_nest(nest, nodes, resolved_neuron_parameters(config, spec, net), net),
        compensation=compensation, presim_ms=presim, slowest_time_constant_ms=spec.slowest_time_constant_ms)


def presim_ms(config: RunConfig, spec: ModelSpec | None = None) -> float:
    """The presimulation actually run: the config's, but at least warmup_factor slowest time constants.

    Every model starts from the same initial V; its slow variables (AdEx w,
    MAT2 threshold, GLIF after-spike currents) need several of their time
    constants to forget that start before the analysis window begins.

    Parameters
    ----------
    config : RunConfig
    spec : ModelSpec, optional

    Returns
    -------
    float
        Milliseconds, a whole number of simulation steps.
    """
    spec = spec or model_spec(config)
    wanted = max(config.simulation["t_presim_ms"], config.simulation["warmup_factor"] * spec.slowest_time_constant_ms)
    step = load_pd14()["simulation"]["resolution_ms"]
    return round(math.ceil(wanted / step - 1e-9) * step, 10)


def build_network(config: RunConfig, seed: int | None = None, say=None):
    """Create and connect the network of a config (DC from the LIF's full-scale rates), not simulated yet.

    Parameters
    ----------
    config : RunConfig
    seed : int, optional
        Overrides the config's seed (the compensation uses its own).
    say : callable, optional

    Returns
    -------
    tuple
        ``(nest, nodes, spec, net)``.
    """
    say = say or (lambda msg: None)
    spec = model_spec(config)
    net = derive(config.network, thalamus_needed=uses_thalamus(config.stimulus))
    presim = presim_ms(config, spec)
    nest, nodes = _create(config, spec, net, say, seed, presim=presim)
    _connect(nest, nodes, config, spec, net, say, presim=presim)
    return nest, nodes, spec, net


def _refuse_silent_network(config: RunConfig, spec: ModelSpec, net: DerivedNetwork) -> list:
    """Stop before construction when DC drive leaves populations below rheobase (unless allowed)."""
    low = check_rheobase(config, spec, net)
    if low and not config.network["allow_subthreshold"]:
        listing = ", ".join(f"{p} {d:.0f} pA" for p, d, _ in low)
        raise CortexzooError(
            f"With DC background at K_scaling={config.network['K_scaling']}, the constant drive of {len(low)} "
            f"population(s) is below the {spec.rheobase_pA:.0f} pA rheobase of {spec.name} ({listing}); the "
            "network would be silent.",
            "Use background = \"poisson\", raise K_scaling, or set allow_subthreshold = true in [network] if a "
            "silent network is really intended.",
        )
    return low


def _create(config: RunConfig, spec: ModelSpec, net: DerivedNetwork, say, seed: int | None = None,
            presim: float = 0.0):
    """Reset the kernel; create populations with their initial V, recorders and external inputs."""
    from cortexzoo.models.kernel import ready_kernel

    sim, netcfg = config.simulation, config.network
    nest = ready_kernel(threads=sim["threads"], resolution_ms=net.pd14["simulation"]["resolution_ms"],
                        seed=sim["seed"] if seed is None else seed, install_module=spec.is_nestml, progress=say)
    check_neuron_parameters(config, nest=nest)
    say(f"creating {int(net.num_neurons.sum())} {spec.nest_model} neurons in {len(net.populations)} populations")
    params = resolved_neuron_parameters(config, spec, net)
    v_role, init = spec.role("membrane_potential"), net.pd14["initial_V"]
    pops, models = [], []
    for i, pop in enumerate(net.populations):
        # Parameters go into a per-population model copy: creating from its
        # defaults is ~15x faster than setting every new node's status.
        model = f"cz_{spec.nest_model}_{pop}"
        nest.CopyModel(spec.nest_model, model, params[pop])
        nodes = nest.Create(model, int(net.num_neurons[i]))
        if netcfg["V0_type"] == "optimized":
            mean, std = init["optimized_mean_mV"][i], init["optimized_std_mV"][i]
        else:
            mean, std = init["original_mean_mV"], init["original_std_mV"]
        nodes.set({v_role: nest.random.normal(mean=mean, std=std)})
        pops.append(nodes)
        models.append(model)
    out = _Nodes(net.populations, pops, models, nest.Create("spike_recorder", len(pops)))
    if netcfg["background"] == "poisson":
        out.background = nest.Create("poisson_generator", len(pops),
                                     params=[{"rate": net.bg_rate_Hz * k} for k in net.ext_indegree])
    if net.thalamus:
        th = net.thalamus
        out.thalamus = nest.Create("parrot_neuron", th["num_neurons"])
        if netcfg["thalamic_input"]:  # PD14's single pulse, as in the reference package
            out.thalamic_generator = nest.Create("poisson_generator", params={
                "rate": th["rate_Hz"], "start": th["start_ms"], "stop": th["start_ms"] + th["duration_ms"]})
        out.stimulus_drivers = create_drivers(nest, config.stimulus, presim, th["num_neurons"],
                                              net.pd14["simulation"]["resolution_ms"])
    return nest, out


def _receptors(nest, spec: ModelSpec) -> dict:
    """Connect keywords per presynaptic cell type: a receptor_type only where the port is not 0.

    An explicit receptor_type, even the default 0, sends Connect down a
    per-connection port check that costs ~40 % of its time.
    """
    receptor_types = nest.GetDefaults(spec.nest_model).get("receptor_types", {})
    out = {}
    for cell_type, which in (("E", "exc"), ("I", "inh")):
        port = spec.receptor(which, receptor_types)
        out[cell_type] = {"receptor_type": port} if port != 0 else {}
    return out


def _connect(nest, nodes: _Nodes, config: RunConfig, spec: ModelSpec, net: DerivedNetwork, say,
             presim: float = 0.0) -> None:
    """Recurrent, recorder, background, thalamic and perturbation connections, then NEST's first Prepare."""
    say("connecting")
    receptors = _receptors(nest, spec)
    # One synapse-model copy per target population: NEST allows at most 2^27
    # connections per synapse model and virtual process, which full scale
    # exceeds with 2 threads when all share static_synapse.
    syn_models = []
    for pop in net.populations:
        nest.CopyModel("static_synapse", f"cz_static_{pop}")
        syn_models.append(f"cz_static_{pop}")
    resolution = net.pd14["simulation"]["resolution_ms"]
    delay_min = resolution - 0.5 * resolution  # redraw below h/2 -> minimum delay one step [INM6]
    w_rel, d_rel = net.pd14["synapses"]["weight_rel_std"], net.pd14["synapses"]["delay_rel_std"]
    # Same order of Connect calls as the reference package, so that with the
    # same seed and threads both draw the same random numbers.
    for i, target in enumerate(nodes.populations):
        for j, source in enumerate(nodes.populations):
            if net.num_synapses[i, j] <= 0:
                continue
            w = float(spec.weight(net.weight_mean_pA[i, j], net.cell_types[i], net.populations[i], net.cell_types[j]))
            d = float(net.delay_mean_ms[i, j])
            lo, hi = (-math.inf, 0.0) if w < 0 else (0.0, math.inf)
            nest.Connect(source, target, {"rule": "fixed_total_number", "N": int(net.num_synapses[i, j])},
                         {"synapse_model": syn_models[i], "weight": _normal(nest, w, abs(w) * w_rel, lo, hi),
                          "delay": _normal(nest, d, d * d_rel, delay_min, math.inf),
                          **receptors[net.cell_types[j]]})
    for i, target in enumerate(nodes.populations):
        nest.Connect(target, nodes.recorders[i])
    if nodes.background is not None:
        for i, target in enumerate(nodes.populations):
            nest.Connect(nodes.background[i], target, "all_to_all",
                         {"synapse_model": syn_models[i],
                          "weight": float(spec.weight(net.weight_ext_pA, net.cell_types[i], net.populations[i])),
                          "delay": net.pd14["synapses"]["delay_poisson_ms"], **receptors["E"]})
    if nodes.thalamus is not None:
        _connect_thalamus(nest, nodes, spec, net, syn_models, receptors["E"], delay_min)
    if config.stimulus["kind"] == "perturbation":  # last: the twin without it draws the same random numbers
        i = net.populations.index(config.stimulus["population"])
        if config.stimulus["mode"] == "kick":  # one excitatory input through the model's weight map
            syn_spec = {"weight": float(spec.weight(config.stimulus["weight_pA"], net.cell_types[i],
                                                    net.populations[i])), **receptors["E"]}
        else:  # an extra spike copies the neuron's own synapses, made with its cell type's port
            syn_spec = receptors[net.cell_types[i]]
        connect_perturbation(nest, config.stimulus, presim, nodes.populations, i, syn_spec, resolution)
    # Building the presynaptic infrastructure belongs to construction, as in the reference.
    nest.Prepare()
    nest.Cleanup()
    say(f"connected: {int(nest.num_connections)} connections (incl. devices), peak memory {peak_memory_mb():.0f} MB")


def _connect_thalamus(nest, nodes: _Nodes, spec, net, syn_models, receptor, delay_min) -> None:
    th = net.thalamus
    if nodes.thalamic_generator is not None:
        nest.Connect(nodes.thalamic_generator, nodes.thalamus)
    for driver, rule in nodes.stimulus_drivers or []:  # one step to the parrots: onsets as scheduled
        nest.Connect(driver, nodes.thalamus, rule, {"delay": net.pd14["simulation"]["resolution_ms"]})
    d, w_rel = th["delay_mean_ms"], net.pd14["synapses"]["weight_rel_std"]
    for i, target in enumerate(nodes.populations):
        w = float(spec.weight(th["weight_pA"], net.cell_types[i], net.populations[i]))
        if th["num_synapses"][i] > 0:
            nest.Connect(nodes.thalamus, target, {"rule": "fixed_total_number", "N": int(th["num_synapses"][i])},
                         {"synapse_model": syn_models[i], "weight": _normal(nest, w, w * w_rel, 0.0, math.inf),
                          "delay": _normal(nest, d, d * th["delay_rel_std"], delay_min, math.inf), **receptor})


def _collect_spikes(nodes: _Nodes, net: DerivedNetwork) -> dict:
    """Population -> (ids 0-based within the population, times in ms)."""
    spikes = {}
    for i, pop in enumerate(net.populations):
        ev = nodes.recorders[i].get("events")
        first = nodes.populations[i][0].global_id
        spikes[pop] = (np.asarray(ev["senders"], dtype=np.int64) - first, np.asarray(ev["times"], dtype=np.float64))
    return spikes


def _parameters_in_nest(nest, nodes: _Nodes, intended: dict, net: DerivedNetwork) -> dict:
    """The parameters as NEST reports them for each population (what was really simulated)."""
    out = {}
    for pop, model in zip(net.populations, nodes.models):
        defaults = nest.GetDefaults(model)
        out[pop] = {key: _plain(defaults[key]) for key in sorted(intended[pop])}
    return out


def _plain(value):
    """NEST values as JSON-able Python scalars."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _counts(nest, net: DerivedNetwork) -> dict:
    return {
        "neurons": {p: int(n) for p, n in zip(net.populations, net.num_neurons)},
        "neurons_total": int(net.num_neurons.sum()),
        "synapses_recurrent": int(net.num_synapses.sum()),
        "connections_total_incl_devices": int(nest.num_connections),
    }


def _derived(spec: ModelSpec, net: DerivedNetwork, low: list) -> dict:
    return {
        "calibration_rule": spec.rule,
        # Synaptic weights in model units: pA, or nS for a conductance-based model.
        "weight_mean_pA": spec.weights_by_target(net.weight_mean_pA, net.cell_types,
                                                 net.populations).round(6).tolist(),
        "weight_ext_pA": spec.weights_by_target(np.full(len(net.populations), net.weight_ext_pA),
                                                net.cell_types, net.populations).round(6).tolist(),
        "ext_indegree": net.ext_indegree.tolist(),
        "dc_pA": spec.currents_by_target(net.dc_pA, net.cell_types).round(6).tolist(),
        "bias_pA": [spec.bias_pA.get(t, 0.0) for t in net.cell_types],
        "mean_ext_drive_pA": spec.currents_by_target(net.mean_ext_drive_pA, net.cell_types).round(6).tolist(),
        "num_synapses": net.num_synapses.tolist(),
        "rheobase_pA": spec.rheobase_pA,
        "subthreshold_populations": [p for p, _, _ in low],
    }


def _run_with_progress(nest, duration_ms: float, phase: str, say, guard: RateGuard | None = None,
                       chunks: int = 10) -> dict | None:
    """Simulate in chunks so long runs report progress and an estimated time left, and stop a runaway.

    Progress is reported ``chunks`` times; the guard checks every
    ``guard.window_ms`` (one NEST Run per piece: the spikes are the same as
    for one Run over the whole duration). Returns the guard's runaway record,
    or None.
    """
    if duration_ms <= 0:
        return None
    step = nest.resolution
    n_steps = int(round(duration_ms / step))
    report = np.linspace(0, n_steps, min(chunks, n_steps) + 1).round().astype(int)
    checks = np.arange(0, n_steps, max(1, int(round(guard.window_ms / step)))) if guard else []
    bounds = np.unique(np.r_[report, checks, n_steps]).astype(int)
    t0 = time.perf_counter()
    nest.Prepare()
    try:
        for k in range(1, len(bounds)):
            nest.Run((bounds[k] - bounds[k - 1]) * step)
            runaway = guard.check(float(nest.biological_time)) if guard else None
            if runaway:
                return runaway
            if bounds[k] in report:
                done = bounds[k] / n_steps
                elapsed = time.perf_counter() - t0
                say(f"{phase}: {done * duration_ms:.0f}/{duration_ms:.0f} ms simulated, "
                    f"{elapsed:.1f} s elapsed, ~{elapsed / done - elapsed:.1f} s left")
    finally:
        nest.Cleanup()
    return None
