"""Hodgkin-Huxley models (issue 15) against NEST's hh_psc_alpha, and the fixed-step HH against the GSL HH.

Models: hh_psc_alpha_nestml (twin of NEST's hh_psc_alpha, both GSL RKF45),
hh_psc_exp_nestml (the same membrane on the shared current interface, GSL)
and hh_psc_exp_fast_nestml (fixed-step RK4 with sub-steps in the spike).
Both neurons of a pair get the same input: a step_current_generator (DC steps
or noisy current in 1-ms pieces, tests/twin_helpers.py) or the same Poisson
trains through parrot neurons. With NEST's defaults the HH fires repetitively
only above ~626 pA DC, at >= ~50 Hz (a type II neuron); PD14-like rates of
2-20 Hz come from fluctuations (noisy current of SD 150-260 pA).

Criteria and why (measured 2026-11-28 on this machine):

* hh_psc_alpha_nestml vs hh_psc_alpha, spike times: the same spikes within one
  step (0.1 ms) over 10 s of noisy current, DC steps and Poisson spike input.
  Measured: identical times for noise (100 spikes) and spike input (105), one
  spike 0.1 ms apart under DC steps (444 spikes).
* Why V can differ: both use GSL's RKF45, but NEST's hh_psc_alpha sets an
  absolute tolerance of 1e-3 and no relative one, NESTML's default is 1e-6 /
  1e-6 (more accurate; the model keeps it), and NESTML propagates the alpha
  currents exactly instead of integrating them. So V differs by up to the
  error NEST's tolerance allows, and most in the spike, where V moves by tens
  of mV per step. Measured max |dV| over 10 s: 5e-3 mV (noise), 0.07 mV (DC
  steps, in spikes), 9e-3 mV (spike input), so V in spiking runs has no
  criterion beyond the spike times. Subthreshold (no spikes) both take whole
  0.1-ms GSL steps: under noisy current the same arithmetic (measured 5e-14
  mV); under spike input NEST integrates the alpha currents with RKF45 (local
  error ~ (h/tau_syn)^5/120 of a PSC for tau_syn_ex = 0.2 ms) where NESTML
  propagates them exactly (measured 5e-7-1.2e-6 mV for 5-12 mV excursions).
  Criterion: subthreshold V within 1e-5 mV (a 10x margin over the spike-input
  value; a PSC wrong by 1e-4 of its size moves V by more).
* With NEST's tolerance set on the twin (gsl_abs_error_tol 1e-3,
  gsl_rel_error_tol 0) and current input, both integrate the same right-hand
  side with the same step control: V within 1e-5 mV over 10 s with spikes
  (measured 4e-7 mV noise, 9e-8 mV DC steps); only the order of floating-point
  operations differs.
* hh_psc_exp_nestml: a PSC of weight w is w exp(-t/tau_syn) to 1e-9 relative
  (charge w tau_syn), inhibitory negative; under DC its membrane equals
  hh_psc_alpha_nestml's (same GSL steps: the unused synaptic states are 0).
  Measured: V and gates identical (difference 0).
* hh_psc_exp_fast_nestml vs hh_psc_exp_nestml: >= 99 % of the spikes paired
  one-to-one within one step over 10 s at 2-20 Hz (issue 15's criterion).
  Measured: 543/543 (noisy current, 1.6-19 Hz) and 443/443 (shot noise of
  87.8 pA / -351.2 pA PSCs, 2.9-18 Hz); with whole RK4 steps only (substeps
  = 1) 1.3 % and 2.7 % (the spike is unstable at h = 0.1 ms).
  Subthreshold V: max 2e-4 mV, RMS 2e-5 mV (measured max 2e-5-1.3e-4 mV, RMS
  3e-6-7e-6 mV). Why: the fast model's own error dominates. Against a
  converged reference (RK4 at h/20) its V under PD14-like shot noise is off by
  max 6.6e-5 mV (RMS 6.8e-6 mV), RK4's O(h^4) error at h = 0.1 ms where each
  PSC starts; the GSL model's by 6.9e-6 mV. The bound leaves ~1.5-3x margin.
"""

from pathlib import Path

import cortexzoo.models
import numpy as np
import pytest
from twin_helpers import (dc_steps, matched_spikes, max_spike_shift, nestml_interface, noisy_current, run_pair,
                          simulate_pairs)

H = 0.1
T_SIM_MS = 10_000.0
PSC_PA = 87.8  # PD14's reference PSC
MIN_MATCHED = 0.99
NEST_TOLERANCE = {"gsl_abs_error_tol": 1e-3, "gsl_rel_error_tol": 0.0}  # hh_psc_alpha's GSL control
GATES = ("V_m", "Act_m", "Inact_h", "Act_n")

