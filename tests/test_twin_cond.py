"""Twin tests of the conductance-based models (issue 15) against NEST's built-ins.

iaf_cond_exp_nestml vs ``iaf_cond_exp`` and aeif_cond_exp_nestml vs
``aeif_cond_exp``, all integrated by GSL's adaptive RKF45. Both neurons of a
pair get the same input (tests/twin_helpers.py): DC steps or a noisy current
through step_current_generators, or Poisson trains through parrots with
PD14-like conductance weights (exc 1.5 nS, inh -6 nS: the network's
convention of negative inhibitory weights, which both models turn into a rise
of g_inh by |w|). Cells: NEST's defaults (tau_syn 0.2 / 2 ms) and, for the
LIF, the PD14 membrane (C_m 250 pF, g_L 25 nS, tau_syn 0.5 ms, E_inh -80 mV).
All runs 10 s at 0.1 ms. Measured on 2026-11-28 (NEST 3.10, NESTML 9.0.0).

iaf_cond_exp_nestml. NEST fixes GSL's tolerances of iaf_cond_exp at abs 1e-3,
rel 0; the NESTML model gets the same through its runtime parameters
gsl_abs_error_tol / gsl_rel_error_tol (their NESTML default is 1e-6).

* Spike times, every drive (DC steps, noisy current, Poisson input; 5-150 Hz):
  within one step (0.1 ms). Measured: identical (shift 0) in every run.
* Subthreshold, current input: g = 0 and both models do the same arithmetic,
  so V agrees to rounding: tolerance 1e-9 mV (measured 0).
* Subthreshold, spike input: NEST integrates the conductances with GSL (local
  error up to its absolute tolerance 1e-3 nS per step), NESTML replaces them
  at every step end by the exact exponential decay. So g_exc may differ by up
  to ~1e-3 nS and V by what such conductance errors drive: tolerances 1e-3 nS
  and 1e-3 mV. Measured: g_exc 6.3e-4 nS, V 5.1e-4 mV (NEST's tau_syn_ex
  0.2 ms, the fastest decay); with tau_syn 0.5 ms V 3.7e-6 mV.

aeif_cond_exp_nestml. NEST resets inside a simulation step (after the inner
GSL step in which V reached V_peak); the NESTML model emulates this with the
time spent above V_peak (see its header), as aeif_psc_exp_nestml does. NEST
controls its steps by the derivative (yp, gsl_error_tol 1e-6), NESTML by the
solution (y, abs = rel = 1e-6; a module-wide code-generator option).

* Current input (DC steps, noisy current), Delta_T > 0 or == 0, t_ref 0 or
  2 ms: spike times within one step over 10 s. Measured: max shift 0.1 ms
  (Delta_T > 0, t_ref 0), 0 otherwise.
* Subthreshold: both GSL runs keep the local error below 1e-6 (absolute) plus
  1e-6 x |y| (relative), about 1e-4 mV for V near -70 mV and 1e-5 nS for g
  of ~10 nS: tolerances V 1e-4 mV, w 1e-4 pA, g 1e-5 nS. Measured: V 2.9e-6
  mV, w 9.1e-6 pA, g 9.5e-7 nS under spike input; 1e-14 under current.
* Spike input: conductance jumps make NEST shrink its inner GSL steps, and
  NEST's in-step threshold test lands at inner-step ends that NESTML cannot
  know. Measured over seeds 1-4, both tau_syn sets, 170-250 spikes each:
  - Delta_T > 0, t_ref 2 ms: every spike within one step -> criterion: every
    spike within one step (the test's seed).
  - Delta_T > 0, t_ref 0: 98.96-100 % of the spikes (paired in order) within
    one step, max shift 1.3 ms: after the reset NESTML takes one Euler step
    of length t_over where NEST integrates with GSL, and the small V and w
    differences move a later crossing by a step now and then -> criterion:
    equal counts and >= 98 % within one step.
  - Delta_T == 0 (no exponential, so no steep crossing to synchronise the
    two): NESTML resets at step ends, NEST at inner-step ends; w then differs
    by ~0.01-0.04 pA per spike, which moves later spikes near threshold by
    steps and lets the trains drift apart (14-99 % within one step, by seed).
    Only the adaptive-solver criterion applies: spike counts within 1 %
    (measured <= 0.8 %) and the first 5 spikes within one step (the first
    deviation came at spike 7-39).
"""

import numpy as np
import pytest

from twin_helpers import dc_steps, max_spike_shift, noisy_current, run_pair

H = 0.1
W_EXC_NS, W_INH_NS = 1.5, -6.0  # PD14-like conductance weights; inhibition negative
# NEST's names -> the conductance interface's names
RENAME = {"E_ex": "E_exc", "E_in": "E_inh", "tau_syn_ex": "tau_syn_exc", "tau_syn_in": "tau_syn_inh"}
# NEST's fixed GSL tolerances for iaf_cond_exp, given to the NESTML twin
IAF_GSL = {"gsl_abs_error_tol": 1e-3, "gsl_rel_error_tol": 0.0}
PD14_MEMBRANE = {"C_m": 250.0, "g_L": 25.0, "E_L": -65.0, "V_th": -50.0, "V_reset": -65.0, "t_ref": 2.0,
                 "tau_syn_ex": 0.5, "tau_syn_in": 0.5, "E_in": -80.0}


