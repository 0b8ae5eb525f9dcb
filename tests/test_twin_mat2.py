"""Twin tests: mat2_psc_exp_nestml vs NEST's mat2_psc_exp.

Both integrate the linear dynamics exactly (NEST by hand-written propagators,
NESTML by ODE-toolbox's), so traces agree to floating-point rounding (we
allow 1e-9 mV) and spike times must agree to the step. The synapse model is
the same (exponential PSCs), so spike input is compared as well.
"""

import numpy as np
import pytest

from twin_helpers import dc_steps, max_spike_shift, noisy_current, run_pair

H = 0.1
COMMON = {"tau_m": 5.0, "C_m": 100.0, "t_ref": 2.0, "E_L": -70.0, "tau_1": 10.0, "tau_2": 200.0,
          "alpha_1": 37.0, "alpha_2": 2.0, "omega": -51.0}
BUILTIN = dict(COMMON, tau_syn_ex=0.5, tau_syn_in=0.5)
NESTML = dict(COMMON, tau_syn_exc=0.5, tau_syn_inh=0.5)

DRIVES = {
    "dc_steps": {"currents": [dc_steps(400.0)]},
    "noise": {"currents": [noisy_current(300.0, 300.0)]},
    "spikes": {"spikes": {"exc_rate": 20_000.0, "inh_rate": 5_000.0, "exc_weight": 100.0, "inh_weight": -100.0}},
}


@pytest.mark.parametrize("drive", sorted(DRIVES))
def test_mat2_matches_nest(nest_kernel, drive):
    r = run_pair(nest_kernel, "mat2_psc_exp", BUILTIN, "mat2_psc_exp_nestml", NESTML, **DRIVES[drive])
    assert len(r["spikes_builtin"]) > 50, "the drive must make the neuron fire"
    assert max_spike_shift(r["spikes_builtin"], r["spikes_nestml"]) <= H + 1e-9
    # exact propagators on both sides: only rounding differs
    assert np.max(np.abs(r["traces_builtin"]["V_m"] - r["traces_nestml"]["V_m"])) < 1e-9
