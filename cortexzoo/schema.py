"""Small declarative checks for config tables: unknown keys, types, ranges, choices.

Every failure names the file, the key, what was found and what is allowed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from cortexzoo.errors import CortexzooError


@dataclass(frozen=True)
class Field:
    """One allowed key of a config table.

    Parameters
    ----------
    type : type or tuple of type
        Accepted Python type(s) of the TOML value; ``float`` also accepts ints.
    default : Any
        Value when the key is absent; ``REQUIRED`` makes the key mandatory.
    help : str
        One line describing the key (shown in errors).
    choices : tuple, optional
        Allowed values.
    minimum : float, optional
        Smallest allowed number.
    exclusive_minimum : bool
        Whether ``minimum`` itself is forbidden.
    check : callable, optional
        Extra check ``check(value) -> str or None``; a string is the error.
    """

    type: Any
    default: Any
    help: str = ""
    choices: tuple | None = None
    minimum: float | None = None
    exclusive_minimum: bool = False
    check: Callable | None = None


REQUIRED = object()


def _type_name(t) -> str:
    types = t if isinstance(t, tuple) else (t,)
    return " or ".join({float: "number", int: "integer", str: "string", bool: "true/false",
                         list: "list", dict: "table"}.get(x, x.__name__) for x in types)


def check_table(table: dict, fields: dict, where: str) -> dict:
    """Validate one table against its fields and fill in defaults.

    Parameters
    ----------
    table : dict
        The table as read from TOML.
    fields : dict
        Key -> :class:`Field`.
    where : str
        File and table name for messages, e.g. ``"quick.toml [network]"``.

    Returns
    -------
    dict
        The table with defaults filled in, in ``fields`` order.

    Raises
    ------
    CortexzooError
        On an unknown key, a missing required key, a wrong type, a value out
        of range or not among the choices.
    """
    if not isinstance(table, dict):
        raise CortexzooError(f"{where}: expected a table, got {table!r}.", "See the documented config layout.")
    unknown = [k for k in table if k not in fields]
    if unknown:
        allowed = ", ".join(fields)
        raise CortexzooError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}.", f"Allowed keys: {allowed}.")
    out = {}
    for key, field in fields.items():
        name = f"{where} {key}"
        if key not in table:
            if field.default is REQUIRED:
                raise CortexzooError(f"{name} is missing.", f"Add it: {field.help}")
            out[key] = field.default
            continue
        value = table[key]
        types = field.type if isinstance(field.type, tuple) else (field.type,)
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok and float in types and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise CortexzooError(
                f"{name} = {value!r} has the wrong type; expected {_type_name(field.type)}.",
                f"{key}: {field.help}",
            )
        if field.choices is not None and value not in field.choices:
            raise CortexzooError(
                f"{name} = {value!r} is not allowed.",
                f"Use one of: {', '.join(map(repr, field.choices))}.",
            )
        if field.minimum is not None and isinstance(value, (int, float)):
            bad = value <= field.minimum if field.exclusive_minimum else value < field.minimum
            if bad:
                bound = ">" if field.exclusive_minimum else ">="
                raise CortexzooError(f"{name} = {value!r} is out of range.", f"{key} must be {bound} {field.minimum}.")
        if field.check is not None:
            problem = field.check(value)
            if problem:
                raise CortexzooError(f"{name} = {value!r}: {problem}", f"{key}: {field.help}")
        out[key] = value
    return out


def read_toml(path, what: str = "Config file") -> dict:
    """Read a TOML file; a missing file or a syntax error becomes a :class:`CortexzooError`.

    Parameters
    ----------
    path : str or pathlib.Path
    what : str
        How to name the file in the message, e.g. ``"Settings file"``.

    Returns
    -------
    dict
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (FileNotFoundError, IsADirectoryError):
        raise CortexzooError(f"{what} {path} does not exist.", "Check the path.") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CortexzooError(f"{path}: not valid TOML ({exc}).", "Fix the TOML syntax at the position given.") from None
