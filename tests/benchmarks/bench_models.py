"""NESTML vs NEST built-in cost: time per simulated second of 10,000 unconnected
neurons under Poisson input, both measured in the same run.

Run: ``python tests/benchmarks/bench_models.py [--neurons N] [--t-sim MS] [--reps R]``.
Not collected by pytest (no ``test_`` prefix).

Built-in and NESTML runs alternate (B N B N ...) and the medians are reported,
so that load from other jobs on a shared machine drifts into both sides alike.
Both sides get the same synaptic time constants (0.5 ms, the shared interface)
and initial V: the built-ins' own defaults (e.g. tau_syn_ex = 2 ms for
iaf_psc_exp) make them fire at several times the rate of their twin, and spike
sending then dominates what is timed. The spike counts are printed to show that
both sides do the same work.

Wall time on a loaded machine is noisy; for a stable number count instructions
(issue 4; ``NEST`` and the module built without ``-g``, so per-function totals)::

    valgrind --tool=callgrind --cache-sim=yes --branch-sim=yes \
        --toggle-collect='nest::SimulationManager::update_()' python script.py

with ``script.py`` creating 1000-10000 neurons as :func:`time_model` does, then
``callgrind_annotate --inclusive=yes --show=Ir,Bcm,D1mr`` for the model's
``update`` and ``handle(SpikeEvent&)``. Give the simulated caches this
machine's sizes (``--D1=32768,8,64 --LL=1048576,8,64`` for L2, or
``--LL=33554432,16,64`` for L3), because valgrind's guess is wrong here.

Measured (issue 4, 10,000 LIFs, 30 ms): after the shared input ring
(models_nestml/cpp/cortexzoo_input_ring.h) the NESTML LIF executes 1.03x the
instructions of iaf_psc_exp, with 0.97x its D1 misses, 0.99x its L2 misses,
1.03x its L3 misses and the same branch mispredictions, yet its wall time was
still 1.15-1.2x. The rest was heap layout, which callgrind does not model (no
TLB, no prefetcher): every neuron still allocated NESTML's two unused
"received"-flag ring buffers right after its input ring, so the rings of
successive neurons lay ~1.3 kB apart with dead memory between them. Skipping
those buffers for models without onReceive blocks brought the wall-time ratio
to 0.91 (fresh-process A/B, 8 pairs: 0.88 vs 1.18 before).
"""

from __future__ import annotations

import argparse
import statistics
import time

from cortexzoo.models import ready_kernel

# The shared synaptic interface (tau_syn = 0.5 ms) and the same initial V on both sides.
SYN_BUILTIN = {"tau_syn_ex": 0.5, "tau_syn_in": 0.5}
SYN_NESTML = {"tau_syn_exc": 0.5, "tau_syn_inh": 0.5}

ADEX = {"C_m": 250.0, "g_L": 25.0, "E_L": -65.0, "V_reset": -65.0, "t_ref": 2.0, "Delta_T": 2.0, "V_th": -50.0,
        "V_peak": 0.0, "a": 4.0, "b": 80.5, "tau_w": 144.0}
MAT2 = {"C_m": 250.0, "tau_m": 10.0, "E_L": -65.0, "t_ref": 2.0, "omega": -50.0}
GLIF = {"C_m": 250.0, "g": 25.0, "E_L": -65.0, "V_reset": -65.0, "V_th": -50.0, "t_ref": 2.0,
        "spike_dependent_threshold": True, "after_spike_currents": True, "adapting_threshold": True}
LIF = {"C_m": 250.0, "tau_m": 10.0, "E_L": -65.0, "V_reset": -65.0, "V_th": -50.0, "t_ref": 2.0}

