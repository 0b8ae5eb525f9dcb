"""Tiny experiment configs and CLI calls for the experiment tests.

The networks are tiny (N_scaling 0.03, K_scaling 0.1, 1 s analysed): each run
takes a second or two, yet every population fires enough for all statistics.
"""

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SNAKEFILE = REPO / "experiments" / "Snakefile"
CLI = [sys.executable, "-m", "cortexzoo.experiments.cli"]
# Test machines share their cores. NEST's OpenMP threads spin while they wait,
# which slows 2-thread runs 3-7x when other processes compete for the cores;
# passive waiting keeps the tiny runs at a few seconds. Results are unchanged.
ENV = {**os.environ, "OMP_WAIT_POLICY": "passive"}

TINY = """\
[experiment]
name = "{name}"
description = "tiny test experiment"
results_dir = "{results_dir}"

[simulation]
threads = {threads}
t_presim_ms = 100.0
t_sim_ms = 1000.0

[network]
N_scaling = 0.03
K_scaling = 0.1
background = "poisson"

[reference]
model = "iaf_psc_exp"
seeds = [1, 2, 3]
"""

# The head of a small config named "bad" whose body the config-error tests append.
HEAD = """\
[experiment]
name = "bad"
results_dir = "{results}"

[network]
N_scaling = 0.02
K_scaling = 0.05

[reference]
seeds = [1, 2, 3]
"""

VARIANTS = {
    "lif_hot": 'model = "iaf_psc_exp"\nparams = { V_th = "-52 mV" }\n',
    "lif_cold": 'model = "iaf_psc_exp"\nparams = { V_th = "-48 mV" }\n',
    "lif_nestml": 'model = "iaf_psc_exp_nestml"\n',
}


def write_tiny_config(path, name, results_dir, variants=("lif_hot",), threads=1):
    """Write a tiny experiment config with three reference seeds and the given variants.

    Parameters
    ----------
    path : pathlib.Path
        TOML file to write.
    name : str
        Experiment name.
    results_dir : pathlib.Path
        Results folder; the experiment directory is ``results_dir / name``.
    variants : sequence of str
        Keys of ``VARIANTS``.
    threads : int
        NEST threads per run.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    text = TINY.format(name=name, results_dir=results_dir, threads=threads)
    for label in variants:
        text += f"\n[variants.{label}]\n{VARIANTS[label]}"
    Path(path).write_text(text)
    return Path(path)


def cli(*args, cwd, timeout=600, env=None):
    """Run the ``cortexzoo`` command line in a subprocess; return the CompletedProcess.

    ``env`` adds variables to the test environment (e.g. ``CORTEXZOO_CATALOGUE``).
    """
    return subprocess.run([*CLI, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**ENV, **(env or {})})


def metadata_stamps(runs_dir):
    """Run name -> (mtime_ns, text) of every finished run's metadata.json."""
    return {p.parent.name: (p.stat().st_mtime_ns, p.read_text()) for p in Path(runs_dir).glob("*/metadata.json")}


def compare_until(config, cwd, pattern, timeout=300, command="compare"):
    """Start `cortexzoo compare`, SIGKILL it when a stderr line matches ``pattern``; return the lines seen."""
    proc = subprocess.Popen([*CLI, command, str(config)], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line)
            if re.search(pattern, line):
                proc.kill()
                break
    finally:
        proc.kill()
        proc.wait()
        watchdog.cancel()
        proc.stderr.close()
    assert re.search(pattern, "".join(lines)), "compare ended before the kill point:\n" + "".join(lines)
    assert proc.returncode == -9
    return lines
