"""The separability experiment kind end to end on small real PD14 runs (issue 14): compare, scores, report."""

import os
import subprocess
import sys

import pandas as pd
import pytest

MEASURES = {"separation_ratio", "separation_peak", "readout_accuracy", "readout_peak"}
CONFIG = """
[experiment]
name = "sep"
kind = "separability"
results_dir = "{results}"
[simulation]
threads = 1
t_presim_ms = 100.0
t_sim_ms = 1600.0
[network]
N_scaling = 0.03
K_scaling = 0.25
k_compensation = "reference_rates"
[stimulus]
onset_ms = 100.0
count = 12
interval_ms = 120.0
duration_ms = 20.0
rate_Hz = 400.0
patterns = 2
[reference]
seeds = [1, 2, 3]
[variants.lif_nestml]
model = "iaf_psc_exp_nestml"
seeds = [11, 12]
# Izhikevich 2003 runs away under these patterns (2.5 kHz at N = 0.05, 300 Hz): the rate guard
# must stop it and the comparison go on without it.
[variants.izhikevich]
model = "izhikevich_nestml"
calibration = "operating_point"
seeds = [11]
[validation.settings.scores]
measures = ["separation_ratio", "separation_peak", "readout_accuracy", "readout_peak"]
"""


@pytest.fixture(scope="module")
def separability_experiment(tmp_path_factory, nestml_module):
    tmp = tmp_path_factory.mktemp("separability")
    config = tmp / "sep.toml"
    config.write_text(CONFIG.format(results=tmp / "results"))
    done = subprocess.run([sys.executable, "-m", "cortexzoo.experiments.cli", "-q", "compare", str(config)],
                          capture_output=True, text=True, cwd=tmp, env={**os.environ, "OMP_WAIT_POLICY": "passive"})
    assert done.returncode == 0, done.stderr
    return tmp / "results" / "sep"


def test_separability_measures_are_decided_per_population(separability_experiment):
    """Catches a separability experiment scored on stationary measures, decisions missing for some
    (population, measure), or the NESTML twin of the LIF called different (noise read as an effect)."""
    scores = pd.read_csv(separability_experiment / "validation" / "scores.csv")
    assert set(scores["measure"]) == MEASURES and len(scores) == 8 * len(MEASURES)
    assert (scores["decision"] != "differs").all()
    measures = pd.read_csv(separability_experiment / "validation" / "measures.csv")
    acc = measures[measures["measure"] == "readout_accuracy"]["value"]
    assert acc.between(0.0, 1.0).all() and len(acc) == 5 * 8  # runs x populations


def test_separability_report_renders_its_figures_in_chromium(separability_experiment, tmp_path):
    """Catches a separability report without its decorrelation or readout figure, or with images a browser
    cannot decode (issue 14: the reports render in headless Chromium)."""
    from screenshot import rendered_captions

    from cortexzoo.validation.report import RESPONSE_FIGURES

    captions = rendered_captions(separability_experiment / "report" / "index.html", tmp_path / "shot.png")
    wanted = dict(RESPONSE_FIGURES)
    assert wanted["decorrelation.png"] in captions and wanted["readout.png"] in captions, captions


def test_a_variant_that_runs_away_is_stopped_and_reported(separability_experiment):
    """Catches a runaway network simulated to the end (hours at kHz rates), its truncated spikes scored as if
    it were a stationary state, or the finding lost: the run must stop at the first 100 ms window above
    [simulation] max_rate_Hz, record where, and the report must name it."""
    import json

    meta = json.loads((separability_experiment / "runs" / "izhikevich-seed11" / "metadata.json").read_text())
    runaway = meta["runaway"]
    assert runaway and runaway["rate_Hz"] > runaway["max_rate_Hz"] == 300.0, runaway
    end = meta["analysis_window_ms"][1]
    assert runaway["stopped_at_ms"] < end and runaway["window_ms"][1] - runaway["window_ms"][0] >= 100.0 - 1e-9
    scores = pd.read_csv(separability_experiment / "validation" / "scores.csv")
    assert "izhikevich" not in set(scores["model"])
    report = (separability_experiment / "report" / "index.html").read_text()
    assert "izhikevich-seed11 ran away and is left out" in report  # the validation note
    # ... and listed with the verdicts, where a reader looks for each variant's result
    verdicts = report[report.index("<h2>What differs</h2>"):report.index("<h2>Undefined decisions</h2>")]
    assert "<b>izhikevich-seed11</b>: ran away, not scored: " in verdicts
    summary = (separability_experiment / "report" / "summary.md").read_text()
    assert "- **izhikevich-seed11**: ran away, not scored" in summary
