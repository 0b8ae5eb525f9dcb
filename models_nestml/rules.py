"""The calibration rules as data: published cells, recipes and the PD14-membrane map.

Pure functions and file reading only (no NEST): :mod:`cortexzoo.models.calibrate`
measures and fits, this module says *what* each rule starts from.

* ``models_nestml/cell_types.toml`` -- published E (regular-spiking) and I
  (fast-spiking) cells with their sources;
* ``models_nestml/recipes.toml`` -- per model: the PD14-membrane map, the
  input-scale parameters, what ``psp_rheobase`` fits and the
  ``operating_point`` gain grid.

The method is explained in ``docs/calibration.md``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from cortexzoo.errors import CortexzooError
from cortexzoo.models.catalogue import CELL_TYPES
from cortexzoo.models.units import to_nest

HERE = Path(__file__).resolve().parent
RECIPES_PATH = HERE / "recipes.toml"
CELL_TYPES_PATH = HERE / "cell_types.toml"
#: The PD14 LIF membrane every mapped cell gets (PD14 Table 5): g = C_m / tau_m, window = V_th - E_L.
PD14_G_NS = 25.0
PD14_WINDOW_MV = 15.0


@dataclass(frozen=True)
class Recipe:
    """How one model is calibrated under each rule (one table of ``recipes.toml``).

    Attributes
    ----------
    model : str
        Catalogue / NEST model name.
    cells : dict
        ``{"E": params, "I": params}``: the published cells in NEST units.
    membrane : dict or None
        The PD14-membrane map (``[<model>.pd14_membrane]``); None for models without a passive membrane.
    input_scale : tuple
        Current-like parameters whose common factor is the input scale (Izhikevich models).
    units : dict
        Parameter -> unit for writing the catalogue.
    psp_rheobase : dict
        ``free`` (name -> (low, high, n, "lin"|"log")), optional ``input_scale`` and ``scale_init``.
    operating_point : dict
        Optional ``gain`` (name -> grid of values).
    """

    model: str
    cells: dict
    membrane: dict | None
    input_scale: tuple = ()
    units: dict = field(default_factory=dict)
    psp_rheobase: dict = field(default_factory=dict)
    operating_point: dict = field(default_factory=dict)


def _read(path: Path) -> dict:
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def _convert(table: dict, where: str) -> dict:
    return {k: to_nest(v, where=f"{where}.{k}") for k, v in table.items()}


def load_recipes() -> dict:
    """All recipes, with their published cells in NEST units.

    Cells of a recipe with ``cells = "catalogue"`` are the catalogue entry's
    own values (its ``published`` rule).

    Returns
    -------
    dict
        Model name -> :class:`Recipe`.
    """
    recipes, cells = _read(RECIPES_PATH), _read(CELL_TYPES_PATH)
    out = {}
    for model, raw in recipes.items():
        where = f"{RECIPES_PATH.name} [{model}]"
        if "same_as" in raw:  # another integrator of the same cell: its recipe and published cells
            raw = recipes[raw["same_as"]]
            cells = {**cells, model: cells[recipes[model]["same_as"]]} if recipes[model]["same_as"] in cells else cells
        if raw.get("cells") == "catalogue":
            spec = _catalogue_base(model)
            published = {t: spec.params_for(cell_type=t) for t in CELL_TYPES}
        elif model in cells:
            published = {t: _convert(cells[model][t], f"{CELL_TYPES_PATH.name} [{model}.{t}]") for t in CELL_TYPES}
        else:
            raise CortexzooError(f"{where}: no published cells for {model!r} in {CELL_TYPES_PATH.name}.",
                                 "Add [<model>.E] and [<model>.I] there, or set cells = \"catalogue\".")
        membrane = raw.get("pd14_membrane")
        if membrane is not None:
            membrane = dict(membrane, set=_convert(membrane.get("set", {}), f"{where}.pd14_membrane.set"))
        out[model] = Recipe(model=model, cells=published, membrane=membrane,
                            input_scale=tuple(raw.get("input_scale", ())), units=dict(raw.get("units", {})),
                            psp_rheobase=dict(raw.get("psp_rheobase", {})),
                            operating_point=dict(raw.get("operating_point", {})))
    return out


def _catalogue_base(model: str):
    """The catalogue entry of ``model`` without any rule: its own (published) cell."""
    from cortexzoo.models.catalogue import _parse_entry, catalogue_path, raw_models

    models = raw_models()
    if model not in models:
        raise CortexzooError(f"{RECIPES_PATH.name} [{model}]: cells come from the catalogue, which has no such model.",
                             "Add the model to catalogue.toml or give its cells in cell_types.toml.")
    raw = {k: v for k, v in models[model].items() if k not in ("rules", "default_rule")}
    return _parse_entry(model, raw, catalogue_path())


def leak_conductance_nS(cell: dict, membrane: dict) -> float:
    """The cell's leak conductance: the named conductance, or ``C_m / tau_m``.

    Parameters
    ----------
    cell : dict
        Published parameters (NEST units).
    membrane : dict
        The recipe's ``pd14_membrane`` table.

    Returns
    -------
    float
    """
    name = membrane.get("conductance")
    return float(cell[name]) if name else float(cell["C_m"]) / float(cell["tau_m"])


def map_to_pd14_membrane(cell: dict, membrane: dict | None) -> dict:
    """A published cell on the PD14 LIF membrane (see ``recipes.toml``'s header).

    Parameters
    ----------
    cell : dict
        Published parameters (NEST units).
    membrane : dict or None
        The recipe's ``pd14_membrane`` table (None: returned unchanged).

    Returns
    -------
    dict
        New parameter set.
    """
    if membrane is None:
        return dict(cell)
    g_ratio = PD14_G_NS / leak_conductance_nS(cell, membrane)
    threshold = membrane.get("threshold")
    window_ratio = PD14_WINDOW_MV / (cell[threshold] - cell["E_L"]) if threshold else 1.0
    new_rest = membrane["set"].get("E_L", cell.get("E_L"))
    out = dict(cell)
    for key in membrane.get("scale_g", ()):
        out[key] = cell[key] * g_ratio
    for key in membrane.get("scale_window", ()):
        out[key] = cell[key] * window_ratio
    for key in membrane.get("scale_g_window", ()):
        out[key] = cell[key] * g_ratio * window_ratio
    for key in membrane.get("keep_fraction", ()):
        out[key] = new_rest + (cell[key] - cell["E_L"]) * window_ratio
    out.update(membrane["set"])
    return out


def scaled(cell: dict, keys, scale: float) -> dict:
    """The cell with its input-scale parameters multiplied by ``scale`` (input divided by it).

    Parameters
    ----------
    cell : dict
    keys : iterable of str
    scale : float

    Returns
    -------
    dict
    """
    return dict(cell, **{k: cell[k] * scale for k in keys if k in cell})
