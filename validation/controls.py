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
