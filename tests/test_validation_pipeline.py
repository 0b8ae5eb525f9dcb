"""validate(): planted differences, bad input, output files, CLI."""

import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from validation_synth import make_run

from cortexzoo.errors import CortexzooError
from cortexzoo.experiments.cli import main
from cortexzoo.validation.pipeline import ValidationWarning, validate
from cortexzoo.validation.settings import decided_measures, load_settings

N_REF = 5


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    refs = [make_run(root / f"ref{s}", seed=s) for s in range(1, N_REF + 1)]
    same = [make_run(root / f"same_model{s}", seed=100 + s) for s in range(3)]
    doubled = [make_run(root / f"doubled_L4E{s}", seed=110 + s, rates_hz={"L4E": 8.0}) for s in range(3)]
    # 20 events x 25 % of L23I = 5 spikes per neuron in 3 s; the drive is lowered to keep the mean rate.
    synced = [make_run(root / f"sync_L23I{s}", seed=120 + s, sync={"L23I": (20, 0.25)},
                       rates_hz={"L23I": 3.0 - 5 / 3}) for s in range(3)]
    return {"refs": refs, "same": same, "doubled": doubled, "synced": synced, "root": root}


# L23I has 120 neurons: the fixed CC subsample must fit into it at the synthetic rates.
SETTINGS = {"statistics": {"cc_subsample_neurons": 60, "synchrony_subsample_neurons": 60}}


@pytest.fixture(scope="module")
def result(runs, tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ValidationWarning)  # 5 + 3 seeds: no warning expected
        return validate(runs["refs"], {"same_model": runs["same"], "doubled_L4E": runs["doubled"],
                                       "sync_L23I": runs["synced"]},
                        tmp_path_factory.mktemp("out"), settings=SETTINGS, make_figures=False)


def _decisions(result, model):
    return result.scores[result.scores["model"] == model].set_index(["population", "measure"])


def test_more_seeds_of_the_reference_are_consistent(result):
    """Catches an uncorrected or miscalibrated test: seeds of the reference itself must not differ."""
    d = _decisions(result, "same_model")
    assert (d["decision"] == "consistent").all(), d[d["decision"] != "consistent"]
    assert (d["q_value"] >= d["p_value"]).all()


def test_doubled_rate_is_flagged_on_that_population_only(result):
    """Catches a difference put on the wrong population or an effect not in the measure's unit."""
    d = _decisions(result, "doubled_L4E")
    row = d.loc[("L4E", "rate_hz")]
    assert row["decision"] == "differs" and row["unit"] == "Hz"
    # The rates double from 4 Hz: +4 Hz, +100 %, inside the intervals.
    assert row["effect_ci_low"] <= 4.0 <= row["effect_ci_high"] or abs(row["effect"] - 4.0) < 0.2
    assert row["relative_effect"] == pytest.approx(1.0, abs=0.05)
    differs = d[d["decision"] == "differs"]
    assert set(differs.index.get_level_values("population")) == {"L4E"}


def test_synchronised_input_is_flagged_on_synchrony_not_rates(result):
    """Catches synchrony measures that miss shared spike events, or a rate measure that reacts to them."""
    d = _decisions(result, "sync_L23I")
    # Single-neuron measures (Fano factor, LV) need not change: the shared events are Poisson in time.
    for measure in ("synchrony", "cc"):
        assert d.loc[("L23I", measure), "decision"] == "differs", measure
    # The spectral power rises too; with 3 Welch seeds it misses the BH threshold here (q = 0.07).
    power = d.loc[("L23I", "psd_band_power_hz2")]
    assert power["effect"] > 0 and power["p_value"] < 0.05
    assert d.loc[("L23I", "rate_hz"), "decision"] == "consistent"
    assert set(d[d["decision"] == "differs"].index.get_level_values("population")) == {"L23I"}


def test_summary_puts_fewest_differences_first(result):
    """Catches a summary sorted by a distance descending (the best model last)."""
    s = result.summary
    assert list(s["model"])[0] == "same_model" and s.loc[0, "differs"] == 0
    assert np.all(np.diff(s["differs"].to_numpy()) >= 0)
    assert s.set_index("model").loc["doubled_L4E", "largest"] == "L4E rate_hz"


