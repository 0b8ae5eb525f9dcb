"""Every catalogue model can be created in NEST with its PD14 parameters, and
its exc/inh receptor lookups resolve (NESTML ports: receptor types 1 and 2)."""

import pytest

from cortexzoo.models import load_catalogue

CATALOGUE = load_catalogue()


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_model_creates_with_pd14_params(nest_kernel, name):
    spec = CATALOGUE[name]
    nest = nest_kernel
    for cell_type in ("E", "I"):
        params = spec.params_for(population=None, cell_type=cell_type)
        neuron = nest.Create(spec.nest_model, params=params)
        status = neuron.get()
        for key, value in params.items():
            assert status[key] == pytest.approx(value), f"{name}.{key}"
        assert status[spec.role("tau_syn_exc")] is not None
        rtypes = status.get("receptor_types", {})
        exc, inh = spec.receptor("exc", rtypes), spec.receptor("inh", rtypes)
        if spec.is_nestml:
            assert (exc, inh) == (1, 2)
        else:
            assert (exc, inh) == (0, 0)
        # a spike through each port must be accepted
        sg = nest.Create("spike_generator", params={"spike_times": [1.0]})
        nest.Connect(sg, neuron, syn_spec={"receptor_type": exc, "weight": 10.0})
        nest.Connect(sg, neuron, syn_spec={"receptor_type": inh, "weight": -10.0})
    nest.Simulate(5.0)
