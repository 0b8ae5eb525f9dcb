"""Seed-level inference: does a variant differ from the reference, by how much, and how sure are we?

The unit of replication is the seed: each run gives one value per (population,
measure) (:meth:`PopulationStatistics.measures`), e.g. the population's mean
rate or mean LV. Neurons of one run are not independent replicates (they share
the network realisation), so tests and confidence intervals compare the
reference seeds' values with the variant seeds' values.

* **Test** of "the variant's seeds have the reference seeds' mean": Welch's
  t-test (``"t"``, default) or an exact permutation test over seed labels
  (``"permutation"``). Welch, not the pooled-variance test: a variant that
  differs rarely keeps the reference's seed-to-seed spread, and with unequal
  spreads the pooled test rejects far too often on spread alone (measured:
  16 % at 5 % with a 4x wider spread and 5 + 3 seeds), while its verdict would
  be read as a difference of means. With a single variant seed, whose spread
  cannot be estimated, the test is the pooled one (a prediction interval from
  the reference's spread). Per-seed measures are means over hundreds of
  neurons and roughly normal; the negative control
  (:mod:`cortexzoo.validation.controls`) measures the false-positive rate the
  test really has. The permutation test needs no normality, but its smallest
  p-value is 1 / C(n_ref + n_var, n_var) (1/56 with 5 + 3 seeds), too coarse to
  survive a correction over ~80 decisions.
* **Multiple comparisons**: Benjamini & Hochberg (1995) over all decisions of
  one variant (``scipy.stats.false_discovery_control``), at a configurable
  false discovery rate (default 5 %). Decision ``differs`` when q <= FDR,
  ``consistent`` otherwise, ``undefined: <reason>`` when a measure is missing
  in any seed (which seeds define a measure can depend on their rate, so a
  subset would be a biased sample) or when all seeds tie exactly.
* **Effect sizes** in the measure's physical unit (variant mean - reference
  mean: Hz, LV units, correlation, Hz^2 ...) with the Welch interval the test
  inverts (or a percentile bootstrap over seeds), and a scaled effect: effect /
  |reference mean| with the interval scaled the same way (it ignores the
  uncertainty of the reference mean, which matters where that mean is small,
  e.g. correlations). Intervals are per decision, not adjusted for the
  selection of the differing ones (Benjamini & Yekutieli 2005). Unlike the old
  multiples of natural variability, effects do not scale with sqrt(T) or
  sqrt(N) for a fixed difference; measures whose expectation depends on the
  duration (CV of neurons with >= 10 ISIs, the peak of a noisy spectrum) keep
  that dependence.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import scipy.stats

from cortexzoo.errors import CortexzooError

TESTS = ("t", "permutation")
CI_METHODS = ("t", "bootstrap")
# Exact permutation up to this many relabellings; beyond, a seeded Monte-Carlo sample of them.
MAX_EXACT_PERMUTATIONS = 200_000
PERMUTATION_SAMPLES = 100_000
DECISION_COLUMNS = ["model", "population", "measure", "unit", "reference_mean", "reference_sd", "variant_mean",
                    "variant_sd", "n_reference_seeds", "n_variant_seeds", "effect", "effect_ci_low",
                    "effect_ci_high", "relative_effect", "relative_ci_low", "relative_ci_high", "p_value",
                    "q_value", "decision", "note"]


def _pooled(ref, var):
    """Difference of means, its pooled standard error and degrees of freedom."""
    n1, n2 = len(ref), len(var)
    df = n1 + n2 - 2
    ss = np.sum((ref - ref.mean()) ** 2) + np.sum((var - var.mean()) ** 2)
    se = math.sqrt(ss / df) * math.sqrt(1.0 / n1 + 1.0 / n2) if df > 0 else float("nan")
    return float(var.mean() - ref.mean()), se, df


def _welch(ref, var):
    """Difference of means, Welch's standard error and Welch-Satterthwaite degrees of freedom."""
    v1, v2 = ref.var(ddof=1) / len(ref), var.var(ddof=1) / len(var)
    se2 = v1 + v2
    diff = float(var.mean() - ref.mean())
    if se2 == 0:
        return diff, 0.0, float(len(ref) + len(var) - 2)
    df = se2 ** 2 / (v1 ** 2 / (len(ref) - 1) + v2 ** 2 / (len(var) - 1))
    return diff, math.sqrt(se2), df


