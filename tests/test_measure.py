"""NEST measurements of :mod:`cortexzoo.models.measure` against the PD14 LIF's analytic values.

The PD14 LIF (iaf_psc_exp: C_m 250 pF, tau_m 10 ms, g = C_m/tau_m = 25 nS,
tau_syn 0.5 ms, reference PSC w = 87.8 pA) has closed-form answers:
R_in = tau_m/C_m = 40 MOhm, tau_m,eff = 10 ms, PSP peak 0.150 mV (w is
defined by it) and PSP integral w tau_syn/g = 1.756 mV ms (the charge w
tau_syn times the DC gain 1/g). NEST integrates the LIF exactly, so what
separates a measurement from these values is how it samples V on the
0.1 ms grid; every tolerance below is that sampling error, derived in the
test, not a margin.
"""

import math

import numpy as np
import pytest

from cortexzoo.errors import CortexzooError
from cortexzoo.models.calibrate import LIF, MODELS, TAU_SYN_MS, TARGET_PSP_MV, reference_psc_pA
from cortexzoo.models.measure import RESOLUTION_MS, measure_psp, measure_psp_trace, passive_properties

H = RESOLUTION_MS
TAU_M, C_M = LIF["tau_m"], LIF["C_m"]
G_NS = C_M / TAU_M
# AdEx E cell on the PD14 membrane (psp_rheobase recipe: BG05 mapped) and its subthreshold adaptation switched off
ADEX = MODELS["aeif_psc_exp_nestml"].base["E"]
ADEX_LIF_MEMBRANE = dict(ADEX, a=0.0)


@pytest.fixture(scope="module")
def lif_passive(nestml_module):
    return passive_properties("iaf_psc_exp", LIF)


@pytest.fixture(scope="module")
def lif_psp(nestml_module):
    return measure_psp_trace("iaf_psc_exp", [LIF], reference_psc_pA())


def test_lif_input_resistance_is_tau_m_over_c_m(lif_passive):
    """R_in = tau_m / C_m = 40 MOhm. The LIF is linear and integrated exactly, and after 100 tau_m
    nothing of the transient is left, so only rounding separates the two (tolerance 1e-9).

    Fails for a unit slip (mV/pA is GOhm: 0.04 or 40000), a response taken against the wrong
    baseline or not halved (the two neurons are stepped by +-10 pA: 80 MOhm), or a step that
    does not reach the neuron."""
    assert lif_passive.R_in_MOhm == pytest.approx(TAU_M / C_M * 1000.0, rel=1e-9)
    assert lif_passive.V_rest_mV == pytest.approx(LIF["E_L"], abs=1e-12)


def test_lif_effective_time_constant_is_tau_m(lif_passive):
    """The 63 % rise time of an exact single exponential is tau_m. Linear interpolation between
    samples h apart misplaces the crossing by at most h^2 / (8 tau_m) = 1.25e-4 ms (the curvature
    of 1 - exp(-t/tau) over its slope is 1/tau); that is the tolerance.

    Fails if the step onset is misplaced by a sample (0.1 ms), the crossing is not interpolated
    (up to 0.1 ms), or another level than 1 - 1/e is used (50 %: 6.9 ms)."""
    assert lif_passive.tau_m_ms == pytest.approx(TAU_M, abs=H**2 / (8 * TAU_M))


def test_lif_psp_peak_is_the_reference_psp(lif_psp):
    """The reference PSC is defined to give 0.150 mV at the continuous-time maximum t*. The
    nearest sample is at most h/2 from t*, where V''/V = -1/(tau_m tau_syn); so the sampled peak
    lies below by at most (h/2)^2 / (2 tau_m tau_syn) = 2.5e-4 of it (measured 5.3e-5).

    Fails if the peak is taken against another baseline than V before the spike, through the
    wrong port or weight, or if the delay is not waited for (the baseline would be mid-PSP)."""
    bound = (H / 2) ** 2 / (2 * TAU_M * TAU_SYN_MS)
    peak = lif_psp.peak_mV[0]
    assert TARGET_PSP_MV * (1 - bound) <= peak <= TARGET_PSP_MV
    assert measure_psp("iaf_psc_exp", [LIF], reference_psc_pA())[0] == peak


def test_lif_psp_integral_is_the_charge_over_the_conductance(lif_psp):
    """The time integral of V - V_rest of one PSC is w tau_syn / g = 1.756 mV ms. The measurement
    sums the samples times h over a window ending T = 98 ms after the PSC's onset, which is below
    it by two known amounts: the sum of grid samples of a response that starts with slope w/C
    misses h^2 / (12 tau_syn tau_m) = 1.67e-4 of it (Euler-Maclaurin, as in test_synaptic_charge),
    and the tail after T is (tau_m e^{-T/tau_m} - tau_syn e^{-T/tau_syn}) / (tau_m - tau_syn) =
    5.8e-5 of it. The next terms (h/2 V(T), 3e-7; h^4 terms, 1e-8) set the tolerance, 1e-6.

    Fails for a missing or doubled sample at either end (1.8e-3 for the first one), integration
    in seconds or without h, a window cut short (10 ms: 37 % missing), or a baseline off by as
    little as 1e-5 mV (1e-3 mV ms over 98 ms)."""
    w = reference_psc_pA()
    full = w * TAU_SYN_MS / G_NS
    assert full == pytest.approx(1.756, abs=5e-4)
    T = lif_psp.t_ms[-1]
    grid_deficit = H**2 / (12 * TAU_SYN_MS * TAU_M)
    tail = (TAU_M * math.exp(-T / TAU_M) - TAU_SYN_MS * math.exp(-T / TAU_SYN_MS)) / (TAU_M - TAU_SYN_MS)
    assert lif_psp.integral_mV_ms[0] == pytest.approx(full * (1 - grid_deficit - tail), rel=1e-6)


