"""Every catalogue model can be created in NEST with its PD14 parameters, and the
parameters and ports the catalogue names for the network's roles do what the
network relies on: exc/inh ports raise/lower the membrane potential, the
synaptic time constants shape the PSP, the bias current depolarises."""

import pytest

from cortexzoo.models import load_catalogue

CATALOGUE = load_catalogue()
TAU_SYN_MS = 0.5  # PD14's synaptic time constant, which the network sets through the roles
PSC_PA = 87.8  # PD14's reference PSC (0.15 mV PSP for the LIF): far below threshold for every model


def _probe_neurons(nest, spec, cell_type):
    """Six neurons of one cell type: rest, exc spike (fast/slow tau), inh spike (fast/slow tau), bias."""
    params = spec.params_for(population=None, cell_type=cell_type)
    tau_exc, tau_inh, bias = (spec.role(r) for r in ("tau_syn_exc", "tau_syn_inh", "bias_current"))
    variants = {
        "rest": {},
        "exc": {}, "exc_slow": {tau_exc: 4 * TAU_SYN_MS},
        "inh": {}, "inh_slow": {tau_inh: 4 * TAU_SYN_MS},
        "bias": {bias: 50.0 * spec.scale_for(cell_type)},
    }
    neurons = {}
    for label, extra in variants.items():
        neurons[label] = nest.Create(spec.nest_model, params={**params, tau_exc: TAU_SYN_MS, tau_inh: TAU_SYN_MS,
                                                              **extra})
    return params, neurons


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_model_roles_and_ports_act_as_the_network_assumes(nest_kernel, name):
    """Create each model with its PD14 parameters and probe every role and port.

    Fails for a catalogue entry whose PD14 parameters NEST does not take as
    written, whose ``[ports]`` are swapped or point at the wrong receptor (an
    excitatory spike would not depolarise), whose ``tau_syn_exc``/``tau_syn_inh``
    role names a parameter that is not that port's synaptic time constant (a
    slower synapse would not give a larger PSP), whose ``bias_current`` role is
    not an input current, or whose ``membrane_potential`` role is not the
    variable those inputs move.
    """
    spec = CATALOGUE[name]
    nest = nest_kernel
    v_m = spec.role("membrane_potential")
    probes = {}
    for cell_type in ("E", "I"):
        params, neurons = _probe_neurons(nest, spec, cell_type)
        for key, value in params.items():
            assert neurons["rest"].get(key) == pytest.approx(value), f"{name}.{key}"
        rtypes = neurons["rest"].get("receptor_types") if spec.is_nestml else {}
        exc, inh = spec.receptor("exc", rtypes), spec.receptor("inh", rtypes)
        assert (exc, inh) == ((1, 2) if spec.is_nestml else (0, 0))
        sg = nest.Create("spike_generator", params={"spike_times": [1.0]})
        # the network's weight map: the rule's input scale (a published Izhikevich 2003 cell: ~0.03),
        # or nS per pA for a conductance-based model (of an L4 population of the cell type)
        pop = f"L4{cell_type}"
        for label in ("exc", "exc_slow"):
            w = spec.weight(PSC_PA, cell_type, pop, source_type="E")
            nest.Connect(sg, neurons[label], syn_spec={"receptor_type": exc, "weight": w})
        for label in ("inh", "inh_slow"):
            w = spec.weight(-PSC_PA, cell_type, pop, source_type="I")
            nest.Connect(sg, neurons[label], syn_spec={"receptor_type": inh, "weight": w})
        probes[cell_type] = neurons
    nest.Simulate(6.0)  # spike arrives at 2 ms; read 4 ms later, near the PSP's peak
    for cell_type, neurons in probes.items():
        v = {label: neurons[label].get(v_m) for label in neurons}
        where = f"{name} ({cell_type})"
        assert v["inh_slow"] < v["inh"] < v["rest"] < v["exc"] < v["exc_slow"], (where, v)
        assert v["bias"] > v["rest"], (where, v)
