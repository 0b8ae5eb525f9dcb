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
  (reference + null variants): the shift at which the decisions' two-sided
  test (Welch; pooled with one variant seed) rejects in 80 % of simulated
  designs with normal seed values, once at ``a = FDR`` (when many measures differ, BH admits each at
  about the FDR) and once at ``a = FDR / m`` (a single difference among ``m``
  decisions must pass the strictest BH step).
* **Positive controls**: the reference with known small changes; which
  measures call them ``differs``.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import scipy.optimize
import scipy.stats

from cortexzoo.errors import CortexzooError
from cortexzoo.validation.inference import variant_decisions
from cortexzoo.validation.settings import decided_measures

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


def _rate(k: int, n: int, level: float) -> dict:
    low, high = clopper_pearson(k, n, level) if n else (np.nan, np.nan)
    return {"k": k, "n": n, "rate": k / n if n else np.nan, "low": low, "high": high}


def false_positive_rates(decisions: pd.DataFrame, alpha: float = 0.05, level: float = 0.95) -> pd.DataFrame:
    """Per measure: how often the null comparisons cry wolf, before and after the FDR correction.

    Three numbers, because each answers another question:

    * ``false_positive_rate``: the share of decisions whose *uncorrected* p-value
      is <= ``alpha``. Every comparison is null, so this is the test's type-I
      error rate: it checks that the test is calibrated (nominal ``alpha``).
    * ``after_fdr_rate``: the share called ``differs`` after Benjamini-Hochberg.
      When nothing differs BH keeps the family-wise rate at the FDR, so this
      per-decision share is expected far below it (about FDR / m).
    * ``familywise_rate``: the share of groups (pseudo-variants) with any
      ``differs`` in this measure: what BH bounds by the FDR.

    Intervals are Clopper-Pearson. The decisions of one group share its seeds,
    and all groups share the reference seeds, so decisions are not independent
    and the intervals are somewhat too narrow.

    Parameters
    ----------
    decisions : pandas.DataFrame
        From :func:`null_decisions` (every ``differs`` is false).
    alpha : float
        Level of the uncorrected test (the FDR of the design).
    level : float
        Of the Clopper-Pearson intervals.

    Returns
    -------
    pandas.DataFrame
        Index ``measure`` plus a row ``all``; columns ``decisions``,
        ``raw_rejections``, ``false_positive_rate``, ``ci_low``, ``ci_high``,
        ``false_positives`` (after BH), ``after_fdr_rate``,
        ``after_fdr_ci_low/high``, ``groups``, ``familywise_rate``,
        ``familywise_ci_low/high``, ``ci_coverage`` (fraction of effect
        intervals containing 0) and ``undefined``.
    """
    rows = {}
    defined = decisions[~decisions["decision"].str.startswith("undefined")]
    for measure, part in [*defined.groupby("measure", sort=False), ("all", defined)]:
        n = len(part)
        raw = _rate(int((part["p_value"] <= alpha).sum()), n, level)
        bh = _rate(int((part["decision"] == "differs").sum()), n, level)
        per_group = part.groupby("model")["decision"].apply(lambda d: bool((d == "differs").any()))
        fw = _rate(int(per_group.sum()), len(per_group), level)
        covered = (part["effect_ci_low"] <= 0) & (part["effect_ci_high"] >= 0)
        rows[measure] = {"decisions": n, "raw_rejections": raw["k"], "false_positive_rate": raw["rate"],
                         "ci_low": raw["low"], "ci_high": raw["high"], "false_positives": bh["k"],
                         "after_fdr_rate": bh["rate"], "after_fdr_ci_low": bh["low"], "after_fdr_ci_high": bh["high"],
                         "groups": fw["n"], "familywise_rate": fw["rate"], "familywise_ci_low": fw["low"],
                         "familywise_ci_high": fw["high"], "ci_coverage": float(covered.mean()) if n else np.nan}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "measure"
    undefined = decisions[decisions["decision"].str.startswith("undefined")].groupby("measure").size()
    out["undefined"] = undefined.reindex(out.index).fillna(0).astype(int)
    return out


# Draws of the Monte-Carlo power calculation: the power's standard error is ~0.003.
POWER_DRAWS = 20_000


