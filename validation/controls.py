"""Controls of the seed-level decisions: how often they cry wolf, and what they can detect.

* **Negative control**: variants that are the reference itself with other
  seeds (and the NESTML twin of the reference). Their seeds are cut into
  disjoint groups of the study's size (e.g. 3), and each group is decided
  against the reference seeds exactly as a real variant is
  (:func:`cortexzoo.validation.inference.variant_decisions`). Every
  ``differs`` is a false positive. Reported per measure: the false-positive
  rate over all (group, population) decisions with a Clopper-Pearson interval,
  the family-wise rate (groups with any false positive in that measure), and
  the coverage of the effect intervals (the fraction that contain 0; nominal
  e.g. 95 %). The decisions of one group share the reference seeds, so the
  binomial interval treats correlated decisions as independent; the groups
  themselves are disjoint.
* **Sensitivity**: the smallest change each measure detects with 80 % power
  at the configured seed counts, from the seed-to-seed SD of all null seeds
  (reference + null variants): the shift whose noncentral-t power of the
  two-sided pooled t-test (``df = n_ref + n_var - 2``, noncentrality
  ``shift / (sd * sqrt(1/n_ref + 1/n_var))``) is 80 %, once at ``a = FDR`` (when many measures differ, BH admits each at
  about the FDR) and once at ``a = FDR / m`` (a single difference among ``m``
  decisions must pass the strictest BH step).
* **Positive controls**: the reference with known small changes; which
  measures call them ``differs``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.optimize
import scipy.stats

from cortexzoo.errors import CortexzooError
from cortexzoo.validation.inference import variant_decisions

POWER = 0.8


def disjoint_groups(runs: list, size: int) -> list:
    """Cut run labels into consecutive disjoint groups of ``size`` (a remainder is dropped).

    Parameters
    ----------
    runs : list of str
    size : int

    Returns
    -------
    list of list of str

    Raises
    ------
    CortexzooError
        When there are fewer runs than one group needs.
    """
    if size < 1 or len(runs) < size:
        raise CortexzooError(f"The negative control has {len(runs)} null seed(s), fewer than one group of {size}.",
                             "Give the null variants more seeds ([variants.X] seeds) or lower min_variant_seeds.")
    return [list(runs[i:i + size]) for i in range(0, len(runs) - size + 1, size)]


def clopper_pearson(k: int, n: int, level: float = 0.95) -> list:
    """Exact binomial confidence interval of ``k / n``.

    Parameters
    ----------
    k, n : int
    level : float

    Returns
    -------
    list of float
        ``[low, high]``.
    """
    ci = scipy.stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="exact")
    return [float(ci.low), float(ci.high)]


def null_decisions(measures: pd.DataFrame, reference: list, null_runs: list, group_size: int, options: dict,
                   units=None) -> pd.DataFrame:
    """Decide every disjoint group of null seeds against the reference, as a variant would be.

    Parameters
    ----------
    measures : pandas.DataFrame
        Long table ``run, population, measure, value``.
    reference : list of str
    null_runs : list of str
        Runs of the reference model (or its twin) with other seeds.
    group_size : int
        Seeds per pseudo-variant (the study's seeds per variant).
    options : dict
        As :func:`cortexzoo.validation.inference.variant_decisions`.
    units : dict, optional

    Returns
    -------
    pandas.DataFrame
        Decision rows; ``model`` is ``null-<i>``.
    """
    groups = disjoint_groups(null_runs, group_size)
    return pd.concat([variant_decisions(measures, reference, group, f"null-{i}", options, units)
                      for i, group in enumerate(groups)], ignore_index=True)


def false_positive_rates(decisions: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per measure: false-positive rate with its interval, family-wise rate, effect-interval coverage.

    Parameters
    ----------
    decisions : pandas.DataFrame
        From :func:`null_decisions` (every ``differs`` is false).
    level : float
        Of the Clopper-Pearson intervals.

    Returns
    -------
    pandas.DataFrame
        Index ``measure`` plus a row ``all``; columns ``decisions``,
        ``false_positives``, ``false_positive_rate``, ``ci_low``, ``ci_high``,
        ``groups``, ``familywise_rate``, ``familywise_ci_low/high``,
        ``ci_coverage`` (fraction of effect intervals containing 0) and
        ``undefined``.
    """
    rows = {}
    defined = decisions[~decisions["decision"].str.startswith("undefined")]
    for measure, part in [*defined.groupby("measure", sort=False), ("all", defined)]:
        k, n = int((part["decision"] == "differs").sum()), len(part)
        per_group = part.groupby("model")["decision"].apply(lambda d: bool((d == "differs").any()))
        covered = (part["effect_ci_low"] <= 0) & (part["effect_ci_high"] >= 0)
        fw_k, fw_n = int(per_group.sum()), len(per_group)
        rows[measure] = {"decisions": n, "false_positives": k, "false_positive_rate": k / n if n else np.nan,
                         **dict(zip(("ci_low", "ci_high"), clopper_pearson(k, n, level) if n else (np.nan,) * 2)),
                         "groups": fw_n, "familywise_rate": fw_k / fw_n if fw_n else np.nan,
                         **dict(zip(("familywise_ci_low", "familywise_ci_high"),
                                    clopper_pearson(fw_k, fw_n, level) if fw_n else (np.nan,) * 2)),
                         "ci_coverage": float(covered.mean()) if n else np.nan}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "measure"
    undefined = decisions[decisions["decision"].str.startswith("undefined")].groupby("measure").size()
    out["undefined"] = undefined.reindex(out.index).fillna(0).astype(int)
    return out


def minimal_detectable_change(sd, n_ref: int, n_var: int, alpha: float, power: float = POWER):
    """Smallest true difference the two-sided pooled t-test detects with the given power.

    Parameters
    ----------
    sd : float or numpy.ndarray
        Seed-to-seed standard deviation of the measure.
    n_ref, n_var : int
    alpha : float
        Per-test level.
    power : float

    Returns
    -------
    float or numpy.ndarray
        In the measure's unit.
    """
    df = n_ref + n_var - 2
    crit = scipy.stats.t.ppf(1 - alpha / 2, df)

    def shortfall(nc):
        # The lower tail is ~0 for a large noncentrality, where scipy returns NaN for it.
        lower = np.nan_to_num(scipy.stats.nct.cdf(-crit, df, nc))
        return scipy.stats.nct.sf(crit, df, nc) + lower - power

    # The power grows with the noncentrality from alpha (at 0) to 1; bracket and solve.
    noncentrality = scipy.optimize.brentq(shortfall, 0.0, 200.0)
    return noncentrality * np.asarray(sd, float) * np.sqrt(1.0 / n_ref + 1.0 / n_var)


def sensitivity(measures: pd.DataFrame, null_runs: list, n_ref: int, n_var: int, fdr: float, family_size: int,
                units=None) -> pd.DataFrame:
    """Minimal detectable change per (population, measure) and its summary per measure.

    Parameters
    ----------
    measures : pandas.DataFrame
        Long table ``run, population, measure, value``.
    null_runs : list of str
        Every seed of the null model (reference and null variants): the
        seed-to-seed SD is estimated from all of them.
    n_ref, n_var : int
        Seeds of the design the table is for.
    fdr : float
    family_size : int
        Decisions per variant (``m``).
    units : dict, optional

    Returns
    -------
    pandas.DataFrame
        Per (population, measure): ``null_mean``, ``null_sd``, ``n_seeds``,
        ``mdc_many`` / ``mdc_single`` (absolute) and ``relative_mdc_many`` /
        ``relative_mdc_single`` (over ``|null_mean|``).
    """
    units = units or {}
    null = measures[measures["run"].isin(null_runs)]
    grouped = null.groupby(["population", "measure"], sort=False)["value"]
    out = grouped.agg(null_mean="mean", null_sd=lambda v: float(np.std(v.dropna(), ddof=1)),
                      n_seeds=lambda v: int(v.notna().sum())).reset_index()
    out["unit"] = out["measure"].map(lambda m: units.get(m, ""))
    for name, alpha in (("many", fdr), ("single", fdr / max(family_size, 1))):
        out[f"mdc_{name}"] = minimal_detectable_change(out["null_sd"], n_ref, n_var, alpha)
        out[f"relative_mdc_{name}"] = out[f"mdc_{name}"] / out["null_mean"].abs()
    return out


def positive_detections(decisions: pd.DataFrame) -> pd.DataFrame:
    """Per positive control and measure: populations called ``differs`` and the largest relative effect.

    Parameters
    ----------
    decisions : pandas.DataFrame
        Decision rows of the positive-control variants.

    Returns
    -------
    pandas.DataFrame
        ``model, measure, populations_differ, of, populations, max_abs_relative_effect``.
    """
    rows = []
    for (model, measure), part in decisions.groupby(["model", "measure"], sort=False):
        hit = part[part["decision"] == "differs"]
        rows.append({"model": model, "measure": measure, "populations_differ": len(hit), "of": len(part),
                     "populations": " ".join(hit["population"]),
                     "max_abs_relative_effect": float(hit["relative_effect"].abs().max()) if len(hit) else np.nan})
    return pd.DataFrame(rows)


def analyse(measures: pd.DataFrame, reference: list, negative: list, twins: dict, positive: dict,
            settings: dict, n_variant: int) -> dict:
    """All control tables from one measure table.

    Parameters
    ----------
    measures : pandas.DataFrame
        Long table ``run, population, measure, value, unit`` of every run.
    reference : list of str
        Reference seeds' run labels.
    negative : list of str
        Run labels of the reference model with other seeds (cut into groups of ``n_variant``).
    twins : dict
        Label -> run labels of implementations with the reference's dynamics (each decided as a variant).
    positive : dict
        Label -> run labels of the reference with a known change.
    settings : dict
        Validation settings (``scores``: test, fdr, ci_level, ...).
    n_variant : int
        Seeds per variant in the design the controls stand for.

    Returns
    -------
    dict
        ``null_decisions``, ``false_positive_rates``, ``twin_decisions``,
        ``positive_decisions``, ``detections``, ``sensitivity`` (DataFrames).
    """
    from cortexzoo.validation.sciunit_tests import inference_options

    sc = settings["scores"]
    options = inference_options(settings)
    chosen = sc["measures"] or list(dict.fromkeys(measures["measure"]))
    measures = measures[measures["measure"].isin(chosen)]
    units = dict(zip(measures["measure"], measures["unit"]))
    null = null_decisions(measures, reference, negative, n_variant, options, units)

    def decide_all(groups):
        parts = [variant_decisions(measures, reference, runs, name, options, units) for name, runs in groups.items()]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    twin_rows, positive_rows = decide_all(twins), decide_all(positive)
    family = len(measures[["population", "measure"]].drop_duplicates())
    return {"null_decisions": null, "false_positive_rates": false_positive_rates(null, sc["ci_level"]),
            "twin_decisions": twin_rows, "positive_decisions": positive_rows,
            "detections": positive_detections(positive_rows) if len(positive_rows) else pd.DataFrame(),
            "sensitivity": sensitivity(measures, reference + negative, len(reference), n_variant, sc["fdr"],
                                       family, units)}


def summary_json(tables: dict) -> dict:
    """``{measure: {"false_positive_rate": x, "ci": [lo, hi]}}`` of the negative control (plus ``all``).

    Parameters
    ----------
    tables : dict
        From :func:`analyse`.

    Returns
    -------
    dict
    """
    rates = tables["false_positive_rates"]
    return {m: {"false_positive_rate": float(r["false_positive_rate"]), "ci": [float(r["ci_low"]), float(r["ci_high"])],
                "decisions": int(r["decisions"]), "familywise_rate": float(r["familywise_rate"]),
                "effect_ci_coverage": float(r["ci_coverage"])}
            for m, r in rates.iterrows()}


def sensitivity_table(tables: dict) -> pd.DataFrame:
    """Per measure: the smallest detectable change (median and range over populations) and the positive
    controls that measure detected.

    Parameters
    ----------
    tables : dict
        From :func:`analyse`.

    Returns
    -------
    pandas.DataFrame
        ``measure, unit, mdc_many_median, relative_mdc_many_median, mdc_single_median,
        relative_mdc_single_median, relative_mdc_single_range, detects``.
    """
    sens, det = tables["sensitivity"], tables["detections"]
    rows = []
    for measure, part in sens.groupby("measure", sort=False):
        hits = det[(det["measure"] == measure) & (det["populations_differ"] > 0)] if len(det) else det
        rel = part["relative_mdc_single"]
        rows.append({"measure": measure, "unit": part["unit"].iloc[0],
                     "mdc_many_median": float(part["mdc_many"].median()),
                     "relative_mdc_many_median": float(part["relative_mdc_many"].median()),
                     "mdc_single_median": float(part["mdc_single"].median()),
                     "relative_mdc_single_median": float(rel.median()),
                     "relative_mdc_single_range": [float(rel.min()), float(rel.max())],
                     "detects": " ".join(f"{r.model}({r.populations_differ})" for r in hits.itertuples())})
    return pd.DataFrame(rows)
