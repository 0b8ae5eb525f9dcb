"""Wall time of a warm `cortexzoo build` (cache hit), relative to a bare start of the CLI.

Run: ``python tests/benchmarks/bench_build.py [--reps R] [--cold]``.
Not collected by pytest (no ``test_`` prefix); tests/test_build.py checks the
behaviour (cache hit, nothing recompiled), this script the time.

A warm build should cost little more than starting Python and importing the
CLI: it hashes the sources and finds the cached module. Both commands run in
fresh processes, alternating (baseline, build, baseline, build, ...), and the
medians are reported, so load from other jobs drifts into both sides alike.
With ``--cold`` the script also compiles the module once into a temporary
cache (minutes) and prints the cold/warm ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

CLI = [sys.executable, "-m", "cortexzoo.experiments.cli"]
BASELINE = [sys.executable, "-c", "import cortexzoo.experiments.cli"]


def wall_time(cmd, env=None) -> float:
    """Seconds one command takes in a fresh process; raises if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return elapsed


def main(argv=None) -> int:
    """Print the medians of warm builds and bare CLI starts, optionally the cold build."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=7, help="alternating pairs to time (default 7)")
    parser.add_argument("--cold", action="store_true", help="also time one cold build in a temporary cache")
    args = parser.parse_args(argv)

    wall_time([*CLI, "--quiet", "build"])  # make sure the cache is warm
    baseline, warm = [], []
    for _ in range(args.reps):
        baseline.append(wall_time(BASELINE))
        warm.append(wall_time([*CLI, "--quiet", "build"]))
    base_s, warm_s = statistics.median(baseline), statistics.median(warm)
    print(f"import cortexzoo CLI (baseline): median {base_s:.3f} s over {args.reps}")
    print(f"warm `cortexzoo build`:          median {warm_s:.3f} s over {args.reps}")
    print(f"warm build - baseline:           {warm_s - base_s:+.3f} s  (ratio {warm_s / base_s:.2f})")

    if args.cold:
        with tempfile.TemporaryDirectory() as cache:
            cold_s = wall_time([*CLI, "--quiet", "build"], env={**os.environ, "CORTEXZOO_CACHE_DIR": cache})
        print(f"cold `cortexzoo build`:          {cold_s:.1f} s  (cold / warm {cold_s / warm_s:.0f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
