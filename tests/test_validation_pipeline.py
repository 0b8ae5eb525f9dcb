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

N_REF = 5


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    refs = [make_run(root / f"ref{s}", seed=s) for s in range(1, N_REF + 1)]
    same = make_run(root / "same_model", seed=101)
    doubled = make_run(root / "doubled_L4E", seed=102, rates_hz={"L4E": 8.0})
    # 20 events x 25 % of L23I = 5 spikes per neuron in 3 s; the drive is lowered to keep the mean rate.
    synced = make_run(root / "sync_L23I", seed=103, sync={"L23I": (20, 0.25)}, rates_hz={"L23I": 3.0 - 5 / 3})
    return {"refs": refs, "same": same, "doubled": doubled, "synced": synced, "root": root}


@pytest.fixture(scope="module")
def result(runs, tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ValidationWarning)  # 5 seeds: no warning expected
        return validate(runs["refs"], [runs["same"], runs["doubled"], runs["synced"]],
                        tmp_path_factory.mktemp("out"), make_figures=False)


def _primary(result, model):
    p = result.scores[result.scores["primary"] & (result.scores["model"] == model)]
    return p.set_index(["population", "statistic"])


def test_another_seed_of_the_reference_matches(result):
    p = _primary(result, "same_model")
    # The max criterion has a false-alarm rate of about 1/(n_ref + 1) per statistic even for a
    # seed of the same model; what must hold is that nothing is far outside natural variability.
    assert p["matches"].mean() >= 0.8
    assert p["multiple_of_max"].astype(float).max() < 2.0
    assert 0.5 < p["multiple_of_mean"].astype(float).median() < 1.5


def test_doubled_rate_is_flagged_on_that_population_only(result):
    p = _primary(result, "doubled_L4E")
    assert p.loc[("L4E", "rates"), "multiple_of_max"] > 3
    assert not p.loc[("L4E", "rates"), "matches"]
    assert p.loc[("L4E", "complexity"), "multiple_of_max"] > 5
    others = p.drop(index="L4E", level="population")
    assert others["multiple_of_max"].astype(float).max() < 2.0
    assert others["matches"].mean() >= 0.8
    # The rate effect dwarfs the chance mismatches elsewhere.
    assert p.loc[("L4E", "rates"), "multiple_of_max"] > 3 * others["multiple_of_max"].astype(float).max()


def test_synchronised_input_is_flagged_on_synchrony_not_rates(result):
    p = _primary(result, "sync_L23I")
    for stat in ("synchrony", "cc", "psd"):
        assert p.loc[("L23I", stat), "multiple_of_max"] > 3, stat
    for stat in ("synchrony", "cc", "psd", "complexity"):
        assert not p.loc[("L23I", stat), "matches"], stat
    assert p.loc[("L23I", "rates"), "multiple_of_max"] < p.loc[("L23I", "synchrony"), "multiple_of_max"] / 3
    others = p.drop(index="L23I", level="population")
    assert others["multiple_of_max"].astype(float).max() < 2.0


def test_summary_ranks_lower_is_better(result):
    s = result.summary
    assert list(s["model"])[0] == "same_model"
    mismatched = (s["of"] - s["matched"]).to_numpy()
    assert np.all(np.diff(mismatched) >= 0)


def test_output_files_long_format(result):
    out = result.files["scores.csv"].parent
    table = pd.read_csv(out / "scores.csv")
    assert list(table.columns) == ["model", "population", "statistic", "score_kind", "primary", "raw", "null_mean",
                                   "null_max", "multiple_of_mean", "multiple_of_max", "matches",
                                   "status", "n_reference_seeds", "note"]
    # 3 models x 4 populations x (5 distributions x 3 kinds + synchrony + 2 psd kinds)
    assert len(table) == 3 * 4 * 18
    assert table["raw"].notna().all() and table["multiple_of_mean"].notna().all()
    assert (table["raw"] >= 0).all()
    payload = json.loads((out / "scores.json").read_text())
    assert len(payload["rows"]) == len(table) and "lower is better" in payload["about"]
    stats = pd.read_csv(out / "statistics.csv")
    assert {"cv_excluded", "cc_subsample", "psd_peaks_hz"} <= set(stats.columns)
    # 250 by default, scaled down to the neurons that spike (L23I has 120 neurons).
    assert (stats["cc_subsample"] == np.minimum(250, stats["cc_eligible"])).all()
    assert (stats.loc[stats.population == "L23I", "cc_subsample"] <= 120).all()


def test_single_reference_seed_warns_and_reports_raw_only(runs, tmp_path):
    with pytest.warns(ValidationWarning, match="no null distribution"):
        res = validate(runs["refs"][:1], [runs["doubled"]], tmp_path, make_figures=False)
    assert res.scores["multiple_of_mean"].isna().all() and res.scores["matches"].isna().all()
    assert (res.scores["note"].str.contains("single reference seed")).all()
    assert res.scores["raw"].notna().all()
    assert "no null distribution" in json.loads((tmp_path / "scores.json").read_text())["warnings"][0]