# (built-in, its params, NESTML, its params, Poisson weight in pA)
# NEST's izhikevich has delta synapses (weight = V jump in mV) and glif_psc alpha
# currents, so those two pairs differ in the synapse and only roughly in rate.
PAIRS = [
    ("iaf_psc_exp", {**LIF, **SYN_BUILTIN, "V_m": -65.0}, "iaf_psc_exp_nestml", {**LIF, **SYN_NESTML, "V_m": -65.0},
     87.8),
    ("izhikevich", {}, "izhikevich_nestml", {**SYN_NESTML}, 1.0),
    ("aeif_psc_exp", {**ADEX, **SYN_BUILTIN, "V_m": -65.0}, "aeif_psc_exp_nestml",
     {**ADEX, **SYN_NESTML, "V_m": -65.0}, 87.8),
    ("mat2_psc_exp", {**MAT2, **SYN_BUILTIN, "V_m": -65.0}, "mat2_psc_exp_nestml",
     {**MAT2, **SYN_NESTML, "V_m": -65.0}, 87.8),
    ("glif_psc", {**GLIF, "V_m": -65.0}, "glif_psc_nestml", {**GLIF, **SYN_NESTML, "V_m": -65.0}, 87.8),
]


def time_model(model: str, params: dict, weight: float, n: int, t_sim: float, receptor: str | None) -> tuple:
    """Wall seconds per simulated second for ``n`` neurons driven by Poisson input.

    Parameters
    ----------
    model : str
    params : dict
    weight : float
        Poisson synapse weight (pA; for NEST's izhikevich a V jump in mV).
    n : int
        Number of neurons.
    t_sim : float
        Simulated time (ms) that is timed.
    receptor : str or None
        NESTML port for the input, None for built-ins.

    Returns
    -------
    tuple of (float, int)
        Seconds per simulated second, and the spikes emitted in the timed part.
    """
    nest = ready_kernel(threads=1, resolution_ms=0.1, seed=1)
    if model == "glif_psc":
        params = dict(params, tau_syn=[0.5])  # one alpha-PSC receptor, numbered 1
    pop = nest.Create(model, n, params=params)
    pg = nest.Create("poisson_generator", params={"rate": 8000.0})
    syn = {"weight": weight, "delay": 1.5}
    if receptor:
        syn["receptor_type"] = pop[0].get("receptor_types")[receptor]
    elif model == "glif_psc":
        syn["receptor_type"] = 1
    nest.Connect(pg, pop, syn_spec=syn)
    nest.Simulate(100.0)  # warm-up, not timed
    t0 = time.perf_counter()
    nest.Simulate(t_sim)
    # local_spike_counter counts the spikes of the latest Simulate call only.
    return (time.perf_counter() - t0) / (t_sim / 1000.0), nest.local_spike_counter


def main(argv=None) -> int:
    """Time every twin pair and print the NESTML/built-in ratios.

    Parameters
    ----------
    argv : list of str, optional

    Returns
    -------
    int
    """
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--neurons", type=int, default=10_000)
    parser.add_argument("--t-sim", type=float, default=1000.0, help="timed simulated ms")
    parser.add_argument("--models", nargs="*", help="built-in names to time (default: all pairs)")
    parser.add_argument("--reps", type=int, default=3, help="alternating repetitions per pair (medians reported)")
    args = parser.parse_args(argv)
    print(f"{'built-in':16s} {'s/sim-s':>8s} {'spikes':>8s}  {'NESTML':24s} {'s/sim-s':>8s} {'spikes':>8s}  "
          "ratio  (paired ratios)")
    for builtin, pb, nestml, pn, w in PAIRS:
        if args.models and builtin not in args.models:
            continue
        tbs, tns = [], []
        for _ in range(args.reps):  # B N B N ...: machine load drifts into both
            tb, sb = time_model(builtin, pb, w, args.neurons, args.t_sim, None)
            tn, sn = time_model(nestml, pn, w, args.neurons, args.t_sim, "EXC_SPIKES")
            tbs.append(tb)
            tns.append(tn)
        tb, tn = statistics.median(tbs), statistics.median(tns)
        paired = " ".join(f"{n / b:.2f}" for b, n in zip(tbs, tns))
        print(f"{builtin:16s} {tb:8.3f} {sb:8d}  {nestml:24s} {tn:8.3f} {sn:8d}  {tn / tb:5.2f}  ({paired})",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
