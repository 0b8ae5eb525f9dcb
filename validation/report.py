"""The experiment report: one self-contained HTML page and a Markdown summary.

Reads only what earlier stages wrote (experiment.toml, run metadata,
validation/scores.csv and figures, theory/, the calibration figure), so it can be
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

VALIDATION_FIGURES = [
    ("heatmap.png", "Multiples of natural variability (primary score / mean reference-reference score)"),
    ("rates_boxplot.png", "Single-neuron firing rates per population"),
    ("cv_distributions.png", "CV of inter-spike intervals"),
    ("psd_overlay.png", "Power spectra of the population rates"),
    ("raster.png", "Raster excerpts (first reference seed and every variant)"),
]
CALIBRATION_CAPTION = "f-I curves of all models against the PD14 LIF"
TEMPLATES = Path(__file__).parent / "templates"
# Only the HTML template escapes: Markdown has no escaping and would show "&lt;" literally.
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                          autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
                          trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def score_status(scores: pd.DataFrame) -> pd.Series:
    """The status of each score row: "matches", "differs", "undefined: <reason>" or "raw only: ...".

    Parameters
    ----------
    scores : pandas.DataFrame
        Long-format scores as written by :func:`cortexzoo.validation.pipeline.validate`.

    Returns
    -------
    pandas.Series of str
        The ``status`` column when ``scores.csv`` has one. Older files have only
        ``matches``; there a missing ``matches`` means a single reference seed,
        and a ``matches`` of false on a non-finite (NaN) multiple means the score
        is undefined, never that it differs.
    """
    if "status" in scores:
        return scores["status"].fillna("undefined: no status").astype(str)
    matches = scores["matches"].astype(str).str.lower()
    multiple = pd.to_numeric(scores["multiple_of_max"], errors="coerce")
    status = pd.Series("differs", index=scores.index)
    status[multiple.isna()] = "undefined: non-finite score"
    status[~matches.isin(["true", "false"])] = "raw only: single reference seed"
    status[matches == "true"] = "matches"
    return status


def _primary(scores: pd.DataFrame) -> pd.DataFrame:
    """Primary score rows with their ``status`` (see :func:`score_status`)."""
    return scores.assign(status=score_status(scores))[scores["primary"].astype(bool)].copy()


def what_differs(scores: pd.DataFrame) -> dict:
    """Per variant: primary statistics and populations outside natural variability.

    Parameters
    ----------
    scores : pandas.DataFrame
        Long-format scores as written by :func:`cortexzoo.validation.pipeline.validate`.

    Returns
    -------
    dict
        Variant -> list of ``(population, statistic, multiple_of_max)`` with
        status "differs", largest multiple first. Undefined scores are not here
        (see :func:`what_is_undefined`).
    """
    out = {}
    for model, group in _primary(scores).groupby("model", sort=False):
        bad = group[group["status"] == "differs"].sort_values("multiple_of_max", ascending=False)
        out[model] = [(r.population, r.statistic, float(r.multiple_of_max)) for r in bad.itertuples()]
    return out


def what_is_undefined(scores: pd.DataFrame) -> dict:
    """Per variant: primary scores that are undefined, with the reason.

    Parameters
    ----------
    scores : pandas.DataFrame
        Long-format scores as written by :func:`cortexzoo.validation.pipeline.validate`.

    Returns
    -------
    dict
        Variant -> list of ``(population, statistic, reason)`` for status
        "undefined: <reason>", in input order.
    """
    out = {}
    for model, group in _primary(scores).groupby("model", sort=False):
        undefined = group[group["status"].str.startswith("undefined")]
        out[model] = [(r.population, r.statistic, r.status.partition(":")[2].strip()) for r in undefined.itertuples()]
    return out


def score_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Primary scores as a models x (statistic) table of median multiples over populations.

    Parameters
    ----------
    scores : pandas.DataFrame

    Returns
    -------
    pandas.DataFrame
        Rows in input order (never sorted by score), one column per statistic
        with the median multiple of the mean ref-ref score, plus the number of
        (population, statistic) pairs whose status is "matches" (undefined and
        raw-only scores never count).
    """
    prim = _primary(scores)
    prim["multiple_of_mean"] = pd.to_numeric(prim["multiple_of_mean"], errors="coerce")
    table = prim.pivot_table(index="model", columns="statistic", values="multiple_of_mean", aggfunc="median",
                             sort=False)
    matched = prim.assign(m=prim["status"] == "matches").groupby("model", sort=False)["m"]
    table["matched"] = matched.sum().astype(int).astype(str) + "/" + matched.size().astype(str)
    return table


