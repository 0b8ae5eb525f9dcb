"""One table of bad inputs (configs, CLI arguments, run and experiment directories).

For each: exit code 2, a last message starting ``cortexzoo <command>: error:`` that
names the problem (the fragments) and a ``Fix:``, no traceback, and nothing
written or changed anywhere below the test's folder.
"""

import json
import shutil
import subprocess

import pytest
from experiment_helpers import CLI, ENV, HEAD

from cortexzoo.experiments.cli import main


RUN_CONFIG = """\
[simulation]
threads = 1
t_presim_ms = 50.0
t_sim_ms = 200.0
seed = {seed}

[network]
N_scaling = 0.03
K_scaling = 0.1

[neuron]
model = "iaf_psc_exp"
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished tiny runs (seeds 1, 2) and one of another scale, made by `cortexzoo simulate`."""
    root = tmp_path_factory.mktemp("bad_inputs_runs")
    made = {}
    for name, seed, text in (("r1", 1, RUN_CONFIG), ("r2", 2, RUN_CONFIG),
                             ("other_scale", 3, RUN_CONFIG.replace("N_scaling = 0.03", "N_scaling = 0.04"))):
        (root / f"{name}.toml").write_text(text.format(seed=seed))
        result = subprocess.run([*CLI, "--quiet", "simulate", str(root / f"{name}.toml"), "--out", str(root / name)],
                                capture_output=True, text=True, env=ENV, timeout=600)
        assert result.returncode == 0, result.stderr
        made[name] = root / name
    return made


def config(tmp, body, head=HEAD):
    path = tmp / "bad.toml"
    path.write_text(head.format(results=tmp / "results") + body)
    return path


def copy_run(tmp, runs, name="r1"):
    return shutil.copytree(runs[name], tmp / f"copy_{name}")


def _truncate_metadata(tmp, runs):
    run = copy_run(tmp, runs)
    (run / "metadata.json").write_text((run / "metadata.json").read_text()[:200])
    return run


