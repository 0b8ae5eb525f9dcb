"""Why the adapting E cells miss the operating-point acceptance: weaken their adaptation and refit.

Run by hand (about 10 min on 2 cores), never in CI::

    python tests/benchmarks/adaptation_gain.py

For the E cells of MAT2 (threshold jumps alpha_1, alpha_2) and GLIF (after-spike
currents asc_amps_1, asc_amps_2), scale the spike-triggered adaptation by 0.5 and 0,
refit the operating_point bias on the four E working points and print the loss and
the model/LIF rates there. Measured 2026-11-27 (shipped cells: MAT2 loss 70, 2/4
within tolerance; GLIF loss 75, 1/4): MAT2 x0.5 loss 31 (3/4), x0 loss 135 (too
steep); GLIF x0.5 loss 38 (2/4), x0 loss 12.5 (3/4). See docs/calibration.md.
"""

from cortexzoo.models import rule_fits, rules
from cortexzoo.models.calibrate import reference_psc_pA
from cortexzoo.models.measure import measure_psp_trace
from cortexzoo.network.theory import working_point_inputs_by_type

ADAPTATION = {"mat2_psc_exp_nestml": ("alpha_1", "alpha_2"), "glif_psc_nestml": ("asc_amps_1", "asc_amps_2")}


def main() -> None:
    """Print one line per model and adaptation factor."""
    from cortexzoo.models.calibrate import LIF

    wps = working_point_inputs_by_type()
    lif_curves = rule_fits.lif_reference_curves(wps["E"], lambda m: None)
    lif_integral = float(measure_psp_trace("iaf_psc_exp", [LIF], reference_psc_pA()).integral_mV_ms[0])
    recipes = rules.load_recipes()
    for model, keys in ADAPTATION.items():
        recipe = recipes[model]
        for factor in (1.0, 0.5, 0.0):
            cells = dict(recipe.cells, E={**recipe.cells["E"], **{k: recipe.cells["E"][k] * factor for k in keys}})
            weakened = rules.Recipe(model=model, cells=cells, membrane=recipe.membrane, units=recipe.units)
            fit = rule_fits.calibrate_operating_point(model, weakened, {"E": wps["E"]}, lif_curves,
                                                      reference_psc_pA(), lif_integral, lambda m: None)["types"]["E"]
            check = fit["check"]
            rates = ", ".join(f"{p} {m:.2f}/{l:.2f} Hz" for p, m, l in
                              zip(check.population, check.rate_model_Hz, check.rate_lif_Hz))
            print(f"{model} {'+'.join(keys)} x{factor}: bias {fit['fit'].bias_mV:+.2f} mV, loss {fit['fit'].loss:.1f}, "
                  f"{int(check.within_tolerance.sum())}/4 within tolerance; model/LIF {rates}", flush=True)


if __name__ == "__main__":
    main()