TWIN_DRIVES = {
    "noise": {"currents": [noisy_current(0.0, 200.0)]},
    "dc_steps": {"currents": [dc_steps(700.0)]},
    "spikes": {"spikes": {"exc_rate": 6000.0, "inh_rate": 1500.0, "exc_weight": 100.0, "inh_weight": -100.0}},
}


def twin(nest, drive: dict, builtin_extra=None, nestml_extra=None) -> dict:
    """hh_psc_alpha and hh_psc_alpha_nestml side by side (NEST's defaults), V and gates recorded."""
    return run_pair(nest, "hh_psc_alpha", dict(builtin_extra or {}), "hh_psc_alpha_nestml",
                    {**(builtin_extra or {}), **(nestml_extra or {})}, record=GATES, **drive)


def max_dv(r: dict) -> float:
    """Largest |V| difference of a :func:`run_pair` result."""
    return float(np.max(np.abs(r["traces_builtin"]["V_m"] - r["traces_nestml"]["V_m"])))


@pytest.mark.parametrize("drive", sorted(TWIN_DRIVES))
def test_alpha_twin_spike_times(nest_kernel, drive):
    """The same spikes as NEST's hh_psc_alpha within one step over 10 s.

    Fails for a wrong rate function, conductance or sign in the membrane
    equation, a wrong spike rule (threshold test only, > instead of >=, a test
    before the peak), a PSC not normalised to 1 pA peak (e/tau), an exc/inh port
    mix-up or an inhibitory weight with the wrong sign, and I_stim a step early.
    """
    r = twin(nest_kernel, TWIN_DRIVES[drive])
    print(f"\n{drive}: {len(r['spikes_builtin'])} spikes, max shift "
          f"{max_spike_shift(r['spikes_builtin'], r['spikes_nestml']):.3f} ms, max |dV| {max_dv(r):.2e} mV")
    assert len(r["spikes_builtin"]) > 50, "the drive must make the neuron fire"
    assert max_spike_shift(r["spikes_builtin"], r["spikes_nestml"]) <= H + 1e-9


@pytest.mark.parametrize("drive", ["noise", "dc_steps"])
def test_alpha_twin_with_nests_tolerance_follows_the_same_trajectory(nest_kernel, drive):
    """With NEST's GSL tolerance and current input, V within 1e-5 mV of hh_psc_alpha's over 10 s of spiking.

    The same right-hand side and step control give the same steps, so any
    difference in the equations (a rate constant, the gates' initial values at
    -65 mV, E_L, a conductance), however small, shows here even where it moves
    no spike. Also fails if t_ref = 20 ms is ignored: then spikes appear that
    NEST's rule (no detection for t_ref after a spike) suppresses.
    """
    extra = {"t_ref": 20.0} if drive == "dc_steps" else {}
    r = twin(nest_kernel, TWIN_DRIVES[drive], builtin_extra=extra, nestml_extra=NEST_TOLERANCE)
    print(f"\n{drive}: max |dV| {max_dv(r):.2e} mV")
    assert len(r["spikes_builtin"]) > 50
    assert np.array_equal(r["spikes_builtin"], r["spikes_nestml"])
    assert max_dv(r) <= 1e-5
    for gate in GATES[1:]:
        assert np.max(np.abs(r["traces_builtin"][gate] - r["traces_nestml"][gate])) <= 1e-6


@pytest.mark.parametrize("drive", ["noise", "spikes"])
def test_alpha_twin_subthreshold_v(nest_kernel, drive):
    """Without spikes, V within 1e-5 mV of hh_psc_alpha's over 10 s (see the module docstring).

    Fails for alpha PSCs with the wrong shape or time constant (a port's own
    tau_syn), spike input applied a step early or late, or a wrong gate steady
    state (the resting V would drift apart).
    """
    drives = {"noise": {"currents": [noisy_current(0.0, 60.0)]},
              "spikes": {"spikes": {"exc_rate": 500.0, "inh_rate": 200.0, "exc_weight": 80.0,
                                    "inh_weight": -80.0}}}
    r = twin(nest_kernel, drives[drive])
    print(f"\n{drive}: max |dV| {max_dv(r):.2e} mV, V range {np.ptp(r['traces_builtin']['V_m']):.1f} mV")
    assert len(r["spikes_builtin"]) == len(r["spikes_nestml"]) == 0, "the drive must stay subthreshold"
    assert np.ptp(r["traces_builtin"]["V_m"]) > 2.0, "the drive must move V"
    assert max_dv(r) <= 1e-5


