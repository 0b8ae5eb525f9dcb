"""Negative-control bookkeeping, detectable change and positive detections (validation/controls.py)."""

import math

import numpy as np
import pandas as pd
import pytest

from cortexzoo.errors import CortexzooError
from cortexzoo.validation import controls, inference

OPTIONS = {"test": "t", "fdr": 0.05, "ci_level": 0.95, "ci_method": "t", "bootstrap_samples": 2000, "seed": 0}


def _null_table(n_runs, rng, populations=4, measures=("rate_hz", "lv")):
    return pd.DataFrame([{"run": f"s{i}", "population": f"P{p}", "measure": m, "value": rng.normal(5.0, 0.5)}
                         for i in range(n_runs) for p in range(populations) for m in measures])


def test_disjoint_groups_never_share_a_seed():
    """Catches overlapping pseudo-variants (they would make the false-positive decisions dependent)."""
    groups = controls.disjoint_groups([f"s{i}" for i in range(10)], 3)
    assert groups == [["s0", "s1", "s2"], ["s3", "s4", "s5"], ["s6", "s7", "s8"]]
    with pytest.raises(CortexzooError, match="fewer than one group"):
        controls.disjoint_groups(["a", "b"], 3)


def test_clopper_pearson_bounds():
    """Catches an approximate (Wald) interval, which is [0, 0] for zero false positives."""
    lo, hi = controls.clopper_pearson(0, 40)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 40), rel=1e-9)


def test_false_positive_rates_of_a_true_null_stay_at_or_below_the_fdr():
    """Catches miscounted false positives or coverage: on normal seeds of one model the uncorrected
    rate must sit at the nominal 5 % (an anti-conservative test, or a count of BH decisions instead of
    raw p-values, fails), the BH decisions far below it, and the intervals must cover 0 ~95 %."""
    rng = np.random.default_rng(11)
    table = _null_table(5 + 60, rng)
    runs = [f"s{i}" for i in range(65)]
    decisions = controls.null_decisions(table, runs[:5], runs[5:], 3, OPTIONS, {"rate_hz": "Hz"})
    assert set(decisions["model"]) == {f"null-{i}" for i in range(20)}
    rates = controls.false_positive_rates(decisions)
    assert rates.loc["all", "decisions"] == 20 * 4 * 2
    # 160 decisions: the binomial SD of a 5 % rate is 1.7 %.
    assert abs(rates.loc["all", "false_positive_rate"] - 0.05) < 0.045
    assert rates.loc["all", "ci_low"] <= 0.05 <= rates.loc["all", "ci_high"]
    assert rates.loc["all", "after_fdr_rate"] <= 0.02 and rates.loc["all", "familywise_rate"] <= 0.2
    assert 0.85 <= rates.loc["all", "ci_coverage"] <= 1.0
    # The numbers are counts of "differs": force one and see it counted.
    decisions.loc[0, "decision"] = "differs"
    assert controls.false_positive_rates(decisions).loc[decisions.loc[0, "measure"], "false_positives"] >= 1


def test_minimal_detectable_change_has_the_stated_power():
    """Catches a wrong power formula: at the detectable change the t-test must reject 80 % of the time."""
    sd, alpha = 1.0, 0.05
    mdc = float(controls.minimal_detectable_change(sd, 5, 3, alpha))
    rng = np.random.default_rng(5)
    p = [inference.t_test(rng.normal(0, sd, 5), rng.normal(mdc, sd, 3)) for _ in range(4000)]
    assert np.mean(np.array(p) <= alpha) == pytest.approx(0.8, abs=0.02)
    # A stricter level (a single difference among m decisions) needs a larger change.
    assert controls.minimal_detectable_change(sd, 5, 3, alpha / 64) > mdc


def test_sensitivity_and_positive_detections():
    """Catches a sensitivity table built from the wrong seeds or a detection table that loses the
    populations a positive control was detected in."""
    rng = np.random.default_rng(2)
    table = _null_table(8, rng)
    table.loc[table["run"] == "s7", "value"] = 1e6  # not a null seed: must not enter the SD
    sens = controls.sensitivity(table, [f"s{i}" for i in range(7)], 5, 3, 0.05, 8, {"lv": "1"})
    assert (sens["n_seeds"] == 7).all() and (sens["null_sd"] < 2).all()
    assert (sens["mdc_single"] > sens["mdc_many"]).all()
    assert set(sens["unit"]) == {"", "1"}
    shifted = table.copy()
    shifted.loc[(shifted["run"].isin(["s5", "s6", "s7"])) & (shifted["population"] == "P1")
                & (shifted["measure"] == "rate_hz"), "value"] = 50.0
    dec = inference.variant_decisions(shifted, ["s0", "s1", "s2", "s3", "s4"], ["s5", "s6", "s7"], "g44", OPTIONS)
    det = controls.positive_detections(dec).set_index("measure")
    assert det.loc["rate_hz", "populations"] == "P1" and det.loc["rate_hz", "populations_differ"] == 1
    assert math.isnan(det.loc["lv", "max_abs_relative_effect"])
