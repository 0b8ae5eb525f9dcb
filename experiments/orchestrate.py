"""Run an experiment: build -> simulations (cached by run identity) -> validation -> report.

Layout of an experiment directory::

    <results_dir>/<name>/
      experiment.toml        copy of the config used (the directory belongs to it)
      .cortexzoo.lock        while a process writes here (host, PID, start, command)
      runs/<label>-seed<k>/  one run directory per (model, seed), see network/output.py
      superseded/            finished runs replaced because their inputs changed
      validation/            scores.csv, scores.json, figures (validation/pipeline.py)
      theory/                mean-field theory next to the LIF reference (validation/theory_compare.py)
      report/index.html      self-contained report, plus summary.md

A run is reused when a finished run directory with the same identity (every
input that decides its spikes, see :mod:`cortexzoo.network.identity`) is
already there, so an interrupted ``compare`` resumes where it stopped. A run
whose inputs changed is simulated again and the old one kept in
``superseded/`` (deleted with ``--replace``). One process writes an experiment
at a time (:mod:`cortexzoo.locking`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from cortexzoo.errors import CortexzooError
from cortexzoo.experiments.config import Experiment, PlannedRun
from cortexzoo.locking import LOCK_FILE
from cortexzoo.network.identity import identity_changes, identity_hash, nested_differences, run_identity
from cortexzoo.network.output import damaged_files, is_complete
from cortexzoo.schema import read_toml


def run_dir(experiment_dir: Path, run: PlannedRun) -> Path:
    """Directory of one planned run inside an experiment directory."""
    return Path(experiment_dir) / "runs" / run.name


def run_state(path: Path, run: PlannedRun) -> tuple:
    """Whether ``path`` holds a finished run of exactly this run's inputs, and if not, why.

    Parameters
    ----------
    path : pathlib.Path
    run : PlannedRun

    Returns
    -------
    tuple
        ``(state, reasons)``: state is ``"cached"``, ``"missing"`` (nothing
        finished there) or ``"stale"`` (a finished run made from other
        inputs, or damaged since it was written); reasons name the inputs
        that changed or the damaged files.
    """
    if not is_complete(path):
        return "missing", []
    try:
        meta = json.loads((path / "metadata.json").read_text())
    except (OSError, ValueError) as exc:
        return "stale", [f"its metadata.json is unreadable ({type(exc).__name__})"]
    if not isinstance(meta, dict):
        return "stale", ["its metadata.json is not a table"]
    identity = run_identity(run.config)
    if meta.get("config_hash") == identity_hash(identity):
        damaged = damaged_files(path, meta)
        return ("stale", [f"damaged since it was written: {', '.join(damaged)}"]) if damaged else ("cached", [])
    old = meta.get("identity")
    return "stale", identity_changes(old, identity) or ["its recorded hash does not match its inputs"]


def cached(path: Path, run: PlannedRun) -> bool:
    """True when ``path`` holds a finished run of exactly this run's inputs (see :func:`run_state`)."""
    return run_state(path, run)[0] == "cached"


def refuse_foreign_dir(exp_dir: Path) -> None:
    """Refuse a directory that holds files but no ``experiment.toml`` (someone else's folder).

    Parameters
    ----------
    exp_dir : pathlib.Path

    Raises
    ------
    CortexzooError
    """
    exp_dir = Path(exp_dir)
    if exp_dir.is_file():
        raise CortexzooError(f"{exp_dir} is a file, not an experiment directory.", "Choose another --out.")
    if (exp_dir.exists() and not (exp_dir / "experiment.toml").exists()
            and any(p.name != LOCK_FILE for p in exp_dir.iterdir())):
        raise CortexzooError(
            f"{exp_dir} exists and is not a cortexzoo experiment directory (no experiment.toml).",
            "Choose another --out or results_dir; cortexzoo never writes into foreign directories.",
        )


