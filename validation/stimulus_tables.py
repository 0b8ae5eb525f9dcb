"""Per-model tables of stimulus experiments (issue 14) for the report, from what validation wrote.

* Perturbation experiments: the whole network's sensitivity per model
  (:data:`cortexzoo.validation.perturbation.NETWORK` rows of
  ``perturbation_summary.csv``): divergence rate and decorrelation time, mean
  over seeds with their t interval, and the fraction of neurons that differ.
* Transient experiments: each model's onset latency per population
  (``latency_ms`` rows of ``measures.csv``), mean over its seeds.

Cells are plain text; the HTML template escapes them (names come from configs).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from cortexzoo.validation.perturbation import NETWORK

#: Populations in the order the thalamic input travels through the column: L4 first, then L2/3, L5 and L6
#: (PD14 Fig. 8: L4 responds first; the canonical L4 -> L2/3 -> L5 -> L6 path, Douglas & Martin 2004).
LAYER_ORDER = ("L4E", "L4I", "L23E", "L23I", "L5E", "L5I", "L6E", "L6I")
NO_VALUE = "–"
PERTURBATION_TITLE = "Perturbation sensitivity per model (whole network)"
PERTURBATION_CAPTION = (
    "Whole network: the neurons of all populations pooled into one population and analysed like one "
    "(validation/perturbation_runs.py); summarised here, not decided (the decisions above are per population). "
    "Each seed's value is the mean over its perturbed neurons. Divergence rate: growth rate of the fraction of "
    "neurons whose spike trains differ; decorrelation time: first time the divergence reaches the level of two "
    "independent seeds; fraction: of all neurons, at the end of the window. Mean over seeds [95 % CI]: the "
    "t interval over seeds (n - 1 degrees of freedom). With 2-3 seeds it is wide (t quantile 12.7 for 2 seeds, "
    "4.3 for 3), so overlapping intervals say little. n undefined: seeds without a growth rate (no perturbation's "
    "divergence could be fitted).")
LATENCY_TITLE = "Onset latency per population (ms, mean over seeds)"
LATENCY_CAPTION = (
    "Onset latency: first post-onset bin of the trial-averaged PSTH that starts a run of bins above the "
    "baseline threshold (validation/transient.py). Mean over the seeds that respond; (k/n): only k of the "
    f"model's n seeds respond; {NO_VALUE}: no seed responds. Populations in the order the thalamic input "
    "reaches them (L4 first, PD14 Fig. 8).")


def perturbation_sensitivity(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per model (in file order: the reference, then the variants) of the whole network's measures.

    Parameters
    ----------
    summary : pandas.DataFrame
        ``perturbation_summary.csv`` (:func:`cortexzoo.validation.perturbation_runs.model_summary`).

    Returns
    -------
    pandas.DataFrame
        Text cells: model, divergence rate (mean [CI]), seeds, seeds without
        a rate, decorrelation time (mean [CI], with its undefined seeds) and
        the mean fraction of neurons that differ. Empty without
        ``NETWORK`` rows.
    """
    network = summary[summary["population"] == NETWORK]
    rows = []
    for model, group in network.groupby("model", sort=False):
        m = group.set_index("measure")
        rate, time = m.loc["divergence_rate_per_ms"], m.loc["decorrelation_time_ms"]
        rows.append({"model": model, "divergence rate (1/ms), mean [95 % CI]": _mean_ci(rate),
                     "n seeds": str(int(rate["n"] + rate["n_undefined"])), "n undefined": str(int(rate["n_undefined"])),
                     "decorrelation time (ms), mean [95 % CI]": _mean_ci(time) + _undefined(time),
                     "fraction of neurons that differ at the end": _number(m.loc["fraction_differs", "mean"])})
    return pd.DataFrame(rows)