def test_exp_psc_carries_w_tau_syn(nest_kernel):
    """One PSC of hh_psc_exp_nestml is w exp(-t/tau_syn) pA from the step it arrives: charge w tau_syn.

    Fails for a PSC normalised otherwise (e.g. an alpha or a charge-normalised
    kernel), a port using the other port's tau_syn, an inhibitory weight whose
    sign is flipped or dropped, or a spike acting a step early or late.
    """
    nest = nest_kernel
    n = nest.Create("hh_psc_exp_nestml", params={"tau_syn_exc": 0.5, "tau_syn_inh": 2.0})
    ports = n.get("receptor_types")
    for t, w, port in ((10.0, 300.0, "EXC_SPIKES"), (30.0, -200.0, "INH_SPIKES")):
        sg = nest.Create("spike_generator", params={"spike_times": [t]})
        nest.Connect(sg, n, syn_spec={"weight": w, "delay": 1.0, "receptor_type": ports[port]})
    mm = nest.Create("multimeter", params={"record_from": ["I_syn_exc", "I_syn_inh"], "interval": H})
    nest.Connect(mm, n)
    nest.Simulate(60.0)
    times = mm.events["times"]
    for name, t_arrive, w, tau in (("I_syn_exc", 11.0, 300.0, 0.5), ("I_syn_inh", 31.0, -200.0, 2.0)):
        expected = np.where(times >= t_arrive - 1e-9, w * np.exp(-(times - t_arrive) / tau), 0.0)
        assert np.allclose(mm.events[name], expected, rtol=1e-9, atol=1e-9), name
        # the exact integral of the recorded exponential: w tau_syn
        first = np.argmax(times >= t_arrive - 1e-9)
        q = mm.events[name][first + 1] / mm.events[name][first]
        assert mm.events[name][first] * H / -np.log(q) == pytest.approx(w * tau, rel=1e-9)


def test_exp_and_alpha_membranes_agree_under_dc(nest_kernel):
    """Under DC steps (no synaptic input) hh_psc_exp_nestml's V equals hh_psc_alpha_nestml's to 1e-9 mV.

    The two files share the membrane; fails if one of them gets a different
    rate function, parameter default, initial state or spike rule.
    """
    nest = nest_kernel
    pair = nest.Create("hh_psc_alpha_nestml") + nest.Create("hh_psc_exp_nestml")
    nest.Connect(nest.Create("step_current_generator", params=dc_steps(700.0)), pair)
    sr = nest.Create("spike_recorder", 2)
    mm = nest.Create("multimeter", 2, params={"record_from": list(GATES), "interval": H})
    for k in range(2):
        nest.Connect(pair[k], sr[k])
        nest.Connect(mm[k], pair[k])
    nest.Simulate(T_SIM_MS)
    print(f"\nmax |dV| {np.max(np.abs(mm[0].events['V_m'] - mm[1].events['V_m'])):.2e} mV")
    assert len(sr[0].events["times"]) > 50
    assert np.array_equal(sr[0].events["times"], sr[1].events["times"])
    for gate in GATES:
        assert np.max(np.abs(mm[0].events[gate] - mm[1].events[gate])) <= 1e-9, gate


# (mean, sd) of the noisy current in pA, or (exc, inh) Poisson rates in Hz; ~2-20 Hz each.
FAST_DRIVES = {
    "noise": [(0.0, 150.0), (0.0, 200.0), (0.0, 250.0), (-200.0, 220.0), (-200.0, 260.0), (100.0, 180.0)],
    "spikes": [(3000.0, 600.0), (5000.0, 1000.0), (6000.0, 1000.0), (7000.0, 1000.0)],
}


def run_fast_pairs(nest, drives, kind: str, fast_extra=None, record: bool = False) -> list:
    """One hh_psc_exp_nestml and one hh_psc_exp_fast_nestml per drive, the same input each.

    Parameters
    ----------
    nest : module
        A reset NEST kernel with the cortexzoo module installed.
    drives : list of tuple
        ``(mean, sd)`` in pA for ``kind == "noise"``, ``(exc_rate, inh_rate)`` in Hz for "spikes"
        (PSCs of 87.8 pA and -4 x 87.8 pA, PD14's).
    kind : {"noise", "spikes"}
    fast_extra : dict, optional
        Parameters of the fast model (its numerics).
    record : bool
        Record V_m of every neuron at every step.

    Returns
    -------
    list of dict
        Per drive: ``gsl`` and ``fast`` spike times (ms) and, if recorded, ``V_gsl`` and ``V_fast``.
    """
    n = len(drives)
    models = {"gsl": nest.Create("hh_psc_exp_nestml", n),
              "fast": nest.Create("hh_psc_exp_fast_nestml", n, params=dict(fast_extra or {}))}
    ports = models["fast"][0].get("receptor_types")
    for k, drive in enumerate(drives):
        pair = models["gsl"][k] + models["fast"][k]
        if kind == "noise":
            nest.Connect(nest.Create("step_current_generator", params=noisy_current(*drive, seed=100 + k)), pair)
            continue
        for rate, weight, port in ((drive[0], PSC_PA, "EXC_SPIKES"), (drive[1], -4 * PSC_PA, "INH_SPIKES")):
            parrot = nest.Create("parrot_neuron")
            nest.Connect(nest.Create("poisson_generator", params={"rate": rate}), parrot)
            nest.Connect(parrot, pair, syn_spec={"weight": weight, "delay": 1.0, "receptor_type": ports[port]})
    return simulate_pairs(nest, models, T_SIM_MS, ("V_m",) if record else ())


