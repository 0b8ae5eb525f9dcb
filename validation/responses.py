"""Per-run response measures of stimulus experiments (issue 14), for the decisions and the report.

A run made with a ``[stimulus]`` records its absolute onsets in
``metadata.json`` (``stimulus.onsets_ms``). For thalamic pulse trains
(experiment kind ``transient``) every run gets, per population, the
trial-averaged response measures of :mod:`cortexzoo.validation.transient`:
baseline rate, onset latency, peak response above baseline, time to peak and
response duration. They enter the measure table as one value per (run,
population, measure), so a variant's seeds are tested against the reference
seeds exactly as the stationary measures are (:mod:`cortexzoo.validation.inference`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cortexzoo.errors import CortexzooError
from cortexzoo.validation.statistics import MEASURE_UNITS
from cortexzoo.validation.transient import ResponseCriterion, transient_analysis

#: Measure -> unit of the transient response measures.
TRANSIENT_UNITS = {name: MEASURE_UNITS[name]
                   for name in ("baseline_hz", "latency_ms", "peak_hz", "time_to_peak_ms", "duration_ms")}


def stimulus_of(run) -> dict:
    """The stimulus schedule a run recorded (``{"kind": "none", ...}`` for stationary runs and older runs).

    Parameters
    ----------
    run : cortexzoo.network.output.RunData

    Returns
    -------
    dict
    """
    return run.metadata.get("stimulus") or {"kind": "none", "onsets_ms": []}


def experiment_stimulus_kind(runs: dict) -> str:
    """The one stimulus kind of a set of runs; mixed kinds are refused.

    Parameters
    ----------
    runs : dict
        Label -> RunData.

    Returns
    -------
    str
    """
    kinds = {label: stimulus_of(run)["kind"] for label, run in runs.items()}
    if len(set(kinds.values())) > 1:
        listing = ", ".join(f"{label}: {kind}" for label, kind in kinds.items())
        raise CortexzooError(f"The runs were made with different stimuli ({listing}).",
                             "Compare runs of one experiment kind; responses to different stimuli are not comparable.")
    return next(iter(kinds.values()))


def response_tables(runs: dict, populations: list, settings: dict) -> tuple:
    """Transient measures of every run: the rows for the measure table and the PSTHs for figures.

    Parameters
    ----------
    runs : dict
        Label -> RunData, all made with thalamic pulses.
    populations : list of str
    settings : dict
        Full validation settings; reads ``[transient]``.

    Returns
    -------
    (pandas.DataFrame, dict)
        Measure rows (``run, population, measure, value, unit, note``) and
        ``{label: TransientResult}``.
    """
    t = settings["transient"]
    criterion = ResponseCriterion(k_sd=t["k_sd"], min_bins=t["min_bins"], min_excess_hz=t["min_excess_hz"])
    rows, results = [], {}
    for label, run in runs.items():
        onsets = stimulus_of(run)["onsets_ms"]
        result = transient_analysis({p: run.spikes[p] for p in populations}, run.sizes, onsets, pre_ms=t["pre_ms"],
                                    post_ms=t["post_ms"], bin_ms=t["bin_ms"], criterion=criterion,
                                    populations=populations)
        results[label] = result
        rows += _measure_rows(label, result.summary)
    return pd.DataFrame(rows, columns=["run", "population", "measure", "value", "unit", "note"]), results


def _measure_rows(label: str, summary: pd.DataFrame) -> list:
    rows = []
    for rec in summary.to_dict(orient="records"):
        silent = "no response above baseline" if not rec["responds"] else ""
        for name, unit in TRANSIENT_UNITS.items():
            value = float(rec[name])
            # latency and duration only exist for a response; peak and time to peak then measure noise
            note = silent if (silent and name != "baseline_hz") else ("" if np.isfinite(value) else "undefined")
            rows.append({"run": label, "population": rec["population"], "measure": name,
                         "value": value if not note else np.nan, "unit": unit, "note": note})
    return rows


def psth_table(results: dict, groups: dict, ref_labels: list, ref_name: str = "reference") -> pd.DataFrame:
    """Trial-averaged PSTHs averaged over the seeds of each model, with the SD over seeds.

    Parameters
    ----------
    results : dict
        Run label -> TransientResult.
    groups : dict
        Variant label -> run labels.
    ref_labels : list of str
    ref_name : str
        The reference's name in the table.

    Returns
    -------
    pandas.DataFrame
        ``model, population, time_ms, rate_hz, sd_over_seeds_hz, n_seeds``.
    """
    rows = []
    for model, labels in {ref_name: ref_labels, **groups}.items():
        for pop in results[labels[0]].psths:
            curves = np.array([results[lb].psths[pop].rate_hz for lb in labels])
            time = results[labels[0]].psths[pop].time_ms
            sd = curves.std(axis=0, ddof=1) if len(labels) > 1 else np.full(len(time), np.nan)
            rows.append(pd.DataFrame({"model": model, "population": pop, "time_ms": time,
                                      "rate_hz": curves.mean(axis=0), "sd_over_seeds_hz": sd,
                                      "n_seeds": len(labels)}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
