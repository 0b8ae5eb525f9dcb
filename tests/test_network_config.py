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
from cortexzoo.network.params import derive, load_pd14, parse_run_config
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


# ---------------------------------------------------------------------------
# [network] pd14: overrides of network/pd14.toml values (positive controls, issue 13)

def _network(pd14=None, **table):
    """A validated [network] table (full scale unless given) with PD14 overrides."""
    table = {"N_scaling": 1.0, "K_scaling": 1.0, **table, "pd14": pd14 or {}}
    return parse_run_config({"network": table, "neuron": {"model": "iaf_psc_exp"}}, "x.toml").network


INHIBITORY = np.array([t == "I" for t in derive(_network()).cell_types])


def test_g_override_scales_inhibitory_weights_and_the_k_scaling_dc():
    """Fails if derive() reads g from pd14.toml instead of the run's override, or applies it to the
    weights but not to the K-scaling compensation DC (which sums the recurrent weights).

    Inhibitory columns scale by exactly -4.4/-4 = 1.1, excitatory ones stay, and the DC is
    linear in g with a non-zero slope: dc(-4.4) - dc(-4.0) = dc(-4.0) - dc(-3.6) != 0.
    """
    scaled = {"K_scaling": 0.25}
    nets = {g: derive(_network({"synapses": {"g": g}}, **scaled)) for g in (-3.6, -4.0, -4.4)}
    base, strong = nets[-4.0], nets[-4.4]
    assert strong.pd14["synapses"]["g"] == -4.4 and derive(_network(**scaled)).pd14["synapses"]["g"] == -4.0
    np.testing.assert_allclose(strong.weight_mean_pA[:, INHIBITORY] / base.weight_mean_pA[:, INHIBITORY], 1.1,
                               rtol=1e-12)
    np.testing.assert_array_equal(strong.weight_mean_pA[:, ~INHIBITORY], base.weight_mean_pA[:, ~INHIBITORY])
    step_up, step_down = strong.dc_pA - base.dc_pA, base.dc_pA - nets[-3.6].dc_pA
    np.testing.assert_allclose(step_up, step_down, rtol=1e-9)
    assert np.all(np.abs(step_up) > 1.0)  # pA: the inhibitory input is a large part of the DC


def test_bg_rate_override_sets_poisson_rate_and_dc_background():
    """Fails if the Poisson rate, the mean Poisson drive or the DC of background = "dc" keep the
    file's 8 Hz when [network] pd14 sets bg_rate_Hz = 7.6 (all three are linear in the rate)."""
    ratio = 7.6 / 8.0
    poisson, poisson_low = derive(_network()), derive(_network({"bg_rate_Hz": 7.6}))
    assert poisson_low.bg_rate_Hz == 7.6 and poisson.bg_rate_Hz == 8.0
    np.testing.assert_allclose(poisson_low.mean_ext_drive_pA / poisson.mean_ext_drive_pA, ratio, rtol=1e-12)
    dc, dc_low = derive(_network(background="dc")), derive(_network({"bg_rate_Hz": 7.6}, background="dc"))
    np.testing.assert_allclose(dc_low.dc_pA / dc.dc_pA, ratio, rtol=1e-12)
    assert dc_low.dc_pA[0] == pytest.approx(7.6 * 1600 * 87.81 * 0.5e-3, rel=1e-3)


def test_pd14_override_keeps_the_file_types_and_leaves_the_file_alone():
    """Fails if g = -4 (an integer in TOML) is stored as an int (another run identity than -4.0),
    if an integral float is refused where the file has an int, or if derive() changes the
    loaded file in place (the next run would inherit the override)."""
    net = _network({"synapses": {"g": -4}, "K_ext": [1600.0, 1500, 2100, 1900, 2000, 1900, 2900, 2100]})
    assert net["pd14"] == _network({"synapses": {"g": -4.0},
                                    "K_ext": [1600, 1500, 2100, 1900, 2000, 1900, 2900, 2100]})["pd14"]
    assert type(net["pd14"]["synapses"]["g"]) is float and type(net["pd14"]["K_ext"][0]) is int
    pd14 = load_pd14()
    derive(_network({"synapses": {"g": -5.0}, "bg_rate_Hz": 1.0}), pd14)
    assert pd14 == load_pd14()