def onset_latencies(measures: pd.DataFrame, models: dict) -> pd.DataFrame:
    """Each model's mean onset latency over its seeds, per population in :data:`LAYER_ORDER`.

    Parameters
    ----------
    measures : pandas.DataFrame
        ``measures.csv`` (reads the ``latency_ms`` rows).
    models : dict
        Model name -> its run labels (the reference first).

    Returns
    -------
    pandas.DataFrame
        Text cells ``"3.2"``, ``"4.0 (2/3)"`` when only 2 of 3 seeds respond,
        :data:`NO_VALUE` when none does. Populations outside
        :data:`LAYER_ORDER` follow in file order.
    """
    latency = measures[measures["measure"] == "latency_ms"]
    found = list(dict.fromkeys(latency["population"]))
    populations = [p for p in LAYER_ORDER if p in found] + [p for p in found if p not in LAYER_ORDER]
    rows = []
    for model, labels in models.items():
        mine = latency[latency["run"].isin(labels)]
        rows.append({"model": model, **{p: _latency(mine.loc[mine["population"] == p, "value"])
                                        for p in populations}})
    return pd.DataFrame(rows, columns=["model", *populations])


def stimulus_tables(validation_dir, payload: dict) -> list[dict]:
    """The per-model tables the validation folder holds data for, ready for both report templates.

    Parameters
    ----------
    validation_dir : path
        An experiment's ``validation/``.
    payload : dict
        Its ``scores.json`` (``references`` and ``variants`` map runs to models).

    Returns
    -------
    list of dict
        ``title, caption, columns, rows`` (lists of text cells, escaped by
        the HTML template) and ``markdown``; none for a stationary experiment.
    """
    val = Path(validation_dir)
    tables = []
    if (val / "perturbation_summary.csv").is_file():
        summary = _read(val / "perturbation_summary.csv")
        caption = PERTURBATION_CAPTION if (summary["population"] == NETWORK).any() else (
            "perturbation_summary.csv has no whole-network rows: it was written by an older cortexzoo. Re-run "
            "`cortexzoo validate CONFIG` (the runs are reused).")
        tables.append(_table(PERTURBATION_TITLE, caption, perturbation_sensitivity(summary)))
    models = {"reference": payload.get("references", []), **payload.get("variants", {})}
    if (val / "measures.csv").is_file() and payload.get("references"):
        measures = _read(val / "measures.csv")
        if (measures["measure"] == "latency_ms").any():
            tables.append(_table(LATENCY_TITLE, LATENCY_CAPTION, onset_latencies(measures, models)))
    return tables


def _read(path: Path) -> pd.DataFrame:
    # Only empty cells are missing: a model may be called "null" or "NA", which pandas would read as NaN.
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def _table(title: str, caption: str, frame: pd.DataFrame) -> dict:
    # Cells are text already: tabulate would otherwise re-format those that look like numbers ("13.0" -> "13").
    markdown = frame.to_markdown(index=False, disable_numparse=True) if len(frame) else ""
    return {"title": title, "caption": caption, "columns": list(frame.columns), "rows": frame.to_numpy().tolist(),
            "markdown": markdown}


def _number(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else NO_VALUE


def _mean_ci(row: pd.Series) -> str:
    """``mean [low, high]``; the mean alone with one seed; :data:`NO_VALUE` with none."""
    if not math.isfinite(row["mean"]):
        return NO_VALUE
    if not math.isfinite(row["ci_low"]):
        return _number(row["mean"])
    return f"{_number(row['mean'])} [{_number(row['ci_low'])}, {_number(row['ci_high'])}]"


def _undefined(row: pd.Series) -> str:
    k = int(row["n_undefined"])
    return f" ({k} of {k + int(row['n'])} seeds undefined)" if k else ""


def _latency(values: pd.Series) -> str:
    responding = values.dropna()
    if responding.empty:
        return NO_VALUE
    mean = f"{responding.mean():.1f}"
    return mean if len(responding) == len(values) else f"{mean} ({len(responding)}/{len(values)})"
