"""Read the published cell-type parameter sets (models_nestml/cell_types.toml) in NEST units."""

from __future__ import annotations

import tomllib
from pathlib import Path

import cortexzoo.models
from cortexzoo.models.units import to_nest

CELL_TYPES_FILE = Path(cortexzoo.models.__file__).resolve().parent / "cell_types.toml"


def load_cell_types() -> dict:
    """The raw tables of cell_types.toml: ``{nest_model: {"E": {...}, "I": {...}}}``.

    Returns
    -------
    dict
    """
    with open(CELL_TYPES_FILE, "rb") as fh:
        return tomllib.load(fh)


def published_set(model: str, cell_type: str) -> dict:
    """One published set with every value converted to NEST's units.

    Parameters
    ----------
    model : str
        NEST model name, e.g. ``"glif_psc_nestml"``.
    cell_type : {"E", "I"}
        Cell type.

    Returns
    -------
    dict
        Parameter name -> float (or bool), ready for ``nest.Create``.
    """
    table = load_cell_types()[model][cell_type]
    return {key: to_nest(value, where=f"{CELL_TYPES_FILE.name} [{model}.{cell_type}] {key}")
            for key, value in table.items()}
