"""Seed-level tests, effect intervals and the Benjamini-Hochberg family (validation/inference.py)."""

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from cortexzoo.errors import CortexzooError
from cortexzoo.validation import inference

OPTIONS = {"test": "t", "fdr": 0.05, "ci_level": 0.95, "ci_method": "t", "bootstrap_samples": 2000, "seed": 0}


def test_t_test_equals_scipy_and_handles_one_variant_seed():
    """Catches a wrong standard error or degrees of freedom (p differs from scipy's Welch test), a test
    that refuses the single variant seed quick runs with, and tied seeds reported as p = 0."""
    rng = np.random.default_rng(1)
    ref, var = rng.normal(0, 1, 5), rng.normal(0.5, 1, 3)
    welch = scipy.stats.ttest_ind(var, ref, equal_var=False).pvalue
    assert inference.t_test(ref, var) == pytest.approx(welch, rel=1e-12)
    # One variant seed: a prediction-interval test with the reference's variance, df = n_ref - 1.
    one = np.array([3.0])
    t = (3.0 - ref.mean()) / (ref.std(ddof=1) * math.sqrt(1 / 5 + 1))
    assert inference.t_test(ref, one) == pytest.approx(2 * scipy.stats.t.sf(abs(t), 4), rel=1e-12)
    assert math.isnan(inference.t_test([1.0], [2.0]))
    # Ties in every seed (a measure on a grid): no spread, no test; never "certainly different".
    assert math.isnan(inference.t_test([59.0] * 5, [60.0] * 3)) and math.isnan(inference.t_test([1.0, 1.0], [1.0]))


def test_permutation_test_is_exact():
    """Catches a permutation p-value that leaves out the observed labelling (it could then reach 0)
    or counts ties as less extreme."""
    # The variant seed 10 against 0, 1, 2: |10 - 1| = 9; the other 3 relabellings give at most
    # |0 - 13/3| = 4.3, so 1 of 4 is as extreme: p = 1/4 (the observed labelling counts).
    assert inference.permutation_test([0.0, 1.0, 2.0], [10.0]) == pytest.approx(0.25)
    # Symmetric data: the mirror labelling is as extreme as the observed one (two-sided), 2 of 4.
    assert inference.permutation_test([-1.0, 0.0, 0.0], [1.0]) == pytest.approx(0.5)
    # 5 + 3 seeds fully separated: the smallest p the test can give is 1 / C(8, 3) = 1/56.
    assert inference.permutation_test([0, 1, 2, 3, 4], [10, 11, 12]) == pytest.approx(1 / 56)
    assert inference.permutation_test([1.0, 1.0, 1.0], [1.0, 1.0]) == 1.0


def test_benjamini_hochberg_matches_hand_computation_and_skips_nan():
    """Catches NaN p-values counted as decisions (they would raise every q) and a wrong BH step-up."""
    p = [0.01, np.nan, 0.04, 0.03, 0.5]
    q = inference.benjamini_hochberg(p)
    # m = 4 defined: sorted 0.01, 0.03, 0.04, 0.5 -> 0.04, 0.04*4/3=0.0533 -> min with 0.04*4/3, ...
    expected = {0: 0.04, 2: 4 / 3 * 0.04, 3: 4 / 3 * 0.04, 4: 0.5}
    assert math.isnan(q[1])
    for i, value in expected.items():
        assert q[i] == pytest.approx(value)


def test_t_interval_is_welchs_and_covers_at_its_level():
    """Catches a wrong quantile or standard error, and a pooled interval for a variant whose seed-to-seed
    spread differs from the reference's (its coverage drops to 85 % with these numbers)."""
    rng = np.random.default_rng(7)
    ref, var = rng.normal(0, 1, 5), rng.normal(0.3, 4, 3)
    ci = scipy.stats.ttest_ind(var, ref, equal_var=False).confidence_interval(0.95)
    assert inference.effect_ci(ref, var) == pytest.approx((ci.low, ci.high), rel=1e-10)
    n = 4000
    coverage = {}
    for sd_var in (1.0, 4.0):
        hits = 0
        for _ in range(n):
            lo, hi = inference.effect_ci(rng.normal(0, 1, 5), rng.normal(0.3, sd_var, 3))
            hits += lo <= 0.3 <= hi
        coverage[sd_var] = hits / n
    # Binomial SD 0.0034. Welch's interval is approximate: with 3 seeds of a 4x wider spread it
    # covers ~93 % (measured 0.930), where the pooled interval covers 85 %.
    assert abs(coverage[1.0] - 0.95) < 0.015 and coverage[4.0] > 0.915
    # A single variant seed: the pooled (prediction) interval from the reference's spread.
    lo, hi = inference.effect_ci([0.0, 1.0, 2.0], [5.0])
    half = scipy.stats.t.ppf(0.975, 2) * 1.0 * math.sqrt(1 / 3 + 1)
    assert (lo, hi) == pytest.approx((4.0 - half, 4.0 + half))


