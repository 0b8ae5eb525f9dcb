"""The experiment report: one self-contained HTML page and a Markdown summary.

Reads only what earlier stages wrote (experiment.toml, run metadata,
validation/scores.csv and figures, the calibration figure), so it can be
re-made at any time with ``cortexzoo report DIR``.
"""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path

import pandas as pd

from cortexzoo.errors import CortexzooError

VALIDATION_FIGURES = [
    ("heatmap.png", "Multiples of natural variability (primary score / mean reference-reference score)"),
    ("rates_boxplot.png", "Single-neuron firing rates per population"),
    ("cv_distributions.png", "CV of inter-spike intervals"),
    ("psd_overlay.png", "Power spectra of the population rates"),
    ("raster.png", "Raster excerpts (first reference seed and every variant)"),
]


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"><figcaption>{html.escape(alt)}</figcaption></figure>'


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
        ``matches`` false, largest multiple first.
    """
    prim = scores[scores["primary"].astype(bool)]
    out = {}
    for model, group in prim.groupby("model", sort=False):
        bad = group[group["matches"].astype(str).str.lower() == "false"]
        bad = bad.sort_values("multiple_of_max", ascending=False)
        out[model] = [(r.population, r.statistic, float(r.multiple_of_max)) for r in bad.itertuples()]
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
        (population, statistic) pairs that match.
    """
    prim = scores[scores["primary"].astype(bool)].copy()
    prim["multiple_of_mean"] = pd.to_numeric(prim["multiple_of_mean"], errors="coerce")
    table = prim.pivot_table(index="model", columns="statistic", values="multiple_of_mean", aggfunc="median",
                             sort=False)
    matched = prim.assign(m=prim["matches"].astype(str).str.lower() == "true").groupby("model", sort=False)["m"]
    table["matched"] = matched.sum().astype(int).astype(str) + "/" + matched.size().astype(str)
    return table


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
    exp = Path(experiment_dir)
    val = exp / "validation"
    if not (val / "scores.csv").is_file():
        raise CortexzooError(f"{exp} has no validation results ({val / 'scores.csv'} is missing).",
                             f"Run `cortexzoo compare` (or `cortexzoo validate ... --out {val}`) first.")
    scores = pd.read_csv(val / "scores.csv")
    payload = json.loads((val / "scores.json").read_text()) if (val / "scores.json").is_file() else {}
    config_text = (exp / "experiment.toml").read_text() if (exp / "experiment.toml").is_file() else "(no config)"
    runs = []
    for meta_file in sorted((exp / "runs").glob("*/metadata.json")):
        meta = json.loads(meta_file.read_text())
        runs.append({"run": meta_file.parent.name, "model": meta["model"]["nest_model"], "seed": meta["seed"],
                     "neurons": meta["counts"]["neurons_total"], "synapses": meta["counts"]["synapses_recurrent"],
                     "build_s": round(meta["timings_s"]["create"] + meta["timings_s"]["connect"], 1),
                     "sim_s": round(meta["timings_s"]["sim"], 1), "peak_MB": meta["peak_memory_mb"],
                     "versions": meta["versions"]})
    versions = runs[0]["versions"] if runs else {}
    table = score_table(scores)
    differs = what_differs(scores)
    warnings = payload.get("warnings", [])

    if calibration_figure is None:
        from cortexzoo.models.build import SOURCE_DIR

        candidate = SOURCE_DIR / "calibration" / "fI_curves.png"
        calibration_figure = candidate if candidate.is_file() else None

    md = [f"# cortexzoo report: {exp.name}", "",
          f"Generated {time.strftime('%Y-%m-%d %H:%M')}; versions: "
          + ", ".join(f"{k} {v}" for k, v in versions.items()), "",
          "Scores are distances (lower is better). Each cell is the median over populations of the primary score "
          "divided by the mean score between pairs of reference seeds; 1 means as different as two reference "
          "seeds. `matched` counts (population, statistic) pairs within the largest reference-reference score.", ""]
    md += [table.to_markdown(floatfmt=".2f"), ""]
    md += ["## What differs", ""]
    for model, items in differs.items():
        if items:
            listing = "; ".join(f"{p} {s} ({m:.1f}x)" for p, s, m in items[:8])
            more = f" and {len(items) - 8} more" if len(items) > 8 else ""
            md.append(f"- **{model}**: outside natural variability for {listing}{more}.")
        else:
            md.append(f"- **{model}**: within natural variability on every primary statistic.")
    for w in warnings:
        md.append(f"\n> warning: {w}")
    summary_text = "\n".join(md)

    body = [f"<h1>cortexzoo report: {html.escape(exp.name)}</h1>",
            "<p>Scores are distances: <b>lower is better</b>. A multiple of 1 means a variant differs from the "
            "reference as much as two reference seeds differ from each other.</p>"]
    for w in warnings:
        body.append(f'<p class="warn">warning: {html.escape(w)}</p>')
    body += ["<h2>Score table</h2>", table.to_html(float_format=lambda x: f"{x:.2f}", border=0, classes="scores"),
             "<h2>What differs</h2><ul>"]
    for model, items in differs.items():
        more = f" and {len(items) - 8} more (see the heatmap)" if len(items) > 8 else ""
        text = ("outside natural variability for " + "; ".join(f"{p} {s} ({m:.1f}&times;)" for p, s, m in items[:8])
                + more if items else "within natural variability on every primary statistic")
        body.append(f"<li><b>{html.escape(model)}</b>: {text}</li>")
    body.append("</ul><h2>Figures</h2>")
    for name, caption in VALIDATION_FIGURES:
        if (val / name).is_file():
            body.append(_img(val / name, caption))
    if calibration_figure is not None and Path(calibration_figure).is_file():
        body.append("<h2>Single-neuron f&ndash;I curves (calibration)</h2>")
        body.append(_img(Path(calibration_figure), "f-I curves of all models against the PD14 LIF"))
    body += ["<h2>Runs and provenance</h2>",
             pd.DataFrame([{k: v for k, v in r.items() if k != "versions"} for r in runs]).to_html(border=0),
             "<p>Versions: " + html.escape(", ".join(f"{k} {v}" for k, v in versions.items())) + "</p>",
             "<h2>All scores</h2>",
             scores.to_html(border=0, index=False, float_format=lambda x: f"{x:.4g}", classes="all"),
             "<h2>Experiment config</h2>", f"<pre>{html.escape(config_text)}</pre>"]
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
             "img{max-width:100%}figure{margin:1em 0}.warn{color:#a50}pre{background:#f6f6f6;padding:1em}")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>cortexzoo report {html.escape(exp.name)}"
            f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>")
    out = exp / "report"
    out.mkdir(exist_ok=True)
    (out / "index.html").write_text(page)
    (out / "summary.md").write_text(summary_text + "\n")
    return {"html": out / "index.html", "markdown": out / "summary.md", "summary_text": summary_text}
