"""Self-consistent K-scaling compensation: the loop on a known linear network, then on the real LIF.

van Albada et al. (2015) compensate the removed synapses' mean input with each
network's own rates; cortexzoo finds them with a filtered feedback loop
(network/compensation.py).
"""

import json

import numpy as np
import pytest

from cortexzoo.network.compensation import feedback_loop, filter_step, within_tolerance
from cortexzoo.network.identity import compensation_key, run_identity
from cortexzoo.network.output import load_run
from cortexzoo.network.params import derive, parse_run_config
from cortexzoo.network.run import run_network


def linear_network(gain, drive, noise_hz, seed=1):
    """rates = drive + gain @ assumed + noise: a network whose fixed point is known exactly."""
    rng = np.random.default_rng(seed)
    gain, drive = np.asarray(gain, float), np.asarray(drive, float)
    fixed_point = np.linalg.solve(np.eye(len(drive)) - gain, drive)
    return (lambda assumed: drive + gain @ assumed + rng.normal(0.0, noise_hz, len(drive))), fixed_point


@pytest.mark.parametrize("gain", [[[-4.0, -1.0], [-2.0, -3.0]], [[-15.0, 0.0], [0.0, 0.3]]])
def test_loop_finds_the_fixed_point_of_a_strongly_inhibitory_network(gain):
    """Gains as negative as -15 (a window-by-window correction oscillates there) converge to the fixed point.

    Fails if the filter is unstable for strong negative gain, or the result is
    not the fixed point (e.g. the last noisy measurement is returned).
    """
    measure, expected = linear_network(gain, drive=[20.0, 30.0], noise_hz=2.0)  # noise per 50 ms step
    result = feedback_loop(measure, start_rates=[1.0, 1.0], window_ms=500.0, tolerance=0.05, max_windows=40)
    assert result["converged"] and result["windows"] < 40
    assert np.allclose(result["rates_Hz"], expected, rtol=0.05)


def test_loop_reports_no_convergence_when_stopped_early():
    measure, _ = linear_network([[0.5]], drive=[10.0], noise_hz=0.0)  # slow mode: 1 - gain = 0.5
    result = feedback_loop(measure, start_rates=[0.0], window_ms=500.0, tolerance=0.01, max_windows=4)
    assert not result["converged"] and result["windows"] == 4 and len(result["history"]) == 4


def test_filter_and_tolerance():
    assert filter_step([1.0], [3.0], 50.0, 500.0)[0] == pytest.approx(1.0 + 2.0 * (1 - np.exp(-0.1)))
    assert within_tolerance([10.0], [10.4], 0.05) and not within_tolerance([10.0], [10.6], 0.05)
    assert within_tolerance([0.5], [0.59], 0.05)  # 0.1 Hz absolute floor
    assert within_tolerance([10.0], [11.0], 0.05, noise_sd_Hz=0.6)  # two standard errors


def config(seed, compensation="self_consistent", model="iaf_psc_exp", **network):
    return parse_run_config({
        "simulation": {"seed": seed, "threads": 1, "t_presim_ms": 200.0, "t_sim_ms": 1000.0},
        "network": {"N_scaling": 0.03, "K_scaling": 0.1, "k_compensation": compensation,
                    "compensation_window_ms": 300.0, **network},
        "neuron": {"model": model}})


def rates(run):
    return np.array([len(run.window(p)[0]) / run.sizes[p] / (run.duration_ms / 1000.0) for p in run.populations])


def test_lif_runs_are_self_consistent_with_their_compensation(tmp_path, monkeypatch):
    """Runs with the compensated DC fire at the rates the compensation assumed (that is what it is for).

    Other seeds than the compensation's own, so this is a prediction, not a
    re-measurement. Fails if the loop sets the DC with a wrong sign or scale,
    returns a noisy single-window estimate, or the runs do not get its DC.
    (At this tiny scale the package's compensation with the LIF's full-scale
    rates is not self-consistent: runs fire 5-25 % below the rates it assumes;
    see docs/compensation.md.)
    """
    # A private cache, so the loop really runs on NEST here (the built-in LIF needs no NESTML module).
    monkeypatch.setenv("CORTEXZOO_CACHE_DIR", str(tmp_path / "cache"))
    seeds = (1, 2, 3, 4)
    runs = [load_run(run_network(config(s), tmp_path / f"sc{s}")) for s in seeds]
    assert (tmp_path / "cache" / "compensation").is_dir()
    comp = runs[0].metadata["k_compensation"]
    realized = np.array([rates(r) for r in runs])
    standard_error = realized.std(axis=0, ddof=1) / np.sqrt(len(seeds))
    assumed = np.array(comp["rates_Hz"])
    # The compensation's own tolerance (5 %, 0.1 Hz) plus 3 standard errors of the seeds' mean.
    allowed = np.maximum(0.05 * assumed, 0.1) + 3 * standard_error
    assert np.all(np.abs(realized.mean(axis=0) - assumed) <= allowed), (realized.mean(0), assumed, allowed)
    assert comp["converged"] and len(comp["history"]) == comp["windows"] >= 4
    assert comp["dc_pA"] == pytest.approx(derive(runs[0].metadata["config"]["network"],
                                                 rates_Hz=comp["rates_Hz"]).dc_pA.tolist(), rel=1e-6)
    # Computed once per model and scale: every seed used the same compensation.
    assert all(r.metadata["k_compensation"] == comp for r in runs)
    # The DC really simulated is the compensated one (bias as NEST reports it).
    assert runs[0].metadata["neuron_parameters"]["L4E"]["I_e"] == pytest.approx(comp["dc_pA"][2], abs=1e-6)  # stored rounded
    ref = load_run(run_network(config(1, "reference_rates"), tmp_path / "ref"))
    assert ref.metadata["k_compensation"] is None
    assert ref.metadata["neuron_parameters"]["L4E"]["I_e"] == pytest.approx(
        derive(ref.metadata["config"]["network"]).dc_pA[2], rel=1e-9)


def test_compensation_is_part_of_a_runs_identity():
    """Another model parameter or scale gives another compensation; seed and duration do not."""
    base = compensation_key(config(1))
    assert compensation_key(config(2)) == base
    assert compensation_key(parse_run_config({**json.loads(json.dumps(config(1).as_dict())),
                                              "simulation": {"seed": 1, "threads": 1, "t_sim_ms": 50.0}})) == base
    assert compensation_key(config(1, N_scaling=0.04)) != base
    changed = config(1).as_dict()
    changed["neuron"]["params"] = {"V_th": "-51 mV"}
    assert compensation_key(parse_run_config(changed)) != base
    assert run_identity(config(1, "reference_rates"))["k_compensation"] is None
