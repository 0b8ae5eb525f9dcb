"""The ``published`` and ``operating_point`` rules on cells whose right answer is known.

The NESTML twin of the PD14 LIF must come out of both rules as the LIF itself
(input scale 1, no bias, every working point within tolerance); the same twin
with a lower threshold, or with its currents in other units, must be moved back
by exactly the known amounts. Small samples keep it fast (a few 10 s on 2 cores).
"""

import numpy as np
import pytest

from cortexzoo.models import rule_fits
from cortexzoo.models.calibrate import LIF, reference_psc_pA
from cortexzoo.models.measure import measure_psp_trace
from cortexzoo.models.rules import Recipe
from cortexzoo.network.theory import working_point_inputs_by_type

TWIN = "iaf_psc_exp_nestml"
CELL = {k: LIF[k] for k in ("C_m", "tau_m", "E_L", "V_reset", "V_th", "t_ref")}
# Coarser and smaller than the shipped calibration; the threshold shift is large against its noise.
SMALL = rule_fits.FitSettings(offsets_mV=tuple(np.arange(-5.0, 5.0 + 1e-9, 0.5)), neighbourhood_mV=(-1.0, 0.0, 1.0),
                              coarse_offsets_mV=tuple(np.arange(-10.0, 10.0 + 1e-9, 1.0)), coarse_neurons=8,
                              coarse_measure_ms=1000.0, fine_halfwidth_mV=3.0,
                              n_neurons=20, measure_ms=2000.0, check_neurons=60, check_measure_ms=2000.0)


def _recipe(cells, membrane=None):
    return Recipe(model=TWIN, cells=cells, membrane=membrane)


@pytest.fixture(scope="module")
def lif_integral(nestml_module):
    return float(measure_psp_trace("iaf_psc_exp", [LIF], reference_psc_pA()).integral_mV_ms[0])


def test_published_scale_is_the_charge_ratio(lif_integral):
    """Fails if the published rule's input scale is not R_LIF/R_cell: a twin whose C_m and tau_m are doubled
    and halved (R = tau/C 4x smaller) must get scale 4, and the plain twin scale 1."""
    quiet = []
    plain = rule_fits.calibrate_published(TWIN, _recipe({"E": CELL, "I": CELL}), reference_psc_pA(), lif_integral,
                                          quiet.append)
    assert plain["psc_per_reference_psc"] == {"E": pytest.approx(1.0, rel=1e-3), "I": pytest.approx(1.0, rel=1e-3)}
    low_r = dict(CELL, C_m=500.0, tau_m=5.0)
    other = rule_fits.calibrate_published(TWIN, _recipe({"E": low_r, "I": CELL}), reference_psc_pA(), lif_integral,
                                          quiet.append)
    assert other["psc_per_reference_psc"]["E"] == pytest.approx(4.0, rel=2e-3)
    # in LIF pA the rheobase is the LIF's (375 pA, 5 pA ladder) for both, since the scale maps it back
    assert other["types"]["E"]["report"]["rheobase_pA"] == pytest.approx(375.0, abs=5.0)


def test_operating_point_leaves_the_twin_alone_and_undoes_a_threshold_shift(lif_integral):
    """Fails if the fitted bias has the wrong sign or size, if the acceptance check compares the wrong rates,
    or if the twin is not found to match the LIF at its working points.

    The twin's E cell is the LIF with V_th 1.5 mV lower (1.5 mV more excitable, so a -1.5 mV bias: the
    fit's convention) and its I cell the LIF itself (bias 0). Tolerances: 0.35 mV for the bias (counting
    noise of 20 neurons x 2 s per point and linear interpolation on a 0.5 mV grid; measured ~0.1 mV).
    """
    wps = working_point_inputs_by_type()
    lif_curves = rule_fits.lif_reference_curves([wp for w in wps.values() for wp in w], lambda m: None, SMALL)
    cells = {"E": dict(CELL, V_th=CELL["V_th"] - 1.5), "I": CELL}
    result = rule_fits.calibrate_operating_point(TWIN, _recipe(cells), wps, lif_curves, reference_psc_pA(),
                                                 lif_integral, lambda m: None, SMALL)
    e, i = result["types"]["E"], result["types"]["I"]
    assert e["scale"] == pytest.approx(1.0, rel=1e-3) and i["scale"] == pytest.approx(1.0, rel=1e-3)
    assert e["fit"].bias_mV == pytest.approx(-1.5, abs=0.35)
    # the fine stage is centred on the coarse stage's bias (which found it to within the coarse grid step)
    assert abs(e["coarse_bias_mV"] + 1.5) < 1.0 and np.mean(e["offsets_mV"]) == pytest.approx(e["coarse_bias_mV"])
    assert i["fit"].bias_mV == pytest.approx(0.0, abs=0.35)
    assert result["bias"]["E"] == pytest.approx(e["fit"].bias_mV * 25.0)
    # with the bias, the shifted twin matches the LIF at the working points (the acceptance)
    assert e["check"].within_tolerance.sum() >= 3 and i["check"].within_tolerance.sum() >= 3
    assert set(e["check"].population) == {wp.population for wp in wps["E"]}