def matched_fraction(results) -> tuple:
    """Fraction of all spikes of ``results`` (from :func:`run_fast_pairs`) paired within one step."""
    counts = np.array([matched_spikes(r["gsl"], r["fast"]) for r in results])
    return counts[:, 0].sum() / max(counts[:, 1].sum(), 1), counts


@pytest.mark.parametrize("kind", ["noise", "spikes"])
def test_fast_spike_times_match_the_gsl_hh(nest_kernel, kind):
    """>= 99 % of the spikes within one step of hh_psc_exp_nestml (GSL), 2-20 Hz, 10 s (issue 15).

    Fails for a wrong RK4 stage or weight, a wrong power of u in the shared
    rate exponentials (beta_n, alpha_h, beta_m), synaptic currents taken at the
    wrong stage times or decaying with the other port's tau_syn, a step that
    ends above V_substep but is not redone with sub-steps, or a wrong spike rule.
    """
    results = run_fast_pairs(nest_kernel, FAST_DRIVES[kind], kind)
    rates = [len(r["gsl"]) / (T_SIM_MS / 1000.0) for r in results]
    fraction, counts = matched_fraction(results)
    print(f"\n{kind}: rates {np.round(rates, 1)} Hz, matched {counts[:, 0].sum()}/{counts[:, 1].sum()} = {fraction:.4f}")
    assert min(rates) >= 1.0 and max(rates) <= 25.0, f"drives must give PD14-like rates, got {rates}"
    assert fraction >= MIN_MATCHED, counts


def test_without_substeps_the_fast_hh_fails(nest_kernel):
    """Control: whole RK4 steps (substeps = 1) through the spike miss the criterion, so it can catch that bug.

    Measured: 1.3 % of the spikes within one step (RK4 is unstable at
    h = 0.1 ms where the membrane rate reaches ~50/ms).
    """
    fraction, counts = matched_fraction(run_fast_pairs(nest_kernel, FAST_DRIVES["noise"][:3], "noise",
                                                       fast_extra={"substeps": 1}))
    assert fraction < MIN_MATCHED, counts


@pytest.mark.parametrize("kind", ["noise", "spikes"])
def test_fast_subthreshold_v_matches_the_gsl_hh(nest_kernel, kind):
    """Without spikes, V within max 2e-4 mV and RMS 2e-5 mV of the GSL HH's over 10 s (see the header).

    Fails for errors in the gates' rate functions or the synaptic propagators
    that are too small to move spikes, and for spike or I_stim input a step
    early or late.
    """
    drives = {"noise": [(0.0, 60.0), (-100.0, 80.0)], "spikes": [(1000.0, 200.0), (800.0, 150.0)]}[kind]
    for r in run_fast_pairs(nest_kernel, drives, kind, record=True):
        assert len(r["gsl"]) == len(r["fast"]) == 0, "the drive must stay subthreshold"
        assert np.ptp(r["V_gsl"]) > 2.0, "the drive must move V"
        dv = r["V_fast"] - r["V_gsl"]
        print(f"\n{kind}: max |dV| {np.abs(dv).max():.2e} mV, RMS {np.sqrt(np.mean(dv**2)):.2e} mV")
        assert np.abs(dv).max() <= 2e-4 and np.sqrt(np.mean(dv**2)) <= 2e-5


def test_fast_hh_has_the_gsl_hhs_interface(nest_kernel):
    """Parameters (names, units, defaults), state and ports equal hh_psc_exp_nestml's (but the numerics).

    The catalogue can then give both variants the same cells; fails if either
    file gains, loses or renames a parameter, state variable or port, or
    changes a unit or a default.
    """
    folder = Path(cortexzoo.models.__file__).resolve().parent
    gsl = nestml_interface(folder / "hh_psc_exp_nestml.nestml")
    fast = nestml_interface(folder / "hh_psc_exp_fast_nestml.nestml")
    assert fast[0] == {**gsl[0], "substeps": "integer", "V_substep": "mV"}
    assert fast[1:] == gsl[1:]
    defaults = [nest_kernel.GetDefaults(m) for m in ("hh_psc_exp_nestml", "hh_psc_exp_fast_nestml")]
    assert {k: defaults[1][k] for k in gsl[0]} == {k: defaults[0][k] for k in gsl[0]}
    assert defaults[0]["receptor_types"] == defaults[1]["receptor_types"]
