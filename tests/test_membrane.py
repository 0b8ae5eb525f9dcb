"""Membrane potential at PD14's working points (models_nestml/membrane.py, issue 12)."""

import numpy as np
import pytest

from cortexzoo.errors import CortexzooError
from cortexzoo.models import membrane
from cortexzoo.models.calibrate import LIF
from cortexzoo.network.theory import working_point_inputs


def test_subthreshold_moments_drop_exactly_the_spike_windows():
    """Catches a window on the wrong side of the spike or one sample off: the excluded samples
    carry a value (+100 mV) that would move both the mean and the SD."""
    t = np.arange(0.0, 100.0, 0.1)
    v = np.where(np.arange(t.size) % 2 == 0, -60.0, -58.0)
    spike = 50.0
    v[(t >= spike - 1.0) & (t < spike + 5.0)] = 100.0
    mean, sd, kept = membrane.subthreshold_moments(v, t, [spike], (1.0, 5.0))
    assert mean == pytest.approx(-59.0, abs=1e-9)
    assert sd == pytest.approx(1.0, abs=1e-9)
    assert kept == pytest.approx(1.0 - 60 / 1000)


def test_subthreshold_moments_refuse_mismatched_samples():
    """Catches V and times of different neurons passed together."""
    with pytest.raises(CortexzooError, match="sample times"):
        membrane.subthreshold_moments(np.zeros(3), np.arange(4.0), [])


def test_free_lif_membrane_matches_the_mean_field_prediction():
    """With spiking switched off, the LIF's measured mean and SD of V must be NNMT's (mu, free-membrane
    SD): catches wrong weights, rates, ports or sign routing of the working-point input, and recording
    the wrong state. Tolerance: 20 neurons x 2 s give the SD to ~1 %; 5 % and 0.3 mV leave room
    for the shot-noise (non-Gaussian) corrections the diffusion approximation ignores."""
    wps = [wp for wp in working_point_inputs() if wp.population in ("L4E", "L5I")]
    free = dict(LIF, V_th=1e6)
    table = membrane.measure_membrane("iaf_psc_exp", free, wps, "V_m", n_neurons=20, measure_ms=2000.0)
    for wp, row in zip(wps, table.itertuples()):
        assert row.rate_Hz == 0.0
        assert row.mean_V_mV - LIF["E_L"] == pytest.approx(wp.mu_mV, abs=0.3)
        assert row.sigma_V_mV == pytest.approx(wp.sigma_V_mV, rel=0.05)


def test_input_scale_reaches_the_membrane():
    """A LIF with 4x the capacitance (4x lower input resistance) driven with current_scale 4 has the
    reference LIF's V statistics; catches a current_scale that does not multiply the input weights."""
    wps = [wp for wp in working_point_inputs() if wp.population == "L4E"]
    kwargs = {"n_neurons": 10, "measure_ms": 1000.0}
    ref = membrane.measure_membrane("iaf_psc_exp", dict(LIF, V_th=1e6), wps, "V_m", **kwargs)
    big = dict(LIF, V_th=1e6, C_m=4 * LIF["C_m"], tau_m=LIF["tau_m"])
    scaled = membrane.measure_membrane("iaf_psc_exp", big, wps, "V_m", current_scale=4.0, **kwargs)
    unscaled = membrane.measure_membrane("iaf_psc_exp", big, wps, "V_m", **kwargs)
    assert scaled.sigma_V_mV[0] == pytest.approx(ref.sigma_V_mV[0], rel=0.05)
    assert unscaled.sigma_V_mV[0] == pytest.approx(ref.sigma_V_mV[0] / 4, rel=0.05)
