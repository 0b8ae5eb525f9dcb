"""Conductance-based synapses in the PD14 core (issue 15): the weight map and its use by the network.

The map (models_nestml/conductance.py) must give a conductance synapse the
reference PSC's charge at its target population's working-point voltage, keep
PD14's sign convention (inhibitory weights negative) and be applied per target
population and source type by the network.
"""

import numpy as np
import pytest

from cortexzoo.errors import CortexzooError
from cortexzoo.models import get_model
from cortexzoo.models.catalogue import _conductance_map
from cortexzoo.models.conductance import conductance_factors, conductance_map, lif_depolarisation_mV
from cortexzoo.network.params import load_pd14

PSC_PA = 87.8
COND_MODELS = ["iaf_cond_exp", "iaf_cond_exp_nestml", "aeif_cond_exp_nestml"]


def _psp_integral(nest, model, params, weight, t_ms=60.0):
    """Integral (mV ms) of the PSP of one spike of ``weight`` onto a neuron at rest."""
    neuron = nest.Create(model, params=params)
    t0 = nest.biological_time  # both neurons are measured in one kernel, one after the other
    sg = nest.Create("spike_generator", params={"spike_times": [t0 + 1.0]})
    nest.Connect(sg, neuron, syn_spec={"weight": weight})
    vm = nest.Create("voltmeter", params={"interval": 0.1})
    nest.Connect(vm, neuron)
    nest.Simulate(t_ms)
    assert len(vm.get("events")["V_m"]) > 0
    v = np.asarray(vm.get("events")["V_m"])
    return float(np.sum(v - params["E_L"]) * 0.1)


@pytest.mark.parametrize("source_type", ["E", "I"])
def test_conductance_synapse_carries_the_reference_charge_at_the_working_point(nest_kernel, source_type):
    """A mapped conductance spike onto iaf_cond_exp resting at V_wp gives the LIF's PSP integral.

    Catches a wrong driving force in the map (E_rev instead of E_rev - V, the
    inhibitory one with the wrong sign, the resting instead of the working-point
    V): each changes the integral by far more than the 0.5 % allowed. Small
    weights (1 % of a PSC) keep V near V_wp, so the driving force is constant to
    < 0.1 %.
    """
    nest = nest_kernel
    spec = get_model("iaf_cond_exp")
    pop = "L4E"
    V_wp = spec.params_for(pop, "E")["E_L"] + lif_depolarisation_mV()[pop]
    ref = 0.01 * PSC_PA * (1 if source_type == "E" else -4)
    w_cond = spec.weight(ref, "E", pop, source_type)
    cond = {**spec.params_for(pop, "E"), "E_L": V_wp, "V_m": V_wp, "V_th": 0.0, "tau_syn_ex": 0.5, "tau_syn_in": 0.5}
    lif = {"C_m": 250.0, "tau_m": 10.0, "E_L": V_wp, "V_m": V_wp, "V_th": 0.0, "tau_syn_ex": 0.5, "tau_syn_in": 0.5}
    got = _psp_integral(nest, "iaf_cond_exp", cond, w_cond)
    want = _psp_integral(nest, "iaf_psc_exp", lif, ref)
    assert np.sign(w_cond) == np.sign(ref)
    assert got == pytest.approx(want, rel=5e-3)


@pytest.mark.parametrize("name", COND_MODELS)
def test_stored_conductance_map_matches_the_model_and_working_points(name):
    """The catalogue's conductance_per_reference_psc equals the map recomputed from its parameters.

    Catches a catalogue whose reversal or resting potential was edited (or whose
    working points were re-measured) without re-running
    ``python -m cortexzoo.experiments.conductance_table <model> --write``: the network
    would then give the old charge.
    """
    spec = get_model(name)
    pd14 = load_pd14()
    recomputed = conductance_map(spec, dict(zip(pd14["populations"], pd14["cell_types"])), lif_depolarisation_mV())
    for which in ("exc", "inh"):
        for pop, factor in recomputed[which].items():
            assert spec.conductance_map[which][pop] == pytest.approx(factor, rel=1e-5), (which, pop)


