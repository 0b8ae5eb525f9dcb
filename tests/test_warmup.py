"""Warm-up long enough for each model's slowest variable, and the stationarity check of the analysis window."""

import numpy as np
import pytest
from validation_synth import make_run

from cortexzoo.errors import CortexzooError
from cortexzoo.models.catalogue import load_catalogue
from cortexzoo.network.output import RunWriter, load_run
from cortexzoo.network.params import parse_run_config
from cortexzoo.network.pd14 import presim_ms
from cortexzoo.network.run import run_network
from cortexzoo.validation.pipeline import validate
from cortexzoo.validation.statistics import stationarity


def config(model, **simulation):
    return parse_run_config({"simulation": {"seed": 1, "threads": 1, "t_sim_ms": 300.0, **simulation},
                             "network": {"N_scaling": 0.02, "K_scaling": 0.1, "k_compensation": "reference_rates"},
                             "neuron": {"model": model}})


@pytest.mark.parametrize("model", sorted(load_catalogue()))
def test_presim_covers_five_slowest_time_constants(model):
    """Fails if a model's slow variable (e.g. GLIF's 333 ms after-spike current) starts the analysis unsettled."""
    tau = load_catalogue()[model].slowest_time_constant_ms
    assert presim_ms(config(model, t_presim_ms=0.0)) >= 5 * tau - 1e-9
    assert presim_ms(config(model, t_presim_ms=5000.0)) == 5000.0  # never shorter than asked
    assert presim_ms(config(model, t_presim_ms=0.0, warmup_factor=0.0)) == 0.0


def test_slowest_time_constant_follows_the_cells_of_every_rule():
    """The catalogue value must follow the parameters the runs use (GLIF 1 / asc_decay_1, AdEx tau_w, the slower
    of the E and I cells, under every calibration rule), not be a free number."""
    from cortexzoo.models.catalogue import get_model, model_rules

    for name, slow in (("glif_psc_nestml", lambda p: 1.0 / p["asc_decay_1"]), ("aeif_psc_exp_nestml",
                                                                                lambda p: p["tau_w"])):
        for rule in model_rules(name):
            spec = get_model(name, rule)
            expected = max(slow(spec.params_for(cell_type=t)) for t in ("E", "I"))
            assert spec.slowest_time_constant_ms == pytest.approx(expected, rel=1e-2), (name, rule)


def test_catalogue_entry_without_slowest_time_constant_is_refused(tmp_path):
    from cortexzoo.models.catalogue import CATALOGUE_PATH

    text = CATALOGUE_PATH.read_text().replace('slowest_time_constant = "10 ms"', "", 1)
    (tmp_path / "catalogue.toml").write_text(text)
    with pytest.raises(CortexzooError, match="missing key 'slowest_time_constant'"):
        load_catalogue(tmp_path / "catalogue.toml")


def test_analysis_window_starts_after_the_warm_up(tmp_path):
    """The run's window and metadata use the presimulation that was really run."""
    run = load_run(run_network(config("iaf_psc_exp", t_presim_ms=100.0, warmup_factor=30.0), tmp_path / "run"))
    assert run.t_start_ms == 300.0 and run.t_stop_ms == 600.0
    assert run.metadata["warmup"] == {"presim_ms": 300.0, "slowest_time_constant_ms": 10.0, "warmup_factor": 30.0}
    ids, times = run.spikes["L4E"]
    assert np.any(times <= 300.0) and np.all(run.window("L4E")[1] > 300.0)


def test_stationarity_measures_the_drift_between_halves():
    times = np.concatenate([np.linspace(0, 500, 100, endpoint=False), np.linspace(501, 1000, 300)])
    s = stationarity(times, n_neurons=10, t_start_ms=0.0, t_stop_ms=1000.0)
    assert s["rate_first_half_hz"] == pytest.approx(20.0) and s["rate_second_half_hz"] == pytest.approx(60.0)
    assert s["relative_drift"] == pytest.approx(1.0) and s["drift_z"] == pytest.approx(200 / np.sqrt(400))
    assert np.isnan(stationarity(np.array([]), 10, 0.0, 1000.0)["relative_drift"])


def test_validation_flags_a_population_whose_rate_runs_away(tmp_path):
    """A planted doubling of L4E's rate in the second half is named; stationary runs are not.

    Fails if the drift is not computed per population, or the flag fires on
    healthy Poisson runs (the references and the steady candidate).
    """
    refs = [make_run(tmp_path / f"ref{s}", seed=s) for s in (1, 2, 3)]
    steady = make_run(tmp_path / "steady", seed=11)
    run = load_run(make_run(tmp_path / "source", seed=12))
    writer = RunWriter(tmp_path / "drifting")
    for pop, (ids, times) in run.spikes.items():
        if pop == "L4E":  # every spike of the second half twice (0.1 ms apart): twice the rate there
            late = times > 0.5 * (run.t_start_ms + run.t_stop_ms)
            ids, times = np.concatenate([ids, ids[late]]), np.concatenate([times, times[late] - 0.1])
        writer.write_spikes(pop, ids, times)
    writer.finish({"populations": run.sizes, "analysis_window_ms": [run.t_start_ms, run.t_stop_ms], "seed": 12})
    result = validate(refs, [steady, tmp_path / "drifting"], tmp_path / "out", make_figures=False)
    flagged = [n for n in result.warnings if "is not stationary" in n]
    assert len(flagged) == 1 and flagged[0].startswith("drifting L4E is not stationary"), result.warnings
    drift = float(flagged[0].split("changes by ")[1].split("%")[0])
    assert 57 <= drift <= 77  # doubling: (2 - 1) / 1.5 = +67 %, Poisson noise of ~6,000 spikes per half
