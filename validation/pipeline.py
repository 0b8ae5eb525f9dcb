"""``validate()``: run directories in, scores relative to seed-to-seed variability out.

Each candidate's raw score for a (population, statistic, score kind) is the
mean of its scores against every reference seed. Natural variability is the
same score between every pair of reference seeds; the raw score is reported
as a multiple of the mean and of the maximum of those, and a candidate
"matches" when the multiple of the maximum is <= 1. Scores are distances:
lower is better, and nothing here ever sorts them the other way.
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
from cortexzoo.validation.scores import candidate_scores, null_scores, relative_to_null
from cortexzoo.validation.settings import SCORE_KINDS, STATISTICS, load_settings
from cortexzoo.validation.statistics import population_statistics

DURATION_TOLERANCE_MS = 1e-6
SCORE_COLUMNS = ["model", "population", "statistic", "score_kind", "primary", "raw", "null_mean", "null_max",
                 "multiple_of_mean", "multiple_of_max", "matches", "status", "n_reference_seeds", "note"]


class ValidationWarning(UserWarning):
    """A validation result is weaker than usual (e.g. too few reference seeds)."""


@dataclass
class ValidationResult:
    """What :func:`validate` produced.

    Attributes
    ----------
    scores : pandas.DataFrame
        Long format, columns ``SCORE_COLUMNS``, in input order (never sorted by score).
    statistics : pandas.DataFrame
        One row per run and population: counts, exclusions, subsample sizes, peaks.
    summary : pandas.DataFrame
        Per candidate: primary statistics matched, and the median and worst
        multiple of natural variability; ordered best (lowest) first.
    warnings : list of str
    files : dict
        Name -> path of everything written.
    stats : dict
        Run label -> {population -> PopulationStatistics}, for further analysis.
    """

    scores: pd.DataFrame
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


def _check_population(label, pop, stats, settings) -> None:
    s = settings["statistics"]
    fix = ("Check that run; if the population is silent by design, leave it out with "
           "scores.populations in the settings (or --populations).")
    if stats.n_spikes == 0:
        raise CortexzooError(f"Population {pop} of run {label} has no spikes at all in the analysis window.", fix)
    if len(stats.cv) == 0 or len(stats.lv) == 0:
        raise CortexzooError(
            f"No neuron of population {pop} in run {label} has the {stats.min_spikes_lv} spikes "
            "needed for CV/LV.",
            f"Lower statistics.min_spikes_isi (now {s['min_spikes_isi']}), simulate longer, or: {fix}",
        )
    if len(stats.cc) == 0:
        raise CortexzooError(
            f"Population {pop} of run {label} has fewer than 2 neurons with spikes in the binned window; "
            "no correlation coefficient exists.", fix)


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
    candidate_dirs : list of str or pathlib.Path
        Run directories of the variants to score; each is one row block.
    out_dir : str or pathlib.Path
        Created if needed; ``scores.csv``, ``scores.json``, ``statistics.csv``,
        ``summary.csv`` and the figures are (over)written there.
    settings : dict or str or pathlib.Path, optional
        Overrides of ``validation/defaults.toml`` (dict or TOML file).
    progress : callable, optional
        Called with one-line progress messages.
    make_figures : bool
        Skip the figures when False (faster in tests).
    degenerate_candidates : {"error", "flag"}
        What to do when a candidate population is silent or has too few spikes
        for a statistic: raise (default), or score it with status
        ``"undefined: <reason>"`` (infinite raw score, never a match; used by
        ``compare``, where a silent variant is a result, not a mistake).
        Reference runs always raise.
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
        sizes or duration, duplicated runs, silent populations, or populations
        without enough spikes for a statistic.

    Warns
    -----
    ValidationWarning
        With fewer reference seeds than ``scores.min_reference_seeds``; with a
        single seed only raw scores are reported.
    """
    say = progress or (lambda message: None)
    settings = load_settings(settings)
    if degenerate_candidates not in ("error", "flag"):
        raise CortexzooError(f"degenerate_candidates = {degenerate_candidates!r}.", "Use 'error' or 'flag'.")
    runs, ref_labels, cand_labels = _load_runs(reference_dirs, candidate_dirs, say)
    notes = _seed_notes(len(ref_labels), settings, say)
    populations = _populations(settings, runs[ref_labels[0]])
    stats, degenerate = _statistics(runs, populations, ref_labels, settings, degenerate_candidates, say)
    notes += _stationarity_notes(stats, say) + _compensation_notes(runs, say)
    say("scores")
    scores = _score_rows(stats, degenerate, populations, ref_labels, cand_labels, settings)
    statistics = _statistics_table(runs, stats, populations, ref_labels)
    summary = _summary(scores, cand_labels, len(ref_labels))
    # Written aside and published whole: a killed validation leaves the previous outputs intact.
    with staged_folder(out_dir, whole=replace_folder) as stage:
        names = _write(stage, scores, statistics, summary, notes, settings, ref_labels, cand_labels)
        if make_figures:
            say("figures")
            names.update(_figures(stage, runs, stats, populations, ref_labels, scores, settings, len(ref_labels)))
    files = {name: Path(out_dir) / path.name for name, path in names.items()}
    say(f"wrote {len(files)} files to {out_dir}")
    return ValidationResult(scores, statistics, summary, notes, files, stats)


def _load_runs(reference_dirs, candidate_dirs, say):
    """Load every run (each once), check they are one network and the reference seeds differ."""
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
    return runs, ref_labels, labels[len(reference_dirs):]


