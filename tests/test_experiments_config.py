"""Experiment configs: bad ones fail on load with one clear paragraph; the shipped ones load.

The table of bad configs, arguments and directories is tests/test_bad_inputs.py.
"""

import pytest
from experiment_helpers import HEAD, REPO, cli

from cortexzoo.errors import CortexzooError
from cortexzoo.experiments.cli import main
from cortexzoo.experiments.config import load_experiment
from cortexzoo.models.catalogue import load_catalogue


def _write(tmp_path, name, body):
    results = tmp_path / "results"
    path = tmp_path / f"{name}.toml"
    path.write_text(HEAD.format(results=results) + body)
    return path, results


def test_bad_config_in_a_real_process_exits_2_without_traceback(tmp_path):
    path, results = _write(tmp_path, "wrong_type", '[simulation]\nt_sim_ms = "long"\n')
    result = cli("compare", path, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{path} [simulation] t_sim_ms = 'long' has the wrong type; expected number." in result.stderr
    assert len(result.stderr.strip().splitlines()) == 2  # the problem, then the fix
    assert not results.exists()


def test_missing_config_names_the_shipped_ones(tmp_path, capsys):
    code = main(["run", str(tmp_path / "nope.toml")])
    err = capsys.readouterr().err
    assert code == 2
    assert "nope.toml does not exist" in err and "quick" in err and "full_scale" in err


def test_not_toml_is_reported_with_the_position(tmp_path, capsys):
    path = tmp_path / "broken.toml"
    path.write_text('[experiment]\nname = "x\n')
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "not valid TOML" in err and "line 2" in err


def test_unknown_neuron_parameter_is_refused_before_any_run(tmp_path, capsys):
    """A misspelt parameter of the last variant stops `run` before the first simulation starts."""
    path, results = _write(tmp_path, "unknown_param",
                           '[variants.x]\nmodel = "iaf_psc_exp"\nparams = { V_thresh = "-52 mV" }\n')
    code = main(["--quiet", "run", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    for word in (str(path), "[variants.x]", "'V_thresh'", "V_th"):
        assert word in err, word
    assert not list(results.glob("*/runs/*")), "nothing may be simulated"


@pytest.mark.parametrize("name", ["quick", "full_scale"])
def test_shipped_configs_load(name):
    by_name = load_experiment(name)
    by_path = load_experiment(REPO / "experiments" / f"{name}.toml")
    assert by_name.path.resolve() == by_path.path.resolve()
    exp = by_path
    assert exp.name == name
    catalogue = load_catalogue()
    models = {r.config.neuron["model"] for r in exp.runs}
    assert models <= set(catalogue)
    # Every NESTML model of the zoo is compared against the built-in LIF reference.
    nestml = {n for n, spec in catalogue.items() if spec.is_nestml}
    # Left out on purpose: the GSL Hodgkin-Huxley (~18x the LIF's cost; its fixed-step twin, with
    # spikes within 0.1 ms of it, is compared instead).
    assert nestml - models <= {"izhikevich2007_nestml", "hh_psc_exp_nestml"}, nestml - models
    assert exp.tables["reference"]["model"] == "iaf_psc_exp"
    assert len(exp.reference_runs) >= 3  # a null distribution needs >= 3 reference seeds
    assert not {r.seed for r in exp.reference_runs} & {r.seed for r in exp.variant_runs}
    assert len({r.name for r in exp.runs}) == len(exp.runs)
    network = exp.tables["network"]
    if name == "full_scale":
        assert network["N_scaling"] == network["K_scaling"] == 1.0
        assert exp.tables["simulation"]["t_sim_ms"] == 10000.0
    else:
        assert network["N_scaling"] * network["K_scaling"] < 0.1
        assert exp.tables["simulation"]["t_sim_ms"] >= 2000.0


def test_run_only_an_unplanned_run_lists_the_planned_ones(tmp_path, capsys):
    path, results = _write(tmp_path, "ok", '[variants.x]\nmodel = "iaf_psc_exp"\n')
    assert main(["run", str(path), "--only", "x-seed1"]) == 2
    err = capsys.readouterr().err
    assert "plans no run named 'x-seed1'" in err
    assert "reference-seed1, reference-seed2, reference-seed3, x-seed101" in err
    assert not results.exists()


def test_validate_config_refuses_run_directory_options(tmp_path, capsys):
    path, results = _write(tmp_path, "ok", '[variants.x]\nmodel = "iaf_psc_exp"\n')
    assert main(["validate", str(path), "--reference", str(tmp_path)]) == 2
    assert "--reference cannot be combined" in capsys.readouterr().err
    assert main(["validate", "--reference", str(tmp_path)]) == 2
    assert "validate needs an experiment CONFIG or --candidate, --out" in capsys.readouterr().err
    assert not results.exists()


# A positive control (issue 13): variants that change PD14 values for their own runs only.
PD14_VARIANTS = """
[network.pd14.synapses]
weight_rel_std = 0.2

[variants.strong_inhibition]
model = "iaf_psc_exp"
pd14 = { synapses.g = -4.4, bg_rate_Hz = 8 }

[variants.strong_inhibition_again]
model = "iaf_psc_exp"
[variants.strong_inhibition_again.pd14]
bg_rate_Hz = 8.0
synapses = { g = -4.4 }

[variants.plain]
model = "iaf_psc_exp"
"""


def test_variant_pd14_override_reaches_only_its_runs_and_changes_their_identity(tmp_path):
    """Fails if a variant's pd14 override leaks into the reference or other variants, replaces the
    experiment's [network] pd14 instead of merging over it, never reaches derive(), or is left out
    of the run identity (a cached g = -4 run would then be reused for g = -4.4); fails too if the
    same override written two ways (dotted keys, 8 vs 8.0) gives two identities."""
    from cortexzoo.network.identity import identity_changes, run_identity
    from cortexzoo.network.params import derive

    path, _ = _write(tmp_path, "controls", PD14_VARIANTS)
    exp = load_experiment(path)
    pd14 = {run.name: run.config.network["pd14"] for run in exp.runs}
    shared = {"synapses": {"weight_rel_std": 0.2}}
    assert pd14["reference-seed1"] == pd14["plain-seed101"] == shared
    assert pd14["strong_inhibition-seed101"] == {"synapses": {"weight_rel_std": 0.2, "g": -4.4}, "bg_rate_Hz": 8.0}
    runs = {run.name: run for run in exp.runs}
    strong, plain = runs["strong_inhibition-seed101"].config, runs["plain-seed101"].config
    assert derive(strong.network).pd14["synapses"] == {**derive(plain.network).pd14["synapses"], "g": -4.4}
    identity = {name: run_identity(runs[name].config) for name in
                ("plain-seed101", "strong_inhibition-seed101", "strong_inhibition_again-seed101")}
    assert identity["strong_inhibition-seed101"] == identity["strong_inhibition_again-seed101"]
    changes = identity_changes(identity["plain-seed101"], identity["strong_inhibition-seed101"])
    assert changes and "network.pd14.synapses.g: '(absent)' -> -4.4" in changes[0], changes


@pytest.mark.parametrize("body, needles", [
    ('[variants.x]\nmodel = "iaf_psc_exp"\npd14 = { synapses = { gg = -4.4 } }\n',
     ["[variants.x] pd14.synapses.gg: unknown key", "PSP_exc_mean_mV, g,"]),
    ('[variants.x]\nmodel = "iaf_psc_exp"\npd14 = { full_num_neurons = [1, 1, 1, 1, 1, 1, 1, 1] }\n',
     ["[variants.x] pd14.full_num_neurons", "population sizes", "[network]"]),
    ('[network.pd14]\nbg_rate = 7.6\n', ["[network] pd14.bg_rate: unknown key", "bg_rate_Hz"]),
    ('[network.pd14]\nsynapses = -4.4\n', ["[network] pd14.synapses = -4.4", "table"]),
])
def test_bad_pd14_override_in_an_experiment_names_table_and_key(tmp_path, body, needles):
    """Fails if a bad override in a variant or in [network] pd14 is accepted (the runs would
    silently simulate the unchanged PD14), or reported without the file, the table and the key
    path; or if a variant may change the population sizes, which validation refuses only after
    every run has been simulated."""
    path, results = _write(tmp_path, "bad_pd14", body)
    with pytest.raises(CortexzooError) as err:
        load_experiment(path)
    text = str(err.value)
    for needle in [str(path), *needles]:
        assert needle in text, (needle, text)
    assert not results.exists()


@pytest.mark.parametrize("kind", ["transient", "separability", "perturbation"])
def test_full_scale_stimulus_configs_differ_from_the_small_ones_only_in_scale(kind):
    """Issue 14 ships each stimulus experiment small and at full scale. Catches a full-scale config that
    drifts from its small version (another stimulus, model set, seeds or analysis), or one left downscaled."""
    small, full = load_experiment(kind), load_experiment(f"{kind}_full_scale")
    assert full.name == f"{kind}_full_scale" and full.tables["experiment"]["kind"] == kind
    assert (full.tables["network"]["N_scaling"], full.tables["network"]["K_scaling"]) == (1.0, 1.0)
    for table in ("simulation", "stimulus", "reference", "validation"):
        assert full.tables[table] == small.tables[table], table
    assert full.variants == small.variants
    assert [r.name for r in full.runs] == [r.name for r in small.runs]
