"""The published cell-type parameter sets (models_nestml/cell_types.toml) against the models.

Every key must be a parameter of the model's NESTML source, in that parameter's
unit, accepted by NEST and read back unchanged; the E and I sets of a model must
list the same keys and differ.
"""

import re

import pytest

from cell_types_helpers import CELL_TYPES_FILE, load_cell_types, published_set
from cortexzoo.models.units import parse_quantity

SOURCE_DIR = CELL_TYPES_FILE.parent
REFERENCE_MODEL = "iaf_psc_exp_nestml"  # the PD14 LIF's twin, not a zoo model
# Galves-Loecherbach: see the comment at the end of cell_types.toml. Issue 15 (catalogue comments):
# GIF has one published cell (pyramidal, no FS set with numbers), the classic HH no E/I sets (its
# alpha-PSC form is the twin of NEST's hh_psc_alpha only), the conductance LIF the PD14 membrane.
NO_PUBLISHED_SETS = {"galves_loecherbach_nestml", "gif_psc_exp_nestml", "hh_psc_exp_nestml", "hh_psc_exp_fast_nestml",
                     "hh_psc_alpha_nestml", "iaf_cond_exp_nestml"}
# Other integrators or synapses of a zoo cell use its sets (recipes.toml same_as; the conductance
# AdEx's catalogue copy is checked in tests/test_conductance.py)
SAME_CELL_AS = {"aeif_psc_exp_fast_nestml": "aeif_psc_exp_nestml", "aeif_cond_exp_nestml": "aeif_psc_exp_nestml"}
# NESTML units that units.parse_quantity has no spelling for; written as plain numbers
UNSPELLED_UNITS = {"pA/mV**3"}
SETS = [(model, cell_type) for model, table in load_cell_types().items() for cell_type in sorted(table)]


def nestml_parameters(model: str) -> dict:
    """Parameter name -> declared type (e.g. ``"pF"``, ``"1/ms"``, ``"real"``) from the .nestml source."""
    lines = (SOURCE_DIR / f"{model}.nestml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "parameters:")
    indent = len(lines[start]) - len(lines[start].lstrip())
    declared = {}
    for line in lines[start + 1:]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break  # the next block
        match = re.match(r"\s+([A-Za-z_]\w*)\s+(.+?)\s*=", line)
        if match:
            declared[match.group(1)] = match.group(2)
    return declared


def expected_unit(declared: str) -> str:
    """The unit parse_quantity must give a value of a parameter declared with ``declared``."""
    if declared in ("real", "boolean", "integer") or declared in UNSPELLED_UNITS:
        return ""
    return declared


def test_every_zoo_model_has_an_e_and_an_i_set():
    """Each zoo model (a .nestml file other than the LIF twin) has exactly an E and an I
    table, except Galves-Loecherbach, for which none is published.

    Bug caught: a model added to the zoo without its published sets, a misspelled
    model name (a table nothing reads), or a third cell type.
    """
    zoo = {p.stem for p in SOURCE_DIR.glob("*.nestml")} - {REFERENCE_MODEL}
    tables = load_cell_types()
    assert set(tables) == zoo - NO_PUBLISHED_SETS - set(SAME_CELL_AS)
    assert set(SAME_CELL_AS.values()) <= set(tables)
    for model, table in tables.items():
        assert set(table) == {"E", "I"}, model


@pytest.mark.parametrize("model, cell_type", SETS)
def test_keys_are_parameters_in_their_declared_units(model, cell_type):
    """Every key is declared in the model's ``parameters`` block and every value carries
    that parameter's unit (plain numbers for real, boolean and pA/mV**3 parameters).

    Bug caught: a key naming a state variable (NEST would accept V_m, but it is
    an initial value, not a parameter), a parameter of another model (e.g. tau_m
    for AdEx) or a value in the wrong dimension (d = "8 pA" for the 2003 model,
    whose d is in mV), which to_nest would pass on as a number.
    """
    declared = nestml_parameters(model)
    for key, value in load_cell_types()[model][cell_type].items():
        assert key in declared, f"{key} is not a parameter of {model}"
        _, unit = parse_quantity(value, where=f"{model}.{cell_type}.{key}")
        assert unit == expected_unit(declared[key]), f"{model}.{cell_type}.{key} = {value!r}: {declared[key]}"


@pytest.mark.parametrize("model, cell_type", SETS)
def test_nest_accepts_every_key_and_keeps_the_value(nest_kernel, model, cell_type):
    """NEST creates the model with the set converted by to_nest and reads every value back.

    Bug caught: a typo'd key (NEST refuses unaccessed entries, checked below so
    the test cannot pass silently if that setting changes), a value NEST
    rejects (e.g. a range check), or a unit conversion error in the file.
    """
    nest = nest_kernel
    params = published_set(model, cell_type)
    neuron = nest.Create(model, params=params)
    for key, value in params.items():
        assert neuron.get(key) == pytest.approx(value, rel=1e-12, abs=0), key
    with pytest.raises(nest.NESTErrors.UnaccessedDictionaryEntry):
        nest.Create(model, params={f"{next(iter(params))}_typo": 1.0})


@pytest.mark.parametrize("model", sorted(load_cell_types()))
def test_e_and_i_sets_list_the_same_keys_and_differ(model):
    """The E and I sets of a model name the same parameters and are not the same set.

    Bug caught: an E table copied into I (or the reverse), and a key set in only
    one cell type, whose other type would then silently get the NESTML default
    (e.g. an FS table without b and d inheriting the RS defaults -2 nS, 100 pA).
    """
    e, i = published_set(model, "E"), published_set(model, "I")
    assert set(e) == set(i)
    assert e != i


def test_glif_sets_reset_below_threshold():
    """Both GLIF sets reset a spike at threshold to below threshold.

    Bug caught: voltage_reset_add with the wrong sign or in V instead of mV
    (Allen's b is in volts), which makes NEST's level-5 cell fire forever
    (glif_psc header: reset >= threshold).
    """
    for cell_type in ("E", "I"):
        p = published_set("glif_psc_nestml", cell_type)
        reset = p["E_L"] + p["voltage_reset_fraction"] * (p["V_th"] - p["E_L"]) + p["voltage_reset_add"]
        assert p["E_L"] < reset < p["V_th"], cell_type
