"""The experiment report: one self-contained HTML page and a Markdown summary.

Reads only what earlier stages wrote (experiment.toml, run metadata,
validation/scores.csv, the tables of stimulus experiments and the figures,
theory/, the calibration figure), so it can be
re-made at any time with ``cortexzoo report DIR``. Both files are rendered
from the Jinja2 templates in ``templates/``; the HTML one autoescapes, so
only the tables pandas has already escaped are inserted verbatim.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import jinja2
import pandas as pd

from cortexzoo.atomic import staged_folder
from cortexzoo.errors import CortexzooError
from cortexzoo.validation import decision_tables
from cortexzoo.validation.settings import load_settings
from cortexzoo.validation.stimulus_tables import stimulus_tables

VALIDATION_FIGURES = [
    ("heatmap.png", "Relative effect (variant - reference) / reference per population and measure; * = differs"),
    ("rates_boxplot.png", "Single-neuron firing rates per population"),
    ("cv_distributions.png", "CV of inter-spike intervals"),
    ("psd_overlay.png", "Power spectra of the population rates"),
    ("raster.png", "Raster excerpts (first seed of the reference and of each variant)"),
]
# Figures of stimulus experiments (validation/response_figures.py), shown when the experiment made them.
RESPONSE_FIGURES = [
    ("psth.png", "Responses to the thalamic pulses: trial-averaged PSTH per population (band: SD over seeds)"),
    ("latency_by_layer.png", "Onset latency of the response per population (mean ± SD over seeds)"),
    ("decorrelation.png", "Decorrelation curve: inter- over intra-pattern distance of the population state"),
    ("readout.png", "Cross-validated accuracy of a linear readout of the thalamic pattern"),
    ("divergence.png", "Divergence of the perturbed runs from their unperturbed twins, over the two-seed level"),
    ("divergence_growth.png", "Growth of the fraction of neurons whose spike trains differ after the perturbation"),
]
CALIBRATION_CAPTION = "f-I curves of all models against the PD14 LIF"
TEMPLATES = Path(__file__).parent / "templates"
# Only the HTML template escapes: Markdown has no escaping and would show "&lt;" literally.
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                          autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
                          trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def _require_decisions(scores: pd.DataFrame, path) -> None:
    if "decision" not in scores:
        raise CortexzooError(f"{path} holds scores of an older cortexzoo (multiples of natural variability, "
                             "no seed-level decisions).",
                             "Re-run the validation: `cortexzoo validate CONFIG` (or `cortexzoo compare CONFIG`); "
                             "the runs are reused.")


def what_differs(scores: pd.DataFrame) -> dict:
    """Per variant: the (population, measure) decisions that differ, largest relative effect first.

    Parameters
    ----------
    scores : pandas.DataFrame
        Decision rows as written by :func:`cortexzoo.validation.pipeline.validate`.

    Returns
    -------
    dict
        Variant -> list of dicts ``population, measure, relative_effect,
        relative_ci_low, relative_ci_high, q_value``. Undefined decisions are
        not here (see :func:`what_is_undefined`).
    """
    out = {}
    for model, group in scores.groupby("model", sort=False):
        hit = group[group["decision"] == "differs"]
        hit = hit.iloc[hit["relative_effect"].abs().fillna(0).argsort()[::-1]]
        out[model] = [{k: getattr(r, k) for k in ("population", "measure", "relative_effect", "relative_ci_low",
                                                   "relative_ci_high", "q_value")} for r in hit.itertuples()]
    return out


def what_is_undefined(scores: pd.DataFrame) -> dict:
    """Per variant: decisions that are undefined, with the reason of each measure.

    Parameters
    ----------
    scores : pandas.DataFrame

    Returns
    -------
    dict
        Variant -> list of ``(population, measure, reason)``, in input order.
    """
    out = {}
    for model, group in scores.groupby("model", sort=False):
        undefined = group[group["decision"].str.startswith("undefined")]
        out[model] = [(r.population, r.measure, r.decision.partition(":")[2].strip()) for r in undefined.itertuples()]
    return out


def score_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Variants x measures: median relative effect over populations and how many populations differ.

    Parameters
    ----------
    scores : pandas.DataFrame

    Returns
    -------
    pandas.DataFrame
        Rows in input order (never sorted by a score); each cell
        ``"+12 % (3/8)"``: the median over populations of the relative effect,
        and the populations whose decision is "differs" out of those decided;
        ``n/a`` when no population has a defined decision. A last column
        ``differs`` counts all differing decisions of the variant.
    """
    def cell(part):
        decided = part[~part["decision"].str.startswith("undefined")]
        if decided.empty:
            return "n/a"
        k = int((decided["decision"] == "differs").sum())
        return f"{100 * decided['relative_effect'].median():+.0f} % ({k}/{len(decided)})"

    cells = scores.groupby(["model", "measure"], sort=False).apply(cell, include_groups=False)
    table = cells.unstack("measure").reindex(index=list(dict.fromkeys(scores["model"])),
                                             columns=list(dict.fromkeys(scores["measure"])))
    differs = scores.assign(d=scores["decision"] == "differs").groupby("model", sort=False)["d"]
    table["differs"] = differs.sum().astype(int).astype(str) + "/" + differs.size().astype(str)
    return table


