"""Planted differences on real PD14 runs: validation flags what was changed, and not the reference itself."""

import pytest

from cortexzoo.network.params import parse_run_config
from cortexzoo.network.run import run_network
from cortexzoo.validation.pipeline import validate

BASE = {"simulation": {"threads": 2, "t_presim_ms": 200.0, "t_sim_ms": 2000.0},
        "network": {"N_scaling": 0.05, "K_scaling": 0.25, "background": "poisson"}}
N_REF = 5  # with 3 seeds a further reference seed fails "matches" on ~1/4 of statistics by chance


def run(tmp, name, seed, neuron):
    cfg = parse_run_config({"simulation": {**BASE["simulation"], "seed": seed}, "network": BASE["network"],
                            "neuron": neuron})
    return run_network(cfg, tmp / name)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("planted")
    refs = [run(tmp, f"ref{s}", s, {"model": "iaf_psc_exp"}) for s in range(1, N_REF + 1)]
    same = run(tmp, "same", 101, {"model": "iaf_psc_exp"})
    # Planted: 200 pA of extra constant drive into L4E only (about half its rheobase).
    planted = run(tmp, "l4e_drive", 102, {"model": "iaf_psc_exp",
                                          "by_population": {"L4E": {"I_e": "200 pA"}}})
    return validate(refs, [same, planted], tmp / "validation", make_figures=False)


def primary(result, model):
    p = result.scores[result.scores["primary"] & (result.scores["model"] == model)]
    return p.set_index(["population", "statistic"])


def test_another_reference_seed_is_within_natural_variability(result):
    p = primary(result, "same")
    assert p["matches"].astype(bool).mean() >= 0.75
    assert p["multiple_of_max"].astype(float).max() < 3.0


def test_extra_l4e_drive_is_flagged_on_l4e_rates(result):
    p = primary(result, "l4e_drive")
    assert not p.loc[("L4E", "rates"), "matches"]
    assert p.loc[("L4E", "rates"), "multiple_of_mean"] > 5.0
    same = primary(result, "same")
    assert p.loc[("L4E", "rates"), "multiple_of_mean"] > 3 * same["multiple_of_mean"].astype(float).max()
