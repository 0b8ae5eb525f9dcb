"""Per-run response measures of stimulus experiments (issue 14), for the decisions and the report.

A run made with a ``[stimulus]`` records its absolute onsets in
``metadata.json`` (``stimulus.onsets_ms``, and ``pattern_of_trial`` for
patterns). Per population every run gets

* for thalamic pulse trains (experiment kind ``transient``) the trial-averaged
  response measures of :mod:`cortexzoo.validation.transient`: baseline rate,
  onset latency, peak response above baseline, time to peak, duration;
* for thalamic patterns (kind ``separability``) the measures of
  :mod:`cortexzoo.validation.separability`: the ratio of inter- to
  intra-class distance of the population state (the decorrelation curve) and
  the cross-validated accuracy of a linear readout of the pattern, each as the
  mean over the stimulus window (pattern duration + ``window_extra_ms``) and
  as the peak over the whole post-onset window (the peak is biased upwards by
  noise, like any maximum; the window mean is not);
* for one extra input spike (kind ``perturbation``, runs found next to each
  seed's unperturbed run) the divergence growth rate, decorrelation time and
  fraction of neurons that differ, averaged over the perturbed neurons
  (:mod:`cortexzoo.validation.perturbation_runs`).

They enter the measure table as one value per (run, population, measure), so
a variant's seeds are tested against the reference seeds exactly as the
stationary measures are (:mod:`cortexzoo.validation.inference`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cortexzoo.errors import CortexzooError
from cortexzoo.validation.perturbation_runs import (divergence_table, has_perturbations, model_summary,
                                                     perturbation_table, perturbation_tables)
from cortexzoo.validation.statistics import RESPONSE_UNITS
from cortexzoo.validation.separability import separability_analysis
from cortexzoo.validation.transient import ResponseCriterion, transient_analysis

#: Measure -> unit of the transient response measures.
TRANSIENT_UNITS = {name: RESPONSE_UNITS[name]
                   for name in ("baseline_hz", "latency_ms", "peak_hz", "time_to_peak_ms", "duration_ms")}
#: Measure of the separability analysis -> its column of ``SeparabilityResult.summary``.
SEPARABILITY_COLUMNS = {"separation_ratio": "ratio_window", "separation_peak": "ratio_peak",
                        "readout_accuracy": "accuracy_window", "readout_peak": "accuracy_peak"}
#: Stimulus kinds with response measures ("perturbation": unperturbed runs with perturbed runs beside them).
RESPONSE_KINDS = ("thalamic_pulses", "thalamic_patterns", "perturbation")


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


def response_kind(runs: dict) -> str:
    """The kind of responses a set of runs is scored on: its stimulus kind, or ``"perturbation"``.

    A perturbation experiment is validated on its unperturbed runs (stimulus
    ``none``, one per seed) with the perturbed runs ``<run>-p<neuron>`` beside
    them; perturbed runs given directly are refused.

    Parameters
    ----------
    runs : dict
        Label -> RunData.

    Returns
    -------
    str
    """
    kind = experiment_stimulus_kind(runs)
    if kind == "perturbation":
        raise CortexzooError("The runs given are perturbed runs; a perturbation experiment is validated on each "
                             "seed's unperturbed run.",
                             "Give the unperturbed runs (<label>-seed<k>); their perturbed runs "
                             "(<label>-seed<k>-p<neuron>) are found next to them.")
    return "perturbation" if kind == "none" and has_perturbations(runs) else kind


def response_tables(runs: dict, populations: list, settings: dict, kind: str, models=None, say=None) -> tuple:
    """Response measures of every run: the rows for the measure table and the per-run results for figures.

    Parameters
    ----------
    runs : dict
        Label -> RunData, all made with one stimulus kind.
    populations : list of str
    settings : dict
        Full validation settings; reads ``[transient]``, ``[separability]`` or ``[perturbation]``.
    kind : {"thalamic_pulses", "thalamic_patterns", "perturbation"}
    models : list of list of str, optional
        Perturbation: the run labels (seeds) of each model; the next seed of
        the same model gives the independent-runs level. Default: all runs
        are one model.
    say : callable, optional

    Returns
    -------
    (pandas.DataFrame, dict)
        Measure rows (``run, population, measure, value, unit, note``) and
        ``{label: TransientResult, SeparabilityResult or SeedPerturbations}``.
    """
    if kind == "perturbation":
        return perturbation_tables(runs, models or [list(runs)], populations, settings, say)
    if kind == "thalamic_patterns":
        return _separability_tables(runs, populations, settings["separability"])
    t = settings["transient"]
    criterion = ResponseCriterion(k_sd=t["k_sd"], min_bins=t["min_bins"], min_excess_hz=t["min_excess_hz"])
    rows, results = [], {}
    for label, run in runs.items():
        onsets = stimulus_of(run)["onsets_ms"]
        _check_trials_inside(label, run, onsets, t["pre_ms"], t["post_ms"])
        result = transient_analysis({p: run.spikes[p] for p in populations}, run.sizes, onsets, pre_ms=t["pre_ms"],
                                    post_ms=t["post_ms"], bin_ms=t["bin_ms"], criterion=criterion,
                                    populations=populations)
        results[label] = result
        rows += _measure_rows(label, result.summary, result.trials)
    return pd.DataFrame(rows, columns=["run", "population", "measure", "value", "unit", "note"]), results


def _check_trials_inside(label: str, run, onsets, pre_ms: float, post_ms: float) -> None:
    """Every trial window lies in the analysed window (a cut trial would count missing time as silence)."""
    outside = [t for t in onsets if t - pre_ms < run.t_start_ms or t + post_ms > run.t_stop_ms]
    if outside:
        raise CortexzooError(
            f"Run {label}: the trial window ({pre_ms:g} ms before to {post_ms:g} ms after the onset) of the "
            f"stimulus at {outside[0]:g} ms reaches outside the analysed {run.t_start_ms:g}-{run.t_stop_ms:g} ms.",
            "Raise [simulation] t_sim_ms or [stimulus] onset_ms, or shorten the window (validation settings "
            "pre_ms / post_ms).")


def _separability_tables(runs: dict, populations: list, s: dict) -> tuple:
    rows, results = [], {}
    readout = {"classifier": s["classifier"], "n_splits": s["n_splits"], "max_neurons": s["max_neurons"] or None}
    for label, run in runs.items():
        plan = stimulus_of(run)
        _check_trials_inside(label, run, plan["onsets_ms"], s["pre_ms"], s["post_ms"])
        result = separability_analysis({p: run.spikes[p] for p in populations}, run.sizes, plan["onsets_ms"],
                                       plan["pattern_of_trial"], pre_ms=s["pre_ms"], post_ms=s["post_ms"],
                                       bin_ms=s["bin_ms"], state=s["state"], metric=s["metric"],
                                       tau_ms=s["tau_ms"], readout_options=readout, populations=populations)
        results[label] = result
        early = _stimulus_window_means(result, plan.get("duration_ms", 0.0) + s["window_extra_ms"])
        for rec in result.summary.merge(early, on="population").to_dict(orient="records"):
            for name, column in SEPARABILITY_COLUMNS.items():
                value = float(rec[column])
                rows.append({"run": label, "population": rec["population"], "measure": name,
                             "value": value, "unit": RESPONSE_UNITS[name],
                             "note": "" if np.isfinite(value) else "no spikes to compare"})
    return pd.DataFrame(rows, columns=["run", "population", "measure", "value", "unit", "note"]), results


def _stimulus_window_means(result, window_ms: float) -> pd.DataFrame:
    """Mean ratio and accuracy over the bins that end within ``window_ms`` after onset.

    The responses to a pattern last about as long as the pattern: averaging over the whole
    post-onset window (``ratio_mean``, ``accuracy_mean``) dilutes them with bins of chance level.
    """
    def mean_over(frame, column):
        early = frame[(frame["bin_start_ms"] >= 0) & (frame["bin_end_ms"] <= window_ms)]
        return early.groupby("population", sort=False)[column].mean()

    return pd.DataFrame({"ratio_window": mean_over(result.curves, "ratio"),
                         "accuracy_window": mean_over(result.readout, "accuracy")}).reset_index()


def curve_table(results: dict, groups: dict, ref_labels: list, column: str, ref_name: str = "reference") -> pd.DataFrame:
    """A separability curve (``ratio`` of the decorrelation curve, or readout ``accuracy``) per model.

    Parameters
    ----------
    results : dict
        Run label -> SeparabilityResult.
    groups : dict
    ref_labels : list of str
    column : {"ratio", "accuracy"}
    ref_name : str

    Returns
    -------
    pandas.DataFrame
        ``model, population, time_ms`` (bin end after onset), ``value, sd_over_seeds, n_seeds``.
    """
    frame = "curves" if column == "ratio" else "readout"
    rows = []
    for model, labels in {ref_name: ref_labels, **groups}.items():
        stacked = pd.concat([getattr(results[lb], frame).assign(run=lb) for lb in labels])
        agg = stacked.groupby(["population", "bin_end_ms"], sort=False)[column].agg(["mean", "std", "count"])
        agg = agg.reset_index().rename(columns={"bin_end_ms": "time_ms", "mean": "value", "std": "sd_over_seeds",
                                                "count": "n_seeds"})
        rows.append(agg.assign(model=model))
    out = pd.concat(rows, ignore_index=True)
    return out[["model", "population", "time_ms", "value", "sd_over_seeds", "n_seeds"]]


def response_curves(kind: str, results: dict, groups: dict, ref_labels: list) -> dict:
    """The curve tables of a stimulus experiment, averaged over each model's seeds.

    Parameters
    ----------
    kind : str
    results : dict
        :func:`response_tables`' per-run results.
    groups : dict
    ref_labels : list of str

    Returns
    -------
    dict
        ``{"psth": ...}`` for pulses; ``{"decorrelation": ..., "readout": ...}`` for patterns;
        ``{"divergence": ..., "perturbation_summary": ..., "perturbations": ...}`` for perturbations
        (curves; each model's measures with a CI over seeds; every perturbation's values).
    """
    if kind == "thalamic_pulses":
        return {"psth": psth_table(results, groups, ref_labels)}
    if kind == "perturbation":
        return {"divergence": divergence_table(results, groups, ref_labels),
                "perturbation_summary": model_summary(results, groups, ref_labels),
                "perturbations": perturbation_table(results)}
    return {"decorrelation": curve_table(results, groups, ref_labels, "ratio"),
            "readout": curve_table(results, groups, ref_labels, "accuracy")}


def _measure_rows(label: str, summary: pd.DataFrame, trials: pd.DataFrame) -> list:
    rows = []
    responding = trials.groupby("population", sort=False)["responds"].mean()
    for rec in summary.to_dict(orient="records"):
        silent = "no response above baseline" if not rec["responds"] else ""
        for name, unit in TRANSIENT_UNITS.items():
            value = float(rec[name])
            # latency, duration and time to peak only exist for a response; the baseline and the peak
            # above it always do (a variant that stops responding must show as a lower peak, not as
            # an undefined decision)
            note = silent if (silent and name not in ("baseline_hz", "peak_hz")) else (
                "" if np.isfinite(value) else "undefined")
            rows.append({"run": label, "population": rec["population"], "measure": name,
                         "value": value if not note else np.nan, "unit": unit, "note": note})
        rows.append({"run": label, "population": rec["population"], "measure": "response_fraction",
                     "value": float(responding.get(rec["population"], np.nan)), "unit": "1", "note": ""})
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
