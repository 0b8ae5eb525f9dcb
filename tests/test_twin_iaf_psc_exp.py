"""Twin test: NESTML iaf_psc_exp_nestml against NEST's built-in iaf_psc_exp.

Both neurons get the same PD14 parameters and the very same input spikes
(through parrot neurons) and the same current; spike times must be identical
and membrane traces agree to 1e-6 mV over 10 s.
"""

import numpy as np
import pytest

from cortexzoo.models import get_model
from twin_helpers import noisy_current

VOLTAGE_TOLERANCE_MV = 1e-6  # both use exact integration; only round-off may differ


def create_twins(nest, t_ref_ms=2.0):
    """One built-in and one NESTML LIF with PD14 parameters, tau_syn 0.5 ms, V at E_L.

    Returns
    -------
    dict
        Catalogue name -> (ModelSpec, NodeCollection).
    """
    neurons = {}
    for spec in (get_model("iaf_psc_exp"), get_model("iaf_psc_exp_nestml")):
        params = {**spec.params_for(), "t_ref": t_ref_ms, spec.role("tau_syn_exc"): 0.5,
                  spec.role("tau_syn_inh"): 0.5}
        params[spec.role("membrane_potential")] = params["E_L"]
        neurons[spec.name] = (spec, nest.Create(spec.nest_model, params=params))
    return neurons


def run_twins(nest, rate_exc_hz, rate_inh_hz, w_exc_pA, w_inh_pA, dc_times, dc_values, t_sim_ms=10_000.0,
              t_ref_ms=2.0):
    """Simulate the built-in and the NESTML LIF side by side on identical input."""
    neurons = create_twins(nest, t_ref_ms)

    exc_src = nest.Create("poisson_generator", params={"rate": rate_exc_hz})
    inh_src = nest.Create("poisson_generator", params={"rate": rate_inh_hz})
    exc_parrot, inh_parrot = nest.Create("parrot_neuron"), nest.Create("parrot_neuron")
    nest.Connect(exc_src, exc_parrot)
    nest.Connect(inh_src, inh_parrot)
    dc = nest.Create("step_current_generator", params={"amplitude_times": dc_times, "amplitude_values": dc_values})

    recorders = {}
    for name, (spec, node) in neurons.items():
        types = nest.GetDefaults(spec.nest_model).get("receptor_types", {})
        nest.Connect(exc_parrot, node, syn_spec={"weight": w_exc_pA, "receptor_type": spec.receptor("exc", types)})
        nest.Connect(inh_parrot, node, syn_spec={"weight": w_inh_pA, "receptor_type": spec.receptor("inh", types)})
        nest.Connect(dc, node)
        sr = nest.Create("spike_recorder")
        mm = nest.Create("multimeter", params={"record_from": [spec.role("membrane_potential")], "interval": 0.1})
        nest.Connect(node, sr)
        nest.Connect(mm, node)
        recorders[name] = (sr, mm, spec.role("membrane_potential"))
    nest.Simulate(t_sim_ms)
    out = {}
    for name, (sr, mm, vname) in recorders.items():
        out[name] = (sr.events["times"], mm.events["times"], mm.events[vname])
    return out["iaf_psc_exp"], out["iaf_psc_exp_nestml"]


def assert_twins(ref, cz, min_spikes):
    (s_ref, t_ref, v_ref), (s_cz, t_cz, v_cz) = ref, cz
    assert len(s_ref) >= min_spikes, "the drive must make the neuron fire for the test to mean anything"
    np.testing.assert_array_equal(s_cz, s_ref)
    np.testing.assert_array_equal(t_cz, t_ref)
    assert np.max(np.abs(v_cz - v_ref)) <= VOLTAGE_TOLERANCE_MV


def test_poisson_input_and_dc_step(nest_kernel):
    """PD14-like Poisson drive (87.8 pA, g = -4) plus a DC step: identical spikes, traces within 1e-6 mV."""
    ref, cz = run_twins(nest_kernel, rate_exc_hz=9000.0, rate_inh_hz=1800.0, w_exc_pA=87.8, w_inh_pA=-351.2,
                        dc_times=[2000.0, 6000.0], dc_values=[250.0, 0.0])
    assert_twins(ref, cz, min_spikes=20)


