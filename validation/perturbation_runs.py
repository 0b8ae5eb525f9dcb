"""Perturbation experiments (issue 14): pair each seed's run with its perturbed runs, measure per seed.

An experiment of kind ``perturbation`` (experiments/config.py) gives every
(model, seed) its unperturbed run ``<label>-seed<k>`` (stimulus ``none``) and
one run ``<label>-seed<k>-p<n>`` per perturbed neuron ``n``: same seed, same
network, one extra spike of neuron ``n`` (or, in mode ``kick``, one input
into it) at ``onset_ms`` (:mod:`cortexzoo.network.stimulus`). Validation gets the
unperturbed runs only (one per seed, as for every experiment) and finds the
perturbed runs next to them. Each pair must be twins: the same identity but
for the stimulus, and the same spikes up to the perturbation, else the
divergence measured would be partly made by something else.

Per perturbed run and population (:func:`cortexzoo.validation.perturbation.perturbation_analysis`):
the divergence curves from the twin, the growth rate of ``growth_curve`` and
the decorrelation time of ``decorrelation_curve``, both relative to the
distance between two independent runs: the unperturbed runs of this seed and
of the model's next seed (the saturation level). Per seed these are averaged
over the perturbed neurons whose perturbation changed at least one spike (one
that changed none, e.g. a kick that left its neuron below threshold, gives the
measures nothing to follow; perturbations.csv counts it) and become measures decided like any
other (:mod:`cortexzoo.validation.inference`):

* ``divergence_rate_per_ms``: mean over the perturbations whose divergence
  grew enough to be fitted (a growth rate exists only for a divergence);
* ``decorrelation_time_ms``: mean over the perturbations, undefined when one
  of them did not decorrelate within the window (its time is only known to
  be longer: leaving it out would bias the mean down);
* ``fraction_differs``: mean fraction of the population's neurons whose spike
  trains differ at the end of the window.

The whole network, pooled into one pseudo-population
(:data:`cortexzoo.validation.perturbation.NETWORK`, :func:`~cortexzoo.validation.perturbation.pooled_spikes`),
is analysed exactly like a population and summarised per model
(``perturbation_summary.csv``, ``perturbations.csv``, ``divergence.csv``), but
not decided: the decisions, their families and the heatmap stay per
population. It gives every model a growth rate where small populations leave
it undefined (the staircase of whole neurons, :func:`_drop_steps`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cortexzoo.errors import CortexzooError
from cortexzoo.network.identity import identity_changes
from cortexzoo.network.output import load_run
from cortexzoo.validation.perturbation import (CURVES, NETWORK, decorrelation_time, mean_ci, perturbation_analysis,
                                                pooled_spikes, saturation_level)
from cortexzoo.validation.statistics import RESPONSE_UNITS

#: The per-seed measures of a perturbation experiment.
PERTURBATION_MEASURES = ("divergence_rate_per_ms", "decorrelation_time_ms", "fraction_differs")
MEASURE_COLUMNS = ["run", "population", "measure", "value", "unit", "note"]


@dataclass
class SeedPerturbations:
    """The perturbations of one seed's run, analysed.

    Attributes
    ----------
    twin : str
        Label of the unperturbed run.
    independent : str or None
        Label of the run that gives the saturation level (another seed of the
        same model); None with a single seed.
    table : pandas.DataFrame
        One row per (perturbed run, population, and the pooled
        :data:`~cortexzoo.validation.perturbation.NETWORK`): ``perturbed_run``,
        ``neuron``, ``changed_spikes`` (whether the perturbation changed any
        spike of the network), ``population``, ``fraction_differs``,
        ``first_divergence_ms``, the growth fit (``rate_per_ms``, ``ci_low``,
        ``ci_high``, ``fit_start_ms``, ``fit_stop_ms``, ``n_points``,
        ``growth_note``), ``growth_saturation``, ``decorrelation_saturation``
        and ``decorrelation_time_ms``.
    curves : pandas.DataFrame
        Mean over the perturbations that changed a spike (all of them when
        none did): ``population, curve, time_ms, value, independent`` (the
        independent pair's curve) and ``relative`` (value over the saturation
        level of that curve).
    measures : pandas.DataFrame
        The seed's measure rows (``run, population, measure, value, unit,
        note``), the pooled ``NETWORK`` ones included (summarised, not decided).
    """

    twin: str
    independent: str | None
    table: pd.DataFrame
    curves: pd.DataFrame
    measures: pd.DataFrame = None


def perturbed_paths(run_path) -> list:
    """Finished-or-not perturbed run directories next to a run: ``<run>-p<neuron>``, by neuron.

    Parameters
    ----------
    run_path : path

    Returns
    -------
    list of pathlib.Path
    """
    run_path = Path(run_path)
    pattern = re.compile(rf"^{re.escape(run_path.name)}-p(\d+)$")
    if not run_path.parent.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_path.parent.iterdir() if (m := pattern.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def has_perturbations(runs: dict) -> bool:
    """Whether the runs have perturbed runs next to them; all of them or none must.

    Parameters
    ----------
    runs : dict
        Label -> RunData.

    Returns
    -------
    bool
    """
    with_runs = {label: bool(perturbed_paths(run.path)) for label, run in runs.items()}
    if any(with_runs.values()) and not all(with_runs.values()):
        missing = ", ".join(label for label, has in with_runs.items() if not has)
        raise CortexzooError(f"Some runs have perturbed runs next to them (<run>-p<neuron>) and others do not "
                             f"({missing}).", "Validate the runs of one perturbation experiment together, each "
                             "seed's run with its perturbed runs beside it (cortexzoo run CONFIG makes them).")
    return any(with_runs.values())


def perturbation_tables(runs: dict, models: list, populations: list, settings: dict, say=None) -> tuple:
    """Per-seed perturbation measures of every run, and the analyses for curves and figures.

    Parameters
    ----------
    runs : dict
        Label -> RunData of the unperturbed runs.
    models : list of list of str
        The run labels of each model (reference, then every variant): the
        saturation level of a seed comes from the next seed of its model.
    populations : list of str
    settings : dict
        Full validation settings; reads ``[perturbation]``.
    say : callable, optional

    Returns
    -------
    (pandas.DataFrame, dict)
        Measure rows (``run, population, measure, value, unit, note``) of the
        populations, to be decided (the pooled ``NETWORK`` is left out: it would
        enlarge every family and duplicate evidence), and ``{label: SeedPerturbations}``.
    """
    say = say or (lambda message: None)
    s = _checked(settings["perturbation"])
    perturbed = {label: _load_perturbed(run) for label, run in runs.items()}
    _check_same_design(perturbed)
    results = {}
    for labels in models:
        for k, label in enumerate(labels):
            independent = labels[(k + 1) % len(labels)] if len(labels) > 1 else None
            say(f"divergence of {label}'s {len(perturbed[label])} perturbed run(s)")
            result = _analyse_seed(label, runs, perturbed[label], independent, populations, s)
            result.measures = pd.DataFrame(_seed_rows(result, [*populations, NETWORK]), columns=MEASURE_COLUMNS)
            results[label] = result
    measures = pd.concat([r.measures for r in results.values()], ignore_index=True)
    return measures[measures["population"] != NETWORK].reset_index(drop=True), results


def divergence_table(results: dict, groups: dict, ref_labels: list, ref_name: str = "reference") -> pd.DataFrame:
    """Divergence curves per model: mean over seeds of each seed's mean over perturbations.

    Parameters
    ----------
    results : dict
        Run label -> SeedPerturbations.
    groups : dict
        Variant label -> run labels.
    ref_labels : list of str
    ref_name : str

    Returns
    -------
    pandas.DataFrame
        ``model, population, curve, time_ms`` (bin end after the
        perturbation), ``value, sd_over_seeds, relative, relative_sd_over_seeds,
        n_seeds``; ``relative`` is the divergence over the independent-runs
        level (1: as different as two seeds). The pooled ``NETWORK`` has
        curves like a population.
    """
    parts = []
    for model, labels in {ref_name: ref_labels, **groups}.items():
        stacked = pd.concat([results[lb].curves for lb in labels])
        agg = stacked.groupby(["population", "curve", "time_ms"], sort=False).agg(
            value=("value", "mean"), sd_over_seeds=("value", "std"), relative=("relative", "mean"),
            relative_sd_over_seeds=("relative", "std"), n_seeds=("value", "count"))
        parts.append(agg.reset_index().assign(model=model))
    out = pd.concat(parts, ignore_index=True)
    return out[["model", "population", "curve", "time_ms", "value", "sd_over_seeds", "relative",
                "relative_sd_over_seeds", "n_seeds"]]


def model_summary(results: dict, groups: dict, ref_labels: list, ref_name: str = "reference",
                  level: float = 0.95) -> pd.DataFrame:
    """Each model's perturbation measures: mean over its seeds with a t interval (``perturbation_summary.csv``).

    Parameters
    ----------
    results : dict
        Run label -> SeedPerturbations.
    groups : dict
        Variant label -> run labels.
    ref_labels : list of str
    ref_name : str
    level : float

    Returns
    -------
    pandas.DataFrame
        ``model, population, measure, unit`` and the
        :func:`cortexzoo.validation.perturbation.mean_ci` fields over seeds
        (``mean, sd, ci_low, ci_high, n, n_undefined``); the pooled ``NETWORK``
        has rows like a population.
    """
    rows = []
    for model, labels in {ref_name: ref_labels, **groups}.items():
        seeds = pd.concat([results[lb].measures for lb in labels], ignore_index=True)
        for (pop, measure), values in seeds.groupby(["population", "measure"], sort=False)["value"]:
            rows.append({"model": model, "population": pop, "measure": measure, "unit": RESPONSE_UNITS[measure],
                         **mean_ci(values, level)})
    return pd.DataFrame(rows)


def perturbation_table(results: dict) -> pd.DataFrame:
    """Every perturbation's values (``perturbations.csv``): one row per (seed, perturbed run, population).

    The pooled ``NETWORK`` has rows like a population (``n_neurons``: all neurons pooled).

    Parameters
    ----------
    results : dict
        Run label -> SeedPerturbations.

    Returns
    -------
    pandas.DataFrame
    """
    return pd.concat([r.table.assign(run=label, independent_run=r.independent or "")
                      for label, r in results.items()], ignore_index=True)


def _checked(s: dict) -> dict:
    """The ``[perturbation]`` settings, refused when a curve name or fraction is wrong."""
    for key in ("growth_curve", "decorrelation_curve"):
        if s[key] not in CURVES:
            raise CortexzooError(f"Validation setting 'perturbation.{key}' = {s[key]!r} is not a divergence "
                                 "measure.", f"Use one of {', '.join(CURVES)}.")
    if not isinstance(s["min_steps"], int) or s["min_steps"] < 1:
        raise CortexzooError(f"Validation setting 'perturbation.min_steps' = {s['min_steps']!r} is not a positive "
                             "integer.", "Use an integer >= 1 (rises of the growth curve a fit needs).")
    if not 0 < s["growth_low"] < s["growth_high"] <= 1:
        raise CortexzooError(f"Validation settings 'perturbation.growth_low' = {s['growth_low']!r} and "
                             f"'growth_high' = {s['growth_high']!r} do not bound a fit window.",
                             "Use 0 < growth_low < growth_high <= 1 (fractions of the independent-runs level).")
    return s


def _load_perturbed(run) -> list:
    """The perturbed runs next to a run, each checked to be its twin up to the perturbation."""
    out = []
    for path in perturbed_paths(run.path):
        other = load_run(path)
        _check_twin(run, other)
        out.append(other)
    return out


def _check_twin(twin, perturbed) -> None:
    """Same inputs but the stimulus, and the same spikes up to the perturbation."""
    stimulus = perturbed.metadata.get("stimulus") or {}
    if stimulus.get("kind") != "perturbation" or (twin.metadata.get("stimulus") or {}).get("kind", "none") != "none":
        raise CortexzooError(f"{perturbed.path.name} is not a perturbed run of the unperturbed {twin.path.name}.",
                             "Keep only the runs of one perturbation experiment (cortexzoo run CONFIG) in runs/.")

    def without_stimulus(meta):
        identity = dict(meta.get("identity") or {})
        identity["config"] = {k: v for k, v in (identity.get("config") or {}).items() if k != "stimulus"}
        return identity

    changes = identity_changes(without_stimulus(twin.metadata), without_stimulus(perturbed.metadata))
    if changes:
        raise CortexzooError(f"{perturbed.path.name} was made from other inputs than its twin {twin.path.name} "
                             f"besides the perturbation: {'; '.join(changes)}.",
                             "Simulate both again from one config (cortexzoo run CONFIG).")
    t0 = stimulus["onsets_ms"][0]
    for pop, (ids, times) in twin.spikes.items():
        p_ids, p_times = perturbed.spikes[pop]
        if not (np.array_equal(times[times < t0], p_times[p_times < t0])
                and np.array_equal(ids[times < t0], p_ids[p_times < t0])):
            raise CortexzooError(f"{perturbed.path.name} differs from its twin {twin.path.name} in {pop} before the "
                                 f"perturbation at {t0:g} ms, so its divergence is not caused by the perturbation.",
                                 "Simulate both on one machine with the same thread count and NEST version (the "
                                 "cache re-simulates both when an input changes; do not mix in runs from elsewhere).")


def _design(run) -> tuple:
    """What a perturbation is, relative to the analysis window: population, onset, mode, weight, neuron."""
    stim = run.metadata["config"]["stimulus"]
    onset = run.metadata["stimulus"]["onsets_ms"][0] - run.t_start_ms
    # Runs from before the mode existed were kicks; an extra spike has no weight of its own (None).
    return stim["population"], round(onset, 6), stim.get("mode", "kick"), stim.get("weight_pA"), stim["neuron"]


def _check_same_design(perturbed: dict) -> None:
    """Every seed of every model is perturbed the same way (else their divergences are not comparable)."""
    designs = {label: sorted(_design(r) for r in runs) for label, runs in perturbed.items()}
    first_label, first = next(iter(designs.items()))
    for label, design in designs.items():
        if design != first:
            raise CortexzooError(f"The perturbations of {label} ({design}) differ from those of {first_label} "
                                 f"({first}; population, onset after the window start, mode, weight, neuron).",
                                 "Compare runs perturbed alike: one perturbation experiment, no left-over runs "
                                 "of an earlier neuron list in runs/.")


def _analyse_seed(label, runs, perturbed, independent, populations, s) -> SeedPerturbations:
    """Every perturbed run of a seed against its twin, per population and for the pooled network."""
    twin = runs[label]
    other = runs[independent].spikes if independent else {p: (np.array([], int), np.array([])) for p in populations}
    sizes = {**twin.sizes, NETWORK: sum(twin.sizes[p] for p in populations)}
    twin_spikes = _with_network(twin.spikes, sizes, populations)
    other_spikes = _with_network(other, sizes, populations)
    tables, curves = [], []
    for run in perturbed:
        t0 = run.metadata["stimulus"]["onsets_ms"][0]
        result = perturbation_analysis(twin_spikes, _with_network(run.spikes, sizes, populations), other_spikes,
                                       sizes, t0, twin.t_stop_ms,
                                       bin_ms=s["bin_ms"], tau_ms=s["tau_ms"], metric=s["metric"],
                                       curve=s["growth_curve"], populations=[*populations, NETWORK],
                                       fit_options={"low": s["growth_low"], "high": s["growth_high"],
                                                    "min_bins": s["min_bins"]})
        tables.append(_perturbation_rows(result, run, s, independent is not None))
        curves.append(result.curves)
    table = pd.concat(tables, ignore_index=True)
    changed = [c for c, t in zip(curves, tables) if t["changed_spikes"].iloc[0]]
    return SeedPerturbations(label, independent, table, _mean_curves(changed or curves, independent is not None))


def _with_network(spikes: dict, sizes: dict, populations: list) -> dict:
    """The populations' spikes and, as population ``NETWORK``, all of them pooled."""
    ids, times, _ = pooled_spikes(spikes, sizes, populations)
    return {**{p: spikes[p] for p in populations}, NETWORK: (ids, times)}