def _verdicts(scores: pd.DataFrame) -> list[dict]:
    """Per variant, what both templates say about it: differing, undefined, and whether there is a null at all."""
    differs, undefined = what_differs(scores), what_is_undefined(scores)
    prim = _primary(scores)
    return [{"model": model, "differs": differs[model], "undefined": undefined[model],
             "raw_only": bool(group["status"].str.startswith("raw only").all())}
            for model, group in prim.groupby("model", sort=False)]


def _runs(exp: Path) -> list[dict]:
    """One row per finished run: identity, size, timings, memory and versions from its metadata."""
    runs = []
    for meta_file in sorted((exp / "runs").glob("*/metadata.json")):
        meta = json.loads(meta_file.read_text())
        runs.append({"run": meta_file.parent.name, "model": meta["model"]["nest_model"],
                     "rule": meta["model"].get("calibration_rule", ""), "seed": meta["seed"],
                     "neurons": meta["counts"]["neurons_total"], "synapses": meta["counts"]["synapses_recurrent"],
                     "build_s": round(meta["timings_s"]["create"] + meta["timings_s"]["connect"], 1),
                     "sim_s": round(meta["timings_s"]["sim"], 1), "peak_MB": meta["peak_memory_mb"],
                     "versions": meta["versions"]})
    return runs


def _figures(val: Path, calibration_figure: Path | None) -> tuple[list[dict], dict | None]:
    """Validation figures that exist and the calibration figure, inlined as base64 so the page stands alone."""
    def inline(path: Path, caption: str) -> dict:
        return {"caption": caption, "data": base64.b64encode(path.read_bytes()).decode()}

    figures = [inline(val / name, caption) for name, caption in VALIDATION_FIGURES if (val / name).is_file()]
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
    scores = pd.read_csv(val / "scores.csv")
    payload = json.loads((val / "scores.json").read_text()) if (val / "scores.json").is_file() else {}
    runs = _runs(exp)
    versions = runs[0]["versions"] if runs else {}
    table = score_table(scores)
    figures, calibration = _figures(val, calibration_figure)
    op_figures, op_table = _operating_point(runs, None if calibration_figure is None else Path(calibration_figure).parent)
    context = {
        "name": exp.name, "generated": time.strftime("%Y-%m-%d %H:%M"),
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "warnings": payload.get("warnings", []), "verdicts": _verdicts(scores), "listed": 8,
        "figures": figures, "calibration": calibration, "op_figures": op_figures, "op_table_html": op_table,
        "theory": theory_report_context(exp),  # theory/ of the mean-field stage; None when it did not run
        "config_text": (exp / "experiment.toml").read_text() if (exp / "experiment.toml").is_file() else "(no config)",
        # pandas escapes cell contents itself; the HTML template inserts these with |safe.
        "score_table_md": table.to_markdown(floatfmt=".2f"),
        "score_table_html": table.to_html(float_format=lambda x: f"{x:.2f}", border=0, classes="scores"),
        "runs_html": pd.DataFrame([{k: v for k, v in r.items() if k != "versions"} for r in runs]).to_html(border=0),
        "scores_html": scores.to_html(border=0, index=False, float_format=lambda x: f"{x:.4g}", classes="all"),
    }
    summary_text = _ENV.get_template("summary.md.j2").render(context).rstrip("\n")
    page = _ENV.get_template("report.html.j2").render(context)
    out = exp / "report"
    # Written aside and published whole: a killed report leaves the previous one intact.
    with staged_folder(out, whole=True) as stage:
        (stage / "index.html").write_text(page)
        (stage / "summary.md").write_text(summary_text + "\n")
    return {"html": out / "index.html", "markdown": out / "summary.md", "summary_text": summary_text}
