"""The helpers of ``cortexzoo calibrate``: rheobase search, loss, units, and the catalogue update.

All fast (no simulation); the catalogue tests work on a copy of the real
catalogue (with the .nestml files its ``source`` keys name) in ``tmp_path``.
"""

import ast
import difflib
import math
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest

from cortexzoo.errors import CortexzooError
from cortexzoo.models import calibrate
from cortexzoo.models.calibrate import (
    LAMBDA_HZ_PER_PA,
    MODELS,
    TARGET_RHEOBASE_PA,
    catalogue_updates,
    loss,
    rheobase,
)
from cortexzoo.models.catalogue import CATALOGUE_PATH, load_catalogue
from cortexzoo.models.catalogue_edit import format_quantity, update_catalogue_text, write_catalogue_atomically
from cortexzoo.models.units import _SCALE, KNOWN_UNITS, parse_quantity

MODELS_DIR = CATALOGUE_PATH.parent


def _shipped_calibration_date():
    """The one calibration date of the shipped catalogue (a full `cortexzoo calibrate` writes one date)."""
    raw = tomllib.loads(CATALOGUE_PATH.read_text())["models"]
    dates = {entry["calibration"]["date"] for entry in raw.values() if "calibration" in entry}
    assert len(dates) == 1, f"the shipped catalogue mixes calibration dates {dates}; re-run `cortexzoo calibrate`"
    return dates.pop()


CATALOGUE_DATE = _shipped_calibration_date()


@pytest.fixture
def catalogue(tmp_path):
    """A copy of the real catalogue, beside the .nestml sources it names."""
    for source in MODELS_DIR.glob("*.nestml"):
        shutil.copy(source, tmp_path)
    path = tmp_path / "catalogue.toml"
    shutil.copy(CATALOGUE_PATH, path)
    return path


def results_from_catalogue(path):
    """The calibration results that would write exactly the values the catalogue holds."""
    raw, specs = tomllib.loads(path.read_text()), load_catalogue(path)
    results = {}
    for name, cal in MODELS.items():
        written = raw["models"][name]["calibration"]
        types = {}
        for cell_type in cal.base:
            key = cell_type or "all"
            free = dict(written["fitted"][key])
            psp = written["psp_mV"][key] if isinstance(written["psp_mV"], dict) else written["psp_mV"]
            types[cell_type] = {
                "params": specs[name].params_for(cell_type=cell_type), "scale": free.pop("s_psp", 1.0), "free": free,
                "residual_Hz": written["residual_Hz"][key], "rheobase_pA": written["rheobase_pA"][key], "psp_mV": psp,
            }
        results[name] = {"types": types, "psc_per_reference_psc": specs[name].psc_per_reference_psc}
    return results


def changed_lines(old, new):
    """(removed, added) lines between two texts."""
    diff = [d for d in difflib.ndiff(old.splitlines(), new.splitlines()) if d[:2] in ("- ", "+ ")]
    return [d[2:] for d in diff if d[0] == "-"], [d[2:] for d in diff if d[0] == "+"]


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


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_unit_calibrate_writes_reads_back_unchanged(name):
    """Every parameter of a recipe, written as the catalogue writes it, reads back as the same number
    in the same unit. Fails if a recipe names a unit units.py does not know, or one that units.py
    converts (e.g. "nA" for a value calibrate holds in pA: the network would get 1000x the current)."""
    cal = MODELS[name]
    for params in cal.base.values():
        for param, value in params.items():
            unit = cal.units.get(param, "")
            number, read_unit = parse_quantity(format_quantity(value, unit), where=f"{name}.{param}")
            assert read_unit == unit, (param, unit)
            assert number == pytest.approx(float(value), rel=1e-5), param


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
    """The writer and the catalogue reader agree on units. Fails if a value is written with quotes
    or spacing the reader rejects, or lands in another table than the one named."""
    header = "models.aeif_psc_exp_nestml.pd14"
    text = update_catalogue_text(catalogue.read_text(), {header: {"V_th": format_quantity(-50.6123456, "mV"),
                                                                  "a": format_quantity(3.2, "nS")}})
    catalogue.write_text(text)
    spec = load_catalogue(catalogue)["aeif_psc_exp_nestml"]
    assert spec.pd14["V_th"] == pytest.approx(-50.6123) and spec.pd14["a"] == 3.2


# --- the TOML update ---------------------------------------------------------------------------------------------


def test_writing_the_values_the_catalogue_holds_changes_nothing(catalogue):
    """Calibration results equal to the catalogue's values give the file back byte for byte.

    Fails for any layout change by the writer: reordered or re-spelled values (1 -> 1.0,
    0.1500 -> 0.15, inline-table spacing), lost comments or blank lines, a per-type parameter
    repeated although the common pd14 table has it (Izhikevich V_th), or a table written twice.
    """
    text = catalogue.read_text()
    updates = catalogue_updates(results_from_catalogue(catalogue), tomllib.loads(text), CATALOGUE_DATE)
    assert update_catalogue_text(text, updates) == text