def _pair(nest, builtin: str, params: dict, **drive):
    """Run ``builtin`` and its NESTML twin with the same parameters (NEST's names) and drive."""
    nestml_params = {RENAME.get(k, k): v for k, v in params.items()}
    if builtin == "iaf_cond_exp":
        nestml_params.update(IAF_GSL)
    extra = ("w",) if builtin == "aeif_cond_exp" else ()
    return run_pair(nest, builtin, params, f"{builtin}_nestml", nestml_params,
                    record=("V_m", "g_exc", "g_inh") + extra, record_builtin=("V_m", "g_ex", "g_in") + extra,
                    **drive)


def _poisson(exc_rate: float, inh_rate: float) -> dict:
    return {"spikes": {"exc_rate": exc_rate, "inh_rate": inh_rate, "exc_weight": W_EXC_NS,
                       "inh_weight": W_INH_NS}}


def _max_diff(r, name: str) -> float:
    return float(np.max(np.abs(r["traces_builtin"][name] - r["traces_nestml"][name])))


def _fraction_within_step(t_a, t_b) -> float:
    """Fraction of spikes, paired in order, that agree within one step (equal counts assumed)."""
    shift = np.abs(np.sort(t_a) - np.sort(t_b))
    return float(np.mean(shift <= H + 1e-9))


@pytest.mark.parametrize("builtin", ["iaf_cond_exp", "aeif_cond_exp"])
def test_defaults_are_nests(nest_kernel, builtin):
    """Catches a default that differs from the NEST twin's (a typo, or a value from another model)."""
    nest_defaults = nest_kernel.GetDefaults(builtin)
    ours = nest_kernel.GetDefaults(f"{builtin}_nestml")
    names = ["C_m", "g_L", "E_L", "V_th", "V_reset", "t_ref", "I_e", "E_ex", "E_in", "tau_syn_ex", "tau_syn_in"]
    if builtin == "aeif_cond_exp":
        names += ["a", "b", "Delta_T", "tau_w", "V_peak"]
    for name in names:
        assert ours[RENAME.get(name, name)] == pytest.approx(nest_defaults[name], rel=1e-6), name


IAF_CELLS = {"nest_defaults": {}, "pd14_membrane": PD14_MEMBRANE}
IAF_DRIVES = {
    ("nest_defaults", "dc_steps"): {"currents": [dc_steps(250.0)]},
    ("nest_defaults", "noise"): {"currents": [noisy_current(400.0, 300.0)]},
    ("nest_defaults", "spikes"): _poisson(30_000.0, 1000.0),
    ("pd14_membrane", "dc_steps"): {"currents": [dc_steps(375.0)]},
    ("pd14_membrane", "noise"): {"currents": [noisy_current(450.0, 300.0)]},
    ("pd14_membrane", "spikes"): _poisson(14_000.0, 2000.0),
}


@pytest.mark.parametrize("cell, drive", sorted(IAF_DRIVES))
def test_iaf_cond_spikes_match_to_the_step(nest_kernel, cell, drive):
    """Catches wrong leak or synaptic currents (reversal potential, sign, weight unit), a wrong
    threshold/reset/refractory count, input acting a step early or late, and inhibitory
    weights added as they arrive (negative g_inh)."""
    r = _pair(nest_kernel, "iaf_cond_exp", IAF_CELLS[cell], **IAF_DRIVES[(cell, drive)])
    assert len(r["spikes_builtin"]) > 50, "the drive must make the neuron fire"
    assert max_spike_shift(r["spikes_builtin"], r["spikes_nestml"]) <= H + 1e-9


@pytest.mark.parametrize("cell", sorted(IAF_CELLS))
@pytest.mark.parametrize("drive", ["noise", "spikes"])
def test_iaf_cond_subthreshold_traces(nest_kernel, cell, drive):
    """Catches errors too small to move a spike: the conductance driving force using E_L or
    unbounded V, a wrong tau_syn, g not decaying during integration, V drift between spikes."""
    drives = {"noise": {"currents": [noisy_current(150.0, 100.0)]},
              "spikes": _poisson(20_000.0, 1000.0) if cell == "nest_defaults" else _poisson(8000.0, 2000.0)}
    r = _pair(nest_kernel, "iaf_cond_exp", IAF_CELLS[cell], **drives[drive])
    assert len(r["spikes_builtin"]) == 0 and len(r["spikes_nestml"]) == 0, "drive must stay subthreshold"
    assert np.ptp(r["traces_builtin"]["V_m"]) > 1.0, "the drive must move V"
    tol_v, tol_g = (1e-3, 1e-3) if drive == "spikes" else (1e-9, 1e-9)
    assert _max_diff(r, "V_m") < tol_v
    assert _max_diff(r, "g_exc") < tol_g
    assert _max_diff(r, "g_inh") < tol_g


