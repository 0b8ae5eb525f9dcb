"""Weights of conductance-based synapses that carry the reference PSC's charge at PD14's working points.

PD14's synapses are currents: one reference PSC of 87.8 pA decaying with
tau_syn = 0.5 ms carries the charge 87.8 pA x 0.5 ms. A conductance-based synapse
g(t) = w e^(-t/tau_syn) injects g(t) (E_rev - V), so its charge depends on the
membrane potential V at which it arrives. The map chosen here (issue 15) gives a
conductance synapse the reference PSC's charge when it arrives at its target
population's working-point voltage V_wp:

    w_exc [nS] = s w_ref [pA] / (E_exc - V_wp)      w_inh [nS] = s w_ref [pA] / (V_wp - E_inh)

where s is the model's input scale for currents of the target's cell type
(``psc_per_reference_psc``: 1 on the PD14 membrane; a published cell with another
input resistance gets the scale that gives the LIF's PSP integral, as its DC does).

Both factors are positive, so an inhibitory reference weight (negative in
PD14's convention) stays negative, and the model turns it into a positive
conductance (as NEST's iaf_cond_exp does). With the same charge and a leak
conductance equal to the LIF's, the PSP integral at V_wp equals the reference's
while the membrane is at its leak conductance; the extra shunting of the
synaptic conductances themselves under network input is a difference of the
model, which this calibration does not remove.

V_wp is the model cell's own resting potential plus the reference LIF's mean
depolarisation at the population's working point. Two definitions (configurable,
``--voltage``), both from ``models_nestml/calibration/working_point_membrane.csv``
(the LIF rows, measured under PD14's working-point shot noise by
:mod:`cortexzoo.experiments.membrane_table`):

* ``measured`` (default): the mean V of the spiking LIF, resets included, i.e.
  where its synapses really act;
* ``theory``: the free-membrane mean mu from NNMT (no threshold), which lies
  above it in the populations that fire most.
"""

from __future__ import annotations

import csv
from pathlib import Path

from cortexzoo.errors import CortexzooError

WORKING_POINT_CSV = Path(__file__).resolve().parent / "calibration" / "working_point_membrane.csv"
REFERENCE_MODEL = "iaf_psc_exp"
VOLTAGES = ("measured", "theory")
#: Catalogue roles a conductance-based model names (besides the common ROLES).
CONDUCTANCE_ROLES = ("reversal_exc", "reversal_inh", "resting_potential")


def conductance_factors(E_exc_mV: float, E_inh_mV: float, V_mV: float) -> tuple:
    """nS per pA of reference PSC, excitatory and inhibitory, for synapses arriving at ``V_mV``.

    Parameters
    ----------
    E_exc_mV, E_inh_mV : float
        Reversal potentials.
    V_mV : float
        Working-point membrane potential.

    Returns
    -------
    tuple of float
        ``(1 / (E_exc - V), 1 / (V - E_inh))``.

    Raises
    ------
    CortexzooError
        When V is not between E_inh and E_exc (a synapse would reverse its sign).
    """
    if not E_inh_mV < V_mV < E_exc_mV:
        raise CortexzooError(f"Working-point V = {V_mV:.2f} mV is not between E_inh = {E_inh_mV} mV and "
                             f"E_exc = {E_exc_mV} mV: a synapse would change sign there.",
                             "Check the model's reversal potentials and resting potential.")
    return 1.0 / (E_exc_mV - V_mV), 1.0 / (V_mV - E_inh_mV)


def lif_depolarisation_mV(voltage: str = "measured", path: Path = WORKING_POINT_CSV) -> dict:
    """The reference LIF's mean depolarisation above its E_L at each population's working point.

    Parameters
    ----------
    voltage : {"measured", "theory"}
        The spiking LIF's mean V, or NNMT's free-membrane mu (module docstring).
    path : pathlib.Path

    Returns
    -------
    dict
        Population -> mV above the LIF's resting potential.
    """
    from cortexzoo.models.catalogue import get_model

    if voltage not in VOLTAGES:
        raise CortexzooError(f"voltage = {voltage!r} is not one of {VOLTAGES}.", "Use measured or theory.")
    if not Path(path).exists():
        raise CortexzooError(f"{path} does not exist.", "Run `python -m cortexzoo.experiments.membrane_table`.")
    E_L = get_model(REFERENCE_MODEL).params_for()["E_L"]
    with open(path, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["model"] == REFERENCE_MODEL]
    if not rows:
        raise CortexzooError(f"{path} has no {REFERENCE_MODEL} rows.",
                             "Run `python -m cortexzoo.experiments.membrane_table` to measure them.")
    if voltage == "theory":
        return {r["population"]: float(r["mu_mV"]) for r in rows}
    return {r["population"]: float(r["mean_V_mV"]) - E_L for r in rows}


def conductance_map(spec, cell_types: dict, depolarisation_mV: dict) -> dict:
    """The catalogue's ``conductance_per_reference_psc`` table for one model and rule.

    Parameters
    ----------
    spec : ModelSpec
        The model under the rule whose cells are used (roles ``reversal_exc``,
        ``reversal_inh`` and ``resting_potential`` name its parameters).
    cell_types : dict
        Population -> ``"E"`` or ``"I"``.
    depolarisation_mV : dict
        Population -> mean depolarisation at the working point (:func:`lif_depolarisation_mV`).

    Returns
    -------
    dict
        ``{"exc": {pop: nS per pA}, "inh": {pop: nS per pA}}`` (rounded to 6 significant digits).
    """
    missing = [r for r in CONDUCTANCE_ROLES if r not in spec.roles]
    if missing:
        raise CortexzooError(f"Model {spec.name!r} names no parameter for role(s) {missing}.",
                             "Add them to its [roles] table in catalogue.toml (conductance-based models only).")
    out = {"exc": {}, "inh": {}}
    for pop, cell_type in cell_types.items():
        params = spec.params_for(pop, cell_type)
        V = params[spec.role("resting_potential")] + depolarisation_mV[pop]
        exc, inh = conductance_factors(params[spec.role("reversal_exc")], params[spec.role("reversal_inh")], V)
        # A cell with another input resistance gets the input scale of its currents as well (the
        # published rule: the same PSP integral), so charge and DC keep their ratio.
        scale = spec.scale_for(cell_type)
        out["exc"][pop], out["inh"][pop] = float(f"{exc * scale:.6g}"), float(f"{inh * scale:.6g}")
    return out