def test_changed_fits_change_only_their_lines_and_keep_every_comment(catalogue):
    """Fails if an update touches other lines than the changed values, drops a trailing comment or a
    comment block, or writes the values where the reader does not find them."""
    text = catalogue.read_text()
    results = results_from_catalogue(catalogue)
    adex = results["aeif_psc_exp_nestml"]["types"][None]
    adex["params"] = dict(adex["params"], V_th=-51.25, Delta_T=1.5)
    adex["free"] = {"V_th": -51.25, "Delta_T": 1.5}
    izh_i = results["izhikevich_nestml"]["types"]["I"]
    izh_i["params"] = dict(izh_i["params"], I_b=2.5)
    izh_i["rheobase_pA"] = 376.0
    new = update_catalogue_text(text, catalogue_updates(results, tomllib.loads(text), "2030-01-02"))

    removed, added = changed_lines(text, new)
    assert len(removed) == len(added)  # values replaced in place, nothing added or lost
    assert {line.split(" = ")[0] for line in added} == {
        "Delta_T", "V_th", "fitted", "I_b", "rheobase_pA", "date"}
    assert sum(line.startswith("date = ") for line in added) == len(MODELS)  # one per calibrated model
    assert "fitted = { all = { V_th = -51.25, Delta_T = 1.5 } }" in added  # the file's inline-table style
    assert [line for line in text.splitlines() if "#" in line] == [line for line in new.splitlines() if "#" in line]
    spec = load_catalogue(_write(catalogue, new))
    assert spec["aeif_psc_exp_nestml"].pd14["V_th"] == -51.25
    assert spec["izhikevich_nestml"].pd14_by_type["I"]["I_b"] == 2.5
    shipped_e = load_catalogue(catalogue)["izhikevich_nestml"].extra["calibration"]["rheobase_pA"]["E"]
    assert spec["izhikevich_nestml"].extra["calibration"]["rheobase_pA"] == {"E": shipped_e, "I": 376.0}


def test_new_keys_and_tables_stay_above_the_next_models_comment_block(catalogue):
    """tomlkit parses the comment block above a [table] into the table before it; a naive append puts
    a new key under the next model's comment, i.e. visually into the wrong model. Fails if new keys
    or tables land below that block, or if a replaced value loses its trailing comment."""
    text = catalogue.read_text()
    new = update_catalogue_text(text, {
        "models.izhikevich_nestml.calibration": {"note": "x"},
        "models.mat2_psc_exp_nestml.numerics": {"resolution": "0.1 ms"},
        "models.galves_loecherbach_nestml.numerics": {"resolution": "0.2 ms"},
    })
    lines = new.splitlines()
    note = lines.index('note = "x"')
    assert lines[note - 1].startswith("rheobase_pA = ") and lines[note + 1:note + 3] == ["", ""]
    assert lines[note + 3].startswith("# Izhikevich (2007)")
    numerics = lines.index("[models.mat2_psc_exp_nestml.numerics]")
    assert lines[numerics + 1] == 'resolution = "0.1 ms"'
    assert lines[numerics + 4].startswith("# GLIF level 5")
    assert 'resolution = "0.2 ms"  # Phi is a per-step probability: valid at this resolution only' in lines
    assert load_catalogue(_write(catalogue, new))["mat2_psc_exp_nestml"].extra["numerics"] == {
        "resolution": "0.1 ms"}


def test_a_dotted_name_through_a_value_is_refused(catalogue):
    """Fails if the writer silently overwrites a value with a table (rheobase would vanish)."""
    with pytest.raises(CortexzooError, match="rheobase"):
        update_catalogue_text(catalogue.read_text(), {"models.aeif_psc_exp_nestml.rheobase": {"x": 1}})


# --- the atomic write --------------------------------------------------------------------------------------------


def test_a_valid_catalogue_replaces_the_file_and_the_old_one_is_the_backup(catalogue):
    """Fails if the previous catalogue is not kept, the new text is not what lands in place, or the
    temporary file is left behind."""
    old = catalogue.read_text()
    new = update_catalogue_text(old, {"models.aeif_psc_exp_nestml.pd14": {"V_th": "-51 mV"}})
    backup = write_catalogue_atomically(catalogue, new)
    assert catalogue.read_text() == new
    assert backup == catalogue.with_name("catalogue.toml.bak") and backup.read_text() == old
    assert not list(catalogue.parent.glob("*.tmp-*"))


@pytest.mark.parametrize("bad", [
    {"models.aeif_psc_exp_nestml.pd14": {"V_th": "-50 mX"}},  # unknown unit
    {"models.aeif_psc_exp_nestml": {"rheobase": format_quantity(float("nan"), "pA")}},  # model never fired
    {"models.aeif_psc_exp_nestml": {"kind": "compiled"}},  # not a catalogue any more
])
def test_an_invalid_update_leaves_the_catalogue_untouched(catalogue, bad):
    """Fails if the catalogue is rewritten before it is validated (the old calibrate did exactly that),
    if a backup is made of a write that never happens, or if the temporary file survives."""
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


def test_a_real_calibration_writes_only_its_model_and_keeps_a_backup(nestml_module, catalogue, tmp_path):
    """Calibrate MAT2 (the cheapest recipe, about 5 s) into a copy of the catalogue.

    Fails if calibrate writes outside the calibrated model's tables, writes values other than the
    fit it returns (e.g. a unit mix-up), leaves an invalid catalogue, or keeps no backup.
    """
    old = catalogue.read_text()
    results = calibrate.run_calibration(tmp_path / "out", models=["mat2_psc_exp_nestml"], catalogue_path=catalogue)
    new = catalogue.read_text()
    assert catalogue.with_name("catalogue.toml.bak").read_text() == old
    start, end = new.index("[models.mat2_psc_exp_nestml]"), new.index("[models.glif_psc_nestml]")
    assert new[:start] == old[:start] and new[end:] == old[old.index("[models.glif_psc_nestml]"):]
    fit = results["mat2_psc_exp_nestml"]["types"][None]
    spec = load_catalogue(catalogue)["mat2_psc_exp_nestml"]
    assert spec.pd14["omega"] == pytest.approx(fit["free"]["omega"], rel=1e-5)
    assert spec.rheobase_pA == pytest.approx(fit["rheobase_pA"], abs=0.05)
    assert (tmp_path / "out" / "calibration.csv").exists()


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