@functools.lru_cache(maxsize=64)
def _detectable_shift(n_ref: int, n_var: int, alpha: float, power: float) -> float:
    """The shift (in seed-to-seed SDs) at which the decisions' test rejects with ``power``.

    Simulated with the test itself (:func:`cortexzoo.validation.inference.t_test` semantics,
    vectorised), because Welch's test has no exact power formula: its noncentral-t
    approximation at the equal-spread degrees of freedom overstates the power (0.74
    instead of 0.80 with 5 + 3 seeds). Common random numbers make the power monotone
    in the shift, so bisection converges.
    """
    rng = np.random.default_rng(20141201)
    ref, var = rng.standard_normal((POWER_DRAWS, n_ref)), rng.standard_normal((POWER_DRAWS, n_var))
    v_ref = ref.var(axis=1, ddof=1) / n_ref
    if n_var > 1:
        v_var = var.var(axis=1, ddof=1) / n_var
        se = np.sqrt(v_ref + v_var)
        df = (v_ref + v_var) ** 2 / (v_ref ** 2 / (n_ref - 1) + v_var ** 2 / (n_var - 1))
    else:  # one variant seed: the pooled test with the reference's spread
        se = np.sqrt(ref.var(axis=1, ddof=1) * (1 / n_ref + 1))
        df = np.full(POWER_DRAWS, n_ref - 1.0)
    crit = scipy.stats.t.ppf(1 - alpha / 2, df) * se
    base = var.mean(axis=1) - ref.mean(axis=1)

    def shortfall(shift):
        return np.mean(np.abs(base + shift) >= crit) - power

    return float(scipy.optimize.brentq(shortfall, 0.0, 1e3, xtol=1e-4))


def minimal_detectable_change(sd, n_ref: int, n_var: int, alpha: float, power: float = POWER):
    """Smallest true difference the decisions' two-sided t-test detects with the given power.

    Parameters
    ----------
    sd : float or numpy.ndarray
        Seed-to-seed standard deviation of the measure (the same in both groups).
    n_ref, n_var : int
    alpha : float
        Per-test level.
    power : float

    Returns
    -------
    float or numpy.ndarray
        In the measure's unit.
    """
    return _detectable_shift(int(n_ref), int(n_var), float(alpha), float(power)) * np.asarray(sd, float)


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
    chosen = decided_measures(settings, measures["measure"])
    measures = measures[measures["measure"].isin(chosen)]
    units = dict(zip(measures["measure"], measures["unit"]))
    null = null_decisions(measures, reference, negative, n_variant, options, units)

    def decide_all(groups):
        parts = [variant_decisions(measures, reference, runs, name, options, units) for name, runs in groups.items()]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    twin_rows, positive_rows = decide_all(twins), decide_all(positive)
    family = len(measures[["population", "measure"]].drop_duplicates())
    return {"null_decisions": null, "false_positive_rates": false_positive_rates(null, sc["fdr"], sc["ci_level"]),
            "twin_decisions": twin_rows, "positive_decisions": positive_rows,
            "detections": positive_detections(positive_rows) if len(positive_rows) else pd.DataFrame(),
            "sensitivity": sensitivity(measures, reference + negative, len(reference), n_variant, sc["fdr"],
                                       family, units)}


def summary_json(tables: dict) -> dict:
    """Per measure (plus ``all``): the negative control's false-positive rates with their intervals.

    ``false_positive_rate``/``ci`` are the uncorrected test's type-I error rate
    (the test's calibration, nominal = the FDR level); ``after_fdr_rate`` and
    ``familywise_rate`` are those of the corrected decisions (see
    :func:`false_positive_rates`).

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
                "decisions": int(r["decisions"]), "after_fdr_rate": float(r["after_fdr_rate"]),
                "after_fdr_ci": [float(r["after_fdr_ci_low"]), float(r["after_fdr_ci_high"])],
                "familywise_rate": float(r["familywise_rate"]),
                "familywise_ci": [float(r["familywise_ci_low"]), float(r["familywise_ci_high"])],
                "groups": int(r["groups"]), "effect_ci_coverage": float(r["ci_coverage"])}
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
