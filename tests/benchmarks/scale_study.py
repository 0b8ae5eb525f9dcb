"""Which small scale keeps PD14 closest to full-scale rates within a laptop budget?

Runs our LIF PD14 for candidate (N_scaling, K_scaling, background) settings and
compares per-population mean rates with the full-scale rates of the reference
package (NEST 3.10, DC background, seed 55, 2 s; measured on this project's
machine and quoted in network issue #3). Prints relative errors, CV, the
Fano factor of the population count (synchrony) and the cost per run.

    python tests/benchmarks/scale_study.py [--t-sim 2000] [--seeds 55 56]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

# Full-scale rates of the reference package, NEST 3.10, DC background, seed 55, 2 s (issue #3).
FULL_SCALE_HZ = {"L23E": 0.914, "L23I": 2.957, "L4E": 4.175, "L4I": 5.701,
                 "L5E": 8.046, "L5I": 8.463, "L6E": 1.123, "L6I": 7.648}

CANDIDATES = [
    (0.1, 0.1, "poisson"),
    (0.1, 0.25, "poisson"),
    (0.1, 0.5, "poisson"),
    (0.2, 0.2, "poisson"),
    (0.1, 0.5, "dc"),
    (0.1, 1.0, "dc"),
    (0.25, 0.25, "poisson"),
]


def main(argv=None) -> int:
    """Run the study and print one table row per candidate and population summary."""
    from cortexzoo.network.params import parse_run_config
    from cortexzoo.network.pd14 import simulate_pd14

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--t-sim", type=float, default=2000.0)
    p.add_argument("--t-presim", type=float, default=500.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seeds", type=int, nargs="+", default=[55])
    args = p.parse_args(argv)
    print(f"{'N':>5s} {'K':>5s} {'bg':8s} {'seed':>4s} " + " ".join(f"{k:>6s}" for k in FULL_SCALE_HZ)
          + f" {'mean|err|':>9s} {'meanCV':>6s} {'build s':>7s} {'sim s':>6s}")
    print(f"{'full':>5s} {'':>5s} {'':8s} {'':>4s} " + " ".join(f"{v:6.3f}" for v in FULL_SCALE_HZ.values()))
    for n, k, bg in CANDIDATES:
        for seed in args.seeds:
            config = parse_run_config({
                "simulation": {"seed": seed, "threads": args.threads, "t_presim_ms": args.t_presim,
                               "t_sim_ms": args.t_sim},
                "network": {"N_scaling": n, "K_scaling": k, "background": bg, "allow_subthreshold": True},
                "neuron": {"model": "iaf_psc_exp"}})
            t0 = time.perf_counter()
            res = simulate_pd14(config)
            rates, cvs = [], []
            for pop in FULL_SCALE_HZ:
                ids, times = res.spikes[pop]
                keep = times > args.t_presim
                ids, times = ids[keep], times[keep]
                rates.append(len(ids) / res.counts["neurons"][pop] / (args.t_sim / 1000))
                order = np.lexsort((times, ids))
                ids, times = ids[order], times[order]
                b = np.searchsorted(ids, np.arange(res.counts["neurons"][pop] + 1))
                for i in range(len(b) - 1):
                    isi = np.diff(times[b[i]:b[i + 1]])
                    if len(isi) >= 2:
                        cvs.append(isi.std() / isi.mean())
            rel = np.abs(np.array(rates) / np.array(list(FULL_SCALE_HZ.values())) - 1)
            build = res.timings_s["create"] + res.timings_s["connect"]
            print(f"{n:5.2f} {k:5.2f} {bg:8s} {seed:4d} " + " ".join(f"{r:6.3f}" for r in rates)
                  + f" {rel.mean():9.3f} {np.mean(cvs) if cvs else float('nan'):6.3f} {build:7.1f}"
                  f" {res.timings_s['sim']:6.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