def _perturbation_rows(result, run, s, has_level: bool) -> pd.DataFrame:
    """The summary of one perturbed run, with the decorrelation time of ``decorrelation_curve``."""
    summary = result.summary.rename(columns={"saturation": "growth_saturation", "note": "growth_note"})
    decorrelation, levels = [], []
    for pop in summary["population"]:
        curve = result.curves[result.curves["population"] == pop]
        level = saturation_level(curve[f"independent_{s['decorrelation_curve']}"]) if has_level else math.nan
        levels.append(level)
        decorrelation.append(decorrelation_time(curve["bin_end_ms"], curve[s["decorrelation_curve"]], level,
                                                s["tolerance"], s["min_bins"]))
    if not has_level:
        summary["growth_note"] = "one seed only: no independent run to give the saturation level"
    summary["decorrelation_saturation"] = levels
    summary["decorrelation_time_ms"] = decorrelation
    _drop_steps(summary, result.curves, s["growth_curve"], s["min_steps"])
    summary.insert(0, "changed_spikes", bool((summary["fraction_differs"] > 0).any()))
    summary.insert(0, "neuron", run.metadata["config"]["stimulus"]["neuron"])
    summary.insert(0, "perturbed_run", run.path.name)
    return summary.drop(columns=["curve"])


def _drop_steps(summary: pd.DataFrame, curves: pd.DataFrame, name: str, min_steps: int) -> None:
    """Undefine growth rates fitted to fewer than ``min_steps`` rises of the curve.

    In a small population the fraction of neurons that differ grows by whole
    neurons: a fit window holding one or two of them fits a staircase (often
    a flat stretch and then the step, slope 0), not an exponential.
    """
    for i, row in summary.iterrows():
        if not np.isfinite(row["rate_per_ms"]):
            continue
        curve = curves[curves["population"] == row["population"]]
        inside = curve[(curve["bin_end_ms"] >= row["fit_start_ms"]) & (curve["bin_end_ms"] < row["fit_stop_ms"])]
        steps = int((np.diff(inside[name].to_numpy()) != 0).sum())
        if steps < min_steps:
            summary.loc[i, ["rate_per_ms", "ci_low", "ci_high"]] = math.nan
            summary.loc[i, "growth_note"] = (f"the divergence rises in {steps} step(s) within the fit window, fewer "
                                             f"than {min_steps}: too few neurons to resolve a growth")