def test_adex_with_the_lif_membrane_has_the_lifs_passive_properties_and_psp(nestml_module, lif_passive, lif_psp):
    """aeif_psc_exp_nestml with a = 0 is the LIF plus the exponential spike current, whose slope at
    rest, g_L exp((E_L - V_th)/Delta_T) = 5.5e-4 g_L, raises R_in and tau by 5.5e-4 and the PSP
    integral by as much (its peak, set mostly by C_m, by 7e-5); the GSL solver adds 1e-6. The
    tolerance is 1e-3 of the LIF's values.

    Fails if the NESTML model's spike port is not the one measured (no PSP), if a model's I_e
    is not in pA or not read at all, or if the AdEx membrane (C_m, g_L) drifts from the LIF's."""
    adex = passive_properties("aeif_psc_exp_nestml", ADEX_LIF_MEMBRANE)
    assert adex.R_in_MOhm == pytest.approx(lif_passive.R_in_MOhm, rel=1e-3)
    assert adex.tau_m_ms == pytest.approx(lif_passive.tau_m_ms, rel=1e-3)
    psp = measure_psp_trace("aeif_psc_exp_nestml", [ADEX_LIF_MEMBRANE], reference_psc_pA())
    assert psp.peak_mV[0] == pytest.approx(lif_psp.peak_mV[0], rel=1e-3)
    assert psp.integral_mV_ms[0] == pytest.approx(lif_psp.integral_mV_ms[0], rel=1e-3)


def test_adex_input_resistance_includes_its_adaptation_conductance(nestml_module):
    """With the recipe's a = 4 nS (tau_w 144 ms) the steady state is reached through w: R_in =
    1 / (g_L (1 - exp((V_rest - V_th)/Delta_T)) + a) = 34.5 MOhm, not the 40 MOhm the response
    passes through in the first tens of ms. After the 1 s step the slow mode (122.7 ms, about 16 %
    of the response) has decayed to 4.6e-5; the cubic term of the exponential current at +-0.35 mV
    adds 4e-6: tolerance 1e-4.

    Fails if R_in is read from the response's peak or too early, i.e. without the adaptation."""
    props = passive_properties("aeif_psc_exp_nestml", ADEX)
    g = ADEX["g_L"] * (1 - math.exp((props.V_rest_mV - ADEX["V_th"]) / ADEX["Delta_T"])) + ADEX["a"]
    assert props.R_in_MOhm == pytest.approx(1000.0 / g, rel=1e-4)


def test_a_neuron_that_fires_during_the_step_is_refused(nestml_module):
    """Fails if passive properties are reported for a neuron that crossed threshold (0.2 mV above
    rest here, the +10 pA step moves V by 0.4 mV): its resets would pass for a small R_in."""
    with pytest.raises(CortexzooError, match="fired"):
        passive_properties("iaf_psc_exp", dict(LIF, V_th=LIF["E_L"] + 0.2))


def test_a_step_too_short_to_settle_is_refused(nestml_module):
    """Fails if R_in is taken from a response still rising: after 2 tau_m the LIF is at 86 % of its
    steady shift and its last tenth still moves by 3.5 % of it. Fails too if the check is so strict
    that a step of 10 tau_m (within 4.5e-5 of steady, last tenth moving by 7.8e-5) is refused."""
    with pytest.raises(CortexzooError, match="still changes"):
        passive_properties("iaf_psc_exp", LIF, step_ms=2 * TAU_M)
    np.testing.assert_allclose(passive_properties("iaf_psc_exp", LIF, step_ms=10 * TAU_M).R_in_MOhm, 40.0, rtol=1e-4)


def test_psp_of_a_model_that_adds_spikes_before_the_membrane_update(nestml_module):
    """NEST's gif_psc_exp (and its NESTML twin) add a step's spikes before propagating V, so V has
    moved at the arrival sample already. Catches a protocol that reads the resting V at the arrival
    (measured: peak 0.389 instead of 0.484 mV, integral 2.34 instead of 11.7 mV ms for the pyramidal
    GIF, which made the published input scale 0.75 instead of 0.15). Expected: charge x R_in over the
    window, with R_in = 1/g_L and the decay exp(-t/tau_m) of the membrane (tau_syn << tau_m)."""
    cell = {"C_m": 83.1, "g_L": 3.7, "E_L": -67.0, "V_T_star": -39.6, "Delta_V": 1.4, "V_reset": -36.7,
            "tau_syn_ex": TAU_SYN_MS, "tau_syn_in": TAU_SYN_MS}
    trace = measure_psp_trace("gif_psc_exp", [cell], 87.8)
    tau_m, window = cell["C_m"] / cell["g_L"], trace.t_ms[-1]
    expected = 87.8 * TAU_SYN_MS / cell["g_L"] * (1 - math.exp(-window / tau_m))
    assert trace.integral_mV_ms[0] == pytest.approx(expected, rel=0.02)
    assert trace.peak_mV[0] == pytest.approx(0.484, abs=0.005)  # the twin test's trace of the same spike
