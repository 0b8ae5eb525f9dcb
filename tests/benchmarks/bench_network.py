"""Benchmark and parity check: our PD14 core against INM-6's `microcircuit` 1.0 package.

Runs both implementations in turn, each in its own process (so peak memory is
its own), at the same scale, seed, threads and background, and prints
construction time, simulation time, real-time factor and peak memory with the
ratios ours/theirs, plus per-population mean rates and the KS distances of
rate and CV distributions (ours vs theirs, and theirs vs theirs with another
seed when --parity is given).

    python tests/benchmarks/bench_network.py                 # scale 0.1, Poisson
    python tests/benchmarks/bench_network.py --full --background dc --t-sim 1000
    python tests/benchmarks/bench_network.py --parity        # adds a second package seed

Never run two full-scale jobs at once: each needs about 15 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def worker(args) -> None:
    """Run one implementation and dump timings, memory and spike statistics as JSON."""
    if args.worker == "ours":
        from cortexzoo.network.params import parse_run_config
        from cortexzoo.network.pd14 import simulate_pd14

        config = parse_run_config({
            "simulation": {"seed": args.seed, "threads": args.threads, "t_presim_ms": args.t_presim,
                           "t_sim_ms": args.t_sim},
            # The package compensates K-scaling with the LIF's full-scale rates; so do we here.
            "network": {"N_scaling": args.scale, "K_scaling": args.scale, "background": args.background,
                        "allow_subthreshold": True, "k_compensation": "reference_rates"},
            "neuron": {"model": args.model}})
        res = simulate_pd14(config, progress=lambda m: print(m, file=sys.stderr, flush=True))
        out = {"spikes": res.spikes, "sizes": res.counts["neurons"], "timings_s": res.timings_s,
               "peak_memory_mb": res.peak_memory_mb}
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, where the package runner lives
        from reference_package import run_reference_package

        with tempfile.TemporaryDirectory() as tmp:
            out = run_reference_package(tmp, args.scale, args.scale, args.background, args.seed, args.threads,
                                        args.t_presim, args.t_sim)
    window = (args.t_presim, args.t_presim + args.t_sim)
    stats = {}
    for pop, (ids, times) in out["spikes"].items():
        keep = (times > window[0]) & (times <= window[1])
        ids, times = ids[keep], times[keep]
        n = out["sizes"][pop]
        rates = np.bincount(ids, minlength=n) / (args.t_sim / 1000.0)
        order = np.lexsort((times, ids))
        ids, times = ids[order], times[order]
        bounds = np.searchsorted(ids, np.arange(n + 1))
        cvs = []
        for k in range(n):
            isi = np.diff(times[bounds[k]:bounds[k + 1]])
            if len(isi) >= 2:
                cvs.append(float(isi.std() / isi.mean()))
        stats[pop] = {"rates": rates.tolist(), "cvs": cvs}
    result = {"timings_s": out["timings_s"], "peak_memory_mb": out["peak_memory_mb"], "stats": stats}
    Path(args.json).write_text(json.dumps(result))


def run_worker(kind: str, args, seed: int) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        path = fh.name
    cmd = [sys.executable, __file__, "--worker", kind, "--json", path, "--seed", str(seed),
           "--scale", str(args.scale), "--background", args.background, "--threads", str(args.threads),
           "--t-presim", str(args.t_presim), "--t-sim", str(args.t_sim), "--model", args.model]
    print(f"# running {kind} (seed {seed}) ...", flush=True)
    # Both implementations get the same OpenMP wait policy.
    env = dict(os.environ)
    if args.omp_wait_policy != "default":
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL if args.quiet else None,
                   env=env)
    data = json.loads(Path(path).read_text())
    Path(path).unlink()
    return data


def ks(a, b) -> float:
    from scipy.stats import ks_2samp

    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return float(ks_2samp(a, b).statistic)


def main(argv=None) -> int:
    """Run the benchmark; see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=float, default=0.1, help="N_scaling = K_scaling (default 0.1)")
    p.add_argument("--full", action="store_true", help="full scale (overrides --scale)")
    p.add_argument("--background", default="poisson", choices=("poisson", "dc"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=55)
    p.add_argument("--t-presim", type=float, default=500.0)
    p.add_argument("--t-sim", type=float, default=1000.0)
    p.add_argument("--model", default="iaf_psc_exp", help="our neuron model (catalogue name)")
    p.add_argument("--parity", action="store_true", help="also run the package with seed+1 for the KS null")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--ours-first", action="store_true",
                   help="run ours before theirs (default: theirs first), to expose order effects")
    p.add_argument("--omp-wait-policy", default="default", choices=("default", "PASSIVE", "ACTIVE"),
                   help="OMP_WAIT_POLICY for both implementations (default: as in the environment)")
    p.add_argument("--worker", choices=("ours", "theirs"), help=argparse.SUPPRESS)
    p.add_argument("--json", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.full:
        args.scale = 1.0
    if args.worker:
        worker(args)
        return 0

    if args.ours_first:
        ours = run_worker("ours", args, args.seed)
        theirs = run_worker("theirs", args, args.seed)
    else:
        theirs = run_worker("theirs", args, args.seed)
        ours = run_worker("ours", args, args.seed)
    other = run_worker("theirs", args, args.seed + 1) if args.parity else None

    def construction(d):
        return d["timings_s"]["create"] + d["timings_s"]["connect"]

    rows = [
        ("  create s", ours["timings_s"]["create"], theirs["timings_s"]["create"]),
        ("  connect (incl. first Prepare) s", ours["timings_s"]["connect"], theirs["timings_s"]["connect"]),
        ("construction s", construction(ours), construction(theirs)),
        ("presimulation s", ours["timings_s"]["presim"], theirs["timings_s"]["presim"]),
        ("simulation s", ours["timings_s"]["sim"], theirs["timings_s"]["sim"]),
        ("total (construction+presim+sim) s", sum(ours["timings_s"].values()), sum(theirs["timings_s"].values())),
        ("real-time factor", ours["timings_s"]["sim"] / (args.t_sim / 1000), theirs["timings_s"]["sim"] / (args.t_sim / 1000)),
        ("peak memory MB", ours["peak_memory_mb"], theirs["peak_memory_mb"]),
    ]
    print(f"\nPD14 scale {args.scale}, {args.background} background, {args.threads} threads "
          f"(OMP_WAIT_POLICY={args.omp_wait_policy}), seed {args.seed}, "
          f"T_sim {args.t_sim:.0f} ms, our model {args.model}, {'ours' if args.ours_first else 'theirs'} first")
    print("construction = create + connect + NEST's first Prepare (the package's connect() calls it too)")
    print(f"{'measure':34s} {'ours':>10s} {'theirs':>10s} {'ours/theirs':>12s}")
    for name, a, b in rows:
        print(f"{name:34s} {a:10.3f} {b:10.3f} {a / b:12.3f}")
    print(f"\n{'pop':5s} {'rate ours':>10s} {'rate theirs':>12s} {'KS rate':>8s} {'KS CV':>7s}"
          + (f" {'KS rate null':>13s} {'KS CV null':>11s}" if other else ""))
    for pop, s_ours in ours["stats"].items():
        s_ref = theirs["stats"][pop]
        line = (f"{pop:5s} {np.mean(s_ours['rates']):10.3f} {np.mean(s_ref['rates']):12.3f} "
                f"{ks(s_ours['rates'], s_ref['rates']):8.3f} {ks(s_ours['cvs'], s_ref['cvs']):7.3f}")
        if other:
            s_alt = other["stats"][pop]
            line += f" {ks(s_ref['rates'], s_alt['rates']):13.3f} {ks(s_ref['cvs'], s_alt['cvs']):11.3f}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