def test_network_connects_conductances_per_target_population_and_source(nestml_module):
    """In a built network every recurrent weight is the reference PSC over its target's driving force.

    Catches the network indexing the map by the source population instead of
    the target, using the excitatory factor for inhibitory sources, losing the
    negative sign of inhibitory weights, or mapping the DC background as a
    conductance. Expected values are computed here from the working-point CSV
    and the reversal potentials, not from the catalogue's stored map.
    """
    from cortexzoo.network.params import parse_run_config
    from cortexzoo.network.pd14 import build_network

    config = parse_run_config({"simulation": {"threads": 1}, "neuron": {"model": "iaf_cond_exp"},
                               "network": {"N_scaling": 0.02, "K_scaling": 0.05, "k_compensation": "reference_rates"}})
    nest, nodes, spec, net = build_network(config)
    depol = lif_depolarisation_mV()
    params = spec.params_for("L4E", "E")
    for i, j in [(net.populations.index("L4E"), net.populations.index("L23E")),
                 (net.populations.index("L4E"), net.populations.index("L4I")),
                 (net.populations.index("L5I"), net.populations.index("L4E"))]:
        V = params["E_L"] + depol[net.populations[i]]
        force = (params["E_ex"] - V) if net.cell_types[j] == "E" else (V - params["E_in"])
        conns = nest.GetConnections(nodes.populations[j], nodes.populations[i])
        w = np.asarray(conns.get("weight"))
        expected = net.weight_mean_pA[i, j] / force
        assert np.sign(w).tolist() == [np.sign(expected)] * len(w)
        assert w.mean() == pytest.approx(expected, rel=0.05)  # 10 % relative SD over hundreds of synapses
    bias = np.asarray(nodes.populations[0].get("I_e"))
    assert bias == pytest.approx(net.dc_pA[0])  # a current: not divided by a driving force


def test_bad_conductance_inputs_name_the_problem():
    """A working point outside the reversal potentials, or a malformed catalogue table, is refused by name.

    Catches a map that silently returns negative (sign-flipping) factors, and a
    catalogue table missing its inhibitory part or holding a non-positive factor.
    """
    with pytest.raises(CortexzooError, match="not between E_inh"):
        conductance_factors(0.0, -85.0, -90.0)
    with pytest.raises(CortexzooError, match="exactly 'exc' and 'inh'"):
        _conductance_map({"exc": {"L4E": 0.01}}, "test")
    with pytest.raises(CortexzooError, match="positive numbers"):
        _conductance_map({"exc": {"L4E": 0.01}, "inh": {"L4E": -0.02}}, "test")
    with pytest.raises(CortexzooError, match="voltage"):
        lif_depolarisation_mV("mean")


def test_conductance_adex_uses_the_published_adex_cells():
    """aeif_cond_exp_nestml's E and I cells are the ones cell_types.toml publishes for the AdEx.

    Catches the copies in catalogue.toml drifting from their sourced originals (a corrected
    cell_types.toml value that the conductance AdEx would not get), and an input scale that no
    longer equals the current-based AdEx's published one for the same cells.
    """
    import tomllib

    from cortexzoo.models.rules import CELL_TYPES_PATH
    from cortexzoo.models.units import to_nest

    published = tomllib.loads(CELL_TYPES_PATH.read_text())["aeif_psc_exp_nestml"]
    cond, psc = get_model("aeif_cond_exp_nestml"), get_model("aeif_psc_exp_nestml", "published")
    for cell_type in ("E", "I"):
        params = cond.params_for(cell_type=cell_type)
        for key, value in published[cell_type].items():
            assert params[key] == pytest.approx(to_nest(value)), (cell_type, key)
        assert cond.scale_for(cell_type) == pytest.approx(psc.scale_for(cell_type), rel=1e-4)


def test_conductance_table_command_prints_the_map_and_refuses_a_current_model():
    """Catches the command printing another map than the catalogue holds, and a current-based model
    (no reversal potentials) getting a conductance map instead of an error naming the missing roles."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "cortexzoo.experiments.conductance_table"]
    done = subprocess.run([*cmd, "iaf_cond_exp"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    stored = get_model("iaf_cond_exp").conductance_map["exc"]["L4E"]
    assert f"L4E={stored:.6g}" in done.stdout
    bad = subprocess.run([*cmd, "iaf_psc_exp"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "reversal_exc" in bad.stderr
