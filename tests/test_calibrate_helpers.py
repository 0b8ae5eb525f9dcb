"""The helpers of ``cortexzoo calibrate``: rheobase search, loss, units, the PD14-membrane map and the
catalogue update of the calibration rules (``[models.<name>.rules.<rule>]``).

All fast (no simulation) except one real ``published`` calibration of MAT2; the catalogue tests work
on a copy of the catalogue in use (with the .nestml files its ``source`` keys name) in ``tmp_path``.
"""

import ast
import datetime
import difflib
import math
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cortexzoo.models import calibrate, rules
from cortexzoo.models.calibrate import (
    LAMBDA_HZ_PER_PA,
    MODELS,
    TARGET_RHEOBASE_PA,
    loss,
    rheobase,
    rule_updates,
)
from cortexzoo.models.catalogue import (
    CATALOGUE_PATH,
    catalogue_path,
    get_model,
)
from cortexzoo.models.catalogue_edit import (
    format_quantity,
    update_catalogue_text,
    write_catalogue_atomically,
)
from cortexzoo.models.fitting import at_edge
from cortexzoo.models.units import _SCALE, KNOWN_UNITS, parse_quantity

from cortexzoo.errors import CortexzooError

MODELS_DIR = CATALOGUE_PATH.parent
RECIPES = rules.load_recipes()
#: Rules whose written values results_from_catalogue can rebuild (operating_point reports fit objects).
REBUILT_RULES = ("published", "psp_rheobase")


def _shipped_calibration_dates(path, rule):
    """Model -> the date in its ``rules.<rule>.provenance`` table.

    ``cortexzoo calibrate --models X`` dates only X's tables, so dates may differ between models
    (and between rules); each model is rewritten with its own date.
    """
    raw = tomllib.loads(Path(path).read_text())["models"]
    return {name: entry["rules"][rule]["provenance"]["date"]
            for name, entry in raw.items() if rule in entry.get("rules", {})}


@pytest.fixture
def catalogue(tmp_path):
    """A copy of the catalogue in use, beside the .nestml sources it names."""
    for source in MODELS_DIR.glob("*.nestml"):
        shutil.copy(source, tmp_path)
    path = tmp_path / "catalogue.toml"
    shutil.copy(catalogue_path(), path)
    return path


def results_from_catalogue(path, rule):
    """The ``run_calibration`` results of ``rule`` that :func:`rule_updates` turns back into exactly
    the values the catalogue at ``path`` holds; models without that rule are left out.

    The parameters are the loader's (``get_model(name, rule).params_for``) for the keys the rule's
    ``pd14_by_type`` table writes, so a loader that let the entry's own tables win over the rule's
    would show up as a changed value.
    """
    assert rule in REBUILT_RULES, rule
    raw = tomllib.loads(Path(path).read_text())["models"]
    results = {}
    for name, entry in raw.items():
        table = entry.get("rules", {}).get(rule)
        if table is None:
            continue
        spec = get_model(name, rule, path)
        types = {}
        for cell_type, written in table["pd14_by_type"].items():
            loaded = spec.params_for(cell_type=cell_type)
            params = {key: loaded[key] for key in written}
            types[cell_type] = _fit_from_provenance(name, rule, params, dict(table["provenance"][cell_type]))
        results[name] = {"types": types, "psc_per_reference_psc": spec.psc_per_reference_psc}
        if rule == "psp_rheobase":
            results[name]["psp_mV"] = types["E"]["psp_mV"]
    return results


def _fit_from_provenance(name, rule, params, reported):
    """One cell type's fit result, from its provenance inline table (see calibrate._provenance)."""
    scale = reported.pop("input_scale")
    if rule == "published":
        return {"params": params, "scale": scale, "report": reported}
    free = {key.removeprefix("fitted_"): reported.pop(key) for key in list(reported) if key.startswith("fitted_")}
    return {"params": params, "scale": scale, "free": free, "residual_Hz": reported["residual_Hz"],
            "rheobase_pA": reported["rheobase_pA"], "psp_mV": reported["psp_mV"],
            "at_edge": at_edge(free, MODELS[name].free)}


def _require_rule(results, rule, models=()):
    if not results or not set(models) <= set(results):
        pytest.skip(f"the catalogue in use has no [models.<name>.rules.{rule}] tables"
                    f"{' for ' + ', '.join(sorted(set(models) - set(results))) if results else ''} yet "
                    f"(written by `cortexzoo calibrate --rule {rule}`)")


