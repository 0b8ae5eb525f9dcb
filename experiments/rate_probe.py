"""Population rates of one planned run in short chunks, for networks too slow to finish.

A network in a runaway high-rate state can take hours per simulated second, so
``cortexzoo run`` never reaches its analysis window and says nothing about what
happened. This probe builds the same network (same config, seed and
construction order as the run) and simulates it in chunks of ``--chunk-ms``,
printing and writing every population's rate per chunk, until ``--until-ms``
of model time or ``--budget-min`` of wall time, whichever comes first. It
writes nothing into the experiment's runs: a probe is a diagnosis, not a run.
At K_scaling < 1 it compensates with the LIF's full-scale rates (as
:func:`cortexzoo.network.pd14.build_network` does), not self-consistently; at
full scale there is nothing to compensate and the network is the run's.

Example (issue 12, the full-scale Izhikevich 2003 network)::

    python -m cortexzoo.experiments.rate_probe experiments/scale_fidelity.toml izhikevich-seed1 \\
        --until-ms 600 --chunk-ms 10 --budget-min 40 --out docs/results/izhikevich_full_scale_probe.csv
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

from cortexzoo.errors import CortexzooError, exit_code_of


def chunk_rates_Hz(senders, first_ids, sizes, chunk_ms: float) -> np.ndarray:
    """Mean rate per population from one chunk's spike senders.

    Parameters
    ----------
    senders : array of int
        Global NEST ids of the neurons that spiked in the chunk (one entry per spike).
    first_ids : sequence of int
        Global id of each population's first neuron (populations are contiguous).
    sizes : sequence of int
        Number of neurons per population.
    chunk_ms : float
        Length of the chunk.

    Returns
    -------
    numpy.ndarray
        Spikes per neuron per second, one entry per population.
    """
    senders = np.asarray(senders, dtype=np.int64)
    first = np.asarray(first_ids, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.int64)
    inside = [(senders >= f) & (senders < f + n) for f, n in zip(first, sizes)]
    counts = np.array([m.sum() for m in inside], dtype=float)
    return counts / sizes / (chunk_ms / 1000.0)


def planned_run(experiment_path, run_name: str):
    """The planned run called ``run_name`` in an experiment config.

    Raises
    ------
    CortexzooError
        When the experiment has no run of that name (the message lists them).
    """
    from cortexzoo.experiments.config import load_experiment

    experiment = load_experiment(experiment_path)
    runs = {r.name: r for r in experiment.runs}
    if run_name not in runs:
        raise CortexzooError(f"{experiment.path.name} plans no run called {run_name!r}.",
                             f"Use one of: {', '.join(runs)}.")
    return runs[run_name]


def probe(config, until_ms: float, chunk_ms: float, budget_s: float, say):
    """Simulate a run config chunk by chunk and yield each chunk's population rates.

    Yields
    ------
    dict
        ``t_start_ms``, ``t_stop_ms``, ``wall_s`` (of this chunk) and one rate in Hz per population.
    """
    from cortexzoo.network.pd14 import build_network

    nest, nodes, _, net = build_network(config, say=say)
    recorder = nest.Create("spike_recorder")  # from t = 0: the run's own recorders start after warm-up
    for pop in nodes.populations:
        nest.Connect(pop, recorder)
    first_ids = [pop[0].global_id for pop in nodes.populations]
    started, t = time.perf_counter(), 0.0
    while t < until_ms - 1e-9 and time.perf_counter() - started < budget_s:
        t0 = time.perf_counter()
        # Simulate, not Run: the recorder can be emptied only outside a Prepare/Cleanup context
        nest.Simulate(chunk_ms)
        rates = chunk_rates_Hz(recorder.get("events")["senders"], first_ids, net.num_neurons, chunk_ms)
        recorder.set(n_events=0)  # keep memory flat however many spikes a runaway makes
        yield {"t_start_ms": t, "t_stop_ms": t + chunk_ms, "wall_s": time.perf_counter() - t0,
               **dict(zip(net.populations, rates))}
        t += chunk_ms


def main(argv=None) -> int:
    """Command line: ``python -m cortexzoo.experiments.rate_probe EXPERIMENT RUN [options]``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("experiment", help="experiment config (path or shipped name)")
    p.add_argument("run", help="planned run, <label>-seed<k>")
    p.add_argument("--until-ms", type=float, default=600.0, help="model time to reach (default 600)")
    p.add_argument("--chunk-ms", type=float, default=10.0, help="chunk length (default 10)")
    p.add_argument("--budget-min", type=float, default=30.0, help="stop after this much wall time (default 30)")
    p.add_argument("--out", type=Path, help="CSV to write (one row per chunk)")
    return exit_code_of(run_probe, p.parse_args(argv))


def run_probe(args) -> list:
    """Run the probe for parsed arguments, printing each chunk and writing the CSV as it goes."""
    if args.chunk_ms <= 0 or args.until_ms <= 0:
        raise CortexzooError("--chunk-ms and --until-ms must be positive.", "Give durations in ms above 0.")
    run = planned_run(args.experiment, args.run)
    say = lambda msg: print(f"  {msg}", flush=True)  # noqa: E731
    rows, writer, handle = [], None, None
    try:
        for row in probe(run.config, args.until_ms, args.chunk_ms, args.budget_min * 60.0, say):
            rows.append(row)
            print(" ".join(f"{k}={v:.1f}" for k, v in row.items()), flush=True)
            if args.out:
                if writer is None:
                    handle = open(args.out, "w", newline="")
                    writer = csv.DictWriter(handle, fieldnames=list(row))
                    writer.writeheader()
                writer.writerow({k: round(v, 3) for k, v in row.items()})
                handle.flush()  # a probe stopped by hand keeps every chunk it finished
    finally:
        if handle:
            handle.close()
    return rows


if __name__ == "__main__":
    sys.exit(main())