def test_two_reference_seeds_warn(runs, tmp_path):
    with pytest.warns(ValidationWarning, match="fewer than"):
        validate(runs["refs"][:2], [runs["same"]], tmp_path, make_figures=False)


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
                   settings={"scores": {"populations": ["L23E", "L23I", "L4E"]}})
    assert set(res.scores["population"]) == {"L23E", "L23I", "L4E"}
    broken = tmp_path / "broken"
    shutil.copytree(runs["same"], broken)
    (broken / "COMPLETE").unlink()
    with pytest.raises(CortexzooError, match="not a finished run"):
        validate(runs["refs"][:3], [broken], tmp_path / "o4", make_figures=False)
    with pytest.raises(CortexzooError, match="more than once"):
        validate(runs["refs"][:3], [runs["refs"][0]], tmp_path / "o5", make_figures=False)
    with pytest.raises(CortexzooError, match="Unknown validation setting"):
        validate(runs["refs"][:3], [runs["same"]], tmp_path / "o6", settings={"statistics": {"cc_bin": 3}})
    assert root.exists()


def test_cli_writes_tables_and_figures(runs, tmp_path, capsys):
    settings = tmp_path / "s.toml"
    settings.write_text("[statistics]\ncc_subsample_neurons = 100\n")
    out = tmp_path / "cli"
    code = main(["-q", "validate", "--reference", *map(str, runs["refs"][:3]), "--candidate", str(runs["doubled"]),
                 "--out", str(out), "--settings", str(settings)])
    assert code == 0
    assert "doubled_L4E" in capsys.readouterr().out
    for name in ("scores.csv", "scores.json", "statistics.csv", "summary.csv", "raster.png", "rates_boxplot.png",
                 "cv_distributions.png", "psd_overlay.png", "heatmap.png"):
        assert (out / name).stat().st_size > 0, name
    assert (pd.read_csv(out / "statistics.csv")["cc_subsample"] <= 100).all()
    code = main(["validate", "--reference", str(runs["refs"][0]), "--candidate", str(tmp_path / "nope"),
                 "--out", str(out)])
    assert code == 2 and "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("raw, null, why", [
    (float("nan"), [0.1, 0.2, 0.3], "score is not finite"),
    (float("inf"), [0.1, 0.2, 0.3], "score is not finite"),
    (0.05, [0.1, float("nan"), 0.3], "natural variability is not finite"),  # effect size of 1-element samples
    (0.05, [float("nan")], "natural variability is not finite"),
])
def test_undefined_scores_are_never_a_match(raw, null, why):
    """A NaN/inf score or null is 'undefined', not 'reference seeds agree exactly' with a match or an inf multiple."""
    from cortexzoo.validation.scores import relative_to_null

    rel = relative_to_null(raw, np.array(null))
    assert rel["status"].startswith("undefined: ") and why in rel["status"] and rel["matches"] is False
    assert rel["multiple_of_max"] is None


def test_decisions_of_defined_scores():
    """The status follows multiple_of_max <= 1; a zero null with a nonzero score differs (infinitely)."""
    from cortexzoo.validation.scores import relative_to_null

    assert relative_to_null(0.2, np.array([0.1, 0.3]))["status"] == "matches"
    assert relative_to_null(0.31, np.array([0.1, 0.3]))["status"] == "differs"
    zero = relative_to_null(0.1, np.array([0.0, 0.0]))
    assert zero["status"] == "differs" and zero["multiple_of_max"] == float("inf")
    assert relative_to_null(0.1, np.array([]))["status"] == "raw only: single reference seed"


def test_silent_candidate_population_is_flagged_not_fatal_when_asked(runs, tmp_path):
    """compare() scores a silent variant population as infinitely far, with the reason, and still draws figures."""
    silent = make_run(tmp_path / "silent", seed=53, silent=("L4I",))
    res = validate(runs["refs"][:3], [silent], tmp_path / "out", degenerate_candidates="flag")
    rows = res.scores[res.scores["population"] == "L4I"]
    assert len(rows) > 0 and np.isinf(rows["raw"].astype(float)).all()
    assert (rows["matches"] == False).all()  # noqa: E712 - object column of booleans
    assert rows["status"].str.startswith("undefined: ").all() and rows["note"].str.contains("no spikes").all()
    summary = res.summary.set_index("model").loc["silent"]
    assert summary["undefined"] == int(rows["primary"].sum()) and summary["matched"] <= summary["of"] - summary["undefined"]
    others = res.scores[res.scores["population"] != "L4I"]
    assert np.isfinite(others["raw"].astype(float)).all()
    assert (tmp_path / "out" / "heatmap.png").stat().st_size > 0
    payload = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert any(r["raw"] == "inf" for r in payload["rows"])
    # The reference must never be degenerate.
    silent_ref = make_run(tmp_path / "silent_ref", seed=54, silent=("L4I",))
    with pytest.raises(CortexzooError, match="no spikes"):
        validate([*runs["refs"][:2], silent_ref], [runs["same"]], tmp_path / "o2", degenerate_candidates="flag",
                 make_figures=False)