def _difference(ref, var):
    """Difference of means, standard error and degrees of freedom of the test and interval:
    Welch's with >= 2 seeds in each group, pooled with a single variant seed."""
    ref, var = np.asarray(ref, float), np.asarray(var, float)
    return _welch(ref, var) if len(ref) > 1 and len(var) > 1 else _pooled(ref, var)


def t_test(ref, var) -> float:
    """Two-sided p-value of Welch's t-test (equals ``scipy.stats.ttest_ind(equal_var=False)``).

    With a single variant seed, whose spread cannot be estimated, the pooled
    test (the reference's spread for both groups), which
    ``scipy.stats.ttest_ind`` does not offer.

    Parameters
    ----------
    ref, var : numpy.ndarray
        One value per seed.

    Returns
    -------
    float
        NaN with fewer than 2 reference seeds, and when all seeds of both
        groups tie exactly (no spread to test against: a grid-valued measure).
    """
    diff, se, df = _difference(ref, var)
    if len(ref) < 2 or len(var) < 1 or not df >= 1 or se == 0:
        return float("nan")
    return float(2.0 * scipy.stats.t.sf(abs(diff) / se, df))


def permutation_test(ref, var, seed: int = 0) -> float:
    """Two-sided p-value of the difference of means under relabelling of the seeds.

    Exact over all relabellings when there are at most
    ``MAX_EXACT_PERMUTATIONS``; the observed labelling is one of them, so the
    smallest possible p-value is 1 / C(n_ref + n_var, n_var).

    Parameters
    ----------
    ref, var : numpy.ndarray
    seed : int
        For the Monte-Carlo sample of relabellings when there are too many.

    Returns
    -------
    float
    """
    pooled = np.concatenate([np.asarray(ref, float), np.asarray(var, float)])
    n, k = len(pooled), len(var)
    observed = abs(pooled[len(ref):].mean() - pooled[:len(ref)].mean())
    if math.comb(n, k) <= MAX_EXACT_PERMUTATIONS:
        groups = np.array(list(itertools.combinations(range(n), k)))
    else:
        rng = np.random.default_rng(seed)
        groups = np.array([rng.choice(n, k, replace=False) for _ in range(PERMUTATION_SAMPLES)])
    in_var = pooled[groups].sum(axis=1)
    diffs = np.abs(in_var / k - (pooled.sum() - in_var) / (n - k))
    # Equal up to rounding counts as "at least as extreme", or ties would give p below the truth.
    tol = 1e-12 * max(1.0, float(np.max(np.abs(pooled))))
    hits = int(np.sum(diffs >= observed - tol))
    if len(groups) == math.comb(n, k):
        return hits / len(groups)
    # A Monte-Carlo sample of relabellings: count the observed one too, so p is never 0.
    return (hits + 1) / (len(groups) + 1)