def refuse_other_config(experiment: Experiment, exp_dir: Path) -> None:
    """Refuse an experiment directory whose recorded config differs from this one, naming the differences.

    Parameters
    ----------
    experiment : Experiment
    exp_dir : pathlib.Path

    Raises
    ------
    CortexzooError
    """
    marker = Path(exp_dir) / "experiment.toml"
    if not marker.exists():
        return
    diffs = nested_differences(read_toml(marker, "Recorded experiment config"), experiment.raw)
    if diffs:
        listing = "; ".join(diffs[:6]) + ("; ..." if len(diffs) > 6 else "")
        raise CortexzooError(
            f"{exp_dir} was made with another config than {experiment.path} ({listing}).",
            "Give this config another [experiment] name or --out; or adopt it there with --replace (Snakemake: "
            "--config replace=1): finished runs it shares are reused, runs made from other inputs are deleted and "
            "simulated again.",
        )


def check_planned_parameters(experiment: Experiment, only=None) -> None:
    """Refuse a misspelt neuron parameter of any selected run before anything is written or simulated.

    Parameters
    ----------
    experiment : Experiment
    only : list of str, optional

    Raises
    ------
    CortexzooError
    """
    from cortexzoo.network.pd14 import check_neuron_parameters

    for run in select_runs(experiment, only):
        table = "[reference]" if run.is_reference else f"[variants.{run.label}]"
        check_neuron_parameters(run.config, where=f"{experiment.path} {table}")


def prepare_experiment_dir(experiment: Experiment, out: Path | None = None, replace: bool = False) -> Path:
    """Create the experiment directory and record its config, or check it is the recorded one.

    An experiment directory belongs to one config: a different config under
    the same name (or ``--out``) would mix its runs into another study. The
    comparison is on the parsed TOML, so comments and layout do not count.

    Parameters
    ----------
    experiment : Experiment
    out : pathlib.Path, optional
        Overrides ``<results_dir>/<name>``.
    replace : bool
        Adopt this config for an existing directory whose recorded config differs.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    CortexzooError
        For a foreign directory, or a different recorded config without ``replace``.
    """
    exp_dir = experiment.out_dir(out)
    marker = exp_dir / "experiment.toml"
    refuse_foreign_dir(exp_dir)
    if marker.exists() and not replace:
        refuse_other_config(experiment, exp_dir)
        return exp_dir
    (exp_dir / "runs").mkdir(parents=True, exist_ok=True)
    # One temporary name per process, then an atomic rename.
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


def run_all(experiment: Experiment, exp_dir: Path, say, only=None, replace: bool = False) -> dict:
    """Simulate every planned run that is not cached yet, saying why each one is (re)done.

    A finished run made from other inputs is simulated again; the old one is
    moved to ``<exp>/superseded/<run>.<old hash>/`` once the new one is whole,
    or deleted with ``replace``.

    Parameters
    ----------
    experiment : Experiment
    exp_dir : pathlib.Path
    say : callable
        Progress printer.
    only : list of str, optional
        Restrict to these run names (one workflow job simulates one run).
    replace : bool
        Delete superseded runs instead of keeping them.

    Returns
    -------
    dict
        ``{"simulated": [...], "cached": [...], "redone": {run: [reasons]}}``.
    """
    selected = select_runs(experiment, only)
    states = {r.name: run_state(run_dir(exp_dir, r), r) for r in selected}
    todo = [r for r in selected if states[r.name][0] != "cached"]
    done = [r.name for r in selected if r not in todo]
    if done:
        say(f"{len(done)} of {len(selected)} runs already done (cached): {', '.join(done)}")
    redone = {name: why for name, (state, why) in states.items() if state == "stale"}
    for name, why in redone.items():
        say(f"{name} is simulated again: changed since it was made: {'; '.join(why)}")
    durations = []
    for k, run in enumerate(todo, 1):
        eta = ""
        if durations:
            eta = f", ~{sum(durations) / len(durations) * (len(todo) - k + 1):.0f} s left for the runs"
        say(f"run {k}/{len(todo)}: {run.name} ({run.config.neuron['model']}){eta}")
        t0 = time.perf_counter()
        _simulate_one(run, exp_dir, say, replace, experiment.tables["experiment"]["contributor"])
        durations.append(time.perf_counter() - t0)
    return {"simulated": [r.name for r in todo], "cached": done, "redone": redone}


