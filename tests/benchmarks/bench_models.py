"""NESTML vs NEST built-in cost: time per simulated second of 10,000 unconnected
neurons under Poisson input, both measured in the same run; and the cost of
the AdEx variants relative to iaf_psc_exp, also measured in the same run.

Run: ``python tests/benchmarks/bench_models.py [--neurons N] [--t-sim MS] [--reps R]``.
Not collected by pytest (no ``test_`` prefix).

Built-in and NESTML runs alternate (B N B N ...) and the medians are reported,
so that load from other jobs on a shared machine drifts into both sides alike.
The second table times each model of :data:`RELATIVE_TO_LIF` alternately with
iaf_psc_exp (L M L M ...) and prints model / iaf_psc_exp: the cost target of
issue 15 for the fixed-step AdEx (aeif_psc_exp_fast_nestml) is <= 2.
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

Measured (issue 15, 2026-11-28, beside a full-scale simulation on the other core;
``--models iaf_psc_exp --reps 3``), cost relative to iaf_psc_exp per simulated second:
aeif_psc_exp_fast_nestml 1.47 and 1.86 in two runs (paired 1.44-1.55 and 1.73-1.92),
aeif_psc_exp (GSL) 10.3 and 6.9, aeif_psc_exp_nestml 10.4 and 7.8; with ``--rate 11000``
(AdEx ~11 Hz) the fast AdEx 1.57 (1.30-1.99). Load from other jobs moves these ratios by
~25 %. Three chained exp() per step (~24 ns each here) are most of the fast AdEx's extra cost.

Measured (issue 15, 2026-11-28, machine load 5-7 on 2 cores: a full-scale run, builds and other
benchmarks beside it; ``--models iaf_cond_exp aeif_cond_exp --relative``), NESTML / NEST per simulated
second: iaf_cond_exp_nestml 1.10 (``--reps 3``, paired 1.19 0.90 0.97; 53.5 s/sim-s built-in) and 1.07
(``--reps 4 --t-sim 500``, paired 0.84-1.33); aeif_cond_exp_nestml 0.61 (paired 0.54-0.65; 107 s/sim-s
built-in, both ~0 Hz): NEST's aeif_cond_exp controls GSL's step by the derivative (yp, 1e-6) and starts
from a 0.01 ms step, NESTML by the solution (y, 1e-6 abs and rel), which takes fewer inner steps here.

Measured (issue 15, 2026-11-28, load average ~7 on 2 cores; ``--models iaf_psc_exp gif_psc_exp
--relative --reps 5``): gif_psc_exp_nestml / gif_psc_exp 1.06 (paired 0.98 0.87 0.87 1.03 1.07;
both 69,394 spikes, ~7 Hz: the same seed gives the same spikes), iaf_psc_exp_nestml 0.85 in the same run.

Measured (issue 15, HH, 2026-11-28, ``--models hh_psc_alpha --relative hh_psc_alpha
hh_psc_exp_nestml hh_psc_exp_fast_nestml --t-sim 200``, beside a full-scale simulation and another
benchmark): hh_psc_alpha_nestml / hh_psc_alpha 1.03 (paired 0.92-1.18) with NEST's GSL tolerances
on both sides, 1.35 (1.15-1.40) with NESTML's default 1e-6/1e-6; relative to iaf_psc_exp:
hh_psc_alpha 11.5, hh_psc_exp_nestml 17.6, hh_psc_exp_fast_nestml 3.85 (paired 3.3-3.9).
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
# The LIF membrane with conductance synapses (g_L = C_m / tau_m); NEST's iaf_cond_exp fixes GSL's
# tolerances at abs 1e-3, rel 0, and its NESTML twin gets the same (NESTML's default: 1e-6, 1e-6).
COND_LIF = {"C_m": 250.0, "g_L": 25.0, "E_L": -65.0, "V_reset": -65.0, "V_th": -50.0, "t_ref": 2.0}
IAF_COND_GSL = {"gsl_abs_error_tol": 1e-3, "gsl_rel_error_tol": 0.0}
COND_WEIGHT_NS = 1.5  # PD14-like conductance weight: ~6 nS mean g_exc at 8000 Hz, near threshold
# GIF: the L5 pyramidal cell of NEST's gif_population example (two stc, two sfa; the NESTML
# model's unused third slots still cost their multiply per step); I_e brings the Poisson
# drive's mean (351 pA at 8000 Hz) down to ~130 pA (measured ~7 Hz).
GIF = {"C_m": 83.1, "g_L": 3.7, "E_L": -67.0, "Delta_V": 1.4, "V_T_star": -39.6, "t_ref": 4.0, "V_reset": -36.7,
       "lambda_0": 1.0, "I_e": -220.0}
GIF_BUILTIN = {**GIF, "q_stc": [56.7, -6.9], "tau_stc": [57.8, 218.2], "q_sfa": [11.7, 1.8], "tau_sfa": [53.8, 640.0]}
GIF_NESTML = {**GIF, "q_stc_1": 56.7, "q_stc_2": -6.9, "tau_stc_1": 57.8, "tau_stc_2": 218.2,
              "q_sfa_1": 11.7, "q_sfa_2": 1.8, "tau_sfa_1": 53.8, "tau_sfa_2": 640.0}

# (built-in, its params, NESTML, its params, Poisson weight in pA; nS for the conductance models)
# NEST's izhikevich has delta synapses (weight = V jump in mV) and glif_psc alpha
# currents, so those two pairs differ in the synapse and only roughly in rate.
PAIRS = [
    ("iaf_psc_exp", {**LIF, **SYN_BUILTIN, "V_m": -65.0}, "iaf_psc_exp_nestml", {**LIF, **SYN_NESTML, "V_m": -65.0},
     87.8),
    ("izhikevich", {}, "izhikevich_nestml", {**SYN_NESTML}, 1.0),
    ("aeif_psc_exp", {**ADEX, **SYN_BUILTIN, "V_m": -65.0}, "aeif_psc_exp_nestml",
     {**ADEX, **SYN_NESTML, "V_m": -65.0}, 87.8),
    ("iaf_cond_exp", {**COND_LIF, **SYN_BUILTIN, "V_m": -65.0}, "iaf_cond_exp_nestml",
     {**COND_LIF, **SYN_NESTML, **IAF_COND_GSL, "V_m": -65.0}, COND_WEIGHT_NS),
    ("aeif_cond_exp", {**ADEX, **SYN_BUILTIN, "V_m": -65.0}, "aeif_cond_exp_nestml",
     {**ADEX, **SYN_NESTML, "V_m": -65.0}, COND_WEIGHT_NS),
    ("mat2_psc_exp", {**MAT2, **SYN_BUILTIN, "V_m": -65.0}, "mat2_psc_exp_nestml",
     {**MAT2, **SYN_NESTML, "V_m": -65.0}, 87.8),
    ("glif_psc", {**GLIF, "V_m": -65.0}, "glif_psc_nestml", {**GLIF, **SYN_NESTML, "V_m": -65.0}, 87.8),
    ("gif_psc_exp", {**GIF_BUILTIN, **SYN_BUILTIN}, "gif_psc_exp_nestml", {**GIF_NESTML, **SYN_NESTML}, 87.8),
    # NEST's HH defaults (V_m -65 mV, gates at rest), alpha PSCs of 0.5 ms on both sides, and
    # hh_psc_alpha's GSL tolerances on the NESTML side (its default 1e-6/1e-6 costs 1.35x, above)
    ("hh_psc_alpha", {**SYN_BUILTIN}, "hh_psc_alpha_nestml", {**SYN_NESTML, **IAF_COND_GSL}, 87.8),
]

# Models timed against iaf_psc_exp (PAIRS[0]'s built-in side): (model, its params, NESTML port or None).
RELATIVE_TO_LIF = [
    ("aeif_psc_exp", {**ADEX, **SYN_BUILTIN, "V_m": -65.0}, None),
    ("aeif_psc_exp_nestml", {**ADEX, **SYN_NESTML, "V_m": -65.0}, "EXC_SPIKES"),
    ("aeif_psc_exp_fast_nestml", {**ADEX, **SYN_NESTML, "V_m": -65.0}, "EXC_SPIKES"),
    ("hh_psc_alpha", {**SYN_BUILTIN}, None),
    ("hh_psc_exp_nestml", {**SYN_NESTML}, "EXC_SPIKES"),
    ("hh_psc_exp_fast_nestml", {**SYN_NESTML}, "EXC_SPIKES"),
]


def time_model(model: str, params: dict, weight: float, n: int, t_sim: float, receptor: str | None,
               rate: float = 8000.0) -> tuple:
    """Wall seconds per simulated second for ``n`` neurons driven by Poisson input.

    Parameters
    ----------
    model : str
    params : dict
    weight : float
        Poisson synapse weight (pA; nS for conductance models; for NEST's izhikevich a V jump in mV).
    n : int
        Number of neurons.
    t_sim : float
        Simulated time (ms) that is timed.
    receptor : str or None
        NESTML port for the input, None for built-ins.
    rate : float
        Rate of the Poisson input (Hz).

    Returns
    -------
    tuple of (float, int)
        Seconds per simulated second, and the spikes emitted in the timed part.
    """
    nest = ready_kernel(threads=1, resolution_ms=0.1, seed=1)
    if model == "glif_psc":
        params = dict(params, tau_syn=[0.5])  # one alpha-PSC receptor, numbered 1
    pop = nest.Create(model, n, params=params)
    pg = nest.Create("poisson_generator", params={"rate": rate})
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


def alternate(first: tuple, second: tuple, reps: int) -> tuple:
    """Time two models alternately (A B A B ...), so that machine load drifts into both.

    Parameters
    ----------
    first, second : tuple
        Arguments of :func:`time_model` for each side.
    reps : int
        Repetitions.

    Returns
    -------
    tuple of (list, list, int, int)
        Seconds per simulated second of each run of ``first`` and ``second``, and the
        spike counts of their last runs.
    """
    times_a, times_b = [], []
    for _ in range(reps):
        t_a, spikes_a = time_model(*first)
        t_b, spikes_b = time_model(*second)
        times_a.append(t_a)
        times_b.append(t_b)
    return times_a, times_b, spikes_a, spikes_b


def ratio_columns(times_a, times_b) -> tuple:
    """Medians of both sides, the median ratio b / a and the paired ratios, as printed columns."""
    t_a, t_b = statistics.median(times_a), statistics.median(times_b)
    paired = " ".join(f"{b / a:.2f}" for a, b in zip(times_a, times_b))
    return t_a, t_b, f"{t_b / t_a:5.2f}  ({paired})"


def main(argv=None) -> int:
    """Time every twin pair and print the NESTML/built-in ratios, then the AdEx variants against the LIF.

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
    parser.add_argument("--rate", type=float, default=8000.0,
                        help="Poisson input rate (Hz); 8000 makes the AdEx fire ~1 Hz, 11000 ~12 Hz")
    parser.add_argument("--relative", nargs="*", default=[m for m, _, _ in RELATIVE_TO_LIF],
                        help="models to time against iaf_psc_exp (default: the AdEx variants; none: skip)")
    args = parser.parse_args(argv)
    print(f"{'built-in':16s} {'s/sim-s':>8s} {'spikes':>8s}  {'NESTML':24s} {'s/sim-s':>8s} {'spikes':>8s}  "
          "ratio  (paired ratios)")
    for builtin, pb, nestml, pn, w in PAIRS:
        if args.models and builtin not in args.models:
            continue
        tbs, tns, sb, sn = alternate((builtin, pb, w, args.neurons, args.t_sim, None, args.rate),
                                     (nestml, pn, w, args.neurons, args.t_sim, "EXC_SPIKES", args.rate), args.reps)
        tb, tn, ratio = ratio_columns(tbs, tns)
        print(f"{builtin:16s} {tb:8.3f} {sb:8d}  {nestml:24s} {tn:8.3f} {sn:8d}  {ratio}", flush=True)
    if args.relative:
        time_relative_to_lif(args.relative, args.neurons, args.t_sim, args.reps, args.rate)
    return 0


def time_relative_to_lif(models, n: int, t_sim: float, reps: int, rate: float = 8000.0) -> None:
    """Print each model's cost relative to iaf_psc_exp, the two timed alternately.

    Parameters
    ----------
    models : list of str
        Names from :data:`RELATIVE_TO_LIF`.
    n : int
        Number of neurons.
    t_sim : float
        Timed simulated ms.
    reps : int
        Alternating repetitions (L M L M ...); medians and paired ratios are printed.
    rate : float
        Rate of the Poisson input (Hz).
    """
    lif, lif_params, _, _, weight = PAIRS[0]
    print(f"\n{'model':24s} {'s/sim-s':>8s} {'spikes':>8s}  {lif:12s} {'s/sim-s':>8s} {'spikes':>8s}  "
          "ratio to iaf_psc_exp  (paired ratios)")
    for model, params, port in RELATIVE_TO_LIF:
        if model not in models:
            continue
        tls, tms, sl, sm = alternate((lif, lif_params, weight, n, t_sim, None, rate),
                                     (model, params, weight, n, t_sim, port, rate), reps)
        tl, tm, ratio = ratio_columns(tls, tms)
        print(f"{model:24s} {tm:8.3f} {sm:8d}  {lif:12s} {tl:8.3f} {sl:8d}  {ratio}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
