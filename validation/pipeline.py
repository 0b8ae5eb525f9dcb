"""``validate()``: run directories in, decisions with effect sizes and distances out.

Decisions (``scores.csv``): every run gives one value per (population,
measure) (:meth:`PopulationStatistics.measures`: mean rate, mean LV, mean CV
of neurons with enough ISIs, mean CC of a fixed subsample, synchrony of a fixed
subsample, floor-removed spectral power and peak, Fano factors). A variant's
seeds are tested against the reference seeds per (population, measure), the
p-values of one variant are corrected together (Benjamini-Hochberg), and each
row carries the effect in the measure's unit and relative to the reference,
with confidence intervals (:mod:`cortexzoo.validation.inference`).

Distances (``distances.csv``, descriptive): each candidate run's
distribution distances (KS, Wasserstein, effect size, log-PSD RMS) to every
reference seed, as multiples of the same distance between reference seeds.
They grow with duration and network size, so they decide nothing. Scores are
distances: lower is better, and nothing here ever sorts them the other way.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cortexzoo.atomic import staged_folder
from cortexzoo.errors import CortexzooError
from cortexzoo.network.output import load_run
from cortexzoo.validation import figures
from cortexzoo.validation.inference import DECISION_COLUMNS
from cortexzoo.validation.provenance import network_mismatches
from cortexzoo.validation.response_figures import response_figures
from cortexzoo.validation.responses import RESPONSE_KINDS, response_curves, response_kind, response_tables
from cortexzoo.validation.sciunit_tests import SeedSetModel, decision_suite, decision_table, inference_options
from cortexzoo.validation.scores import candidate_scores, null_scores, relative_to_null
from cortexzoo.validation.settings import SCORE_KINDS, STATISTICS, decided_measures, load_settings
from cortexzoo.validation.statistics import measure_unit, population_statistics

DURATION_TOLERANCE_MS = 1e-6
DISTANCE_COLUMNS = ["model", "population", "statistic", "score_kind", "primary", "raw", "null_mean", "null_max",
                    "multiple_of_mean", "multiple_of_max", "n_reference_seeds", "note"]
MEASURE_COLUMNS = ["run", "population", "measure", "value", "unit", "note"]


class ValidationWarning(UserWarning):
    """A validation result is weaker than usual (e.g. too few reference seeds)."""


@dataclass
class ValidationResult:
    """What :func:`validate` produced.

    Attributes
    ----------
    scores : pandas.DataFrame
        Decisions: one row per (variant, population, measure), columns
        :data:`cortexzoo.validation.inference.DECISION_COLUMNS`, in input order.
    distances : pandas.DataFrame
        Descriptive distances per candidate run, columns ``DISTANCE_COLUMNS``.
    measures : pandas.DataFrame
        One value per (run, population, measure), columns ``MEASURE_COLUMNS``.
    statistics : pandas.DataFrame
        One row per run and population: counts, exclusions, subsample sizes, peaks.
    summary : pandas.DataFrame
        Per variant: decisions that differ, are consistent or undefined, and
        the largest effect; fewest differences first.
    warnings : list of str
    files : dict
        Name -> path of everything written.
    stats : dict
        Run label -> {population -> PopulationStatistics}, for further analysis.
    """

    scores: pd.DataFrame
    distances: pd.DataFrame
    measures: pd.DataFrame
    statistics: pd.DataFrame
    summary: pd.DataFrame
    warnings: list = field(default_factory=list)
    files: dict = field(default_factory=dict)
    stats: dict = field(default_factory=dict)


def _labels(paths):
    names = [Path(p).name for p in paths]
    out = []
    for p, name in zip(paths, names):
        out.append(name if names.count(name) == 1 else str(Path(p)))
    return out


def _check_consistent(runs: dict) -> None:
    items = list(runs.items())
    label0, run0 = items[0]
    for label, run in items[1:]:
        if run.populations != run0.populations:
            raise CortexzooError(
                f"Runs {label0} and {label} have different population sets "
                f"({', '.join(run0.populations)} vs {', '.join(run.populations)}).",
                "Compare only runs of the same network.",
            )
        if run.sizes != run0.sizes:
            diff = {p: (run0.sizes[p], run.sizes[p]) for p in run0.sizes if run0.sizes[p] != run.sizes[p]}
            raise CortexzooError(
                f"Runs {label0} and {label} have different population sizes {diff}.",
                "Compare only runs at the same network scale.",
            )
        if abs(run.duration_ms - run0.duration_ms) > DURATION_TOLERANCE_MS:
            raise CortexzooError(
                f"Runs {label0} and {label} have different analysis windows "
                f"({run0.duration_ms:g} ms vs {run.duration_ms:g} ms).",
                "Simulate all runs for the same time with the same presimulation.",
            )
        # What sizes and windows cannot show (K_scaling, resolution, background, ...); runs from other machines
        # (cortexzoo unpack) must have simulated the reference's network.
        differ = network_mismatches(run0.metadata, run.metadata)
        if differ:
            raise CortexzooError(
                f"Run {label} was made with another network than the reference {label0}: {'; '.join(differ)} "
                f"({label0} vs {label}).",
                "Compare only runs of one network (same pd14.toml, N_scaling, K_scaling, resolution, background, "
                "thalamic input and its thalamic_indegree rule, [stimulus] (the experiment kind) and t_sim_ms); simulate the run again with the reference's [network] and "
                "[simulation] settings, or validate it against a reference of its own network.",
            )


def _check_population(label, pop, stats) -> None:
    # Only silence is an input error; a measure a sparse population cannot give (no neuron with
    # enough ISIs, too few for the CC subsample) is reported as undefined with its reason.
    if stats.n_spikes == 0:
        raise CortexzooError(f"Population {pop} of run {label} has no spikes at all in the analysis window.",
                             "Check that run; if the population is silent by design, leave it out with "
                             "scores.populations in the settings (or --populations).")


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else None)
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return _jsonable(value.item())
    return value


def validate(reference_dirs, candidate_dirs, out_dir, settings=None, progress=None, make_figures=True,
             degenerate_candidates: str = "error", replace_folder: bool = False) -> ValidationResult:
    """Score candidate runs against reference seeds and write tables and figures.

    Steps: load the runs, compute statistics, score, write tables, draw figures.

    Parameters
    ----------
    reference_dirs : list of str or pathlib.Path
        Run directories of the reference model, one per seed (>= 3 recommended).
    candidate_dirs : list or dict
        Run directories of the variants: a dict ``{variant label: [run dirs,
        one per seed]}`` (the seeds of one variant are tested together), or a
        list in which every run is a variant of its own (one seed each).
    out_dir : str or pathlib.Path
        Created if needed; ``scores.csv`` (decisions), ``distances.csv``,
        ``measures.csv``, ``scores.json``, ``statistics.csv``, ``summary.csv``
        and the figures are (over)written there.
    settings : dict or str or pathlib.Path, optional
        Overrides of ``validation/defaults.toml`` (dict or TOML file).
    progress : callable, optional
        Called with one-line progress messages.
    make_figures : bool
        Skip the figures when False (faster in tests).
    degenerate_candidates : {"error", "flag"}
        What to do when a candidate population is silent: raise (default), or
        score it (its rate is 0 Hz, measures that need spikes are undefined,
        distances infinite; used by ``compare``, where a silent variant is a
        result, not a mistake). Silent reference populations always raise.
    replace_folder : bool
        Replace ``out_dir`` as a whole (an experiment's own ``validation/``),
        so no file of an earlier validation survives; otherwise only the files
        written here are replaced.

    Returns
    -------
    ValidationResult

    Raises
    ------
    CortexzooError
        For missing/incomplete/corrupted runs, runs that differ in populations,
        sizes or duration, runs of another network than the first reference
        (:func:`cortexzoo.validation.provenance.network_mismatches`), duplicated
        runs, or silent populations.

    Warns
    -----
    ValidationWarning
        With fewer reference seeds than ``scores.min_reference_seeds`` or fewer
        variant seeds than ``scores.min_variant_seeds``: the warning states the
        smallest change the decisions can then detect.
    """
    say = progress or (lambda message: None)
    settings = load_settings(settings)
    if degenerate_candidates not in ("error", "flag"):
        raise CortexzooError(f"degenerate_candidates = {degenerate_candidates!r}.", "Use 'error' or 'flag'.")
    runs, ref_labels, groups = _load_runs(reference_dirs, candidate_dirs, say)
    runs, groups, runaway = _without_runaways(runs, ref_labels, groups, say)
    cand_labels = [label for members in groups.values() for label in members]
    populations = _populations(settings, runs[ref_labels[0]])
    stats, degenerate = _statistics(runs, populations, ref_labels, settings, degenerate_candidates, say)
    measures, kind, responses = _with_responses(measure_table(stats), runs, populations, settings, say,
                                                [ref_labels, *groups.values()])
    say("decisions")
    chosen = decided_measures(settings, measures["measure"])
    family_size = len(measures.loc[measures["measure"].isin(chosen), ["population", "measure"]].drop_duplicates())
    notes = _seed_notes(len(ref_labels), groups, settings, family_size, say)
    notes += runaway + _stationarity_notes(stats, say) + _compensation_notes(runs, say)
    scores = decision_rows(measures, ref_labels, groups, settings)
    distances = _distance_rows(stats, degenerate, populations, ref_labels, cand_labels, settings)
    statistics = _statistics_table(runs, stats, populations, ref_labels)
    summary = _summary(scores, groups)
    tables = {"scores": scores, "distances": distances, "measures": measures, "statistics": statistics,
              "summary": summary}
    curves = response_curves(kind, responses, groups, ref_labels) if responses else {}
    tables.update(curves)
    # Written aside and published whole: a killed validation leaves the previous outputs intact.
    with staged_folder(out_dir, whole=replace_folder) as stage:
        names = _write(stage, tables, notes, settings, ref_labels, groups)
        if make_figures:
            say("figures")
            names.update(_figures(stage, runs, stats, populations, ref_labels, groups, scores, settings))
            if responses:
                names.update(response_figures(stage, curves, measures, ref_labels, groups, settings))
    files = {name: Path(out_dir) / path.name for name, path in names.items()}
    say(f"wrote {len(files)} files to {out_dir}")
    return ValidationResult(scores, distances, measures, statistics, summary, notes, files, stats)


def _load_runs(reference_dirs, candidate_dirs, say):
    """Load every run (each once), check they are one network and the reference seeds differ."""
    grouped = candidate_dirs if isinstance(candidate_dirs, dict) else None
    if grouped is not None:
        candidate_dirs = [p for members in grouped.values() for p in members]
    reference_dirs, candidate_dirs = [Path(p) for p in reference_dirs], [Path(p) for p in candidate_dirs]
    if not reference_dirs:
        raise CortexzooError("No reference run given.", "Pass at least one reference run directory (better 3 seeds).")
    if not candidate_dirs:
        raise CortexzooError("No candidate run given.", "Pass at least one candidate run directory.")
    all_dirs = reference_dirs + candidate_dirs
    resolved = [p.resolve() for p in all_dirs]
    for p in set(resolved):
        if resolved.count(p) > 1:
            raise CortexzooError(f"Run {p} is given more than once.",
                                 "Pass each run once; a reference seed compared with itself fakes zero variability.")
    labels = _labels(all_dirs)
    runs = {}
    for label, path in zip(labels, all_dirs):
        say(f"loading {path}")
        runs[label] = load_run(path)
    _check_consistent(runs)
    ref_labels = labels[:len(reference_dirs)]
    seeds = [runs[lb].metadata.get("seed") for lb in ref_labels]
    known = [s for s in seeds if s is not None]
    if len(set(map(str, known))) < len(known):
        raise CortexzooError(f"Reference runs share a seed ({seeds}); they are not independent realisations.",
                             "Run the reference with different seeds.")
    empty = [name for name, members in (grouped or {}).items() if not members]
    if empty:
        raise CortexzooError(f"Variant(s) {', '.join(map(str, empty))} have no run.", "Give every variant at least one run.")
    cand_labels = iter(labels[len(reference_dirs):])
    if grouped is None:
        groups = {label: [label] for label in labels[len(reference_dirs):]}
    else:
        groups = {str(name): [next(cand_labels) for _ in members] for name, members in grouped.items()}
    return runs, ref_labels, groups


def _without_runaways(runs: dict, ref_labels: list, groups: dict, say) -> tuple:
    """Leave out the variant runs the rate guard stopped, with a note each; refuse a runaway reference.

    A run that ran away (network/pd14.py RateGuard) ends early and its rates
    are the runaway's: it is a finding about the model, not a sample of the
    stationary state the measures describe. A variant keeps its other seeds.
    """
    stopped = {label: run.metadata["runaway"] for label, run in runs.items() if run.metadata.get("runaway")}
    refs = [label for label in ref_labels if label in stopped]
    if refs:
        raise CortexzooError(f"Reference run(s) {', '.join(refs)} ran away (stopped by the rate guard), so there "
                             "is no reference state to compare with.",
                             "Check the reference config (stimulus strength, scale); raise [simulation] "
                             "max_rate_Hz only if such rates are intended.")
    notes = []
    for label, r in stopped.items():
        notes.append(f"{label} ran away and is left out: {r['population']} fired {r['rate_Hz']:g} Hz over "
                     f"{r['window_ms'][0]:g}-{r['window_ms'][1]:g} ms of model time (above [simulation] "
                     f"max_rate_Hz = {r['max_rate_Hz']:g}); the run was stopped there. Rates then: "
                     + ", ".join(f"{p} {v:g}" for p, v in r["rates_Hz"].items()) + " Hz.")
        say(f"warning: {notes[-1]}")
    kept = {name: [lb for lb in members if lb not in stopped] for name, members in groups.items()}
    if not any(kept.values()):
        raise CortexzooError("Every variant run ran away (stopped by the rate guard); nothing is left to score.",
                             "Read the notes above per run; weaken the stimulus or check the models' "
                             "calibration.")
    return ({lb: run for lb, run in runs.items() if lb not in stopped},
            {name: members for name, members in kept.items() if members}, notes)


def _seed_notes(n_ref: int, groups: dict, settings: dict, family_size: int, say) -> list:
    """Warnings for designs with fewer seeds than recommended, stating what they can still detect."""
    from cortexzoo.validation.controls import minimal_detectable_change

    sc = settings["scores"]
    min_ref, min_var = sc["min_reference_seeds"], sc["min_variant_seeds"]
    notes = []
    for n_var in sorted({len(members) for members in groups.values()}):
        if n_ref >= min_ref and n_var >= min_var:
            continue
        names = ", ".join(name for name, members in groups.items() if len(members) == n_var)
        if n_ref < 2 or n_var < 1:
            notes.append(f"{names}: {n_ref} reference and {n_var} variant seed(s) allow no test (2 reference "
                         "seeds and 1 variant seed are needed); every decision is undefined.")
            continue
        alpha = sc["fdr"] / max(family_size, 1)
        now = float(minimal_detectable_change(1.0, n_ref, n_var, alpha))
        design = float(minimal_detectable_change(1.0, min_ref, min_var, alpha))
        notes.append(f"{names}: {n_ref} reference and {n_var} variant seed(s), fewer than recommended "
                     f"({min_ref} + {min_var}). The decisions keep their {sc['fdr']:.0%} false discovery rate, "
                     f"but a single difference among the {family_size} decisions is called (80 % power) only "
                     f"when it exceeds {now:.1f} seed-to-seed SDs of its measure, against {design:.1f} with "
                     f"{min_ref} + {min_var} seeds; add seeds before reading 'consistent' as 'same'.")
    for note in notes:
        warnings.warn(note, ValidationWarning, stacklevel=3)
        say(f"warning: {note}")
    return notes


# A drift flagged as non-stationary: beyond 20 % of the rate and 5 Poisson SDs between the halves
# (network fluctuations spread wider than Poisson, so the z-score alone would flag healthy runs).
DRIFT_RELATIVE, DRIFT_Z = 0.2, 5.0


def _stationarity_notes(stats: dict, say) -> list:
    """Warnings for populations whose rate changes between the halves of the analysis window."""
    notes = []
    for label, by_pop in stats.items():
        for pop, st in by_pop.items():
            s = st.extra.get("stationarity", {})
            drift, z = s.get("relative_drift", float("nan")), s.get("drift_z", float("nan"))
            if abs(drift) > DRIFT_RELATIVE and abs(z) > DRIFT_Z:
                notes.append(f"{label} {pop} is not stationary: its rate changes by {drift:+.0%} between the halves "
                             f"of the analysis window ({s['rate_first_half_hz']:.2f} -> "
                             f"{s['rate_second_half_hz']:.2f} Hz, z = {z:.1f}); lengthen the warm-up "
                             "([simulation] t_presim_ms or warmup_factor) or check for runaway activity.")
                say(f"warning: {notes[-1]}")
    return notes


def _compensation_notes(runs: dict, say) -> list:
    """Warnings for runs whose self-consistent K-scaling compensation did not converge."""
    notes = []
    for label, run in runs.items():
        comp = run.metadata.get("k_compensation")
        if isinstance(comp, dict) and not comp.get("converged", True):
            notes.append(f"{label}: the self-consistent K-scaling compensation did not converge in "
                         f"{comp.get('windows')} windows; its DC rests on rates that still moved (see the run's "
                         "metadata k_compensation.history; raise [network] compensation_max_windows).")
            say(f"warning: {notes[-1]}")
    return notes


def _populations(settings: dict, run) -> list:
    populations = list(settings["scores"]["populations"]) or run.populations
    unknown = [p for p in populations if p not in run.sizes]
    if unknown:
        raise CortexzooError(f"Unknown populations {unknown} in scores.populations.",
                             f"The runs have {', '.join(run.populations)}.")
    return populations


def _statistics(runs, populations, ref_labels, settings, degenerate_candidates, say):
    """Statistics per run and population; candidate populations too sparse to score are noted, not fatal."""
    stats, degenerate = {}, {}
    for label, run in runs.items():
        say(f"statistics of {label}")
        stats[label] = {}
        for pop in populations:
            ids, times = run.window(pop)
            st = population_statistics(pop, ids, times, run.sizes[pop], run.t_start_ms, run.t_stop_ms, settings)
            try:
                _check_population(label, pop, st)
            except CortexzooError as err:
                if label in ref_labels or degenerate_candidates != "flag":
                    raise
                degenerate[(label, pop)] = err.problem
                say(f"warning: {err.problem} Its scores are undefined.")
            stats[label][pop] = st
    return stats, degenerate


def run_measures(reference_dirs, candidate_groups: dict, settings=None, progress=None):
    """Load runs and compute their per-seed measures (the input of decisions and controls).

    Parameters
    ----------
    reference_dirs : list of path
    candidate_groups : dict
        Variant label -> list of run dirs.
    settings : dict or path, optional
    progress : callable, optional

    Returns
    -------
    tuple
        ``(measures, ref_labels, groups, settings)``: the :func:`measure_table`
        of every run, the reference run labels, variant label -> run labels,
        and the full settings.
    """
    say = progress or (lambda message: None)
    settings = load_settings(settings)
    runs, ref_labels, groups = _load_runs(reference_dirs, candidate_groups, say)
    runs, groups, _ = _without_runaways(runs, ref_labels, groups, say)
    populations = _populations(settings, runs[ref_labels[0]])
    stats, _ = _statistics(runs, populations, ref_labels, settings, "flag", say)
    measures, _, _ = _with_responses(measure_table(stats), runs, populations, settings, say,
                                     [ref_labels, *groups.values()])
    return measures, ref_labels, groups, settings


def _with_responses(measures: pd.DataFrame, runs: dict, populations: list, settings: dict, say, models) -> tuple:
    """Add the stimulus-response measures of stimulus experiments to the stationary ones.

    ``models`` lists the run labels of each model (its seeds), reference first.
    """
    kind = response_kind(runs)
    if kind not in RESPONSE_KINDS:
        return measures, kind, {}
    say(f"responses to {kind.replace('_', ' ')}")
    rows, results = response_tables(runs, populations, settings, kind, models, say)
    return pd.concat([measures, rows], ignore_index=True), kind, results


def measure_table(stats: dict) -> pd.DataFrame:
    """One row per (run, population, measure): the per-seed values the decisions compare.

    Parameters
    ----------
    stats : dict
        Run label -> {population -> PopulationStatistics}.

    Returns
    -------
    pandas.DataFrame
        Columns ``MEASURE_COLUMNS``; ``note`` says why a value is undefined (NaN).
    """
    rows = []
    for label, by_pop in stats.items():
        for pop, st in by_pop.items():
            why = st.undefined_measures()
            rows += [{"run": label, "population": pop, "measure": name, "value": value,
                      "unit": measure_unit(name), "note": why.get(name, "")}
                     for name, value in st.measures().items()]
    return pd.DataFrame(rows, columns=MEASURE_COLUMNS)


def decision_rows(measures: pd.DataFrame, ref_labels: list, groups: dict, settings: dict) -> pd.DataFrame:
    """Decisions of every variant: one Benjamini-Hochberg family per variant.

    Parameters
    ----------
    measures : pandas.DataFrame
        From :func:`measure_table`.
    ref_labels : list of str
    groups : dict
        Variant label -> its run labels (seeds).
    settings : dict

    Returns
    -------
    pandas.DataFrame
        Columns :data:`cortexzoo.validation.inference.DECISION_COLUMNS`.
    """
    sc = settings["scores"]
    chosen = decided_measures(settings, measures["measure"])
    measures = measures[measures["measure"].isin(chosen)]
    if not groups:
        return pd.DataFrame(columns=DECISION_COLUMNS)
    # The SciUnit suite is the one scoring path: one MeasureTest per (population, measure), judged
    # on each variant's seeds; a user's own SciUnit test can join the same table.
    reference = SeedSetModel.from_measure_table(measures, ref_labels, "reference")
    variants = [SeedSetModel.from_measure_table(measures, members, name) for name, members in groups.items()]
    suite = decision_suite(reference, list(dict.fromkeys(measures["population"])),
                           list(dict.fromkeys(measures["measure"])), inference_options(settings))
    return decision_table(suite, variants, sc["fdr"])


def _distance_rows(stats, degenerate, populations, ref_labels, cand_labels, settings) -> pd.DataFrame:
    """Descriptive distances: one row per (candidate run, population, statistic, score kind)."""
    primary = settings["scores"]["primary"]
    n_ref = len(ref_labels)
    rows = []
    for pop in populations:
        refs = [stats[lb][pop] for lb in ref_labels]
        null = null_scores(refs)
        for cand in cand_labels:
            why = degenerate.get((cand, pop))
            raw = None if why else candidate_scores(refs, stats[cand][pop])
            for stat in STATISTICS:
                for kind in SCORE_KINDS[stat]:
                    value = float("inf") if why else raw[(stat, kind)]
                    rel = relative_to_null(value, null[(stat, kind)])
                    if why:
                        rel["note"] = why
                    rows.append({"model": cand, "population": pop, "statistic": stat, "score_kind": kind,
                                 "primary": primary.get(stat) == kind, "raw": value, **rel,
                                 "n_reference_seeds": n_ref})
    return pd.DataFrame(rows).reindex(columns=DISTANCE_COLUMNS)


def _statistics_table(runs, stats, populations, ref_labels) -> pd.DataFrame:
    rows = []
    for label, run in runs.items():
        role = "reference" if label in ref_labels else "candidate"
        for pop in populations:
            rows.append({"run": label, "role": role, "path": str(run.path), **stats[label][pop].summary()})
    return pd.DataFrame(rows)


def _summary(scores: pd.DataFrame, groups: dict) -> pd.DataFrame:
    """Per variant: decisions that differ / are consistent / undefined, and the largest differing effect."""
    rows = []
    for name, members in groups.items():
        mine = scores[scores["model"] == name]
        differs = mine[mine["decision"] == "differs"]
        row = {"model": name, "n_variant_seeds": len(members), "differs": len(differs),
               "consistent": int((mine["decision"] == "consistent").sum()),
               "undefined": int(mine["decision"].str.startswith("undefined").sum()), "of": len(mine),
               "median_abs_relative_effect": float(mine["relative_effect"].abs().median()),
               "largest": None, "largest_relative_effect": None}
        if differs["relative_effect"].notna().any():  # a reference mean of 0 has no relative effect
            top = differs.loc[differs["relative_effect"].abs().idxmax()]
            row.update(largest=f"{top['population']} {top['measure']}", largest_relative_effect=top["relative_effect"])
        rows.append(row)
    summary = pd.DataFrame(rows)
    if len(summary):
        # Fewest differing measures first, then fewest undefined (an undefined decision is no evidence of
        # agreement), then the smaller typical effect. Never by a score descending.
        summary = summary.sort_values(["differs", "undefined", "median_abs_relative_effect"], kind="stable")
    return summary.reset_index(drop=True)


def _write(out_dir, tables, notes, settings, ref_labels, groups) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {f"{name}.csv": out / f"{name}.csv" for name in tables}
    for name, table in tables.items():
        table.to_csv(files[f"{name}.csv"], index=False)
    files["scores.json"] = out / "scores.json"
    payload = {
        "about": "Decisions: per (variant, population, measure) a seed-level test of the variant's seeds against "
                 "the reference seeds, Benjamini-Hochberg corrected per variant at scores.fdr; 'differs' when "
                 "q <= fdr. 'effect' is variant - reference in the measure's unit, 'relative_effect' over the "
                 "reference mean, both with confidence intervals. distances.csv holds descriptive distances.",
        "references": ref_labels, "variants": groups, "warnings": notes, "settings": settings,
        "rows": [{k: _jsonable(v) for k, v in row.items()} for row in tables["scores"].to_dict(orient="records")],
    }
    files["scores.json"].write_text(json.dumps(payload, indent=1))
    return files


def _figures(out_dir, runs, stats, populations, ref_labels, groups, scores, settings) -> dict:
    out = Path(out_dir)
    f = settings["figures"]
    files = {name: out / name for name in ("raster.png", "rates_boxplot.png", "cv_distributions.png",
                                           "psd_overlay.png", "heatmap.png")}
    # the first seed of the reference and of each variant: every seed of a 20-variant study is a 9000 px image
    shown = {lb: runs[lb] for lb in [ref_labels[0]] + [members[0] for members in groups.values()]}
    figures.raster(shown, populations, files["raster.png"], f["raster_excerpt_ms"], f["raster_neurons_per_population"])
    figures.rate_boxplots(stats, populations, ref_labels, files["rates_boxplot.png"])
    figures.cv_distributions(stats, populations, ref_labels, files["cv_distributions.png"])
    figures.psd_overlays(stats, populations, ref_labels, files["psd_overlay.png"])
    figures.effect_heatmap(scores, files["heatmap.png"], settings["scores"]["fdr"])
    return files