def test_output_files(result):
    """Catches decisions, distances or per-seed measures missing from the files a user reads."""
    from cortexzoo.validation.inference import DECISION_COLUMNS
    from cortexzoo.validation.pipeline import DISTANCE_COLUMNS, MEASURE_COLUMNS

    out = result.files["scores.csv"].parent
    table = pd.read_csv(out / "scores.csv")
    assert list(table.columns) == DECISION_COLUMNS
    n_measures = len(decided_measures(load_settings(), result.measures["measure"]))
    assert len(table) == 3 * 4 * n_measures
    assert set(table["decision"]) <= {"differs", "consistent"}
    distances = pd.read_csv(out / "distances.csv")
    assert list(distances.columns) == DISTANCE_COLUMNS
    # 9 variant runs x 4 populations x (5 distributions x 3 kinds + synchrony + 2 psd kinds)
    assert len(distances) == 9 * 4 * 18
    measures = pd.read_csv(out / "measures.csv")
    assert list(measures.columns) == MEASURE_COLUMNS and set(measures["run"]) >= {"ref1", "same_model0"}
    payload = json.loads((out / "scores.json").read_text())
    assert len(payload["rows"]) == len(table) and "Benjamini-Hochberg" in payload["about"]
    assert payload["variants"]["same_model"] == ["same_model0", "same_model1", "same_model2"]
    stats = pd.read_csv(out / "statistics.csv")
    assert {"cv_excluded", "cc_subsample", "psd_peaks_hz", "cc_noise_floor_sd"} <= set(stats.columns)
    assert (stats.loc[stats["cc_eligible"] >= 60, "cc_subsample"] == 60).all()


def test_few_seeds_warn_with_the_detectable_change(runs, tmp_path):
    """Catches a design with too few seeds passing silently: the warning must say what it can detect."""
    with pytest.warns(ValidationWarning, match="seed-to-seed SDs"):
        res = validate(runs["refs"][:3], [runs["doubled"][0]], tmp_path, settings=SETTINGS, make_figures=False)
    assert "3 reference and 1 variant seed" in res.warnings[0]
    # One variant seed still gets decisions (a prediction-interval test with the reference's variance).
    assert res.scores["p_value"].notna().all()
    with pytest.warns(ValidationWarning, match="allow no test"):
        res = validate(runs["refs"][:1], [runs["doubled"][0]], tmp_path / "one", settings=SETTINGS,
                       make_figures=False)
    assert res.scores["decision"].str.startswith("undefined").all()


def test_bad_inputs_raise_clear_errors(runs, tmp_path):
    root = runs["root"]
    short = make_run(tmp_path / "short", seed=50, t_stop_ms=2100.0)
    with pytest.raises(CortexzooError, match="different analysis windows"):
        validate(runs["refs"][:3], [short], tmp_path / "o1", make_figures=False)
    fewer = make_run(tmp_path / "fewer", seed=51, populations={"L23E": 400, "L23I": 120, "L4E": 400})
    with pytest.raises(CortexzooError, match="different population sets"):
        validate(runs["refs"][:3], [fewer], tmp_path / "o2", make_figures=False)
    silent = make_run(tmp_path / "silent", seed=52, silent=("L4I",))
    with pytest.raises(CortexzooError, match="L4I of run silent has no spikes"):
        validate(runs["refs"][:3], [silent], tmp_path / "o3", make_figures=False)
    # ... and the fix it suggests works.
    res = validate(runs["refs"][:3], [silent], tmp_path / "o3b", make_figures=False,
                   settings={**SETTINGS, "scores": {"populations": ["L23E", "L23I", "L4E"]}})
    assert set(res.scores["population"]) == {"L23E", "L23I", "L4E"}
    broken = tmp_path / "broken"
    shutil.copytree(runs["same"][0], broken)
    (broken / "COMPLETE").unlink()
    with pytest.raises(CortexzooError, match="not a finished run"):
        validate(runs["refs"][:3], [broken], tmp_path / "o4", make_figures=False)
    with pytest.raises(CortexzooError, match="more than once"):
        validate(runs["refs"][:3], [runs["refs"][0]], tmp_path / "o5", make_figures=False)
    with pytest.raises(CortexzooError, match="Unknown validation setting"):
        validate(runs["refs"][:3], [runs["same"][0]], tmp_path / "o6", settings={"statistics": {"cc_bin": 3}})
    assert root.exists()