@pytest.mark.parametrize("builtin", ["iaf_cond_exp", "aeif_cond_exp"])
def test_negative_inhibitory_weight_hyperpolarises(nest_kernel, builtin):
    """Catches the network's negative inhibitory weight added as it is: g_inh would go negative
    and 'inhibition' would pull V up, away from E_inh (the twin would then also disagree)."""
    r = _pair(nest_kernel, builtin, {}, t_sim_ms=500.0, **_poisson(0.0, 500.0))
    g_inh, v = r["traces_nestml"]["g_inh"], r["traces_nestml"]["V_m"]
    e_l = nest_kernel.GetDefaults(builtin)["E_L"]
    assert g_inh.min() >= 0.0 and g_inh.max() >= abs(W_INH_NS)
    # AdEx rests a hair above E_L (its exp term), ~3e-5 mV in 500 ms
    assert v.max() < e_l + 0.01 and v.min() < e_l - 1.0


ADEX_CONFIGS = {"exp_tref0": {}, "exp_tref2": {"t_ref": 2.0}, "noexp_tref2": {"Delta_T": 0.0, "t_ref": 2.0}}


@pytest.mark.parametrize("config", sorted(ADEX_CONFIGS))
@pytest.mark.parametrize("drive", ["dc_steps", "noise"])
def test_aeif_cond_current_input_matches_to_the_step(nest_kernel, drive, config):
    """Catches errors of the AdEx membrane and adaptation (exp term, a, b, tau_w, V_peak vs
    V_th when Delta_T == 0, the emulated in-step reset, refractory clamp) under current input."""
    drives = {"dc_steps": {"currents": [dc_steps(600.0)]}, "noise": {"currents": [noisy_current(700.0, 400.0)]}}
    r = _pair(nest_kernel, "aeif_cond_exp", ADEX_CONFIGS[config], **drives[drive])
    assert len(r["spikes_builtin"]) > 50, "the drive must make the neuron fire"
    assert max_spike_shift(r["spikes_builtin"], r["spikes_nestml"]) <= H + 1e-9


ADEX_TAUS = {"nest_taus": ({}, 80_000.0, 1000.0), "pd14_taus": ({"tau_syn_ex": 0.5, "tau_syn_in": 0.5}, 28_000.0, 2000.0)}


@pytest.mark.parametrize("config", sorted(ADEX_CONFIGS))
@pytest.mark.parametrize("taus", sorted(ADEX_TAUS))
def test_aeif_cond_spike_input(nest_kernel, config, taus):
    """Catches wrong conductance synapses in the AdEx (driving force, weight sign or unit,
    tau_syn, spikes added before the threshold test instead of after it); the criteria per
    configuration and why they are weaker than one step for all spikes: module docstring."""
    extra, exc_rate, inh_rate = ADEX_TAUS[taus]
    r = _pair(nest_kernel, "aeif_cond_exp", {**ADEX_CONFIGS[config], **extra}, **_poisson(exc_rate, inh_rate))
    t_b, t_m = r["spikes_builtin"], r["spikes_nestml"]
    assert len(t_b) > 100, "the drive must make the neuron fire"
    if config == "exp_tref2":
        assert max_spike_shift(t_b, t_m) <= H + 1e-9
    elif config == "exp_tref0":
        assert len(t_m) == len(t_b)
        assert _fraction_within_step(t_b, t_m) >= 0.98
    else:
        assert abs(len(t_m) - len(t_b)) <= 0.01 * len(t_b)
        assert np.all(np.abs(np.sort(t_b)[:5] - np.sort(t_m)[:5]) <= H + 1e-9)


@pytest.mark.parametrize("drive", ["dc_steps", "noise", "spikes"])
def test_aeif_cond_subthreshold_traces(nest_kernel, drive):
    """Catches errors too small to move a spike: w driven by the wrong V, a wrong a or tau_w,
    the exp term or the conductance driving forces evaluated at the wrong V."""
    drives = {
        "dc_steps": {"currents": [{"amplitude_times": [1.0, 2000.0, 4000.0, 6000.0, 8000.0],
                                   "amplitude_values": [100.0, 200.0, 0.0, 250.0, -100.0]}]},
        "noise": {"currents": [noisy_current(100.0, 100.0)]},
        "spikes": _poisson(40_000.0, 1000.0),
    }
    r = _pair(nest_kernel, "aeif_cond_exp", {}, **drives[drive])
    assert len(r["spikes_builtin"]) == 0 and len(r["spikes_nestml"]) == 0, "drive must stay subthreshold"
    assert np.ptp(r["traces_builtin"]["V_m"]) > 1.0, "the drive must move V"
    assert _max_diff(r, "V_m") < 1e-4
    assert _max_diff(r, "w") < 1e-4
    assert _max_diff(r, "g_exc") < 1e-5
    assert _max_diff(r, "g_inh") < 1e-5
