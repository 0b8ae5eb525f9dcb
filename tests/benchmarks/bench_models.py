"""NESTML vs NEST built-in cost: time per simulated second of 10,000 unconnected
neurons under Poisson input, both measured in the same run.

Run: ``python tests/benchmarks/bench_models.py [--neurons N] [--t-sim MS]``.
Not collected by pytest (no ``test_`` prefix).
"""

from __future__ import annotations

import argparse
import time

from cortexzoo.models import ready_kernel

ADEX = {"C_m": 250.0, "g_L": 25.0, "E_L": -65.0, "V_reset": -65.0, "t_ref": 2.0, "Delta_T": 2.0, "V_th": -50.0,
        "V_peak": 0.0, "a": 4.0, "b": 80.5, "tau_w": 144.0}
MAT2 = {"C_m": 250.0, "tau_m": 10.0, "E_L": -65.0, "t_ref": 2.0, "omega": -50.0}
GLIF = {"C_m": 250.0, "g": 25.0, "E_L": -65.0, "V_reset": -65.0, "V_th": -50.0, "t_ref": 2.0,
        "spike_dependent_threshold": True, "after_spike_currents": True, "adapting_threshold": True}
LIF = {"C_m": 250.0, "tau_m": 10.0, "E_L": -65.0, "V_reset": -65.0, "V_th": -50.0, "t_ref": 2.0}

# (built-in, its params, NESTML, its params, Poisson weight in pA)
PAIRS = [
    ("iaf_psc_exp", LIF, "iaf_psc_exp_nestml", LIF, 87.8),
    ("izhikevich", {}, "izhikevich_nestml", {}, 1.0),
    ("aeif_psc_exp", ADEX, "aeif_psc_exp_nestml", ADEX, 87.8),
    ("mat2_psc_exp", MAT2, "mat2_psc_exp_nestml", MAT2, 87.8),
    ("glif_psc", GLIF, "glif_psc_nestml", GLIF, 87.8),
]


def time_model(model: str, params: dict, weight: float, n: int, t_sim: float, receptor: str | None) -> float:
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
    float
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
    return (time.perf_counter() - t0) / (t_sim / 1000.0)


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
    args = parser.parse_args(argv)
    print(f"{'built-in':16s} {'s/sim-s':>8s}  {'NESTML':24s} {'s/sim-s':>8s}  ratio")
    for builtin, pb, nestml, pn, w in PAIRS:
        if args.models and builtin not in args.models:
            continue
        tb = time_model(builtin, pb, w, args.neurons, args.t_sim, None)
        tn = time_model(nestml, pn, w, args.neurons, args.t_sim, "EXC_SPIKES")
        print(f"{builtin:16s} {tb:8.3f}  {nestml:24s} {tn:8.3f}  {tn / tb:5.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