def test_cli_writes_tables_and_figures(runs, tmp_path, capsys):
    settings = tmp_path / "s.toml"
    settings.write_text("[statistics]\ncc_subsample_neurons = 60\n")
    out = tmp_path / "cli"
    code = main(["-q", "validate", "--reference", *map(str, runs["refs"][:3]), "--candidate", str(runs["doubled"][0]),
                 "--out", str(out), "--settings", str(settings)])
    assert code == 0
    assert "doubled_L4E" in capsys.readouterr().out
    for name in ("scores.csv", "distances.csv", "measures.csv", "scores.json", "statistics.csv", "summary.csv",
                 "raster.png", "rates_boxplot.png",
                 "cv_distributions.png", "psd_overlay.png", "heatmap.png"):
        assert (out / name).stat().st_size > 0, name
    assert (pd.read_csv(out / "statistics.csv")["cc_subsample"] <= 60).all()
    code = main(["validate", "--reference", str(runs["refs"][0]), "--candidate", str(tmp_path / "nope"),
                 "--out", str(out)])
    assert code == 2 and "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("raw, null, why", [
    (float("nan"), [0.1, 0.2, 0.3], "score is not finite"),
    (float("inf"), [0.1, 0.2, 0.3], "score is not finite"),
    (0.05, [0.1, float("nan"), 0.3], "natural variability is not finite"),  # effect size of 1-element samples
    (0.05, [float("nan")], "natural variability is not finite"),
])
def test_undefined_distances_say_why(raw, null, why):
    """A NaN/inf score or null is 'undefined' with its reason, not 'reference seeds agree exactly' or an inf multiple."""
    from cortexzoo.validation.scores import relative_to_null

    rel = relative_to_null(raw, np.array(null))
    assert rel["note"].startswith("undefined: ") and why in rel["note"]
    assert rel["multiple_of_max"] is None


def test_multiples_of_defined_distances():
    """A zero null with a nonzero score is infinitely far; one reference seed gives raw scores only."""
    from cortexzoo.validation.scores import relative_to_null

    assert relative_to_null(0.2, np.array([0.1, 0.3]))["multiple_of_max"] == pytest.approx(0.2 / 0.3)
    zero = relative_to_null(0.1, np.array([0.0, 0.0]))
    assert zero["multiple_of_max"] == float("inf") and "agree exactly" in zero["note"]
    assert "single reference seed" in relative_to_null(0.1, np.array([]))["note"]


def test_silent_candidate_population_is_flagged_not_fatal_when_asked(runs, tmp_path):
    """compare() decides a silent variant population: its rate differs (-100 %), the measures that need
    spikes are undefined with the reason, the distances are infinite, and the figures are drawn.
    Catches a silent population dropped from the table or scored as consistent."""
    silent = [make_run(tmp_path / f"silent{s}", seed=53 + s, silent=("L4I",)) for s in range(3)]
    res = validate(runs["refs"], {"silent": silent}, tmp_path / "out", settings=SETTINGS,
                   degenerate_candidates="flag")
    rows = res.scores[res.scores["population"] == "L4I"].set_index("measure")
    assert rows.loc["rate_hz", "decision"] == "differs" and rows.loc["rate_hz", "relative_effect"] == -1.0
    undefined = rows.drop(index="rate_hz")
    assert undefined["decision"].str.startswith("undefined").all()
    assert (res.summary.set_index("model").loc["silent", "undefined"] == len(undefined))
    dist = res.distances[res.distances["population"] == "L4I"]
    assert np.isinf(dist["raw"].astype(float)).all() and dist["note"].str.contains("no spikes").all()
    assert (res.scores[res.scores["population"] != "L4I"]["decision"] != "differs").all()
    assert (tmp_path / "out" / "heatmap.png").stat().st_size > 0
    # The reference must never be degenerate.
    silent_ref = make_run(tmp_path / "silent_ref", seed=54, silent=("L4I",))
    with pytest.raises(CortexzooError, match="no spikes"):
        validate([*runs["refs"][:2], silent_ref], [runs["same"][0]], tmp_path / "o2", degenerate_candidates="flag",
                 make_figures=False)
