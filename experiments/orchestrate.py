"""Run an experiment: build -> simulations (cached by config hash) -> validation -> report.

Layout of an experiment directory::

    <results_dir>/<name>/
      experiment.toml        copy of the config used
      runs/<label>-seed<k>/  one run directory per (model, seed), see network/output.py
      validation/            scores.csv, scores.json, figures (validation/pipeline.py)
      report/index.html      self-contained report, plus summary.md

A run is reused when a finished run directory with the same config hash is
already there, so adding a variant only simulates that variant, and an
interrupted ``compare`` resumes where it stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from cortexzoo.errors import CortexzooError
from cortexzoo.experiments.config import Experiment, PlannedRun
from cortexzoo.network.output import is_complete


def run_dir(experiment_dir: Path, run: PlannedRun) -> Path:
    """Directory of one planned run inside an experiment directory."""
    return Path(experiment_dir) / "runs" / run.name


def cached(path: Path, run: PlannedRun) -> bool:
    """True when ``path`` holds a finished run of exactly this config.

    Parameters
    ----------
    path : pathlib.Path
    run : PlannedRun

    Returns
    -------
    bool
    """
    from cortexzoo.network.run import run_hash

    if not is_complete(path):
        return False
    try:
        meta = json.loads((path / "metadata.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("config_hash") == run_hash(run.config)


def prepare_experiment_dir(experiment: Experiment, out: Path | None = None) -> Path:
    """Create the experiment directory and record the config there.

    Parameters
    ----------
    experiment : Experiment
    out : pathlib.Path, optional
        Overrides ``<results_dir>/<name>``.

    Returns
    -------
    pathlib.Path
    """
    exp_dir = experiment.out_dir(out)
    marker = exp_dir / "experiment.toml"
    if exp_dir.exists() and any(exp_dir.iterdir()) and not marker.exists():
        raise CortexzooError(
            f"{exp_dir} exists and is not a cortexzoo experiment directory (no experiment.toml).",
            "Choose another --out or results_dir; cortexzoo never writes into foreign directories.",
        )
    (exp_dir / "runs").mkdir(parents=True, exist_ok=True)
    # One temporary name per process: parallel workflow jobs all record the config.
    tmp = marker.with_name(f".{marker.name}.{os.getpid()}.tmp")
    shutil.copyfile(experiment.path, tmp)
    tmp.replace(marker)
    return exp_dir


def select_runs(experiment: Experiment, names=None) -> list:
    """Planned runs by name, in plan order.

    Parameters
    ----------
    experiment : Experiment
    names : list of str, optional
        Run names (``<label>-seed<k>``); all planned runs when None.

    Returns
    -------
    list of PlannedRun

    Raises
    ------
    CortexzooError
        For a name the experiment does not plan.
    """
    if names is None:
        return list(experiment.runs)
    planned = {r.name: r for r in experiment.runs}
    unknown = [n for n in names if n not in planned]
    if unknown:
        raise CortexzooError(f"{experiment.path} plans no run named {', '.join(map(repr, unknown))}.",
                             f"Planned runs: {', '.join(planned)}.")
    return [r for r in experiment.runs if r.name in set(names)]


def pending_runs(experiment: Experiment, exp_dir: Path, only=None) -> list:
    """Planned runs that still need simulating: missing, unfinished, or made from another config.

    This one test decides for the CLI and for the Snakemake workflow alike, so
    each resumes the other's work.

    Parameters
    ----------
    experiment : Experiment
    exp_dir : pathlib.Path
    only : list of str, optional
        Restrict to these run names.

    Returns
    -------
    list of PlannedRun
    """
    return [r for r in select_runs(experiment, only) if not cached(run_dir(exp_dir, r), r)]


def run_all(experiment: Experiment, exp_dir: Path, say, only=None) -> dict:
    """Simulate every planned run that is not cached yet.

    Parameters
    ----------
    experiment : Experiment
    exp_dir : pathlib.Path
    say : callable
        Progress printer.
    only : list of str, optional
        Restrict to these run names (one workflow job simulates one run).

    Returns
    -------
    dict
        ``{"simulated": [...], "cached": [...]}`` lists of run names.
    """
    from cortexzoo.network.pd14 import check_neuron_parameters
    from cortexzoo.network.run import run_network

    selected = select_runs(experiment, only)
    todo = pending_runs(experiment, exp_dir, only)
    # Catch a misspelt parameter of the last variant before the first run starts.
    for run in todo:
        table = "[reference]" if run.is_reference else f"[variants.{run.label}]"
        check_neuron_parameters(run.config, where=f"{experiment.path} {table}")
    done = [r.name for r in selected if r not in todo]
    if done:
        say(f"{len(done)} of {len(selected)} runs already done (cached): {', '.join(done)}")
    durations = []
    for k, run in enumerate(todo, 1):
        eta = ""
        if durations:
            eta = f", ~{sum(durations) / len(durations) * (len(todo) - k + 1):.0f} s left for the runs"
        say(f"run {k}/{len(todo)}: {run.name} ({run.config.neuron['model']}){eta}")
        t0 = time.perf_counter()
        target = run_dir(exp_dir, run)
        # A finished run with another config is replaced; its hash tells it apart.
        run_network(run.config, target, overwrite=is_complete(target), progress=lambda m, n=run.name: say(f"  {n}: {m}"))
        durations.append(time.perf_counter() - t0)
    return {"simulated": [r.name for r in todo], "cached": done}


def validate_experiment(experiment: Experiment, exp_dir: Path, say):
    """Score every variant run against the reference seeds into ``exp_dir/validation``.

    Parameters
    ----------
    experiment : Experiment
    exp_dir : pathlib.Path
    say : callable

    Returns
    -------
    cortexzoo.validation.pipeline.ValidationResult
    """
    from cortexzoo.validation.pipeline import validate

    refs = [run_dir(exp_dir, r) for r in experiment.reference_runs]
    cands = [run_dir(exp_dir, r) for r in experiment.variant_runs]
    # A silent variant is a finding to report, not an input error.
    return validate(refs, cands, exp_dir / "validation", settings=experiment.tables["validation"]["settings"],
                    progress=say, degenerate_candidates="flag")


def compare(experiment: Experiment, exp_dir: Path, say) -> dict:
    """The main job: build the NESTML module, simulate what is missing, validate, report.

    Parameters
    ----------
    experiment : Experiment
    exp_dir : pathlib.Path
    say : callable

    Returns
    -------
    dict
        As :func:`cortexzoo.validation.report.write_report`.
    """
    from cortexzoo.models.build import build_module
    from cortexzoo.validation.report import write_report

    t0 = time.perf_counter()
    if any(_is_nestml(r) for r in experiment.runs):
        result = build_module(progress=say)
        say(f"NESTML module {'cached' if result.cache_hit else 'built'} ({result.seconds:.1f} s)")
    run_all(experiment, exp_dir, say)
    say("validating")
    validate_experiment(experiment, exp_dir, say)
    say("writing report")
    report = write_report(exp_dir)
    say(f"compare finished in {time.perf_counter() - t0:.0f} s")
    return report


def _is_nestml(run: PlannedRun) -> bool:
    from cortexzoo.models.catalogue import get_model

    return get_model(run.config.neuron["model"]).is_nestml
