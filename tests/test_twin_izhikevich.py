"""Twin tests: izhikevich_nestml vs NEST's izhikevich (forward Euler, current input).

Both use the same explicit Euler step in the same order of operations, and
the NESTML model's default C_m = 1 pF reproduces NEST's pA -> mV/ms input
convention, so spike times must agree exactly (tolerance: zero steps; we
allow half a step only to absorb floating-point rounding of spike times).
The synapses differ by design (delta jumps vs exponential PSCs), so only
current input is compared.
"""

import numpy as np
import pytest

from twin_helpers import dc_steps, max_spike_shift, noisy_current, run_pair

H = 0.1  # ms, the fixture's resolution
RS = {"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0}
FS = {"a": 0.1, "b": 0.2, "c": -65.0, "d": 2.0}


@pytest.mark.parametrize("params", [RS, FS], ids=["RS", "FS"])
@pytest.mark.parametrize("drive", ["dc_steps", "noise"])
def test_izhikevich_2003_matches_nest(nest_kernel, params, drive):
    currents = [dc_steps(8.0)] if drive == "dc_steps" else [noisy_current(5.0, 5.0)]
    r = run_pair(nest_kernel, "izhikevich", params, "izhikevich_nestml", params,
                 currents=currents, record=("V_m", "U_m"))
    assert len(r["spikes_builtin"]) > 50, "the drive must make the neuron fire"
    # same arithmetic in the same order: identical spike steps over 10 s
    assert max_spike_shift(r["spikes_builtin"], r["spikes_nestml"]) < 0.5 * H
    # identical up to floating-point rounding of the same expressions
    assert np.max(np.abs(r["traces_builtin"]["V_m"] - r["traces_nestml"]["V_m"])) < 1e-9
    assert np.max(np.abs(r["traces_builtin"]["U_m"] - r["traces_nestml"]["U_m"])) < 1e-9


def test_izhikevich_2007_reduces_to_2003(nest_kernel):
    """The 2007 form with C_m = 1 pF, k = 0.04 nS/mV and v_r, v_t the roots of
    v^2 + 125 v + 3500 is the 2003 form with U shifted by b v_r (the shift enters
    as a constant current -b v_r)."""
    v_t, v_r = np.sort(np.roots([1.0, 125.0, 3500.0]))[::-1]
    b = RS["b"]
    params07 = {"C_m": 1.0, "k": 0.04, "v_r": v_r, "v_t": v_t, "V_peak": 30.0, "a": RS["a"], "b": b,
                "c": RS["c"], "d": RS["d"], "I_e": -b * v_r, "V_m": -65.0, "U_m": b * -65.0 - b * v_r}
    nest = nest_kernel
    a = nest.Create("izhikevich", params=RS)
    m = nest.Create("izhikevich2007_nestml", params=params07)
    gen = nest.Create("step_current_generator", params=noisy_current(6.0, 5.0))
    sr = nest.Create("spike_recorder", 2)
    for n, s in zip((a, m), sr):
        nest.Connect(gen, n)
        nest.Connect(n, s)
    nest.Simulate(10_000.0)
    t_a, t_m = sr[0].events["times"], sr[1].events["times"]
    assert len(t_a) > 50
    # the roots are irrational, so the two forms differ by rounding (~1e-14 mV per
    # step); over 10 s this must not move any spike by a whole step
    assert max_spike_shift(t_a, t_m) <= H + 1e-9