def _verdicts(scores: pd.DataFrame) -> list[dict]:
    """Per variant, what both templates say about it: differing and undefined decisions."""
    differs, undefined = what_differs(scores), what_is_undefined(scores)
    return [{"model": model, "differs": differs[model], "undefined": undefined[model],
             "n_seeds": int(group["n_variant_seeds"].max()), "of": len(group)}
            for model, group in scores.groupby("model", sort=False)]


def _runs(exp: Path) -> list[dict]:
    """One row per finished run: identity, size, timings, memory, versions and origin from its metadata."""
    from cortexzoo.validation.provenance import run_origin

    runs = []
    for meta_file in sorted((exp / "runs").glob("*/metadata.json")):
        meta = json.loads(meta_file.read_text())
        runs.append({"run": meta_file.parent.name, "model": meta["model"]["nest_model"],
                     "rule": meta["model"].get("calibration_rule", ""), "seed": meta["seed"],
                     "neurons": meta["counts"]["neurons_total"], "synapses": meta["counts"]["synapses_recurrent"],
                     "build_s": round(meta["timings_s"]["create"] + meta["timings_s"]["connect"], 1),
                     "sim_s": round(meta["timings_s"]["sim"], 1), "peak_MB": meta["peak_memory_mb"],
                     "versions": meta["versions"], **run_origin(meta)})  # host, date, contributor, tools
    return runs


def _runaways(exp: Path) -> list[dict]:
    """The runs the rate guard stopped (network/pd14.py RateGuard): findings, left out of the scores."""
    out = []
    for meta_file in sorted((exp / "runs").glob("*/metadata.json")):
        r = json.loads(meta_file.read_text()).get("runaway")
        if r:
            out.append({"run": meta_file.parent.name, "population": r["population"], "rate_Hz": r["rate_Hz"],
                        "start_ms": r["window_ms"][0], "stop_ms": r["window_ms"][1], "max_rate_Hz": r["max_rate_Hz"]})
    return out


def _figures(val: Path, calibration_figure: Path | None) -> tuple[list[dict], dict | None]:
    """Validation figures that exist and the calibration figure, inlined as base64 so the page stands alone."""
    def inline(path: Path, caption: str) -> dict:
        return {"caption": caption, "data": base64.b64encode(path.read_bytes()).decode()}

    figures = [inline(val / name, caption) for name, caption in [*VALIDATION_FIGURES, *RESPONSE_FIGURES]
               if (val / name).is_file()]
    if calibration_figure is None:
        from cortexzoo.models.build import SOURCE_DIR

        calibration_figure = SOURCE_DIR / "calibration" / "fI_curves.png"
    calibration = Path(calibration_figure)
    return figures, inline(calibration, CALIBRATION_CAPTION) if calibration.is_file() else None


def _operating_point(runs: list[dict], folder: Path | None = None) -> tuple[list[dict], str]:
    """Rate-response figures and working-point residuals of the models run under the operating_point rule."""
    from cortexzoo.models.build import SOURCE_DIR

    folder = Path(folder or SOURCE_DIR / "calibration")
    models = sorted({r["model"] for r in runs if r["rule"] == "operating_point"})
    figures = [{"caption": f"{m}: rate against mean input at the PD14 working points (operating_point rule)",
                "data": base64.b64encode((folder / f"nu_{m}.png").read_bytes()).decode()}
               for m in models if (folder / f"nu_{m}.png").is_file()]
    table = folder / "operating_points.csv"
    if not models or not table.is_file():
        return figures, ""
    rows = pd.read_csv(table)
    return figures, rows[rows.model.isin(models)].to_html(border=0, index=False, float_format=lambda x: f"{x:.3g}")


# Controls shipped with the repository (`cortexzoo controls controls --publish docs/results/controls`).
SHIPPED_CONTROLS = Path(__file__).resolve().parents[1] / "docs" / "results" / "controls"
_DESIGN_KEYS = (("N_scaling", "network"), ("K_scaling", "network"), ("background", "network"),
                ("t_sim_ms", "simulation"), ("t_presim_ms", "simulation"))


def _decision_settings(settings: dict | None) -> dict | None:
    return None if settings is None else {k: v for k, v in settings.items() if k != "figures"}


