"""Twin tests: glif_psc_nestml vs NEST's glif_psc, levels 1-5, current input only.

The NESTML model repeats glif_psc's exact-integration step in the same order,
so spike times agree to the step and V to rounding (1e-9 mV; V is absolute in
NESTML and relative to E_L in NEST, which changes the last bits). Synapses
differ by design (alpha vs exponential PSCs): no spike input is compared.
"""

import numpy as np
import pytest

from twin_helpers import dc_steps, max_spike_shift, noisy_current, run_pair

H = 0.1
# Allen Cell Types-like defaults of NEST's glif_psc
COMMON = {"g": 9.43, "E_L": -78.85, "V_th": -51.68, "C_m": 58.72, "t_ref": 3.75, "V_reset": -78.85,
          "th_spike_add": 0.37, "th_spike_decay": 0.009, "voltage_reset_fraction": 0.2,
          "voltage_reset_add": 18.51, "th_voltage_index": 0.005, "th_voltage_decay": 0.09}
ASC_BUILTIN = {"asc_decay": [0.003, 0.1], "asc_amps": [-9.18, -198.94], "asc_r": [1.0, 1.0]}
ASC_NESTML = {"asc_decay_1": 0.003, "asc_decay_2": 0.1, "asc_amps_1": -9.18, "asc_amps_2": -198.94,
              "asc_r_1": 1.0, "asc_r_2": 1.0}
LEVELS = {  # spike_dependent_threshold, after_spike_currents, adapting_threshold
    1: (False, False, False), 2: (True, False, False), 3: (False, True, False),
    4: (True, True, False), 5: (True, True, True),
}


@pytest.mark.parametrize("level", sorted(LEVELS))
@pytest.mark.parametrize("drive", ["dc_steps", "noise"])
def test_glif_level_matches_nest(nest_kernel, level, drive):
    s, a, v = LEVELS[level]
    flags = {"spike_dependent_threshold": s, "after_spike_currents": a, "adapting_threshold": v}
    currents = [dc_steps(300.0)] if drive == "dc_steps" else [noisy_current(250.0, 200.0)]
    r = run_pair(nest_kernel, "glif_psc", dict(COMMON, **ASC_BUILTIN, **flags),
                 "glif_psc_nestml", dict(COMMON, **ASC_NESTML, **flags), currents=currents)
    assert len(r["spikes_builtin"]) > 50, "the drive must make the neuron fire"
    assert max_spike_shift(r["spikes_builtin"], r["spikes_nestml"]) <= H + 1e-9
    assert np.max(np.abs(r["traces_builtin"]["V_m"] - r["traces_nestml"]["V_m"])) < 1e-9
