"""Calibration rules in the catalogue: chosen by config, applied per cell type, part of a run's identity.

A copy of the catalogue (``CORTEXZOO_CATALOGUE``) gives MAT2 hand-written rule
tables with values that cannot occur by accident (input scales 0.5 / 2,
a 40 pA bias for E cells only), so every assertion can tell a rule that was
applied from one that was ignored.
"""

import numpy as np
import pytest
import tomlkit

from cortexzoo.errors import CortexzooError
from cortexzoo.models.catalogue import CATALOGUE_PATH, get_model, model_rules, model_spec
from cortexzoo.network.identity import run_identity
from cortexzoo.network.params import parse_run_config

MODEL = "mat2_psc_exp_nestml"
TINY_NETWORK = {"N_scaling": 0.01, "K_scaling": 0.1, "background": "poisson", "k_compensation": "reference_rates"}


@pytest.fixture
def catalogue(tmp_path, monkeypatch):
    """The shipped catalogue with MAT2 rules ``published`` (scales by type) and ``operating_point`` (bias, omega)."""
    doc = tomlkit.parse(CATALOGUE_PATH.read_text())
    entry = doc["models"][MODEL]
    entry.pop("rules", None)
    # a base cell of its own (the shipped entry keeps its cells in the rule tables only)
    entry["pd14"] = {"C_m": "250 pF", "tau_m": "10 ms", "E_L": "-65 mV", "t_ref": "2 ms", "tau_1": "10 ms",
                     "tau_2": "200 ms", "alpha_1": "30 mV", "alpha_2": "2 mV", "omega": "-45 mV"}
    entry["default_rule"] = "operating_point"
    rules = tomlkit.table(is_super_table=True)
    rules["published"] = {"weights": {"psc_per_reference_psc": {"E": 0.5, "I": 2.0}},
                          "provenance": {"method": "test"}}
    rules["operating_point"] = {"bias": {"E": "40 pA"}, "pd14": {"omega": "-51 mV"},
                                "pd14_by_type": {"I": {"alpha_1": "11 mV"}},
                                "provenance": {"method": "test", "date": "2026-01-01"}}
    entry["rules"] = rules
    path = tmp_path / "catalogue.toml"
    path.write_text(tomlkit.dumps(doc))
    monkeypatch.setenv("CORTEXZOO_CATALOGUE", str(path))
    return path


def _config(rule="", network=None):
    return parse_run_config({"network": network or TINY_NETWORK,
                             "neuron": {"model": MODEL, "calibration": rule}})


def test_rule_selects_its_values_and_the_default_applies(catalogue):
    """Fails if a rule's overrides, bias or per-type input scale are ignored, or the default rule is not used."""
    assert model_rules(MODEL) == ["published", "operating_point"]
    default = get_model(MODEL)
    assert default.rule == "operating_point" and default.pd14["omega"] == -51.0
    assert default.bias_pA == {"E": 40.0} and default.scale_for("E") == 1.0
    # per-type values of the rule (a rule writes complete E and I sets there)
    assert default.params_for(cell_type="I")["alpha_1"] == 11.0
    assert default.params_for(cell_type="E")["alpha_1"] != 11.0
    published = get_model(MODEL, "published")
    assert published.pd14["omega"] != -51.0 and published.bias_pA == {}
    assert (published.scale_for("E"), published.scale_for("I")) == (0.5, 2.0)
    w = published.weights_by_target(np.ones((2, 3)), ("E", "I"))
    assert w.tolist() == [[0.5] * 3, [2.0] * 3]


def test_missing_or_unknown_rule_is_refused_with_the_command_to_run(catalogue):
    """Fails if a config naming a rule without values silently runs another rule's (or uncalibrated) values."""
    with pytest.raises(CortexzooError) as err:
        _config("psp_rheobase")
    assert "no values for calibration rule 'psp_rheobase'" in err.value.problem
    assert f"cortexzoo calibrate --rule psp_rheobase --models {MODEL}" in err.value.fix
    with pytest.raises(CortexzooError, match="unknown calibration rule 'fancy'"):
        _config("fancy")
    with pytest.raises(CortexzooError, match="has no calibration rules"):
        parse_run_config({"neuron": {"model": "iaf_psc_exp", "calibration": "operating_point"}})


def test_network_parameters_carry_the_rule(catalogue):
    """Fails if the bias is not added to E populations only, or DC is not mapped with the target's input scale."""
    from cortexzoo.network.params import derive
    from cortexzoo.network.pd14 import resolved_neuron_parameters

    net = derive(TINY_NETWORK)
    op = resolved_neuron_parameters(_config("operating_point"))
    pub = resolved_neuron_parameters(_config("published"))
    for i, pop in enumerate(net.populations):
        bias = 40.0 if net.cell_types[i] == "E" else 0.0
        assert op[pop]["I_e"] == pytest.approx(net.dc_pA[i] + bias, abs=1e-9)
        scale = 0.5 if net.cell_types[i] == "E" else 2.0
        assert pub[pop]["I_e"] == pytest.approx(net.dc_pA[i] * scale, abs=1e-9)
        assert op[pop]["omega"] == -51.0 and pub[pop]["omega"] != -51.0


def test_identity_follows_the_applied_rule_only(catalogue):
    """Fails if runs are re-done for another rule's change or a provenance edit, or kept after their own rule changed."""
    before = {r: run_identity(_config(r)) for r in ("published", "operating_point")}
    doc = tomlkit.parse(catalogue.read_text())
    doc["models"][MODEL]["rules"]["operating_point"]["provenance"]["date"] = "2026-02-02"
    catalogue.write_text(tomlkit.dumps(doc))
    assert {r: run_identity(_config(r)) for r in before} == before
    doc["models"][MODEL]["rules"]["operating_point"]["bias"]["E"] = "41 pA"
    catalogue.write_text(tomlkit.dumps(doc))
    after = {r: run_identity(_config(r)) for r in before}
    assert after["published"] == before["published"]
    assert after["operating_point"]["catalogue_entry"] != before["operating_point"]["catalogue_entry"]


def test_connections_in_nest_use_the_target_cell_types_scale(catalogue):
    """Fails if the network maps weights with one factor for all targets instead of the target's cell type."""
    from cortexzoo.network.pd14 import build_network

    nest, nodes, spec, net = build_network(_config("published"), seed=1)
    assert spec.rule == "published"
    source = nodes.populations[net.populations.index("L4E")]
    for target, cell_type in (("L4E", "E"), ("L4I", "I")):
        i = net.populations.index(target)
        conns = nest.GetConnections(source=source, target=nodes.populations[i])
        mean = np.mean(conns.get("weight"))
        expected = net.weight_mean_pA[i, net.populations.index("L4E")] * (0.5 if cell_type == "E" else 2.0)
        # weights are drawn with a 10 % relative SD; the mean of >100 draws is within 3 %
        assert len(conns) > 100 and mean == pytest.approx(expected, rel=0.03)
    assert model_spec(_config("published")).bias_current(100.0, "I") == 200.0
