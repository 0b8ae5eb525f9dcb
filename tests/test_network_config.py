"""Run configs, run directories and the `cortexzoo simulate` command on bad input."""

import json
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from cortexzoo.errors import CortexzooError
from cortexzoo.network.output import COMPLETE_MARKER, is_complete, load_run
from cortexzoo.network.params import derive, parse_run_config
from cortexzoo.synapse import psc_over_psp

CLI = [sys.executable, "-m", "cortexzoo.experiments.cli"]

TINY = """
[simulation]
seed = 3
threads = 1
t_presim_ms = 50.0
t_sim_ms = {t_sim}
[network]
N_scaling = 0.02
K_scaling = 0.1
background = "poisson"
{extra_network}
[neuron]
model = "{model}"
{extra_neuron}
"""


def write_config(tmp_path, t_sim=200.0, model="iaf_psc_exp", extra_network="", extra_neuron=""):
    path = tmp_path / "run.toml"
    path.write_text(TINY.format(t_sim=t_sim, model=model, extra_network=extra_network, extra_neuron=extra_neuron))
    return path


def simulate(config, out, *extra):
    return subprocess.run([*CLI, "simulate", str(config), "--out", str(out), *extra], capture_output=True, text=True)


def test_psc_for_015_mV_is_87_8_pA():
    assert psc_over_psp(250.0, 10.0, 0.5) * 0.15 == pytest.approx(87.81, abs=0.01)


def test_derived_parameters_follow_pd14():
    full = derive(parse_run_config({"network": {"N_scaling": 1.0, "K_scaling": 1.0},
                                    "neuron": {"model": "iaf_psc_exp"}}).network)
    assert full.num_neurons.sum() == 77169
    assert 2.98e8 < full.num_synapses.sum() < 3.0e8
    w = full.weight_mean_pA
    assert w[0, 2] == pytest.approx(2 * w[0, 0])  # doubled L4E -> L2/3E
    assert w[0, 1] == pytest.approx(-4 * w[0, 0])  # g = -4
    dc = derive(parse_run_config({"network": {"background": "dc", "N_scaling": 1.0, "K_scaling": 1.0},
                                  "neuron": {"model": "iaf_psc_exp"}}).network)
    assert dc.dc_pA[0] == pytest.approx(8.0 * 1600 * 87.81 * 0.5e-3, rel=1e-3)


@pytest.mark.parametrize("extra_network, extra_neuron, needle", [
    ("", "[neuron.by_population.L7E]\nV_th = '-52 mV'", "L7E"),
    ("", "", "N_scaling"),
    ("bogus_key = 1", "", "bogus_key"),
    ("", "", "unknown_model"),
])
def test_bad_config_names_the_key_and_writes_nothing(tmp_path, extra_network, extra_neuron, needle):
    model = "unknown_model" if needle == "unknown_model" else "iaf_psc_exp"
    config = write_config(tmp_path, model=model, extra_network=extra_network, extra_neuron=extra_neuron)
    if needle == "N_scaling":
        config.write_text(config.read_text().replace("N_scaling = 0.02", "N_scaling = -0.5"))
    out = tmp_path / "out"
    proc = simulate(config, out)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert str(config) in proc.stderr or needle == "unknown_model"
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_unknown_background_type_lists_choices():
    with pytest.raises(CortexzooError) as err:
        parse_run_config({"network": {"background": "thalamus"}, "neuron": {"model": "iaf_psc_exp"}}, "x.toml")
    assert "background" in str(err.value) and "'poisson'" in str(err.value) and "'dc'" in str(err.value)