def _seed_notes(n_ref: int, settings: dict, say) -> list:
    """Warnings about a null distribution resting on too few reference seeds."""
    notes = []
    if n_ref == 1:
        notes.append("Only one reference seed: no null distribution exists, so only raw scores are reported "
                     "(no multiples of natural variability, no 'matches').")
    elif n_ref < settings["scores"]["min_reference_seeds"]:
        notes.append(f"Only {n_ref} reference seeds (fewer than scores.min_reference_seeds = "
                     f"{settings['scores']['min_reference_seeds']}): natural variability rests on "
                     f"{n_ref * (n_ref - 1) // 2} pair(s) and is poorly estimated.")
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
                _check_population(label, pop, st, settings)
            except CortexzooError as err:
                if label in ref_labels or degenerate_candidates != "flag":
                    raise
                degenerate[(label, pop)] = err.problem
                say(f"warning: {err.problem} Its scores are undefined.")
            stats[label][pop] = st
    return stats, degenerate


def _score_rows(stats, degenerate, populations, ref_labels, cand_labels, settings) -> pd.DataFrame:
    """One row per (candidate, population, statistic, score kind), with its decision."""
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
                    if why and n_ref > 1:
                        rel.update(status=f"undefined: {why}", note=why, matches=False)
                    rows.append({"model": cand, "population": pop, "statistic": stat, "score_kind": kind,
                                 "primary": primary.get(stat) == kind, "raw": value, **rel,
                                 "n_reference_seeds": n_ref})
    scores = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    scores["matches"] = scores["matches"].astype(object)
    return scores


def _statistics_table(runs, stats, populations, ref_labels) -> pd.DataFrame:
    rows = []
    for label, run in runs.items():
        role = "reference" if label in ref_labels else "candidate"
        for pop in populations:
            rows.append({"run": label, "role": role, "path": str(run.path), **stats[label][pop].summary()})
    return pd.DataFrame(rows)


def _summary(scores, cand_labels, n_ref) -> pd.DataFrame:
    """Per candidate: primary pairs matched, undefined, and the median and worst multiple of natural variability."""
    prim = scores[scores["primary"]]
    rows = []
    for cand in cand_labels:
        mine = prim[prim["model"] == cand]
        row = {"model": cand, "matched": None, "undefined": None, "of": len(mine), "median_multiple_of_mean": None,
               "worst_multiple_of_mean": None, "worst": None}
        if n_ref > 1:
            mult = pd.to_numeric(mine["multiple_of_mean"], errors="coerce")
            row.update(matched=int((mine["status"] == "matches").sum()),
                       undefined=int(mine["status"].str.startswith("undefined").sum()),
                       median_multiple_of_mean=float(mult.median()), worst_multiple_of_mean=float(mult.max()))
            if mult.notna().any():
                row["worst"] = " ".join(mine.loc[mult.idxmax(), ["population", "statistic"]])
        rows.append(row)
    summary = pd.DataFrame(rows)
    if n_ref > 1:
        # Distances: fewer pairs that are not a match first, then the smaller median multiple. Never descending.
        summary["_not_matched"] = summary["of"] - summary["matched"]
        summary = summary.sort_values(["_not_matched", "median_multiple_of_mean"], ascending=True, kind="stable")
        summary = summary.drop(columns="_not_matched").reset_index(drop=True)
    return summary


def _write(out_dir, scores, statistics, summary, notes, settings, ref_labels, cand_labels) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"scores.csv": out / "scores.csv", "scores.json": out / "scores.json",
             "statistics.csv": out / "statistics.csv", "summary.csv": out / "summary.csv"}
    scores.to_csv(files["scores.csv"], index=False)
    statistics.to_csv(files["statistics.csv"], index=False)
    summary.to_csv(files["summary.csv"], index=False)
    payload = {
        "about": "Scores are distances: lower is better. 'multiple_of_*' divide the raw score by the mean / max "
                 "of the same score between pairs of reference seeds; status 'matches' means multiple_of_max "
                 "<= 1, 'undefined: ...' that a statistic or score is not finite (never a match).",
        "references": ref_labels, "candidates": cand_labels, "warnings": notes, "settings": settings,
        "rows": [{k: _jsonable(v) for k, v in row.items()} for row in scores.to_dict(orient="records")],
    }
    files["scores.json"].write_text(json.dumps(payload, indent=1))
    return files


def _figures(out_dir, runs, stats, populations, ref_labels, scores, settings, n_ref) -> dict:
    out = Path(out_dir)
    f = settings["figures"]
    files = {name: out / name for name in ("raster.png", "rates_boxplot.png", "cv_distributions.png",
                                           "psd_overlay.png", "heatmap.png")}
    shown = {lb: runs[lb] for lb in [ref_labels[0]] + [lb for lb in runs if lb not in ref_labels]}
    figures.raster(shown, populations, files["raster.png"], f["raster_excerpt_ms"], f["raster_neurons_per_population"])
    figures.rate_boxplots(stats, populations, ref_labels, files["rates_boxplot.png"])
    figures.cv_distributions(stats, populations, ref_labels, files["cv_distributions.png"])
    figures.psd_overlays(stats, populations, ref_labels, files["psd_overlay.png"])
    prim = scores[scores["primary"]]
    value = "multiple_of_mean" if n_ref > 1 else "raw"
    table = prim.pivot_table(index="model", columns=["population", "statistic"], values=value, aggfunc="first",
                             sort=False)
    title = ("score / mean reference-reference score (lower is better; >1 is beyond seed-to-seed variability)"
             if n_ref > 1 else "raw scores (single reference seed: no natural variability available)")
    figures.heatmap(table.astype(float), files["heatmap.png"], title)
    return files
