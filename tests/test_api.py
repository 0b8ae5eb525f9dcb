"""The notebook API (cortexzoo.api): an experiment view over what `cortexzoo compare` wrote, re-scoring,
plots, one-run simulation, and the example notebook docs/examples/quick_tour.ipynb executed end to end.

One tiny experiment (3 reference seeds, one variant called "null", 500 ms) is compared once per module
through the real command line and NEST; every test reads it.
"""

import json
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import cortexzoo
from cortexzoo.errors import CortexzooError
from cortexzoo.network.output import load_run
from cortexzoo.validation import figures
from experiment_helpers import REPO, cli, write_tiny_config

NOTEBOOK = REPO / "docs" / "examples" / "quick_tour.ipynb"
# A non-default statistics setting in the config (a 250 ms Welch segment also lets the runs be 500 ms
# long, which keeps this module fast): re-scoring must start from it, not from the defaults.
CONFIG_SETTINGS = "\n[validation.settings.statistics]\nwelch_segment_ms = 250.0\n"


@pytest.fixture(scope="module")
def experiment_dir(tmp_path_factory):
    """Compare a tiny experiment whose variant is called "null" (pandas reads that word as NaN by default)."""
    root = tmp_path_factory.mktemp("api")
    config = write_tiny_config(root / "tiny.toml", "tiny", root / "results", variants=("lif_hot",))
    text = config.read_text().replace("[variants.lif_hot]", "[variants.null]").replace("t_sim_ms = 1000.0",
                                                                                       "t_sim_ms = 500.0")
    config.write_text(text + CONFIG_SETTINGS)
    done = cli("compare", config, cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "results" / "tiny"


@pytest.fixture
def exp(experiment_dir):
    return cortexzoo.open_experiment(experiment_dir)


def test_import_cortexzoo_stays_cheap_and_exports_the_api():
    """Catches `import cortexzoo` pulling in pandas, matplotlib or NEST (every CLI call and run job pays for
    it, and matplotlib's Agg switch would hit a notebook on import), and a lazy export that is missing."""
    code = ("import sys, cortexzoo; heavy = [m for m in ('pandas', 'matplotlib', 'nest', 'sciunit') if m in "
            "sys.modules]; import cortexzoo.api as api; "
            "assert cortexzoo.open_experiment is api.open_experiment and cortexzoo.simulate is api.simulate; "
            "assert cortexzoo.Experiment is api.Experiment; print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    with pytest.raises(AttributeError):
        cortexzoo.no_such_function  # noqa: B018


def test_view_lists_runs_and_reads_the_tables_compare_wrote(exp, experiment_dir):
    """Catches runs listed out of config order or missing, a variant called "null" read as NaN (pandas' default
    NA words), and tables that are not the files of validation/."""
    assert exp.references == ["reference-seed1", "reference-seed2", "reference-seed3"]
    assert exp.variants == {"null": ["null-seed101"]}
    assert exp.runs == exp.references + ["null-seed101"]
    assert sorted(exp.runs) == sorted(p.name for p in (experiment_dir / "runs").iterdir())
    assert exp.config["reference"]["seeds"] == [1, 2, 3]

    assert set(exp.scores["model"]) == {"null"} and set(exp.summary["model"]) == {"null"}
    assert list(exp.decision_table().index) == ["null"]
    assert set(exp.measures["run"]) == set(exp.runs)
    assert set(exp.statistics["run"]) == set(exp.runs)
    on_disk = pd.read_csv(experiment_dir / "validation" / "scores.csv", keep_default_na=False, na_values=[""])
    pd.testing.assert_frame_equal(exp.scores, on_disk)
    assert exp.settings["statistics"]["welch_segment_ms"] == 250.0


def test_spikes_are_the_analysis_window_of_the_named_run(exp, experiment_dir):
    """Catches spikes of the presimulation (transient) handed out, or of another run or population."""
    run = load_run(experiment_dir / "runs" / "null-seed101")
    ids, times = exp.spikes("null-seed101", "L4E")
    all_ids, all_times = run.spikes["L4E"]
    assert (all_times <= run.t_start_ms).any(), "the test needs presimulation spikes to leave out"
    assert len(times) and times.min() > run.t_start_ms and times.max() <= run.t_stop_ms
    keep = (all_times > run.t_start_ms) & (all_times <= run.t_stop_ms)
    np.testing.assert_array_equal(ids, all_ids[keep])
    np.testing.assert_array_equal(times, all_times[keep])
    assert exp.run("null-seed101").metadata["seed"] == 101


def test_user_mistakes_are_cortexzoo_errors_with_a_fix(exp, experiment_dir, tmp_path):
    """Catches FileNotFoundError/KeyError tracebacks (or silent empty results) for a folder that is not an
    experiment, an experiment without validation, an unknown run or population, and a rescore that would
    overwrite the experiment's own validation."""
    with pytest.raises(CortexzooError, match="no experiment.toml") as err:
        cortexzoo.open_experiment(tmp_path)
    assert err.value.fix
    with pytest.raises(CortexzooError, match="does not exist"):
        cortexzoo.open_experiment(tmp_path / "missing")

    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "experiment.toml").write_text((experiment_dir / "experiment.toml").read_text())
    with pytest.raises(CortexzooError, match="no validation results") as err:
        cortexzoo.open_experiment(bare).scores  # noqa: B018
    assert "cortexzoo compare" in err.value.fix

    with pytest.raises(CortexzooError, match="no run 'null-seed7'") as err:
        exp.spikes("null-seed7", "L4E")
    assert "null-seed101" in err.value.fix
    with pytest.raises(CortexzooError, match="no population 'L7E'") as err:
        exp.spikes("null-seed101", "L7E")
    assert "L4E" in err.value.fix
    with pytest.raises(CortexzooError, match="experiment's own"):
        exp.rescore(out=experiment_dir / "validation")
    with pytest.raises(CortexzooError, match="scores.fdrr"):
        exp.rescore({"scores": {"fdrr": 0.1}}, out=tmp_path / "typo")
    assert not (tmp_path / "typo").exists()


def test_rescore_applies_the_new_fdr_on_top_of_the_experiment_settings(exp, experiment_dir, tmp_path):
    """Catches settings ignored by rescore, a rescore starting from the defaults instead of the experiment's
    [validation.settings] (other measures would change), and the experiment's own validation overwritten."""
    own = experiment_dir / "validation" / "scores.csv"
    before = (own.stat().st_mtime_ns, own.read_bytes())
    loose = exp.rescore({"scores": {"fdr": 0.5}}, out=tmp_path / "fdr50", figures=False)

    assert loose.validation_dir == tmp_path / "fdr50" and loose.path == exp.path
    assert loose.settings["scores"]["fdr"] == 0.5 and loose.settings["statistics"]["welch_segment_ms"] == 250.0
    pd.testing.assert_frame_equal(loose.measures, exp.measures)  # same runs, same statistics settings
    np.testing.assert_allclose(loose.scores["q_value"], exp.scores["q_value"], equal_nan=True)
    defined = ~loose.scores["decision"].str.startswith("undefined")
    assert ((loose.scores["q_value"] <= 0.5) == (loose.scores["decision"] == "differs"))[defined].all()
    assert (loose.scores["decision"] == "differs").sum() >= (exp.scores["decision"] == "differs").sum()
    assert json.loads((tmp_path / "fdr50" / "scores.json").read_text())["settings"]["scores"]["fdr"] == 0.5
    assert (own.stat().st_mtime_ns, own.read_bytes()) == before
    assert not list((tmp_path / "fdr50").glob("*.png"))


def test_plots_return_closed_figures_of_the_asked_runs(exp, experiment_dir, tmp_path):
    """Catches plot helpers that return nothing (figures.py only saving to a path), figures left open (a
    notebook would draw them twice), rasters of other runs, and the heatmap titled with another FDR;
    and figures.py no longer writing its PNG when a path is given (the pipeline's behaviour)."""
    raster = exp.plot_raster()
    assert [ax.get_title() for ax in raster.axes] == ["reference-seed1", "null-seed101"]
    rates = exp.plot_rates(runs=["reference-seed2", "null-seed101"], populations=["L4E", "L4I"])
    # One panel per population, one box per asked run, each variant named once on the y axis.
    assert [ax.get_title() for ax in rates.axes if ax.get_visible()] == ["L4E", "L4I"]
    assert [t.get_text() for t in rates.axes[0].get_yticklabels()] == ["reference", "null"]
    assert len(rates.axes[0].patches) == 2
    effects = exp.plot_effects()
    assert "FDR 5%" in effects.texts[0].get_text()
    assert effects.axes[0].get_title() == "null"
    for fig in (raster, rates, effects):
        assert fig.number not in plt.get_fignums()

    path = tmp_path / "heatmap.png"
    assert figures.effect_heatmap(exp.scores, path, 0.05) is not None and path.stat().st_size > 0


def test_simulate_writes_and_loads_one_run(tmp_path):
    """Catches simulate() ignoring the config (seed, durations), returning something other than the loaded
    run, mutating the caller's dict, or overwriting a finished run without being asked."""
    config = {"simulation": {"seed": 7, "t_presim_ms": 50.0, "t_sim_ms": 200.0},
              "network": {"N_scaling": 0.03, "K_scaling": 0.1}, "neuron": {"model": "iaf_psc_exp"}}
    given = json.dumps(config, sort_keys=True)
    run = cortexzoo.simulate(config, tmp_path / "one")
    assert json.dumps(config, sort_keys=True) == given
    assert run.path == tmp_path / "one" and run.metadata["seed"] == 7
    assert run.duration_ms == pytest.approx(200.0)
    assert sum(len(run.window(p)[0]) for p in run.populations) > 0
    with pytest.raises(CortexzooError, match="already holds a finished run"):
        cortexzoo.simulate(config, tmp_path / "one")
    with pytest.raises(CortexzooError, match="t_sim"):
        cortexzoo.simulate({"simulation": {"t_sim": 100.0}}, tmp_path / "two")


def test_quick_tour_notebook_runs_on_an_experiment(experiment_dir, monkeypatch):
    """Catches the example notebook drifting from the API (any cell raising), its plots rendering as text
    instead of images, its re-scoring not happening, and SciUnit printing one line per score into it."""
    import nbclient  # installed with sciunit (via nbconvert); a missing one must fail, not skip
    import nbformat

    monkeypatch.setenv("CORTEXZOO_EXPERIMENT", str(experiment_dir))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), "commit it without outputs"
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(experiment_dir.parent)}}).execute()
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    plots = [cell for cell in code if cell.source.strip().startswith("exp.plot_")]
    assert len(plots) == 3
    for cell in plots:
        assert any("image/png" in out.get("data", {}) for out in cell.outputs), cell.source
    table = next(cell for cell in code if cell.source.strip() == "exp.decision_table()")
    assert "null" in table.outputs[0]["data"]["text/plain"]
    rescore = next(cell for cell in code if "exp.rescore(" in cell.source)
    printed = "".join(out.get("text", "") for out in rescore.outputs)
    assert "Score:" not in printed, "SciUnit's log line per score reached the notebook"
    rescored = json.loads((experiment_dir / "rescored" / "scores.json").read_text())
    assert rescored["settings"]["scores"]["fdr"] == 0.2