def _mean_curves(curves: list, has_level: bool) -> pd.DataFrame:
    """Mean over the perturbations of every divergence curve, with the independent pair's curve and the ratio."""
    parts = []
    for name in CURVES:
        stacked = pd.concat([c[["population", "bin_end_ms", name, f"independent_{name}"]] for c in curves])
        mean = stacked.groupby(["population", "bin_end_ms"], sort=False).mean().reset_index()
        mean.columns = ["population", "time_ms", "value", "independent"]
        level = mean.groupby("population", sort=False)["independent"].transform(saturation_level)
        relative = mean["value"] / level.where(level > 0) if has_level else np.nan
        parts.append(mean.assign(curve=name, relative=relative,
                                 independent=mean["independent"] if has_level else np.nan))
    return pd.concat(parts, ignore_index=True)


def _seed_rows(result: SeedPerturbations, populations: list) -> list:
    """The seed's three measures per population, averaged over its perturbations that changed a spike.

    A perturbation that changed no spike at all (the kick left its neuron
    below threshold) perturbed nothing the measures could follow; it is left
    out, and a seed where every perturbation did so has no measures.
    """
    rows = []
    window_ms = result.curves["time_ms"].max()
    changed = result.table[result.table["changed_spikes"]]
    n_all = result.table["perturbed_run"].nunique()
    for pop in populations:
        mine = changed[changed["population"] == pop]
        if mine.empty:
            none = (math.nan, f"none of the {n_all} perturbation(s) changed a spike")
            values = dict.fromkeys(PERTURBATION_MEASURES, none)
        else:
            values = {"divergence_rate_per_ms": _mean_rate(mine),
                      "decorrelation_time_ms": _mean_decorrelation(mine, window_ms, result.independent is not None),
                      "fraction_differs": (float(mine["fraction_differs"].mean()), "")}
        rows += [{"run": result.twin, "population": pop, "measure": name, "value": value,
                  "unit": RESPONSE_UNITS[name], "note": note} for name, (value, note) in values.items()]
    return rows


def _mean_rate(mine: pd.DataFrame) -> tuple:
    """Mean growth rate over the perturbations that have one (a growth rate needs a divergence to fit)."""
    rates = mine["rate_per_ms"].dropna()
    if len(rates):
        return float(rates.mean()), ""
    return math.nan, f"no perturbation has a growth rate: {mine['growth_note'].iloc[0]}"


def _mean_decorrelation(mine: pd.DataFrame, window_ms: float, has_level: bool) -> tuple:
    """Mean decorrelation time, undefined when one perturbation did not decorrelate (censored)."""
    if not has_level:
        return math.nan, "one seed only: no independent run to give the saturation level"
    missing = int(mine["decorrelation_time_ms"].isna().sum())
    if missing:
        return math.nan, (f"{missing} of {len(mine)} perturbations did not decorrelate within the {window_ms:g} ms "
                          "after the perturbation")
    return float(mine["decorrelation_time_ms"].mean()), ""