def controls_summary(exp: Path, payload: dict, shipped: Path = SHIPPED_CONTROLS) -> str:
    """The controls that stand for this experiment's design, as Markdown, or why there are none.

    An experiment's own ``controls/`` (a controls experiment) comes first; otherwise the shipped
    controls apply only when they were measured at this experiment's scale, background,
    duration and seed counts.

    Parameters
    ----------
    exp : pathlib.Path
    payload : dict
        ``scores.json`` (its references and variants give the seed counts).
    shipped : pathlib.Path

    Returns
    -------
    str
    """
    from cortexzoo.schema import read_toml

    if (exp / "controls" / "summary.md").is_file():
        return (exp / "controls" / "summary.md").read_text()
    fix = "run `cortexzoo controls` with a copy of experiments/controls.toml set to this design"
    if not (shipped / "design.json").is_file():
        return f"No controls are available for this design; {fix}."
    design = json.loads((shipped / "design.json").read_text())
    config = read_toml(exp / "experiment.toml", "Experiment config") if (exp / "experiment.toml").is_file() else {}
    ours = {key: config.get(table, {}).get(key) for key, table in _DESIGN_KEYS}
    ours["reference_seeds"] = len(payload.get("references", []))
    ours["group_size"] = max((len(v) for v in payload.get("variants", {}).values()), default=0)
    ours["reference_model"] = config.get("reference", {}).get("model", "iaf_psc_exp")
    # The decisions' settings: another test, FDR, measure set or statistic definition has other error rates
    # (the figures' settings, e.g. the raster excerpt, change no decision and are left out).
    ours["settings"] = _decision_settings(payload.get("settings"))
    design = {**design, "reference_model": design.get("reference", {}).get("model"),
              "settings": _decision_settings(design.get("settings"))}
    differ = [f"{key} {ours[key]} (controls: {design.get(key)})" if key != "settings" else "the validation settings"
              for key in ours if ours[key] != design.get(key)]
    if differ:
        return (f"The shipped controls (docs/results/controls) were measured at another design; this experiment "
                f"differs in {', '.join(differ)}, so its false-positive rate and detectable changes are not "
                f"measured; {fix}.")
    return (shipped / "summary.md").read_text()


def write_report(experiment_dir, calibration_figure: Path | None = None) -> dict:
    """Write ``report/index.html`` and ``report/summary.md`` for an experiment directory.

    Parameters
    ----------
    experiment_dir : str or pathlib.Path
        Holds ``experiment.toml``, ``runs/`` and ``validation/``.
    calibration_figure : pathlib.Path, optional
        f-I curves from calibration; defaults to the catalogue's calibration figure if present.

    Returns
    -------
    dict
        ``{"html": path, "markdown": path, "summary_text": str}``.

    Raises
    ------
    CortexzooError
        When the validation results are missing.
    """
    from cortexzoo.validation.theory_compare import report_context as theory_report_context

    exp = Path(experiment_dir)
    val = exp / "validation"
    if not (val / "scores.csv").is_file():
        raise CortexzooError(f"{exp} has no validation results ({val / 'scores.csv'} is missing).",
                             f"Run `cortexzoo compare` (or `cortexzoo validate ... --out {val}`) first.")
    # Only empty cells are missing: a variant may be called "null" or "NA", which pandas would read as NaN.
    scores = pd.read_csv(val / "scores.csv", keep_default_na=False, na_values=[""])
    _require_decisions(scores, val / "scores.csv")
    payload = json.loads((val / "scores.json").read_text()) if (val / "scores.json").is_file() else {}
    inference = {**load_settings()["scores"], **payload.get("settings", {}).get("scores", {})}
    runs = _runs(exp)
    versions = runs[0]["versions"] if runs else {}
    table = score_table(scores)
    figures, calibration = _figures(val, calibration_figure)
    op_figures, op_table = _operating_point(runs, None if calibration_figure is None else Path(calibration_figure).parent)
    context = {
        "name": exp.name, "generated": time.strftime("%Y-%m-%d %H:%M"),
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "warnings": payload.get("warnings", []), "verdicts": _verdicts(scores), "listed": 8,
        "runaways": _runaways(exp),
        "n_reference_seeds": len(payload.get("references", [])), "test": inference["test"],
        "fdr": inference["fdr"], "ci_level": inference["ci_level"], "controls_md": controls_summary(exp, payload),
        "figures": figures, "calibration": calibration, "op_figures": op_figures, "op_table_html": op_table,
        # Per-model tables of stimulus experiments (perturbation sensitivity, onset latencies); text cells.
        "stimulus_tables": stimulus_tables(val, payload),
        "theory": theory_report_context(exp),  # theory/ of the mean-field stage; None when it did not run
        "config_text": (exp / "experiment.toml").read_text() if (exp / "experiment.toml").is_file() else "(no config)",
        # pandas escapes cell contents itself; the HTML template inserts these with |safe.
        "score_table_md": table.to_markdown(floatfmt=".2f"),
        # Rows for the template, which marks every cell's decision (class and text) and escapes the names.
        "score_table": decision_tables.score_table_rows(scores, table),
        "runs_html": pd.DataFrame([{k: v for k, v in r.items() if k != "versions"} for r in runs]).to_html(border=0),
        "all_decisions": decision_tables.all_decision_rows(scores),
    }
    summary_text = _ENV.get_template("summary.md.j2").render(context).rstrip("\n")
    page = _ENV.get_template("report.html.j2").render(context)
    out = exp / "report"
    # Written aside and published whole: a killed report leaves the previous one intact.
    with staged_folder(out, whole=True) as stage:
        (stage / "index.html").write_text(page)
        (stage / "summary.md").write_text(summary_text + "\n")
    return {"html": out / "index.html", "markdown": out / "summary.md", "summary_text": summary_text}
