"""``cortexzoo controls CONFIG``: run the negative and positive controls and write their tables.

The config is an ordinary experiment config (runs are simulated, cached and
resumed like any other) with a ``[controls]`` table naming which variants are
negative controls (the reference model with other seeds), twins (another
implementation of the reference's dynamics) and positive controls (the
reference with a known change). Results go to ``<experiment>/controls/`` and,
with ``--publish DIR``, are copied to ``DIR`` (e.g. ``docs/results/controls``).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pandas as pd

from cortexzoo.atomic import staged_folder
from cortexzoo.errors import CortexzooError


def _groups(experiment, exp_dir, labels):
    from cortexzoo.experiments.orchestrate import run_dir

    return {label: [run_dir(exp_dir, r) for r in experiment.variant_runs if r.label == label] for label in labels}


def run_controls(experiment, exp_dir: Path, say, publish: Path | None = None) -> dict:
    """Simulate what is missing, decide every control, write ``exp_dir/controls``.

    Parameters
    ----------
    experiment : cortexzoo.experiments.config.Experiment
        With a ``[controls]`` table.
    exp_dir : pathlib.Path
    say : callable
    publish : pathlib.Path, optional
        Folder that receives a copy of the results (replaced as a whole).

    Returns
    -------
    dict
        ``tables`` (see :func:`cortexzoo.validation.controls.analyse`),
        ``summary`` (the false-positive JSON) and ``folder``.
    """
    from cortexzoo.experiments.orchestrate import _is_nestml, run_all, run_dir
    from cortexzoo.experiments.publish import run_costs
    from cortexzoo.models.build import build_module
    from cortexzoo.validation import controls
    from cortexzoo.validation.pipeline import run_measures

    spec = experiment.tables["controls"]
    if not spec["negative"]:
        raise CortexzooError(f"{experiment.path} has no [controls] negative variants.",
                             "Name the variants that are the reference model with other seeds: "
                             "[controls] negative = [\"...\"] (see experiments/controls.toml).")
    t0 = time.perf_counter()
    if any(_is_nestml(r) for r in experiment.runs):
        build_module(progress=say)
    run_all(experiment, exp_dir, say)
    say("controls: statistics of every run")
    refs = [run_dir(exp_dir, r) for r in experiment.reference_runs]
    negative = [p for runs in _groups(experiment, exp_dir, spec["negative"]).values() for p in runs]
    groups = {"negative": negative, **_groups(experiment, exp_dir, spec["twins"]),
              **_groups(experiment, exp_dir, spec["positive"])}
    measures, ref_labels, labels, settings = run_measures(refs, groups, experiment.tables["validation"]["settings"],
                                                          say)
    tables = controls.analyse(measures, ref_labels, labels["negative"], {k: labels[k] for k in spec["twins"]},
                              {k: labels[k] for k in spec["positive"]}, settings, spec["group_size"])
    design = _design(experiment, spec, len(ref_labels), len(labels["negative"]), time.perf_counter() - t0)
    costs = run_costs(exp_dir)
    design.update(runs=len(costs["runs"]), runs_s=costs["total_s"], fdr=settings["scores"]["fdr"],
                  versions=costs["versions"], settings=settings)
    folder = _write(exp_dir / "controls", tables, design, measures)
    if publish:
        _publish(folder, Path(publish))
        say(f"controls published to {publish}")
    return {"tables": tables, "summary": controls.summary_json(tables), "folder": folder}


def _design(experiment, spec, n_ref, n_negative, seconds) -> dict:
    sim, net = experiment.tables["simulation"], experiment.tables["network"]
    return {"experiment": experiment.name, "config": experiment.path.name, "reference": experiment.tables["reference"],
            "reference_seeds": n_ref, "negative_seeds": n_negative, "group_size": spec["group_size"],
            "twins": spec["twins"], "positive": spec["positive"], "t_sim_ms": sim["t_sim_ms"],
            "N_scaling": net["N_scaling"], "K_scaling": net["K_scaling"], "background": net["background"],
            "t_presim_ms": sim["t_presim_ms"],
            "wall_time_s": round(seconds, 1)}


def _write(folder: Path, tables: dict, design: dict, measures: pd.DataFrame) -> Path:
    from cortexzoo.validation import controls

    with staged_folder(folder, whole=True) as stage:
        stage = Path(stage)
        (stage / "summary.json").write_text(json.dumps(controls.summary_json(tables), indent=1))
        for name, table in tables.items():
            table.to_csv(stage / f"{name}.csv", index=name == "false_positive_rates")
        sens = controls.sensitivity_table(tables)
        sens.to_csv(stage / "sensitivity_summary.csv", index=False)
        measures.to_csv(stage / "measures.csv", index=False)
        (stage / "design.json").write_text(json.dumps(design, indent=1))
        (stage / "summary.md").write_text(markdown(tables, sens, design))
    return folder


def _publish(folder: Path, target: Path) -> None:
    with staged_folder(target, whole=True) as stage:
        for path in folder.iterdir():
            if path.name != "measures.csv" or path.stat().st_size < 5_000_000:
                shutil.copy2(path, Path(stage) / path.name)


def _pct(x) -> str:
    return "n/a" if pd.isna(x) else f"{100 * x:.1f} %"


def markdown(tables: dict, sens: pd.DataFrame, design: dict) -> str:
    """The controls' summary as Markdown: design, false positives, twins, positive controls, sensitivity.

    Parameters
    ----------
    tables : dict
        From :func:`cortexzoo.validation.controls.analyse`.
    sens : pandas.DataFrame
        From :func:`cortexzoo.validation.controls.sensitivity_table`.
    design : dict

    Returns
    -------
    str
    """
    fpr = tables["false_positive_rates"]
    lines = [f"# Controls: {design['experiment']}", "",
             f"Scale N = {design['N_scaling']}, K = {design['K_scaling']}, {design['background']} background, "
             f"{design['t_sim_ms'] / 1000:g} s analysed per run; {design['reference_seeds']} reference seeds, "
             f"{design['negative_seeds']} null seeds cut into groups of {design['group_size']} "
             f"(the seeds per variant of the design these numbers stand for). Simulation {design['runs_s'] / 60:.0f} min "
             f"(sum over {design['runs']} runs), analysis {design['wall_time_s']:.0f} s.",
             "", "Decisions: seed-level Welch t-test, Benjamini-Hochberg per (pseudo-)variant at "
             f"{design['fdr']:.0%} FDR, Welch intervals (docs/statistics.md).",
             "", "## Negative control: false positives (the reference against itself)", "",
             f"Every comparison is null. 'uncorrected': share of decisions with p <= {design['fdr']:g}, the test's "
             f"type-I error rate (nominal {design['fdr']:.0%}: checks the test's calibration). 'after FDR': share "
             "called differs after Benjamini-Hochberg (expected far below the FDR when nothing differs). "
             "'family-wise': groups with any differs in that measure (BH bounds it by the FDR). 95 % Clopper-Pearson "
             "intervals; the groups share the reference seeds, so the intervals are somewhat too narrow.", "",
             "| measure | decisions | uncorrected p <= FDR | 95 % CI | after FDR | family-wise | effect-CI coverage |",
             "|---|---|---|---|---|---|---|"]
    for m, r in fpr.iterrows():
        lines.append(f"| {m} | {int(r['decisions'])} | {int(r['raw_rejections'])} ({_pct(r['false_positive_rate'])}) | "
                     f"[{_pct(r['ci_low'])}, {_pct(r['ci_high'])}] | {int(r['false_positives'])} "
                     f"({_pct(r['after_fdr_rate'])}) | {_pct(r['familywise_rate'])} of {int(r['groups'])} groups | "
                     f"{_pct(r['ci_coverage'])} |")
    lines += ["", "## Twins and positive controls: decisions that differ", ""]
    for key in ("twin_decisions", "positive_decisions"):
        dec = tables[key]
        for model, part in (dec.groupby("model", sort=False) if len(dec) else []):
            hits = part[part["decision"] == "differs"]
            desc = design["positive"].get(model, "twin of the reference") if key == "positive_decisions" \
                else "twin of the reference"
            found = ", ".join(f"{r.population} {r.measure} ({100 * r.relative_effect:+.1f} % "
                              f"[{100 * r.relative_ci_low:+.1f}, {100 * r.relative_ci_high:+.1f}])"
                              for r in hits.itertuples()) or "nothing"
            lines.append(f"- **{model}** ({desc}): {len(hits)} of {len(part)} differ: {found}")
    lines += ["", "## Sensitivity: smallest change detected with 80 % power", "",
              "Per measure, median over populations (range of the relative value in brackets); 'many' when many "
              "measures of a variant differ (level = FDR), 'single' for one difference among all decisions "
              "(level = FDR / m).", "",
              "| measure | unit | many | many, relative | single | single, relative (range) | detects |",
              "|---|---|---|---|---|---|---|"]
    for r in sens.itertuples():
        lo, hi = r.relative_mdc_single_range
        lines.append(f"| {r.measure} | {r.unit} | {r.mdc_many_median:.3g} | {_pct(r.relative_mdc_many_median)} | "
                     f"{r.mdc_single_median:.3g} | {_pct(r.relative_mdc_single_median)} ({_pct(lo)}-{_pct(hi)}) | "
                     f"{r.detects or '-'} |")
    return "\n".join(lines) + "\n"
