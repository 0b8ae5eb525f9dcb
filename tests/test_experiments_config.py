"""Experiment configs: bad ones fail on load with one clear paragraph; the shipped ones load.

The table of bad configs, arguments and directories is tests/test_bad_inputs.py.
"""

import pytest
from experiment_helpers import HEAD, REPO, cli

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
    assert nestml - models <= {"izhikevich2007_nestml"}, nestml - models
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
