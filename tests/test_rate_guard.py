"""The rate guard that stops a runaway network (network/pd14.py RateGuard), on real NEST parrot populations."""

import pytest


def _two_populations(nest, fast_hz, slow_hz, n=20):
    """Two parrot populations driven by Poisson generators, each with its own spike recorder."""
    pops, recorders = [], nest.Create("spike_recorder", 2)
    for rate, rec in zip((fast_hz, slow_hz), recorders):
        parrots = nest.Create("parrot_neuron", n)
        nest.Connect(nest.Create("poisson_generator", params={"rate": rate}), parrots)
        nest.Connect(parrots, rec)
        pops.append(parrots)
    return pops, recorders


@pytest.mark.parametrize("ceiling, stops", [(300.0, True), (2000.0, False)])
def test_guard_stops_at_the_first_window_above_the_ceiling(nestml_module, ceiling, stops):
    """Catches a guard that never fires (a runaway simulated for hours), fires on a healthy population
    (runs lost), measures the rate over the wrong span, or names the wrong population."""
    from cortexzoo.models.kernel import ready_kernel
    from cortexzoo.network.pd14 import RateGuard, _run_with_progress

    nest = ready_kernel(install_module=False)
    pops, recorders = _two_populations(nest, fast_hz=1000.0, slow_hz=5.0)
    guard = RateGuard(recorders, [len(p) for p in pops], ["fast", "slow"], ceiling)
    runaway = _run_with_progress(nest, 450.0, "sim", lambda m: None, guard)
    if not stops:
        assert runaway is None and nest.biological_time == pytest.approx(450.0)
        return
    assert runaway["population"] == "fast" and runaway["window_ms"] == [0.0, 100.0]
    assert runaway["stopped_at_ms"] == pytest.approx(100.0) == nest.biological_time
    assert runaway["rate_Hz"] == pytest.approx(1000.0, rel=0.1)  # 20 parrots x 100 ms: ~2000 spikes
    assert runaway["rates_Hz"]["slow"] < 30.0


def test_guard_ignores_spans_shorter_than_its_window(nestml_module):
    """Catches a rate taken over a sliver of time (a phase ending 0.1 ms after a check), where one spike of
    one neuron reads as 10 kHz and stops a healthy run."""
    from cortexzoo.models.kernel import ready_kernel
    from cortexzoo.network.pd14 import RateGuard

    nest = ready_kernel(install_module=False)
    parrot, recorder = nest.Create("parrot_neuron"), nest.Create("spike_recorder")
    nest.Connect(nest.Create("spike_generator", params={"spike_times": [97.0, 98.0]}), parrot)
    nest.Connect(parrot, recorder)
    guard = RateGuard(recorder, [1], ["one"], 300.0)
    nest.Simulate(99.0)
    assert guard.check(99.0) is None and guard._since_ms == 0.0  # 99 ms: not a whole window yet
    nest.Simulate(1.5)
    assert recorder.n_events == 2
    assert guard.check(100.5) is None and guard._since_ms == 100.5  # 2 spikes in 100.5 ms: 20 Hz
    nest.Simulate(0.1)
    assert guard.check(100.6) is None and guard._since_ms == 100.5