def _simulate_one(run: PlannedRun, exp_dir: Path, say, replace: bool, contributor: str = "") -> None:
    from cortexzoo.network.run import run_network

    target = run_dir(exp_dir, run)
    finished = is_complete(target)
    keep = superseded_path(exp_dir, target) if finished and not replace else None
    run_network(run.config, target, overwrite=finished, keep_replaced=keep, contributor=contributor,
                progress=lambda m, n=run.name: say(f"  {n}: {m}"))
    if keep is not None:
        say(f"  {run.name}: the run it replaced is kept in {keep}")


def superseded_path(exp_dir: Path, run_path: Path) -> Path:
    """Where a replaced run is kept: ``<exp>/superseded/<run>.<its hash>`` (a new name if taken).

    Parameters
    ----------
    exp_dir : pathlib.Path
    run_path : pathlib.Path
        The finished run that is being replaced.

    Returns
    -------
    pathlib.Path
        Does not exist yet.
    """
    try:
        old_hash = str(json.loads((Path(run_path) / "metadata.json").read_text()).get("config_hash", "unknown"))
    except (OSError, ValueError, AttributeError):
        old_hash = "unreadable"
    keep = Path(exp_dir) / "superseded" / f"{Path(run_path).name}.{old_hash}"
    if keep.exists():
        keep = keep.with_name(f"{keep.name}.{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    return keep


def require_finished_runs(experiment: Experiment, exp_dir: Path, fix: str) -> None:
    """Refuse to score unless every run of the config is finished and made from exactly its inputs.

    Parameters
    ----------
    experiment : Experiment
    exp_dir : pathlib.Path
    fix : str
        What the error tells the user to do.

    Raises
    ------
    CortexzooError
        Listing up to five missing or stale runs with the reason.
    """
    not_ready = {r.name: run_state(run_dir(exp_dir, r), r) for r in experiment.runs}
    not_ready = {name: st for name, st in not_ready.items() if st[0] != "cached"}
    if not_ready:
        listing = "; ".join(f"{name} ({state}{': ' + ', '.join(why) if why else ''})"
                            for name, (state, why) in list(not_ready.items())[:5])
        raise CortexzooError(f"{len(not_ready)} run(s) of {experiment.path} are missing or were made from other "
                             f"inputs: {listing}{'; ...' if len(not_ready) > 5 else ''}.", fix)


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

    require_finished_runs(experiment, exp_dir, f"Run `cortexzoo run {experiment.path}` first (or `cortexzoo compare`).")
    refs = [run_dir(exp_dir, r) for r in experiment.reference_runs]
    # The seeds of one variant are tested together against the reference seeds.
    cands = {}
    for r in experiment.variant_runs:
        cands.setdefault(r.label, []).append(run_dir(exp_dir, r))
    # A silent variant is a finding to report, not an input error.
    return validate(refs, cands, exp_dir / "validation", settings=experiment.tables["validation"]["settings"],
                    progress=say, degenerate_candidates="flag", replace_folder=True)


def compare(experiment: Experiment, exp_dir: Path, say, replace: bool = False) -> dict:
    """The main job: build the NESTML module, simulate what is missing, validate, theory, report.

    Parameters
    ----------
    experiment : Experiment
    exp_dir : pathlib.Path
    say : callable
    replace : bool
        Delete superseded runs instead of keeping them (see :func:`run_all`).

    Returns
    -------
    dict
        As :func:`cortexzoo.validation.report.write_report`.
    """
    from cortexzoo.models.build import build_module
    from cortexzoo.validation.report import write_report
    from cortexzoo.validation.theory_compare import theory_stage

    t0 = time.perf_counter()
    if any(_is_nestml(r) for r in experiment.runs):
        result = build_module(progress=say)
        say(f"NESTML module {'cached' if result.cache_hit else 'built'} ({result.seconds:.1f} s)")
    run_all(experiment, exp_dir, say, replace=replace)
    say("validating")
    validate_experiment(experiment, exp_dir, say)
    theory_stage(experiment, exp_dir, say)  # mean-field theory next to the LIF reference (or why not)
    say("writing report")
    report = write_report(exp_dir)
    say(f"compare finished in {time.perf_counter() - t0:.0f} s")
    return report


def _is_nestml(run: PlannedRun) -> bool:
    from cortexzoo.models.catalogue import model_spec

    return model_spec(run.config).is_nestml
