"""The scale-fidelity table's arithmetic (experiments/scale_fidelity.py) on hand-made run tables."""

import numpy as np
import pandas as pd
import pytest

from cortexzoo.experiments.scale_fidelity import compare, markdown, same_model, seed_spread


def _table(rates, cv=0.8, lv=0.9):
    return pd.DataFrame({"rate_Hz": rates, "cv": cv, "lv": lv, "n_cv": 10}, index=["L23E", "L4E"])


def test_downscaled_seeds_are_averaged_and_the_error_is_relative_to_full_scale():
    """Fails if the error is taken against the downscaled rate, per seed instead of the seed mean, or unsigned."""
    full = _table([1.0, 4.0])
    down = [_table([1.2, 3.0]), _table([1.0, 3.0], cv=0.6)]
    t = compare(full, down)
    assert t.rate_down.tolist() == pytest.approx([1.1, 3.0])
    assert t.rate_rel_error.tolist() == pytest.approx([0.1, -0.25])
    assert t.cv_down.tolist() == pytest.approx([0.7, 0.7]) and t.cv_full.tolist() == [0.8, 0.8]


def test_seed_spread_is_the_relative_sample_sd_and_the_summary_names_the_worst_population():
    """Fails if the yardstick uses ddof 0 or absolute Hz, or the summary reports the wrong population."""
    spread = seed_spread([_table([1.0, 4.0]), _table([3.0, 4.0])])
    assert spread["L23E"] == pytest.approx(np.std([1.0, 3.0], ddof=1) / 2.0) and spread["L4E"] == 0.0
    text = markdown({"m": compare(_table([1.0, 4.0]), [_table([1.2, 3.0])])}, spread, "# t")
    assert "| m | 22.5% | 25.0% (L4E) |" in text


def test_a_full_scale_run_of_another_calibration_is_flagged():
    """Catches a scale-fidelity table that compares a full-scale run with downscaled runs of other cell
    parameters (e.g. made before a recalibration): its 'error' would not be scale alone."""
    full = {"identity": {"catalogue_entry": "a1", "model_build": "b1", "config": {"network": {"N_scaling": 1.0}}}}
    down = {"identity": {"catalogue_entry": "a1", "model_build": "b1", "config": {"network": {"N_scaling": 0.1}}}}
    assert same_model(full, down) == []
    assert same_model(full, {"identity": {**down["identity"], "catalogue_entry": "a2"}}) == ["catalogue_entry"]
    assert same_model(full, {"identity": {**down["identity"], "model_build": "b2"}}) == ["model_build"]