def test_dc_below_rheobase_is_refused_unless_allowed(tmp_path):
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace('background = "poisson"', 'background = "dc"'))
    proc = simulate(config, tmp_path / "out")
    assert proc.returncode == 2
    assert "rheobase" in proc.stderr and "allow_subthreshold" in proc.stderr
    assert not (tmp_path / "out").exists()
    config.write_text(config.read_text().replace("[neuron]", "allow_subthreshold = true\n[neuron]"))
    proc = simulate(config, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert len(meta["derived"]["subthreshold_populations"]) >= 1


def test_run_directory_is_self_describing_and_protected(tmp_path):
    config = write_config(tmp_path)
    out = tmp_path / "run"
    proc = simulate(config, out)
    assert proc.returncode == 0, proc.stderr
    run = load_run(out)
    meta = run.metadata
    for key in ("config", "config_hash", "seed", "threads", "versions", "counts", "timings_s", "peak_memory_mb"):
        assert key in meta
    assert set(meta["timings_s"]) >= {"create", "connect", "presim", "sim"}
    assert meta["versions"]["nest-simulator"] == "3.10.0"
    assert sum(len(run.window(p)[0]) for p in run.populations) > 0
    # neo conversion carries exactly the same spikes
    pop = "L4E"
    ids, times = run.window(pop)
    trains = run.to_neo(pop)
    assert len(trains) == run.sizes[pop]
    assert sum(len(t) for t in trains) == len(ids)
    assert np.allclose(np.sort(np.concatenate([t.magnitude for t in trains])), np.sort(times))

    before = (out / "metadata.json").read_text()
    proc = simulate(config, out)
    assert proc.returncode == 2 and "already holds a finished run" in proc.stderr and "--overwrite" in proc.stderr
    assert (out / "metadata.json").read_text() == before
    proc = simulate(config, out, "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert is_complete(out)


# A progress line of the main simulation phase, e.g. "[   3.1 s] sim: 6000/60000 ms simulated, ..."
# ("presim: ..." lines come before it and must not match).
SIM_PROGRESS = re.compile(r"\] sim: (\d+)/(\d+) ms simulated")


def wait_until_simulating(proc):
    """Read ``proc``'s stderr until a ``sim:`` progress line shows the main phase under way.

    Returns
    -------
    tuple of int
        Simulated and total ms of that line.
    """
    seen = []
    for line in proc.stderr:
        seen.append(line)
        match = SIM_PROGRESS.search(line)
        if match:
            return int(match.group(1)), int(match.group(2))
    proc.wait()
    pytest.fail("the run ended before it reported simulation progress:\n" + "".join(seen))


def test_run_killed_while_simulating_leaves_nothing_complete_and_reruns(tmp_path):
    """SIGKILL while the run provably simulates, then the same target again.

    Fails if a run becomes visible before its simulation has finished: a writer
    that creates the final directory (or writes the COMPLETE marker or
    metadata.json) up front, or that moves a partial directory into place
    early; then ``out`` or some directory under ``tmp_path`` would hold a
    COMPLETE marker, or ``load_run`` would accept it. Fails too if the killed
    run's debris blocks the re-run (``check_output_dir`` refusing the target)
    or outlives it (a partial directory left beside the finished run), or if
    the re-run resurrects the killed run's data instead of its own.
    """
    config = write_config(tmp_path, t_sim=60_000.0)
    out = tmp_path / "run"
    proc = subprocess.Popen([*CLI, "simulate", str(config), "--out", str(out)], stderr=subprocess.PIPE, text=True)
    try:
        simulated, total = wait_until_simulating(proc)
        # The kill lands while NEST simulates: the process is alive with 9 of 10 chunks to go.
        assert simulated < total and proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    assert not is_complete(out)
    with pytest.raises(CortexzooError):
        load_run(out)
    assert not list(tmp_path.rglob(COMPLETE_MARKER)), "nothing anywhere may look like a finished run"

    config.write_text(config.read_text().replace("60000.0", "100.0"))
    rerun = simulate(config, out)
    assert rerun.returncode == 0, rerun.stderr
    run = load_run(out)
    assert run.t_stop_ms == 150.0  # the re-run's own config (50 ms presim + 100 ms), not the killed one's
    # Pattern-free: whatever the partial directories are called, none may remain.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run.toml"]


def test_default_scale_is_small():
    """A config without [network] must not start a 15 GB full-scale run."""
    net = parse_run_config({"neuron": {"model": "iaf_psc_exp"}}).network
    assert net["N_scaling"] < 1 and net["K_scaling"] < 1


def test_unknown_neuron_parameter_is_refused_before_running(tmp_path):
    config = write_config(tmp_path, extra_neuron="[neuron.params]\nV_thresh = '-52 mV'")
    proc = simulate(config, tmp_path / "out")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "'V_thresh'" in proc.stderr and "V_th" in proc.stderr
    assert not (tmp_path / "out").exists()
