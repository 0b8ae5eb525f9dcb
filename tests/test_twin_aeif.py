"""Twin tests: aeif_psc_exp_nestml vs NEST's aeif_psc_exp (both GSL RKF45).

NEST resets inside a simulation step (after the inner GSL step in which V
reached V_peak); the NESTML model emulates this with the time spent above
V_peak (see its header). Tolerances and why:

* Current input (DC steps, noisy current), Delta_T > 0 or == 0, t_ref 0 or
  2 ms: spike times agree within one step (0.1 ms) over 10 s. Measured: 0.1 ms.
* Subthreshold (no spikes): both integrators use an error tolerance of 1e-6
  with their own step-size histories -> V within 1e-3 mV, w within 1e-3 pA
  (measured ~5e-6).
* Spike input: fast PSC jumps make NEST shrink its inner GSL steps, so NEST's
  in-step threshold test lands at inner-step ends that NESTML cannot know
  (for Delta_T = 0 NESTML does not emulate the in-step reset at all, which
  keeps current-driven runs exact). The small resulting differences in w can
  move later spikes by more than a step, so only the adaptive-solver criterion
  applies: spike counts within 1% over 10 s. Until the first divergence the
  trains agree to the step, so the first 10 spikes must agree within one step
  (over all 10 s, 36-100% of paired spikes agree within a step, by seed and
  configuration).
"""

import numpy as np
import pytest

from twin_helpers import dc_steps, max_spike_shift, noisy_current, run_pair

H = 0.1
COMMON = {"C_m": 281.0, "g_L": 30.0, "E_L": -70.6, "V_reset": -60.0, "t_ref": 0.0, "Delta_T": 2.0,
          "V_th": -50.4, "V_peak": 0.0, "a": 4.0, "b": 80.5, "tau_w": 144.0}


def _pair(nest, extra, **drive):
    builtin = dict(COMMON, tau_syn_ex=0.5, tau_syn_in=0.5, **extra)
    nestml = dict(COMMON, tau_syn_exc=0.5, tau_syn_inh=0.5, **extra)
    return run_pair(nest, "aeif_psc_exp", builtin, "aeif_psc_exp_nestml", nestml,
                    record=("V_m", "w"), **drive)


SPIKING = {
    "dc_steps": {"currents": [dc_steps(600.0)]},
    "noise": {"currents": [noisy_current(700.0, 400.0)]},
    "spikes": {"spikes": {"exc_rate": 30_000.0, "inh_rate": 5_000.0, "exc_weight": 100.0, "inh_weight": -100.0}},
}
CONFIGS = {"exp_tref0": {}, "exp_tref2": {"t_ref": 2.0}, "noexp_tref2": {"Delta_T": 0.0, "t_ref": 2.0}}


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("drive", ["dc_steps", "noise"])
def test_aeif_current_input_matches_to_the_step(nest_kernel, drive, config):
    r = _pair(nest_kernel, CONFIGS[config], **SPIKING[drive])
    assert len(r["spikes_builtin"]) > 50, "the drive must make the neuron fire"
    assert max_spike_shift(r["spikes_builtin"], r["spikes_nestml"]) <= H + 1e-9


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_aeif_spike_input_counts(nest_kernel, config):
    r = _pair(nest_kernel, CONFIGS[config], **SPIKING["spikes"])
    n_b, n_m = len(r["spikes_builtin"]), len(r["spikes_nestml"])
    assert n_b > 50
    assert abs(n_m - n_b) <= 0.01 * n_b
    n = min(n_b, n_m)
    shift = np.abs(np.sort(r["spikes_builtin"])[:n] - np.sort(r["spikes_nestml"])[:n])
    assert np.all(shift[:10] <= H + 1e-9)


@pytest.mark.parametrize("drive", ["dc_steps", "noise", "spikes"])
def test_aeif_subthreshold_traces(nest_kernel, drive):
    drives = {
        "dc_steps": {"currents": [{"amplitude_times": [1.0, 2000.0, 4000.0, 6000.0, 8000.0],
                                   "amplitude_values": [100.0, 200.0, 0.0, 250.0, -100.0]}]},
        "noise": {"currents": [noisy_current(100.0, 100.0)]},
        "spikes": {"spikes": {"exc_rate": 8_000.0, "inh_rate": 2_000.0, "exc_weight": 100.0, "inh_weight": -100.0}},
    }
    r = _pair(nest_kernel, {}, **drives[drive])
    assert len(r["spikes_builtin"]) == 0 and len(r["spikes_nestml"]) == 0, "drive must stay subthreshold"
    assert np.max(np.abs(r["traces_builtin"]["V_m"] - r["traces_nestml"]["V_m"])) < 1e-3
    assert np.max(np.abs(r["traces_builtin"]["w"] - r["traces_nestml"]["w"])) < 1e-3
