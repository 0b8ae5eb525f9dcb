"""The perturbation experiment kind end to end on small real PD14 runs (issue 14).

Two tiny experiments share their unperturbed runs: one gives L2/3E neurons 0 and 1 one extra
spike each (the default mode), the other kicks neuron 0 with an input of weight 0. The second
copies the first one's unperturbed runs, which it reuses as cached (same identity), and simulates
only its own weight-0 runs.
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cortexzoo.errors import CortexzooError
from cortexzoo.experiments.config import load_experiment
from cortexzoo.network.output import load_run
from cortexzoo.validation.perturbation import divergence_curve
from cortexzoo.validation.pipeline import validate

MEASURES = ["divergence_rate_per_ms", "decorrelation_time_ms", "fraction_differs"]
CONFIG = """
[experiment]
name = "{name}"
kind = "perturbation"
results_dir = "{results}"
[simulation]
threads = 1
t_presim_ms = 100.0
t_sim_ms = 300.0
[network]
N_scaling = 0.03
K_scaling = 0.1
k_compensation = "reference_rates"
[stimulus]
onset_ms = 50.0
neurons = {neurons}
{perturbation}
[reference]
seeds = [1, 2, 3]
[variants.lif_nestml]
model = "iaf_psc_exp_nestml"
seeds = [11, 12]
[validation.settings.statistics]
welch_segment_ms = 100.0
fano_windows_ms = [100.0]
[validation.settings.scores]
measures = ["divergence_rate_per_ms", "decorrelation_time_ms", "fraction_differs"]
"""
SHORT = {"statistics": {"welch_segment_ms": 100.0, "fano_windows_ms": [100.0]}}  # the 300 ms windows
TWINS = ["reference-seed1", "reference-seed2", "reference-seed3", "lif_nestml-seed11", "lif_nestml-seed12"]


def _cli(*args, cwd):
    # Passive OpenMP waiting: NEST's spinning threads slow tiny runs severalfold on shared cores.
    done = subprocess.run([sys.executable, "-m", "cortexzoo.experiments.cli", "-q", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env={**os.environ, "OMP_WAIT_POLICY": "passive"})
    assert done.returncode == 0, done.stderr
    return done


EXTRA_SPIKE, ZERO_KICK = 'mode = "extra_spike"', 'mode = "kick"\nweight_pA = 0.0'


def _write(tmp, name, neurons, perturbation):
    path = tmp / f"{name}.toml"
    path.write_text(CONFIG.format(name=name, results=tmp / "results", neurons=neurons, perturbation=perturbation))
    return path


@pytest.fixture(scope="module")
def experiments(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("perturbation")
    kicked = _write(tmp, "kicked", [0, 1], EXTRA_SPIKE)
    _cli("run", kicked, cwd=tmp)
    _cli("validate", kicked, cwd=tmp)
    zero = _write(tmp, "zero", [0], ZERO_KICK)
    # The weight-0 experiment adopts the unperturbed runs: they are cached there (same identity).
    runs = tmp / "results" / "zero" / "runs"
    runs.mkdir(parents=True)
    shutil.copyfile(zero, tmp / "results" / "zero" / "experiment.toml")
    for twin in TWINS:
        shutil.copytree(tmp / "results" / "kicked" / "runs" / twin, runs / twin)
    _cli("run", zero, cwd=tmp)
    _cli("validate", zero, cwd=tmp)
    return {"kicked": tmp / "results" / "kicked", "zero": tmp / "results" / "zero"}


def test_plan_has_a_twin_and_one_run_per_perturbed_neuron(tmp_path):
    """Catches perturbed runs that validation would take as extra seeds (reference_runs must hold one run per
    seed), a twin that carries the perturbation, two runs with one name, or a run that perturbs another
    neuron than its name says."""
    exp = load_experiment(_write(tmp_path, "plan", [4, 0], EXTRA_SPIKE))
    names = [r.name for r in exp.runs]
    assert len(set(names)) == len(names) == 5 * 3
    assert [r.name for r in exp.reference_runs] == ["reference-seed1", "reference-seed2", "reference-seed3"]
    assert [r.name for r in exp.variant_runs] == ["lif_nestml-seed11", "lif_nestml-seed12"]
    assert all(r.config.stimulus == {"kind": "none"} for r in exp.reference_runs + exp.variant_runs)
    for run in exp.perturbed_runs:
        assert run.name == f"{run.label}-seed{run.seed}-p{run.perturbed_neuron}"
        assert run.config.stimulus == {"kind": "perturbation", "onset_ms": 50.0, "population": "L23E",
                                       "neuron": run.perturbed_neuron, "mode": "extra_spike"}
    assert {r.perturbed_neuron for r in exp.perturbed_runs} == {0, 4}


@pytest.mark.parametrize("change, message", [
    ({"neurons": "[0, 0]"}, "neurons must be distinct"),
    ({"neurons": "[0, 5000]"}, "L23E has 620 neurons at this scale"),
    ({"extra": "neuron = 3"}, "neuron is set by the experiment"),
])
def test_bad_perturbation_configs_are_refused(tmp_path, change, message):
    """Catches a neuron perturbed twice (a duplicated run), a neuron that does not exist at this scale (found
    only after the twins were simulated) and a single `neuron` that would be silently ignored."""
    text = CONFIG.format(name="bad", results=tmp_path / "results", neurons=change.get("neurons", "[0]"),
                         perturbation=change.get("extra", ""))
    text = text.replace('"reference_rates"', f'"{change.get("compensation", "reference_rates")}"')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(CortexzooError, match=message):
        load_experiment(path)


def test_neurons_outside_a_perturbation_experiment_are_refused(tmp_path):
    """Catches a list of perturbed neurons that a stationary experiment would silently ignore."""
    path = tmp_path / "stationary.toml"
    path.write_text('[experiment]\nname = "s"\n[stimulus]\nneurons = [1]\n')
    with pytest.raises(CortexzooError, match="neurons is not used"):
        load_experiment(path)


def test_the_unperturbed_twin_is_the_weight_zero_run(experiments):
    """The unperturbed run (stimulus "none") must equal a run with the perturbation device at weight 0 spike
    for spike in every population; catches a device that perturbs by its mere presence (random numbers,
    node ids), so that part of every divergence measured would be an artefact. Also catches the weight-0
    experiment simulating its twins again instead of reusing the cached ones (a perturbation experiment's
    twins have the identity of plain runs)."""
    for twin in TWINS:
        reused = experiments["zero"] / "runs" / twin / "metadata.json"
        assert reused.read_text() == (experiments["kicked"] / "runs" / twin / "metadata.json").read_text()
        plain = load_run(experiments["zero"] / "runs" / twin)
        zero = load_run(experiments["zero"] / "runs" / f"{twin}-p0")
        assert zero.metadata["stimulus"]["kind"] == "perturbation"
        for pop in plain.spikes:
            assert np.array_equal(plain.spikes[pop][0], zero.spikes[pop][0]), (twin, pop)
            assert np.array_equal(plain.spikes[pop][1], zero.spikes[pop][1]), (twin, pop)


def test_divergence_is_zero_until_the_perturbation(experiments):
    """Measured from the start of the analysis window, the perturbed run does not differ from its twin in any
    population before the onset, and differs after it; catches a perturbation delivered at the wrong time
    (onsets read as absolute instead of relative to the window) or twins that are not twins."""
    runs = experiments["kicked"] / "runs"
    twin, kicked = load_run(runs / "reference-seed1"), load_run(runs / "reference-seed1-p0")
    onset = kicked.metadata["stimulus"]["onsets_ms"][0]
    assert onset == pytest.approx(twin.t_start_ms + 50.0)
    after = 0.0
    for pop in twin.populations:
        curve = divergence_curve(*twin.spikes[pop], *kicked.spikes[pop], twin.sizes[pop], twin.t_start_ms,
                                 twin.t_stop_ms)
        before = curve[curve["bin_end_ms"] <= 50.0]
        assert (before[["count_distance", "van_rossum", "fraction_differs"]] == 0).all().all(), pop
        after += curve.loc[curve["bin_start_ms"] >= 50.0, "fraction_differs"].iloc[-1]
    assert after > 0


def test_lif_diverges_with_a_positive_rate_and_a_decorrelation_time_with_ci(experiments):
    """The perturbed LIF network is chaotic: in L4E (the largest population) the divergence grows at a finite
    positive rate, and every population decorrelates within the window, each with a CI over the reference
    seeds. Catches a saturation level from the wrong pair (e.g. the twin itself: level 0, nothing defined),
    measures not averaged per seed, or the CI over seeds missing."""
    summary = pd.read_csv(experiments["kicked"] / "validation" / "perturbation_summary.csv")
    ref = summary[summary["model"] == "reference"].set_index(["population", "measure"])
    rate = ref.loc[("L4E", "divergence_rate_per_ms")]
    assert rate["n"] >= 2 and 0.05 < rate["mean"] < 5.0 and np.isfinite(rate["ci_low"])
    assert rate["ci_low"] <= rate["mean"] <= rate["ci_high"]
    times = ref.xs("decorrelation_time_ms", level="measure")
    assert (times["n"] >= 2).sum() >= 6
    defined = times[times["n"] >= 2]
    assert ((defined["mean"] > 0) & (defined["mean"] < 250.0) & np.isfinite(defined["ci_high"])).all()
    assert set(summary["model"]) == {"reference", "lif_nestml"}


def test_every_model_has_a_whole_network_rate_and_decorrelation_time_with_ci(experiments):
    """Issue 14: per model a finite divergence rate and decorrelation time with a CI over seeds. Pooled over
    all populations (2314 neurons here) the growth has enough steps to fit in every seed of both models,
    where a small population's staircase leaves it undefined. Catches the pooled network missing from the
    summary, pooled without its small populations, or analysed without the independent-runs level."""
    summary = pd.read_csv(experiments["kicked"] / "validation" / "perturbation_summary.csv")
    network = summary[summary["population"] == "network"]
    assert set(network["model"]) == {"reference", "lif_nestml"}
    for measure in ("divergence_rate_per_ms", "decorrelation_time_ms"):
        rows = network[network["measure"] == measure]
        assert (rows["n_undefined"] == 0).all() and (rows["mean"] > 0).all(), measure
        assert (rows["ci_low"] < rows["mean"]).all() and (rows["mean"] < rows["ci_high"]).all(), measure
    table = pd.read_csv(experiments["kicked"] / "validation" / "perturbations.csv")
    sizes = table.drop_duplicates("population").set_index("population")["n_neurons"]
    assert (table.loc[table["population"] == "network", "n_neurons"] == sizes.drop("network").sum()).all()


def test_weight_zero_does_not_diverge(experiments):
    """Planted null: an input of weight 0 changes no spike, so every divergence curve is exactly 0 and no
    growth rate, decorrelation time or fraction is made up for it. Catches a divergence measured against the
    wrong run (another seed would diverge) and measures reported for perturbations that perturbed nothing."""
    curves = pd.read_csv(experiments["zero"] / "validation" / "divergence.csv")
    assert len(curves) and (curves["value"] == 0).all()
    measures = pd.read_csv(experiments["zero"] / "validation" / "measures.csv", keep_default_na=False,
                           na_values=[""])
    mine = measures[measures["measure"].isin(MEASURES)]
    assert len(mine) == 5 * 8 * 3
    assert mine["value"].isna().all()
    assert (mine["note"] == "none of the 1 perturbation(s) changed a spike").all()
    table = pd.read_csv(experiments["zero"] / "validation" / "perturbations.csv")
    assert not table["changed_spikes"].any()


def test_pipeline_decides_the_perturbation_measures(experiments):
    """`validate CONFIG` groups the unperturbed runs by model, finds the perturbed ones beside them and writes a
    decision per (population, measure); catches perturbed runs scored as extra seeds, perturbation measures
    missing from the decisions or without units, and the NESTML twin of the LIF called different."""
    val = experiments["kicked"] / "validation"
    measures = pd.read_csv(val / "measures.csv")
    assert set(measures["run"]) == set(TWINS)  # one set of measures per seed, perturbed runs are not seeds
    assert set(measures["measure"]) > {*MEASURES, "rate_hz", "lv"}  # the stationary measures stay
    assert "network" not in set(measures["population"])  # summarised, not decided
    units = measures.drop_duplicates("measure").set_index("measure")["unit"]
    assert units["divergence_rate_per_ms"] == "1/ms" and units["decorrelation_time_ms"] == "ms"
    scores = pd.read_csv(val / "scores.csv")
    assert set(scores["measure"]) == set(MEASURES) and len(scores) == 8 * 3
    assert (scores["model"] == "lif_nestml").all()
    assert (scores["decision"] != "differs").all()
    table = pd.read_csv(val / "perturbations.csv")
    assert set(table["perturbed_run"]) == {f"{t}-p{n}" for t in TWINS for n in (0, 1)}
    for name in ("divergence.csv", "divergence.png", "divergence_growth.png", "perturbation_summary.csv"):
        assert (val / name).is_file(), name


def test_perturbation_report_renders_its_divergence_figures_in_chromium(experiments, tmp_path):
    """Catches a perturbation report without its divergence figures or its per-model table, or with images a
    browser cannot decode (issue 14: the reports render in headless Chromium)."""
    from screenshot import rendered_captions

    from cortexzoo.validation.report import RESPONSE_FIGURES

    _cli("report", experiments["kicked"], cwd=tmp_path)
    captions = rendered_captions(experiments["kicked"] / "report" / "index.html", tmp_path / "shot.png")
    wanted = dict(RESPONSE_FIGURES)
    assert wanted["divergence.png"] in captions and wanted["divergence_growth.png"] in captions, captions
    page = (experiments["kicked"] / "report" / "index.html").read_text()
    assert "<h2>Perturbation sensitivity per model (whole network)</h2>" in page


def test_a_perturbed_run_is_only_compared_with_its_own_twin(experiments, tmp_path):
    """Catches pairing by name alone: a perturbed run of seed 2 placed next to seed 1's run would measure the
    distance between two seeds as 'divergence'. Also refuses perturbed runs given as the runs to validate."""
    src = experiments["kicked"] / "runs"
    for twin in ("reference-seed1", "reference-seed3", "lif_nestml-seed11"):
        shutil.copytree(src / twin, tmp_path / twin)
    shutil.copytree(src / "reference-seed2-p0", tmp_path / "reference-seed1-p0")
    for twin in ("reference-seed3", "lif_nestml-seed11"):
        shutil.copytree(src / f"{twin}-p0", tmp_path / f"{twin}-p0")
    with pytest.raises(CortexzooError, match="made from other inputs than its twin reference-seed1"):
        validate([tmp_path / "reference-seed1", tmp_path / "reference-seed3"], [tmp_path / "lif_nestml-seed11"],
                 tmp_path / "out", settings=SHORT, make_figures=False)
    with pytest.raises(CortexzooError, match="perturbed runs"):
        validate([src / "reference-seed1-p0", src / "reference-seed2-p0"], [src / "lif_nestml-seed11-p0"],
                 tmp_path / "out", settings=SHORT, make_figures=False)


def test_shipped_perturbation_config_compares_the_zoo_like_transient():
    """Catches a shipped perturbation config that leaves out a model the transient config compares, uses the
    or gives variants one seed (no independent
    run for the saturation level: growth rate and decorrelation time undefined for every variant)."""
    shipped, transient = load_experiment("perturbation"), load_experiment("transient")
    models = lambda exp: {(r.label, r.config.neuron["model"]) for r in exp.runs}  # noqa: E731
    assert models(shipped) == models(transient)
    assert all(len(v["seeds"]) >= 2 for v in shipped.variants.values())
    assert len(shipped.reference_runs) >= 3 and shipped.perturbed_runs
    assert set(shipped.tables["validation"]["settings"]["scores"]["measures"]) == set(MEASURES)