def changed_lines(old, new):
    """(removed, added) lines between two texts."""
    diff = [d for d in difflib.ndiff(old.splitlines(), new.splitlines()) if d[:2] in ("- ", "+ ")]
    return [d[2:] for d in diff if d[0] == "-"], [d[2:] for d in diff if d[0] == "+"]


def changed_entries(old, new):
    """(removed, added) changed lines as ``(table header, key)`` pairs: the [table] each line sits in
    tells which rule's table was written (every rule table has keys such as ``date``, ``E``, ``V_th``)."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    removed, added = [], []
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            removed += [_located(old_lines, i) for i in range(i1, i2)]
            added += [_located(new_lines, j) for j in range(j1, j2)]
    return removed, added


def _located(lines, i):
    header = next((line for line in reversed(lines[: i + 1]) if line.startswith("[")), "")
    return header, lines[i].split(" = ")[0]


# --- rheobase search -------------------------------------------------------------------------------------------


def test_rheobase_is_the_midpoint_below_the_first_firing_current():
    """Fails if the rheobase is taken at the first firing current (a bias of half a step) or at the
    last silent one, or if an input in any order is not sorted first (a shuffled ladder would give
    whichever firing current comes first in the array)."""
    currents = np.array([0.0, 100.0, 200.0, 300.0, 400.0, 500.0])
    rates = np.array([0.0, 0.0, 0.0, 4.0, 12.0, 20.0])
    assert rheobase(currents, rates) == 250.0
    order = np.random.default_rng(3).permutation(len(currents))
    assert rheobase(currents[order], rates[order]) == 250.0


def test_rheobase_takes_the_first_firing_current_even_if_the_curve_falls_silent_again():
    """Fails for a search that scans down from the top (depolarisation block above 300 pA here
    would move the rheobase to the last silent current)."""
    assert rheobase([100, 200, 300, 400, 500], [0, 0, 5, 0, 0]) == 250.0


def test_rheobase_edge_cases_never_fires_and_fires_from_zero():
    """Fails if a silent model gets a finite rheobase (it would look calibrated), or if a model that
    fires at the lowest current gets a midpoint with a non-existent current below it."""
    assert math.isnan(rheobase([0, 100, 200], [0, 0, 0]))
    assert rheobase([0, 100, 200], [3, 8, 12]) == 0.0
    assert rheobase([350, 375, 400], [1, 2, 3]) == 350.0


# --- loss --------------------------------------------------------------------------------------------------------


def test_loss_is_rms_plus_weighted_rheobase_error_both_sides():
    """Fails if the rheobase term is one-sided, unweighted or squared, or if the RMS term is dropped."""
    assert loss(0.0, TARGET_RHEOBASE_PA) == 0.0
    assert loss(7.5, TARGET_RHEOBASE_PA) == 7.5
    assert loss(1.0, TARGET_RHEOBASE_PA + 10) == pytest.approx(1.0 + LAMBDA_HZ_PER_PA * 10)
    assert loss(1.0, TARGET_RHEOBASE_PA - 10) == loss(1.0, TARGET_RHEOBASE_PA + 10)


def test_loss_of_a_silent_model_is_finite_and_worse_than_any_fit_that_fires():
    """Fails if NaN (never fires) propagates into the loss: argmin over NaN picks the first candidate,
    so a silent candidate could win the fit."""
    silent = loss(0.0, float("nan"))
    assert np.isfinite(silent)
    assert silent > loss(100.0, TARGET_RHEOBASE_PA + 600)


# --- unit handling -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_unit_calibrate_writes_reads_back_unchanged(name):
    """Every parameter a rule writes (the published cells and the psp_rheobase start sets on the PD14
    membrane), in the unit its recipe names, reads back as the same number in the same unit, and that
    unit is the NEST unit in which cell_types.toml spells the published value. Fails if a recipe names
    a unit units.py does not know, one that units.py converts (e.g. "nA" for a value held in pA: the
    network would get 1000x the current), or none for a dimensional parameter (the catalogue would
    show tau_w = 144 with no unit)."""
    recipe = RECIPES[name]
    for cell_type in rules.CELL_TYPES:
        for params in (recipe.cells[cell_type], MODELS[name].base[cell_type]):
            for param, value in params.items():
                unit = recipe.units.get(param, "")
                number, read_unit = parse_quantity(format_quantity(value, unit), where=f"{name}.{param}")
                assert read_unit == unit, (cell_type, param, unit)
                assert number == pytest.approx(float(value), rel=1e-5), (cell_type, param)
    published = tomllib.loads(rules.CELL_TYPES_PATH.read_text()).get(name, {})
    for cell_type, cell in published.items():
        for param, spelled in cell.items():
            assert recipe.units.get(param, "") == parse_quantity(spelled)[1], (cell_type, param, spelled)


@pytest.mark.parametrize("unit", [u for u in KNOWN_UNITS if _SCALE[u][0] == u])
def test_quantities_round_trip_to_six_significant_digits(unit):
    """Fails if formatting loses more than the documented 6 significant digits or writes a number
    (exponent, sign) that units.py cannot parse."""
    for value in (-65.0, 0.003, 227.029985, 1.5e-7, -1234.5678):
        number, read_unit = parse_quantity(format_quantity(value, unit))
        assert (number, read_unit) == (pytest.approx(value, rel=5e-6), unit)


def test_plain_values_keep_their_kind():
    """Fails if booleans become numbers (GLIF switches), NumPy scalars leak into TOML, or integral
    dimensionless values are written as floats ("1.0" where the catalogue says 1)."""
    assert format_quantity(True) is True and format_quantity(np.bool_(False)) is False
    assert format_quantity(np.float64(1.0)) == 1 and isinstance(format_quantity(np.float64(1.0)), int)
    assert format_quantity(0.0200000001) == 0.02
    assert format_quantity(-50.625, "mV") == "-50.625 mV"


def test_a_quantity_written_into_the_catalogue_loads_in_nest_units(catalogue):
    """The writer and the catalogue reader agree on units, in a rule's per-type table. Fails if a value
    is written with quotes or spacing the reader rejects, lands in another table than the one named
    (the other cell type, the entry's own tables), or the rule's value does not win when loaded."""
    header = "models.aeif_psc_exp_nestml.rules.published.pd14_by_type.E"
    before_i = get_model("aeif_psc_exp_nestml", "published", catalogue).params_for(cell_type="I")
    text = update_catalogue_text(catalogue.read_text(), {header: {"V_th": format_quantity(-50.6123456, "mV"),
                                                                  "a": format_quantity(3.2, "nS")}})
    catalogue.write_text(text)
    spec = get_model("aeif_psc_exp_nestml", "published", catalogue)
    written = spec.params_for(cell_type="E")
    assert written["V_th"] == pytest.approx(-50.6123) and written["a"] == 3.2
    assert spec.params_for(cell_type="I") == before_i


# --- the PD14-membrane map ---------------------------------------------------------------------------------------


def test_adex_cells_move_onto_the_pd14_membrane_keeping_adaptation_ratios_and_the_reset_fraction():
    """BG05's regular-spiking AdEx (C 281 pF, g_L 30 nS, E_L -70.6, V_th -50.4 mV) gets the PD14
    membrane (C 250 pF, g_L 25 nS, E_L -65, V_th -50 mV); a/g_L and b/g_L stay, V_reset keeps its
    fraction of the E_L -> V_th window (checked on Naud's tonic I cell too: BG05's reset sits at E_L,
    fraction 0, which cannot tell a kept fraction from a reset moved to the new E_L).

    Fails if adaptation is copied in nS/pA (its strength relative to the 25 nS leak would drop by
    30/25), if a is scaled but b is not (recipes.toml's scale_g), if V_reset stays at its absolute
    -58 mV or is scaled about 0 mV instead of E_L, if time constants or Delta_T are rescaled, or if
    the published cell (shared by every rule) is changed in place.
    """
    recipe = RECIPES["aeif_psc_exp_nestml"]
    bg05 = {"C_m": 281.0, "g_L": 30.0, "E_L": -70.6, "V_th": -50.4, "Delta_T": 2.0, "a": 4.0, "tau_w": 144.0,
            "b": 80.5, "V_reset": -70.6, "V_peak": 0.0, "t_ref": 0.0}
    assert recipe.cells["E"] == pytest.approx(bg05)  # the cell the rules start from is BG05's
    for cell in (recipe.cells["E"], recipe.cells["I"]):
        published = dict(cell)
        mapped = rules.map_to_pd14_membrane(cell, recipe.membrane)
        assert cell == published
        assert {k: mapped[k] for k in ("C_m", "g_L", "E_L", "V_th")} == {
            "C_m": 250.0, "g_L": 25.0, "E_L": -65.0, "V_th": -50.0}
        for key in ("a", "b"):
            assert mapped[key] / mapped["g_L"] == pytest.approx(cell[key] / cell["g_L"], rel=1e-12), key
        fraction = (cell["V_reset"] - cell["E_L"]) / (cell["V_th"] - cell["E_L"])
        assert (mapped["V_reset"] + 65.0) / 15.0 == pytest.approx(fraction, abs=1e-12)
        assert {k: mapped[k] for k in ("Delta_T", "tau_w", "V_peak", "t_ref")} == {
            k: cell[k] for k in ("Delta_T", "tau_w", "V_peak", "t_ref")}
    assert rules.map_to_pd14_membrane(recipe.cells["I"], recipe.membrane)["V_reset"] == pytest.approx(-56.0)
    adex_e = rules.map_to_pd14_membrane(bg05, recipe.membrane)
    assert (adex_e["a"], adex_e["b"]) == (pytest.approx(4.0 * 25 / 30), pytest.approx(80.5 * 25 / 30))


def test_glif_pvalb_cell_keeps_its_threshold_jumps_and_after_spike_currents_relative_to_the_window():
    """Teeter's Pvalb GLIF5 (g 10 nS, E_L -70.384, th_inf -46.66 mV: a 23.7 mV window) on the PD14
    membrane (g 25 nS, 15 mV window): th_spike_add and voltage_reset_add keep their fraction of the
    window, asc_amps their ratio to g x window (the current that moves V by the same fraction of the
    window). Fails if the after-spike currents are scaled by g only or by the window only (their
    effect would be 1.6x too strong or 2.5x too weak), if the threshold jump is copied in mV, or if
    dimensionless and rate parameters (reset fraction, decays, switches) are touched.
    """
    recipe = RECIPES["glif_psc_nestml"]
    cell = recipe.cells["I"]
    assert (cell["g"], cell["E_L"], cell["V_th"], cell["asc_amps_2"]) == (10.0, -70.384, -46.66, -32.13)  # Pvalb
    window = cell["V_th"] - cell["E_L"]
    mapped = rules.map_to_pd14_membrane(cell, recipe.membrane)
    assert {k: mapped[k] for k in ("C_m", "g", "E_L", "V_th")} == {"C_m": 250.0, "g": 25.0, "E_L": -65.0, "V_th": -50.0}
    for key in ("th_spike_add", "voltage_reset_add"):
        assert mapped[key] / 15.0 == pytest.approx(cell[key] / window, rel=1e-12), key
    for key in ("asc_amps_1", "asc_amps_2"):
        assert mapped[key] / (25.0 * 15.0) == pytest.approx(cell[key] / (cell["g"] * window), rel=1e-12), key
    kept = ("t_ref", "th_spike_decay", "voltage_reset_fraction", "th_voltage_index", "th_voltage_decay",
            "asc_decay_1", "asc_decay_2", "asc_r_1", "asc_r_2", "spike_dependent_threshold",
            "after_spike_currents", "adapting_threshold")
    assert {k: mapped[k] for k in kept} == {k: cell[k] for k in kept}
    assert set(mapped) == set(cell)


# --- the TOML update ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", REBUILT_RULES)
def test_writing_the_values_the_catalogue_holds_changes_nothing(catalogue, rule):
    """Calibration results equal to a rule's values in the catalogue give the file back byte for byte.

    Fails for any layout change by the writer (reordered or re-spelled values: 1 -> 1.0,
    "1.2689" -> "1.26890", inline-table spacing; lost comments or blank lines; a table written twice
    or outside its rule), for a rule table the loader does not read as written (the entry's own
    tables winning over the rule's), for a rheobase that is not the E cells' provenance value, and
    for a catalogue whose method text no longer matches calibrate.py (re-run the calibration).
    """
    text = catalogue.read_text()
    results = results_from_catalogue(catalogue, rule)
    _require_rule(results, rule)
    dates = _shipped_calibration_dates(catalogue, rule)
    updates = {}
    for name, entry in results.items():
        updates.update(rule_updates(rule, {name: entry}, dates[name]))
    assert changed_lines(text, update_catalogue_text(text, updates)) == ([], [])


def test_changed_fits_change_only_their_lines_and_keep_every_comment(catalogue):
    """New psp_rheobase fits rewrite only the changed values, in that rule's tables of that model.

    Fails if an update touches other lines than the changed values (e.g. the published rule's
    V_th, E or date lines, which have the same keys), drops a trailing comment or a comment block,
    writes the rheobase from another cell type than E, or writes the values where the reader does
    not find them.
    """
    text = catalogue.read_text()
    results = results_from_catalogue(catalogue, "psp_rheobase")
    _require_rule(results, "psp_rheobase", ("aeif_psc_exp_nestml", "izhikevich_nestml"))
    shipped_izh = tomllib.loads(text)["models"]["izhikevich_nestml"]["rules"]["psp_rheobase"]["provenance"]
    adex = results["aeif_psc_exp_nestml"]["types"]["E"]
    assert (adex["params"]["V_th"], adex["params"]["Delta_T"], adex["rheobase_pA"]) != (-51.2345, 1.2345, 380.0)
    adex["params"] = dict(adex["params"], V_th=-51.2345, Delta_T=1.2345)
    adex["free"] = {"V_th": -51.2345, "Delta_T": 1.2345}
    adex["rheobase_pA"] = 380.0
    izh_i = results["izhikevich_nestml"]["types"]["I"]
    assert (izh_i["params"]["I_b"], izh_i["rheobase_pA"]) != (2.5, 376.0)
    izh_i["params"] = dict(izh_i["params"], I_b=2.5)
    izh_i["rheobase_pA"] = 376.0
    new = update_catalogue_text(text, rule_updates("psp_rheobase", results, "2030-01-02"))

    removed, added = changed_entries(text, new)
    adex_t, izh_t = "[models.aeif_psc_exp_nestml.rules.psp_rheobase", "[models.izhikevich_nestml.rules.psp_rheobase"
    assert sorted(removed) == sorted(added)  # values replaced in place, nothing added or lost
    assert set(added) == {
        (adex_t + "]", "rheobase"), (adex_t + ".pd14_by_type.E]", "V_th"), (adex_t + ".pd14_by_type.E]", "Delta_T"),
        (adex_t + ".provenance]", "E"), (izh_t + ".pd14_by_type.I]", "I_b"), (izh_t + ".provenance]", "I"),
    } | {(f"[models.{name}.rules.psp_rheobase.provenance]", "date") for name in results}
    _, added_lines = changed_lines(text, new)
    assert any(line.startswith("E = { ") and "fitted_V_th = -51.2345, fitted_Delta_T = 1.2345" in line
               for line in added_lines)  # the file's inline-table style
    assert [line for line in text.splitlines() if "#" in line] == [line for line in new.splitlines() if "#" in line]
    _write(catalogue, new)
    adex_spec = get_model("aeif_psc_exp_nestml", "psp_rheobase", catalogue)
    assert {k: adex_spec.params_for(cell_type="E")[k] for k in ("V_th", "Delta_T")} == {"V_th": -51.2345,
                                                                                        "Delta_T": 1.2345}
    assert adex_spec.rheobase_pA == 380.0
    assert get_model("izhikevich_nestml", "psp_rheobase", catalogue).params_for(cell_type="I")["I_b"] == 2.5
    izh = tomllib.loads(new)["models"]["izhikevich_nestml"]["rules"]["psp_rheobase"]["provenance"]
    assert (izh["E"]["rheobase_pA"], izh["I"]["rheobase_pA"]) == (shipped_izh["E"]["rheobase_pA"], 376.0)


def _model_end(lines, model, next_model):
    """Index of the last key line of ``model`` and the blank/comment lines from it to ``next_model``."""
    start = lines.index(f"[models.{next_model}]")
    last = start - 1
    while not lines[last].strip() or lines[last].startswith("#"):
        last -= 1
    return last, lines[last + 1:start]


def test_new_keys_and_tables_stay_above_the_next_models_comment_block(catalogue):
    """tomlkit parses the comment block above a [table] into the table before it; a naive append puts
    a new key under the next model's comment, i.e. visually into the wrong model. Fails if a new key
    in a model's last table (a rule's provenance, say), or a new table of a model whose entry ends in
    nested rule tables, lands below that block, or if a replaced value loses its trailing comment."""
    text = catalogue.read_text()
    lines = text.splitlines()
    izh_last, izh_gap = _model_end(lines, "izhikevich_nestml", "izhikevich2007_nestml")
    _, mat2_gap = _model_end(lines, "mat2_psc_exp_nestml", "glif_psc_nestml")
    izh_table = next(line for line in reversed(lines[:izh_last]) if line.startswith("["))[1:-1]
    assert izh_gap[-1].startswith("#") and mat2_gap[-1].startswith("#")  # the blocks this test is about
    new = update_catalogue_text(text, {
        izh_table: {"note": "x"},
        "models.mat2_psc_exp_nestml.numerics": {"resolution": "0.1 ms"},
        "models.galves_loecherbach_nestml.numerics": {"resolution": "0.2 ms"},
    })
    new_lines = new.splitlines()
    note = new_lines.index('note = "x"')
    assert new_lines[note - 1] == lines[izh_last]
    assert new_lines[note + 1:note + 1 + len(izh_gap)] == izh_gap
    numerics = new_lines.index("[models.mat2_psc_exp_nestml.numerics]")
    assert new_lines[numerics + 1] == 'resolution = "0.1 ms"'
    assert new_lines[numerics + 2:numerics + 2 + len(mat2_gap)] == mat2_gap
    assert 'resolution = "0.2 ms"  # Phi is a per-step probability: valid at this resolution only' in new_lines
    parsed = tomllib.loads(new)
    node = parsed
    for name in izh_table.split("."):
        node = node[name]
    assert node["note"] == "x"
    assert parsed["models"]["mat2_psc_exp_nestml"]["numerics"] == {"resolution": "0.1 ms"}


def test_a_dotted_name_through_a_value_is_refused(catalogue):
    """Fails if the writer silently overwrites a value with a table (the rule's rheobase would vanish)."""
    with pytest.raises(CortexzooError, match="rheobase"):
        update_catalogue_text(catalogue.read_text(), {"models.aeif_psc_exp_nestml.rules.published.rheobase": {"x": 1}})


# --- the atomic write --------------------------------------------------------------------------------------------


def test_a_valid_catalogue_replaces_the_file_and_the_old_one_is_the_backup(catalogue):
    """Fails if the previous catalogue is not kept, the new text is not what lands in place, or the
    temporary file is left behind."""
    old = catalogue.read_text()
    new = update_catalogue_text(old, {"models.aeif_psc_exp_nestml.rules.published.pd14_by_type.E": {"V_th": "-51 mV"}})
    backup = write_catalogue_atomically(catalogue, new)
    assert catalogue.read_text() == new
    assert backup == catalogue.with_name("catalogue.toml.bak") and backup.read_text() == old
    assert not list(catalogue.parent.glob("*.tmp-*"))


@pytest.mark.parametrize("bad", [
    # a rule table is validated even when it is not the rule a run would apply
    {"models.aeif_psc_exp_nestml.rules.published.pd14_by_type.E": {"V_th": "-50 mX"}},  # unknown unit
    {"models.aeif_psc_exp_nestml.rules.published": {"rheobase": format_quantity(float("nan"), "pA")}},  # never fired
    {"models.aeif_psc_exp_nestml.rules.published": {"gain": 2}},  # not a key a rule may hold
    {"models.aeif_psc_exp_nestml": {"kind": "compiled"}},  # not a catalogue any more
])
def test_an_invalid_update_leaves_the_catalogue_untouched(catalogue, bad):
    """Fails if the catalogue is rewritten before it is validated (the old calibrate did exactly that),
    if only the rule in use is validated, if a backup is made of a write that never happens, or if
    the temporary file survives."""
    old = catalogue.read_text()
    with pytest.raises(CortexzooError, match="left unchanged") as err:
        write_catalogue_atomically(catalogue, update_catalogue_text(old, bad))
    assert "catalogue.toml" in str(err.value) and ".tmp-" not in str(err.value)
    assert catalogue.read_text() == old
    assert sorted(p.name for p in catalogue.parent.glob("catalogue.toml*")) == ["catalogue.toml"]


def test_text_that_is_not_toml_is_refused_and_nothing_changes(catalogue):
    """Fails if syntactically broken text reaches the catalogue's place."""
    old = catalogue.read_text()
    with pytest.raises(CortexzooError, match="left unchanged"):
        write_catalogue_atomically(catalogue, old + "\n[models.broken\n")
    assert catalogue.read_text() == old and not list(catalogue.parent.glob("*.tmp-*"))


# --- one real calibration ---------------------------------------------------------------------------------------

#: A row of published.csv for a model the test does not calibrate (the columns calibration_tables.write_cells writes).
_OTHER_ROW = pd.DataFrame([{"model": "glif_psc_nestml", "cell_type": "E", "input_scale": 0.5, "bias_pA": 0.0,
                            "bias_mV": 0.0, "psp_peak_mV": 0.2, "psp_integral_mV_ms": 1.75, "R_in_MOhm": 40.0,
                            "tau_m_eff_ms": 8.0, "rheobase_pA": 600.0}])


def test_a_real_calibration_writes_only_its_model_and_keeps_a_backup(nestml_module, catalogue, tmp_path):
    """Calibrate MAT2 by the ``published`` rule (PSPs and a rheobase ladder, a few seconds) into a copy
    of the catalogue whose MAT2 published values were made stale first (otherwise a same-day re-run
    that reproduces them changes nothing, and nothing would be checked).

    Fails if calibrate writes outside that model's ``rules.published`` tables (other models, its own
    entry, other rules), writes values other than the results it returns (e.g. a unit mix-up, the I
    cells' rheobase), leaves an invalid catalogue, keeps no backup, or drops other models' rows of
    published.csv (``--models X`` once rewrote the tables with X alone).
    """
    name, prefix = "mat2_psc_exp_nestml", "models.mat2_psc_exp_nestml.rules.published"
    stale = update_catalogue_text(catalogue.read_text(), {
        prefix: {"rheobase": "1 pA"}, f"{prefix}.weights": {"psc_per_reference_psc": {"E": 9, "I": 9}},
        f"{prefix}.pd14_by_type.E": {"omega": "-1 mV"}, f"{prefix}.provenance": {"date": "2000-01-01"}})
    catalogue.write_text(stale)
    out = tmp_path / "out"
    out.mkdir()
    _OTHER_ROW.to_csv(out / "published.csv", index=False)
    day = datetime.date.today().isoformat()

    results = calibrate.run_calibration(out, models=[name], rule="published", catalogue_path=catalogue)

    new = catalogue.read_text()
    assert catalogue.with_name("catalogue.toml.bak").read_text() == stale
    removed, added = changed_entries(stale, new)
    assert added and all(header.startswith(f"[{prefix}") for header, _ in removed + added), (removed, added)
    assert {(f"[{prefix}]", "rheobase"), (f"[{prefix}.weights]", "psc_per_reference_psc"),
            (f"[{prefix}.pd14_by_type.E]", "omega"), (f"[{prefix}.provenance]", "date")} <= set(added)
    old_raw, new_raw = tomllib.loads(stale)["models"], tomllib.loads(new)["models"]
    written = new_raw[name]["rules"].pop("published")
    old_raw[name]["rules"].pop("published")
    assert new_raw == old_raw
    assert written["provenance"]["date"] in {day, datetime.date.today().isoformat()}

    fit = results[name]
    spec = get_model(name, "published", catalogue)
    assert spec.psc_per_reference_psc == pytest.approx(fit["psc_per_reference_psc"], rel=1e-5)
    assert spec.rheobase_pA == pytest.approx(fit["types"]["E"]["report"]["rheobase_pA"], rel=1e-5)
    for cell_type in rules.CELL_TYPES:
        loaded = spec.params_for(cell_type=cell_type)
        assert {k: loaded[k] for k in fit["types"][cell_type]["params"]} == pytest.approx(
            fit["types"][cell_type]["params"], rel=1e-5)

    table = pd.read_csv(out / "published.csv")
    assert table[table.model != name].to_dict("records") == _OTHER_ROW.to_dict("records")
    assert sorted(table[table.model == name].cell_type) == ["E", "I"]


# --- module boundaries -------------------------------------------------------------------------------------------


def test_models_do_not_import_the_network():
    """Fails if a module of cortexzoo.models imports cortexzoo.network (the stages would import each
    other; shared arithmetic such as psc_over_psp lives in cortexzoo.synapse)."""
    offenders = []
    for source in sorted(MODELS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            offenders += [f"{source.name}: {n}" for n in names if n.startswith("cortexzoo.network")]
    assert not offenders
    assert calibrate.reference_psc_pA() == pytest.approx(87.81, abs=0.01)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