def effect_ci(ref, var, level: float = 0.95, method: str = "t", n_boot: int = 2000, seed: int = 0):
    """Confidence interval of ``mean(var) - mean(ref)``.

    Parameters
    ----------
    ref, var : numpy.ndarray
    level : float
    method : {"t", "bootstrap"}
        ``t``: Welch's interval (Welch-Satterthwaite degrees of freedom):
        a variant that differs usually differs in its seed-to-seed spread
        too, and the pooled interval is then too narrow or too wide. With a
        single variant seed, whose spread cannot be estimated, the pooled
        interval (the reference's spread for both groups).
        ``bootstrap``: percentile interval, resampling seeds within each group;
        with 3 seeds it is too narrow (a 3-seed resample has at most 10
        distinct means), so it is offered for large seed counts only.
    n_boot : int
    seed : int

    Returns
    -------
    tuple of float
        ``(low, high)``; NaN when the interval is undefined (fewer than 3 seeds).
    """
    ref, var = np.asarray(ref, float), np.asarray(var, float)
    if method == "t":
        diff, se, df = _difference(ref, var)
        if not df >= 1:
            return float("nan"), float("nan")
        half = scipy.stats.t.ppf(0.5 + level / 2.0, df) * se
        return diff - half, diff + half
    if method == "bootstrap":
        rng = np.random.default_rng(seed)
        boot = (rng.choice(var, (n_boot, len(var))).mean(axis=1) - rng.choice(ref, (n_boot, len(ref))).mean(axis=1))
        lo, hi = np.quantile(boot, [0.5 - level / 2.0, 0.5 + level / 2.0])
        return float(lo), float(hi)
    raise CortexzooError(f"Unknown confidence-interval method {method!r}.", f"Use one of {', '.join(CI_METHODS)}.")


def p_value(ref, var, test: str = "t", seed: int = 0) -> float:
    """p-value of the chosen seed-level test (see the module docstring).

    Parameters
    ----------
    ref, var : numpy.ndarray
    test : {"t", "permutation"}
    seed : int

    Returns
    -------
    float
    """
    if test == "t":
        return t_test(ref, var)
    if test == "permutation":
        return permutation_test(ref, var, seed)
    raise CortexzooError(f"Unknown seed-level test {test!r}.", f"Use one of {', '.join(TESTS)}.")


