"""Run INM-6's PyNEST reference implementation (``microcircuit`` 1.0) for comparison.

Used by the parity test and the benchmark only, so it lives in ``tests/`` and
is not installed; ``microcircuit`` is an extra dependency
(``pip install cortexzoo[test]``), never a runtime one.
"""

from __future__ import annotations

import contextlib
import copy
import time
from pathlib import Path

import numpy as np

from cortexzoo.errors import CortexzooError
from cortexzoo.network.pd14 import peak_memory_mb


def _import_package():
    try:
        from microcircuit import network_params, sim_params, stimulus_params
        from microcircuit.network import Network
    except ImportError:
        raise CortexzooError(
            "The INM-6 reference package `microcircuit` is not installed.",
            "Install the test extra: `pip install -e '.[test]'` (or `pip install microcircuit==1.0`).",
        ) from None
    return Network, network_params, sim_params, stimulus_params


def run_reference_package(data_dir, N_scaling, K_scaling, background, seed, threads, t_presim_ms, t_sim_ms,
                          V0_type="optimized", thalamic_input=False, per_population_synapse_models=True):
    """Simulate the reference package and return its spikes and timings.

    Parameters
    ----------
    data_dir : str or pathlib.Path
        Where the package writes its ASCII spike files.
    N_scaling, K_scaling : float
    background : {"poisson", "dc"}
    seed, threads : int
    t_presim_ms, t_sim_ms : float
    V0_type : {"optimized", "original"}
    thalamic_input : bool
    per_population_synapse_models : bool
        Give each target population its own copy of ``static_synapse``, the
        only way the package runs at full scale with 2 threads (the 2^27
        connections per synapse model and thread limit); it changes no
        dynamics.

    Returns
    -------
    dict
        ``spikes`` (population -> (ids, times)), ``sizes``, ``timings_s``
        (create, connect, presim, sim) and ``peak_memory_mb``.
    """
    Network, network_params, sim_params, stimulus_params = _import_package()
    import nest

    net_dict = copy.deepcopy(network_params.default_net_dict)
    sim_dict = copy.deepcopy(sim_params.default_sim_dict)
    stim_dict = copy.deepcopy(stimulus_params.default_stim_dict)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    net_dict.update(N_scaling=N_scaling, K_scaling=K_scaling, bg_input_type=background, V0_type=V0_type)
    sim_dict.update(data_path=str(data_dir) + "/", rng_seed=seed, local_num_threads=threads,
                    t_presim=t_presim_ms, t_sim=t_sim_ms, print_time=False, store_metadata=False)
    stim_dict.update(thalamic_input=thalamic_input)

    timings = {}
    t0 = time.perf_counter()
    net = Network(sim_dict, net_dict, stim_dict)
    net.create()
    timings["create"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if per_population_synapse_models:
        with _per_population_synapse_models(nest, net.pops):
            net.connect()
    else:
        net.connect()
    timings["connect"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    net.simulate(t_presim_ms)
    timings["presim"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    net.simulate(t_sim_ms)
    timings["sim"] = time.perf_counter() - t0
    spikes, sizes = {}, {}
    for pop, nodes, rec in zip(net_dict["populations"], net.pops, net.spike_recorders):
        first = nodes[0].global_id
        sizes[pop] = len(nodes)
        senders, times = _read_ascii(data_dir, rec.global_id)
        spikes[pop] = (senders - first, times)
    return {"spikes": spikes, "sizes": sizes, "timings_s": timings, "peak_memory_mb": peak_memory_mb()}


@contextlib.contextmanager
def _per_population_synapse_models(nest, pops):
    """While active, route Connect calls into each target population to its own static_synapse copy.

    The package hard-codes ``static_synapse``; handing its module a thin proxy
    of ``nest`` with a wrapped ``Connect`` gives each target population its
    own copy without editing the package (the ``nest`` module itself refuses
    attribute assignment).
    """
    import microcircuit.network as mc_network

    first_ids = {pop[0].global_id: i for i, pop in enumerate(pops)}
    names = [f"ref_static_{i}" for i in range(len(pops))]
    for name in names:
        nest.CopyModel("static_synapse", name)
    original = nest.Connect

    def connect(pre, post, conn_spec=None, syn_spec=None, **kwargs):
        idx = first_ids.get(post[0].global_id) if len(post) else None
        if idx is not None and isinstance(syn_spec, dict) and syn_spec.get("synapse_model",
                                                                             "static_synapse") == "static_synapse":
            syn_spec = {**syn_spec, "synapse_model": names[idx]}
        return original(pre, post, conn_spec=conn_spec, syn_spec=syn_spec, **kwargs)

    class _Proxy:
        Connect = staticmethod(connect)

        def __getattr__(self, name):
            return getattr(nest, name)

    mc_network.nest = _Proxy()
    try:
        yield
    finally:
        mc_network.nest = nest


def _read_ascii(data_dir: Path, recorder_gid: int):
    """Read NEST ASCII spike files of one recorder (one file per virtual process)."""
    senders, times = [], []
    for file in sorted(data_dir.glob(f"spike_recorder-{recorder_gid}-*.dat")):
        data = np.loadtxt(file, skiprows=3, ndmin=2)
        if data.size:
            senders.append(data[:, 0].astype(np.int64))
            times.append(data[:, 1])
    if not senders:
        return np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(senders), np.concatenate(times)