@pytest.mark.parametrize("override, needles", [
    ({"synapses": {"gg": -4.4}}, ["x.toml [network] pd14.synapses.gg: unknown key", "PSP_exc_mean_mV, g,"]),
    ({"bg_rate": 7.6}, ["pd14.bg_rate: unknown key", "bg_rate_Hz", "[synapses]"]),
    ({"synapses": -4.4}, ["pd14.synapses = -4.4", "table", "g"]),
    ({"bg_rate_Hz": {"value": 7.6}}, ["pd14.bg_rate_Hz is a table", "8.0"]),
    ({"K_ext": [1600, 1500]}, ["pd14.K_ext = [1600, 1500]", "list of 8", "L23E, L23I"]),
    ({"conn_probs": [[0.1] * 8] * 7}, ["pd14.conn_probs", "list of 8"]),
    ({"K_ext": [1600.5] * 8}, ["pd14.K_ext[0] = 1600.5", "integer"]),
    ({"synapses": {"g": "-4.4"}}, ["pd14.synapses.g = '-4.4'", "number"]),
    ({"populations": ["A"] * 8}, ["pd14.populations: cannot be overridden", "full_num_neurons"]),
    ({"simulation": {"resolution_ms": 0.05}}, ["pd14.simulation.resolution_ms: cannot be overridden"]),
])
def test_bad_pd14_override_names_the_key_path_and_the_allowed_keys(override, needles):
    """Fails if a misspelt key, a value in place of a table (or the reverse), a list of the wrong
    length or type, or a key the builder does not take from the override is accepted silently
    (the run would simulate the unchanged network) or reported without the key path and the fix."""
    with pytest.raises(CortexzooError) as err:
        _network(override)
    text = str(err.value)
    for needle in needles:
        assert needle in text, (needle, text)


def _connection_weights(nest, nodes, net, cell_type):
    """Weights of all recurrent connections from populations of ``cell_type``, in NEST's order."""
    neurons = nodes.populations[0]
    for pop in nodes.populations[1:]:
        neurons = neurons + pop
    sources = [pop for pop, t in zip(nodes.populations, net.cell_types) if t == cell_type]
    return np.concatenate([np.asarray(nest.GetConnections(source=s, target=neurons).get("weight"), dtype=float)
                           for s in sources])


def test_g_and_bg_rate_overrides_reach_the_nest_network():
    """Fails if an override stops on the way from the config to NEST: the builder taking weights or
    the background rate from pd14.toml (or a second derive() without the run's [network] table).

    Two real builds with the same seed draw the same random numbers, so with g = -4.4 every
    inhibitory connection is exactly 1.1 times its g = -4 twin, every excitatory one unchanged,
    and the Poisson generators run at 7.6 Hz x in-degree; the g = -4.4 network then simulates.
    """
    from cortexzoo.network.pd14 import build_network

    def built(pd14):
        config = parse_run_config({
            "simulation": {"seed": 7, "t_presim_ms": 0.0, "t_sim_ms": 100.0},
            "network": {"N_scaling": 0.02, "K_scaling": 0.1, "k_compensation": "reference_rates", "pd14": pd14},
            "neuron": {"model": "iaf_psc_exp"}}, "x.toml")
        nest, nodes, _, net = build_network(config)
        return nest, nodes, net, {t: _connection_weights(nest, nodes, net, t) for t in "EI"}

    _, _, _, base = built({})
    nest, nodes, net, strong = built({"synapses": {"g": -4.4}, "bg_rate_Hz": 7.6})
    assert len(strong["I"]) > 10_000 and np.all(strong["I"] < 0)
    np.testing.assert_allclose(strong["I"] / base["I"], 1.1, rtol=1e-9)
    np.testing.assert_array_equal(strong["E"], base["E"])
    rates = np.asarray(nodes.background.get("rate"), dtype=float)
    np.testing.assert_allclose(rates, 7.6 * net.ext_indegree, rtol=1e-12)
    nest.Simulate(100.0)
    assert sum(r.n_events for r in nodes.recorders) > 0