def test_decisions_under_the_null_keep_the_familywise_rate_and_detect_a_shift():
    """Catches a missing multiple-comparison correction: 80 uncorrected tests at 5 % would call some
    measure "differs" in ~98 % of null families; BH keeps it at <= 5 %."""
    rng = np.random.default_rng(3)
    runs_ref, runs_var = [f"r{i}" for i in range(5)], [f"v{i}" for i in range(3)]

    def family(shift):
        rows = [{"run": run, "population": f"P{p}", "measure": f"m{m}",
                 "value": rng.normal(shift if (run in runs_var and p == 0 and m == 0) else 0, 1)}
                for run in runs_ref + runs_var for p in range(8) for m in range(10)]
        return inference.variant_decisions(pd.DataFrame(rows), runs_ref, runs_var, "x", OPTIONS)

    any_differs = [(family(0.0)["decision"] == "differs").any() for _ in range(300)]
    assert np.mean(any_differs) <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 300)
    shifted = family(40.0)
    assert shifted.iloc[0]["decision"] == "differs"
    assert shifted.iloc[0]["effect"] == pytest.approx(40.0, abs=3.0)
    assert (shifted["decision"] == "differs").sum() <= 3


def test_undefined_measures_name_their_reason_and_leave_the_family():
    """Catches an undefined measure (silent population, no neuron with 10 ISIs) scored as consistent
    or counted in the BH family."""
    rows = [{"run": r, "population": "L5E", "measure": "cv", "value": v}
            for r, v in (("r0", 0.8), ("r1", 0.82), ("r2", 0.79), ("v0", np.nan))]
    rows += [{"run": r, "population": "L5E", "measure": "rate_hz", "value": v}
             for r, v in (("r0", 5.0), ("r1", 5.1), ("r2", 4.9), ("v0", 9.0))]
    out = inference.variant_decisions(pd.DataFrame(rows), ["r0", "r1", "r2"], ["v0"], "x", OPTIONS,
                                      units={"rate_hz": "Hz"},
                                      reasons={("v0", "L5E", "cv"): "no neuron with >= 10 ISIs"})
    cv = out.set_index("measure").loc["cv"]
    assert cv["decision"] == "undefined: no neuron with >= 10 ISIs" and math.isnan(cv["q_value"])
    rate = out.set_index("measure").loc["rate_hz"]
    assert rate["q_value"] == pytest.approx(rate["p_value"])  # a family of one
    assert rate["unit"] == "Hz" and rate["relative_effect"] == pytest.approx(4.0 / 5.0)


def test_unknown_methods_are_refused():
    """Catches a typo in the settings silently falling back to another test."""
    with pytest.raises(CortexzooError, match="permutation"):
        inference.p_value([1, 2], [3], test="welch")
    with pytest.raises(CortexzooError, match="bootstrap"):
        inference.effect_ci([1, 2], [3], method="bca")


def test_unknown_run_labels_are_refused():
    """Catches a typo in a run label silently becoming NaN values and a quiet "consistent"."""
    from cortexzoo.validation.sciunit_tests import SeedSetModel

    rows = pd.DataFrame([{"run": r, "population": "L4E", "measure": "rate_hz", "value": v}
                         for r, v in (("r0", 1.0), ("r1", 1.1), ("v0", 2.0))])
    with pytest.raises(CortexzooError, match="v1 are not in the measure table"):
        inference.variant_decisions(rows, ["r0", "r1"], ["v1"], "x", OPTIONS)
    with pytest.raises(CortexzooError, match="v1 of x are not in the measure table"):
        SeedSetModel.from_measure_table(rows, ["v1"], "x")

