"""Every catalogue model runs in the PD14 core by changing only the config."""

import numpy as np
import pytest

from cortexzoo.models import load_catalogue
from cortexzoo.network.output import load_run
from cortexzoo.network.params import load_pd14, parse_run_config
from cortexzoo.network.run import run_network

MODELS = sorted(load_catalogue())


@pytest.mark.parametrize("model", MODELS)
def test_model_runs_in_pd14_by_config(model, tmp_path, nestml_module):
    """Each model runs, with its own self-consistent K-scaling compensation, and is neither silent nor runaway."""
    config = parse_run_config({
        "simulation": {"seed": 11, "threads": 2, "t_presim_ms": 100.0, "t_sim_ms": 400.0},
        "network": {"N_scaling": 0.03, "K_scaling": 0.25, "background": "poisson",
                    "compensation_window_ms": 200.0, "compensation_max_windows": 8},
        "neuron": {"model": model}})
    run = load_run(run_network(config, tmp_path / "run"))
    spec = load_catalogue()[model]
    assert run.metadata["model"]["nest_model"] == spec.nest_model
    assert run.metadata["config"]["neuron"]["model"] == model
    total = sum(len(run.window(p)[0]) for p in run.populations)
    neurons = sum(run.sizes.values())
    rate = total / neurons / (run.duration_ms / 1000.0)
    assert 0.05 < rate < 100.0, f"{model}: mean rate {rate:.2f} Hz is silent or runaway"
    comp = run.metadata["k_compensation"]
    assert len(comp["history"]) == comp["windows"] and np.isfinite(comp["dc_pA"]).all()
    # the bias parameter carries the compensating DC, mapped with the population's cell type, plus the rule's bias
    bias = spec.role("bias_current")
    cell_types = dict(zip(load_pd14()["populations"], load_pd14()["cell_types"]))
    assert [run.metadata["neuron_parameters"][p][bias] for p in run.populations] == pytest.approx(
        [spec.bias_current(dc, cell_types[p]) for p, dc in zip(run.populations, comp["dc_pA"])], abs=1e-5)