def _flip_byte(tmp, runs):
    run = copy_run(tmp, runs)
    spikes = run / "spikes" / "L4E.npz"
    data = bytearray(spikes.read_bytes())
    data[len(data) // 2] ^= 0xFF
    spikes.write_bytes(bytes(data))
    return run


def _unfinished(tmp, runs):
    run = copy_run(tmp, runs)
    (run / "COMPLETE").unlink()
    return run


def _validate(tmp, runs, *candidates, refs=("r1", "r2")):
    return ["validate", "--reference", *[str(runs[r]) for r in refs], "--candidate", *map(str, candidates),
            "--out", str(tmp / "out")]


def _foreign_out(tmp):
    (tmp / "mine").mkdir()
    (tmp / "mine" / "notes.txt").write_text("my own notes")
    return ["run", str(config(tmp, "")), "--out", str(tmp / "mine")]


def _recorded_other(tmp):
    exp = tmp / "results" / "bad"
    exp.mkdir(parents=True)
    (exp / "experiment.toml").write_text(HEAD.format(results=tmp / "results").replace("[1, 2, 3]", "[4, 5, 6]"))
    return ["run", str(config(tmp, ""))]


# id -> (argv builder (tmp, runs) -> list, fragments the message must contain)
CASES = {
    # experiment configs
    "toml_syntax": (lambda t, r: ["run", str(config(t, '[simulation]\nthreads = "2\n'))], ["not valid TOML", "line"]),
    "unknown_table": (lambda t, r: ["run", str(config(t, "[simulations]\nthreads = 2\n"))],
                      ["'simulations'", "Allowed tables"]),
    "unknown_key": (lambda t, r: ["run", str(config(t, "[simulation]\nt_sim = 1000.0\n"))],
                    ["[simulation]", "'t_sim'", "t_sim_ms"]),
    "wrong_type": (lambda t, r: ["compare", str(config(t, '[simulation]\nt_sim_ms = "long"\n'))],
                   ["t_sim_ms", "wrong type", "number"]),
    "negative_duration": (lambda t, r: ["run", str(config(t, "[simulation]\nt_sim_ms = -5.0\n"))], ["t_sim_ms"]),
    "zero_threads": (lambda t, r: ["run", str(config(t, "[simulation]\nthreads = 0\n"))], ["threads"]),
    "scale_above_1": (lambda t, r: ["run", str(config(t, "", HEAD.replace("0.02", "2.0")))],
                      ["N_scaling = 2.0", "(0, 1]"]),
    "bad_background": (lambda t, r: ["run", str(config(t, "", HEAD.replace("K_scaling = 0.05\n", 'K_scaling = 0.05\n'
                                                                                            'background = "noise"\n')))],
                       ["background", "'noise'"]),
    "unknown_reference_model": (lambda t, r: ["run", str(config(t, "", HEAD + 'model = "lif9"\n'))],
                                ["[reference]", "lif9", "iaf_psc_exp"]),
    "unknown_variant_model": (lambda t, r: ["run", str(config(t, '[variants.x]\nmodel = "izhikevitch_nestml"\n'))],
                              ["[variants.x]", "izhikevitch_nestml", "izhikevich_nestml"]),
    "wrong_unit": (lambda t, r: ["run", str(config(t, '[variants.x]\nmodel = "iaf_psc_exp"\n'
                                                      'params = { V_th = "-52 mA" }\n'))], ["V_th", "'mA'", "mV"]),
    "unknown_population": (lambda t, r: ["run", str(config(t, '[variants.x]\nmodel = "iaf_psc_exp"\n'
                                                              '[variants.x.by_population.L7E]\nV_th = "-52 mV"\n'))],
                           ["by_population", "L7E", "L23E"]),
    "unknown_neuron_parameter": (lambda t, r: ["run", str(config(t, '[variants.x]\nmodel = "iaf_psc_exp"\n'
                                                                    'params = { V_thresh = "-52 mV" }\n'))],
                                 ["[variants.x]", "'V_thresh'", "V_th"]),
    "duplicate_seeds": (lambda t, r: ["run", str(config(t, '[variants.x]\nmodel = "iaf_psc_exp"\n'
                                                           'seeds = [101, 101]\n'))], ["seeds", "distinct"]),
    "seed_zero": (lambda t, r: ["run", str(config(t, "", HEAD.replace("[1, 2, 3]", "[0, 1, 2]")))],
                  ["seeds", "integers >= 1"]),
    "bad_label": (lambda t, r: ["run", str(config(t, '[variants."my variant"]\nmodel = "iaf_psc_exp"\n'))],
                  ["my variant", "letters, digits"]),
    "label_clash": (lambda t, r: ["run", str(config(t, '[variants.reference]\nmodel = "iaf_psc_exp"\n'))],
                    ["[variants.reference]", "clashes with the reference label"]),
    "missing_name": (lambda t, r: ["run", str(config(t, "", HEAD.replace('name = "bad"\n', "")))],
                     ["[experiment]", "name"]),
    "bad_validation_setting": (lambda t, r: ["run", str(config(t, "[validation.settings.statistics]\ncc_bin = 2.0\n"))],
                               ["[validation.settings]", "statistics.cc_bin", "cc_bin_ms"]),
    # command-line arguments
    "missing_config_path": (lambda t, r: ["compare", "some/missing/quick.toml"],
                            ["some/missing/quick.toml does not exist", "bare name"]),
    "unknown_shipped_name": (lambda t, r: ["run", "quik"], ["No shipped experiment config is called 'quik'", "quick"]),
    "config_is_a_directory": (lambda t, r: ["run", str(t) + "/"], ["is a directory, not a file"]),
    "only_unknown_run": (lambda t, r: ["run", str(config(t, "")), "--only", "x-seed1"],
                         ["plans no run named 'x-seed1'", "reference-seed1"]),
    "validate_config_and_dirs": (lambda t, r: ["validate", str(config(t, "")), "--reference", str(t)],
                                 ["--reference cannot be combined"]),
    "validate_without_inputs": (lambda t, r: ["validate", "--reference", str(t)],
                                ["validate needs an experiment CONFIG or --candidate, --out"]),
    "simulate_missing_run_config": (lambda t, r: ["simulate", str(t / "nope.toml"), "--out", str(t / "run")],
                                    ["nope.toml does not exist"]),
    "report_of_a_non_experiment": (lambda t, r: ["report", str(t)], ["not a cortexzoo experiment directory"]),
    # run and experiment directories
    "foreign_out_dir": (lambda t, r: _foreign_out(t), ["is not a cortexzoo experiment directory", "--out"]),
    "out_dir_is_a_file": (lambda t, r: ["run", str(config(t, "")), "--out", str(config(t, ""))],
                          ["is a file, not an experiment directory"]),
    "directory_of_another_config": (lambda t, r: _recorded_other(t),
                                    ["was made with another config", "reference.seeds", "--replace"]),
    "missing_run_dir": (lambda t, r: _validate(t, r, t / "nowhere"), ["nowhere does not exist"]),
    "unfinished_run_dir": (lambda t, r: _validate(t, r, _unfinished(t, r)), ["is not a finished run"]),
    "truncated_metadata": (lambda t, r: _validate(t, r, _truncate_metadata(t, r)), ["metadata.json is corrupted"]),
    "corrupted_spikes": (lambda t, r: _validate(t, r, _flip_byte(t, r)),
                         ["is damaged", "spikes/L4E.npz (checksum differs)"]),
    "same_run_twice": (lambda t, r: _validate(t, r, r["r1"]), ["is given more than once"]),
    "other_network_scale": (lambda t, r: _validate(t, r, r["other_scale"]), ["different population sizes"]),
    "simulate_onto_finished_run": (lambda t, r: ["simulate", str(r["r1"].parent / "r1.toml"), "--out", str(r["r1"])],
                                   ["already holds a finished run", "--overwrite"]),
}


def snapshot(*folders):
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for f in folders for p in sorted(f.rglob("*"))}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gives_one_clear_error_and_changes_nothing(case, tmp_path, runs, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    build, fragments = CASES[case]
    argv = build(tmp_path, runs)
    before = snapshot(tmp_path, runs["r1"].parent)
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (case, out, err)
    # Progress lines may come first; the error is the last paragraph: problem, then fix.
    message = err[err.find(f"cortexzoo {argv[0]}: error: "):]
    assert message.startswith(f"cortexzoo {argv[0]}: error: "), err
    for fragment in fragments:
        assert fragment in message, f"{case}: {fragment!r} missing from:\n{err}"
    assert "\nFix: " in message and "Traceback" not in err and out == ""
    assert snapshot(tmp_path, runs["r1"].parent) == before, f"{case}: a bad input must not write anything"


def test_every_run_fixture_is_valid(runs):
    """The table's good runs really are loadable (else the damaged-run cases pass for the wrong reason)."""
    from cortexzoo.network.output import load_run

    for run in runs.values():
        assert load_run(run).metadata["files"] and json.loads((run / "metadata.json").read_text())["identity"]