def test_refractoriness_and_strong_inhibition(nest_kernel):
    """Long refractoriness, strong DC and strong inhibition: clamping and negative currents agree."""
    ref, cz = run_twins(nest_kernel, rate_exc_hz=3000.0, rate_inh_hz=200.0, w_exc_pA=150.0, w_inh_pA=-4000.0,
                        dc_times=[0.1, 5000.0], dc_values=[900.0, 1500.0], t_ref_ms=5.0)
    (s_ref, _, v_ref) = ref
    isis = np.diff(s_ref)
    assert isis.min() >= 5.0 - 1e-9, "refractory period must be respected"
    assert v_ref.min() < -68.0, "inhibition must pull V below rest for this case to test it"
    assert_twins(ref, cz, min_spikes=200)


@pytest.mark.parametrize("seed", [1, 7])
def test_twins_independent_of_seed(nest_kernel, seed):
    """The agreement is not an accident of one input realisation."""
    nest_kernel.rng_seed = seed
    ref, cz = run_twins(nest_kernel, rate_exc_hz=12000.0, rate_inh_hz=1500.0, w_exc_pA=87.8, w_inh_pA=-351.2,
                        dc_times=[1000.0], dc_values=[200.0], t_sim_ms=3000.0)
    assert_twins(ref, cz, min_spikes=5)


def test_shared_input_ring_across_delays_and_simulate_calls(nest_kernel):
    """Inputs on both ports and the current at many delays, simulated in pieces.

    cortexzoo's build keeps all inputs of a NESTML neuron in one slot-major ring
    (models_nestml/cpp/cortexzoo_input_ring.h). Spikes with delays from 0.1 to
    9.7 ms land in different slots of the same ring, and the run is split into
    Simulate calls of odd lengths, so spikes are in flight whenever the ring is
    re-prepared (it must keep them). The NESTML LIF must stay identical to the
    built-in.
    """
    nodes, recorders = create_twins(nest_kernel), {}
    exc = nest_kernel.Create("poisson_generator", params={"rate": 6000.0})
    inh = nest_kernel.Create("poisson_generator", params={"rate": 1500.0})
    parrots = nest_kernel.Create("parrot_neuron", 2)
    nest_kernel.Connect(exc, parrots[0])
    nest_kernel.Connect(inh, parrots[1])
    noise = nest_kernel.Create("step_current_generator",
                               params=noisy_current(150.0, 150.0, seed=3, dt_ms=5.0, t_sim_ms=2000.0))
    for spec, node in nodes.values():
        types = nest_kernel.GetDefaults(spec.nest_model).get("receptor_types", {})
        for d in (0.1, 1.5, 4.0, 9.7):
            nest_kernel.Connect(parrots[0], node, syn_spec={"weight": 60.0, "delay": d,
                                                            "receptor_type": spec.receptor("exc", types)})
            nest_kernel.Connect(parrots[1], node, syn_spec={"weight": -120.0, "delay": d,
                                                            "receptor_type": spec.receptor("inh", types)})
        nest_kernel.Connect(noise, node)
        sr = nest_kernel.Create("spike_recorder")
        mm = nest_kernel.Create("multimeter", params={"record_from": [spec.role("membrane_potential")]})
        nest_kernel.Connect(node, sr)
        nest_kernel.Connect(mm, node)
        recorders[spec.name] = (sr, mm, spec.role("membrane_potential"))
    for piece in (137.3, 0.1, 862.6, 1000.0):
        nest_kernel.Simulate(piece)

    (s_ref, v_ref), (s_cz, v_cz) = (
        (sr.events["times"], mm.events[v]) for sr, mm, v in (recorders["iaf_psc_exp"], recorders["iaf_psc_exp_nestml"]))
    assert len(s_ref) >= 20 and np.sum(s_ref > 1000.0) >= 10, "the neuron must fire in both runs"
    np.testing.assert_array_equal(s_cz, s_ref)
    assert np.max(np.abs(v_cz - v_ref)) <= VOLTAGE_TOLERANCE_MV
