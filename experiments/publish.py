"""Publish an experiment's results into a folder meant for the repository (e.g. ``docs/results/<name>``).

Only small, readable files are copied: the Markdown summary, the decision and
measure tables, the figures, the theory comparison, the exact config, the tool
versions and the wall time. Spikes and the self-contained HTML (images inlined)
stay in the experiment directory. The target is replaced as a whole, except for
files publishing never writes (e.g. a hand-written ``README.md`` with notes on
the results): those are kept.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cortexzoo.atomic import staged_folder
from cortexzoo.errors import CortexzooError

# (source relative to the experiment directory, name in the published folder)
PUBLISHED = [("report/summary.md", "summary.md"), ("experiment.toml", "experiment.toml"),
             ("validation/scores.csv", "scores.csv"), ("validation/summary.csv", "summary.csv"),
             ("validation/measures.csv", "measures.csv"), ("validation/statistics.csv", "statistics.csv"),
             ("theory/rates.csv", "theory_rates.csv"), ("theory/theory.png", "theory.png"),
             # curves of stimulus experiments (validation/responses.py)
             ("validation/psth.csv", "psth.csv"), ("validation/decorrelation.csv", "decorrelation.csv"),
             ("validation/readout.csv", "readout.csv"), ("validation/divergence.csv", "divergence.csv"),
             ("validation/perturbation_summary.csv", "perturbation_summary.csv"),
             ("validation/perturbations.csv", "perturbations.csv")]


def _written_by_publish(name: str) -> bool:
    """Whether a file name is one publishing writes (figures, tables, summary, config, costs)."""
    return name.endswith((".png", ".csv")) or name in {n for _, n in PUBLISHED} | {"costs.json"}


def run_costs(exp_dir: Path) -> dict:
    """Wall time and memory of every run from its metadata.

    Parameters
    ----------
    exp_dir : pathlib.Path

    Returns
    -------
    dict
        ``runs`` (name -> total seconds), ``total_s``, ``peak_memory_mb`` and
        ``versions`` (of the first run).
    """
    runs, peak, versions = {}, 0.0, {}
    for meta_file in sorted((Path(exp_dir) / "runs").glob("*/metadata.json")):
        meta = json.loads(meta_file.read_text())
        runs[meta_file.parent.name] = round(float(meta["timings_s"]["total"]), 1)
        peak = max(peak, float(meta.get("peak_memory_mb", 0)))
        versions = versions or meta.get("versions", {})
    return {"runs": runs, "total_s": round(sum(runs.values()), 1), "peak_memory_mb": peak, "versions": versions}


def publish_experiment(exp_dir, target, extra: dict | None = None) -> Path:
    """Copy an experiment's summary, tables, figures, config, versions and costs to ``target``.

    Parameters
    ----------
    exp_dir : str or pathlib.Path
        An experiment directory with a written report.
    target : str or pathlib.Path
        Replaced as a whole; files it never writes (notes, a README) are kept.
    extra : dict, optional
        More entries for ``costs.json`` (e.g. the command's elapsed time).

    Returns
    -------
    pathlib.Path
        ``target``.

    Raises
    ------
    CortexzooError
        When the experiment has no report yet.
    """
    exp = Path(exp_dir)
    if not (exp / "report" / "summary.md").is_file():
        raise CortexzooError(f"{exp} has no report to publish.", f"Run `cortexzoo compare` (or `cortexzoo report {exp}`) first.")
    target = Path(target)
    with staged_folder(target, whole=True) as stage:
        stage = Path(stage)
        for kept in sorted(target.iterdir()) if target.is_dir() else []:
            if kept.is_file() and not _written_by_publish(kept.name):
                shutil.copy2(kept, stage / kept.name)
        for source, name in PUBLISHED:
            if (exp / source).is_file():
                shutil.copy2(exp / source, stage / name)
        for png in sorted((exp / "validation").glob("*.png")):
            shutil.copy2(png, stage / png.name)
        costs = {**run_costs(exp), **(extra or {})}
        (stage / "costs.json").write_text(json.dumps(costs, indent=1))
    return target