def benjamini_hochberg(p) -> np.ndarray:
    """Benjamini-Hochberg q-values; NaN p-values stay NaN and do not count as decisions.

    Parameters
    ----------
    p : array_like

    Returns
    -------
    numpy.ndarray
    """
    p = np.asarray(p, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = scipy.stats.false_discovery_control(p[ok], method="bh")
    return q


def compare_measure(ref, var, options: dict) -> dict:
    """Effect, confidence intervals and p-value of one measure.

    Parameters
    ----------
    ref, var : array_like
        One value per seed; NaN values (measure undefined in that seed) are dropped.
    options : dict
        ``test``, ``ci_level``, ``ci_method``, ``bootstrap_samples``, ``seed``.

    Returns
    -------
    dict
        Columns of ``DECISION_COLUMNS`` from ``reference_mean`` to ``p_value``
        plus ``note`` (why a value is missing).
    """
    ref, var = np.asarray(ref, float), np.asarray(var, float)
    n_all = (len(ref), len(var))
    ref, var = ref[np.isfinite(ref)], var[np.isfinite(var)]
    out = {"reference_mean": _mean(ref), "reference_sd": _sd(ref), "variant_mean": _mean(var),
           "variant_sd": _sd(var), "n_reference_seeds": len(ref), "n_variant_seeds": len(var),
           "effect": float("nan"), "effect_ci_low": float("nan"), "effect_ci_high": float("nan"),
           "relative_effect": float("nan"), "relative_ci_low": float("nan"), "relative_ci_high": float("nan"),
           "p_value": float("nan"), "note": ""}
    # Which seeds define a measure can depend on their rate (e.g. enough neurons above a floor), so
    # a subset of seeds is a biased sample: every seed must define it. The variance needs at least
    # two reference seeds.
    if (len(ref), len(var)) != n_all or len(ref) < 2 or len(var) == 0:
        out["note"] = (f"defined in {len(ref)} of {n_all[0]} reference and {len(var)} of {n_all[1]} variant seeds; "
                       "a decision needs the measure in every seed (at least 2 reference seeds, 1 variant seed)")
        return out
    out["effect"] = out["variant_mean"] - out["reference_mean"]
    out["effect_ci_low"], out["effect_ci_high"] = effect_ci(ref, var, options["ci_level"], options["ci_method"],
                                                            options["bootstrap_samples"], options["seed"])
    out["p_value"] = p_value(ref, var, options["test"], options["seed"])
    if math.isnan(out["p_value"]):
        out["note"] = "every seed has the same value (ties, e.g. a frequency on a grid): no spread to test against"
    scale = abs(out["reference_mean"])
    if scale > 0:
        for src, dst in (("effect", "relative_effect"), ("effect_ci_low", "relative_ci_low"),
                         ("effect_ci_high", "relative_ci_high")):
            out[dst] = out[src] / scale
    else:
        out["note"] = "; ".join(filter(None, [out["note"], "reference mean is 0: no relative effect"]))
    return out


def _mean(x):
    return float(np.mean(x)) if len(x) else float("nan")


def _sd(x):
    return float(np.std(x, ddof=1)) if len(x) > 1 else float("nan")


def decide(rows: pd.DataFrame, fdr: float) -> pd.DataFrame:
    """Add ``q_value`` and ``decision`` to one variant's rows (one BH family).

    Parameters
    ----------
    rows : pandas.DataFrame
        With ``p_value`` and ``note``; rows without a p-value are undefined.
    fdr : float
        False discovery rate, e.g. 0.05.

    Returns
    -------
    pandas.DataFrame
        A copy with ``q_value`` and ``decision``.
    """
    rows = rows.copy()
    rows["q_value"] = benjamini_hochberg(rows["p_value"].to_numpy(float))
    decision = np.where(rows["q_value"] <= fdr, "differs", "consistent").astype(object)
    missing = ~np.isfinite(rows["q_value"].to_numpy(float))
    decision[missing] = ["undefined: " + (n or "no p-value") for n in rows.loc[missing, "note"]]
    rows["decision"] = decision
    return rows


def variant_decisions(measures: pd.DataFrame, reference: list, variant: list, model: str, options: dict,
                      units: dict | None = None, reasons: dict | None = None) -> pd.DataFrame:
    """All decisions of one variant against the reference: one BH family.

    Parameters
    ----------
    measures : pandas.DataFrame
        Long table with columns ``run, population, measure, value``.
    reference, variant : list of str
        Run labels of the reference seeds and of the variant's seeds.
    model : str
        Variant label for the ``model`` column.
    options : dict
        ``test``, ``fdr``, ``ci_level``, ``ci_method``, ``bootstrap_samples``, ``seed``.
    units : dict, optional
        Measure -> unit string.
    reasons : dict, optional
        ``(run, population, measure) -> reason`` for undefined values, quoted
        when a measure is undefined in every variant seed.

    Returns
    -------
    pandas.DataFrame
        Columns ``DECISION_COLUMNS``, in population then measure order.
    """
    units, reasons = units or {}, reasons or {}
    missing = sorted((set(reference) | set(variant)) - set(measures["run"]))
    if missing:
        raise CortexzooError(f"Runs {', '.join(missing)} are not in the measure table.",
                             "Pass the run labels the measure table has (a typo would read as 'consistent').")
    table = measures.pivot_table(index=["population", "measure"], columns="run", values="value",
                                 aggfunc="first", sort=False, dropna=False)
    rows = []
    for (pop, measure), values in table.iterrows():
        res = compare_measure(values.reindex(reference).to_numpy(float), values.reindex(variant).to_numpy(float),
                              options)
        if res["n_variant_seeds"] == 0:
            why = [reasons[(run, pop, measure)] for run in variant if (run, pop, measure) in reasons]
            res["note"] = why[0] if why else "undefined in every variant seed"
        rows.append({"model": model, "population": pop, "measure": measure, "unit": units.get(measure, ""), **res})
    return decide(pd.DataFrame(rows), options["fdr"])[DECISION_COLUMNS]
