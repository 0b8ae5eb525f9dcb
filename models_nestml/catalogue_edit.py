"""Change values in the model catalogue without losing its comments, layout or validity.

``cortexzoo calibrate`` writes fitted values into ``models_nestml/catalogue.toml``,
a hand-written file whose comments document the models. Two steps keep it safe:

* :func:`update_catalogue_text` changes exactly the values it is given, through
  tomlkit's round-trip document model: comments, blank lines, key order and the
  spelling of every untouched value stay byte for byte. A value that is already
  equal (``1`` vs ``1.0``, ``0.1500`` vs ``0.15``) is left as written.
* :func:`write_catalogue_atomically` replaces the file only with a text that
  loads as a valid catalogue, by rename, and keeps the previous file as
  ``catalogue.toml.bak`` beside it (one backup, the state before the last
  write; older states are in git).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import tomlkit
from tomlkit.exceptions import ParseError
from tomlkit.items import Item, Table

from cortexzoo.errors import CortexzooError

#: appended to the catalogue's file name for the copy of the previous catalogue
BACKUP_SUFFIX = ".bak"


def format_quantity(value, unit: str = ""):
    """A parameter value as the catalogue writes it.

    Six significant digits, as ``"<number> <unit>"`` (read back by
    :func:`cortexzoo.models.units.parse_quantity`) or, without a unit, a
    plain number; integral plain numbers become integers (``1``, not ``1.0``)
    as in the hand-written entries.

    Parameters
    ----------
    value : float, int or bool
        In NEST's unit ``unit`` (Python or NumPy scalar).
    unit : str
        NEST unit such as ``"mV"``; ``""`` for dimensionless values.

    Returns
    -------
    str, int, float or bool
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    number = float(f"{float(value):.6g}")
    if unit:
        return f"{number:.6g} {unit}"
    return int(number) if number.is_integer() else number


def update_catalogue_text(text: str, updates: dict) -> str:
    """Set values in a catalogue's TOML text, keeping everything else as written.

    Parameters
    ----------
    text : str
        The catalogue (any TOML document).
    updates : dict
        Dotted table name -> ``{key: value}``, e.g.
        ``{"models.aeif_psc_exp_nestml.pd14": {"V_th": "-50.6 mV"}}``.
        Values are str, int, float, bool or dict (written as a one-line inline
        table, nested dicts nested). An existing key keeps its place and its
        trailing comment; a new key goes after the table's last key; a missing
        table is added after the last table of its parent. Both stay above the
        comment block that introduces the next table.

    Returns
    -------
    str

    Raises
    ------
    CortexzooError
        When ``text`` is not TOML or a dotted name runs through a value.
    """
    try:
        doc = tomlkit.parse(text)
    except ParseError as exc:
        raise CortexzooError(f"The catalogue is not valid TOML ({exc}).", "Fix the TOML syntax at the position given.")
    for header, values in updates.items():
        table = _table(doc, header)
        for key, value in values.items():
            _set(table, key, value)
    return tomlkit.dumps(doc)


def write_catalogue_atomically(path, new_text: str) -> Path | None:
    """Replace the catalogue at ``path`` by ``new_text`` if that is a valid catalogue.

    The text goes to ``<path>.tmp-<pid>`` in the same folder (same file
    system, so the rename is atomic; relative ``source`` files resolve as for
    the real file), is validated with
    :func:`cortexzoo.models.catalogue.load_catalogue`, the current file is
    copied to ``<path>.bak``, and the temporary file is renamed over ``path``.
    A reader sees the old or the new catalogue, never a partial one; on any
    failure ``path`` is untouched and no temporary file remains.

    Parameters
    ----------
    path : str or pathlib.Path
        The catalogue file.
    new_text : str

    Returns
    -------
    pathlib.Path or None
        The backup of the previous catalogue (None if ``path`` did not exist).

    Raises
    ------
    CortexzooError
        When ``new_text`` does not validate; ``path`` is then unchanged.
    """
    from cortexzoo.models.catalogue import load_catalogue

    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    backup = path.with_name(path.name + BACKUP_SUFFIX) if path.exists() else None
    try:
        with open(tmp, "w") as f:
            f.write(new_text)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the rename makes it the catalogue
        try:
            load_catalogue(tmp)
        except CortexzooError as err:
            raise CortexzooError(
                f"The updated catalogue is not valid, so {path} was left unchanged: "
                f"{err.problem.replace(tmp.name, path.name)}",
                err.fix,
            ) from err
        if backup is not None:
            shutil.copy2(path, backup)
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return backup


def _table(doc, header: str) -> Table:
    """The table named by a dotted header, created (with its parents) when missing."""
    node = doc
    for depth, name in enumerate(header.split(".")):
        if name not in node:
            # parents that only hold sub-tables get no header of their own, like [models]
            _add_table(node, name, tomlkit.table(is_super_table=depth < header.count(".")))
        node = node[name]
        if not isinstance(node, Table):
            # a value, or tomlkit's proxy for a table whose headers are spread over the file
            raise CortexzooError(
                f"The catalogue's {'.'.join(header.split('.')[: depth + 1])!r} is not one table in one place.",
                "Keep each model's tables together in catalogue.toml, one [header] per table.",
            )
    return node


def _set(table, key: str, value) -> None:
    if key in table and _same(table[key], value):
        return  # keep the value as written (its spelling may differ, e.g. 0.1500)
    if key in table:
        table[key] = _item(value)  # tomlkit keeps the key's place and trailing comment
        return
    trailer = _detach_trailer(table)
    table.add(key, _item(value))
    _reattach(table, trailer)


def _add_table(parent, name: str, table: Table) -> None:
    trailer = _detach_trailer(_last_table(parent))
    parent.add(name, table)
    _reattach(table, trailer)


def _last_table(table):
    """The table whose body ends where ``table`` ends in the file (its last sub-table, recursively)."""
    while True:
        keyed = [item for key, item in _body(table) if key is not None]
        if not keyed or not isinstance(keyed[-1], Table):
            return table
        table = keyed[-1]


def _detach_trailer(table) -> list:
    """Remove and return the blank lines and comments at the end of a table's body.

    tomlkit attaches the comment block above a table header to the body of
    the table before it (tomlkit issue #295), so a key appended there would
    land under the next model's comment. Only key-less items at the very end
    are removed, which no key's index in the table refers to.
    """
    body = _body(table)
    trailer = []
    while body and body[-1][0] is None:
        trailer.insert(0, body.pop()[1])
    return trailer


def _reattach(table, trailer: list) -> None:
    for item in trailer:
        table.add(item)


def _body(table) -> list:
    return table.value.body if isinstance(table, Table) else table.body


def _same(old, new) -> bool:
    """Equal value and kind (bool, number, string, table), so rewriting would change nothing."""
    old = old.unwrap() if isinstance(old, Item) else old
    if isinstance(new, dict) or isinstance(old, dict):
        return (isinstance(new, dict) and isinstance(old, dict) and old.keys() == new.keys()
                and all(_same(old[k], new[k]) for k in new))
    if isinstance(new, bool) or isinstance(old, bool):
        return isinstance(new, bool) and isinstance(old, bool) and old == new
    if isinstance(new, (int, float)) and isinstance(old, (int, float)):
        return old == new
    return type(old) is type(new) and old == new


def _item(value) -> Item:
    """A tomlkit item; dicts as one-line inline tables in the catalogue's ``{ a = 1 }`` style."""
    if isinstance(value, dict):
        # tomlkit's own inline tables render as "{a = 1,b = 2}" after edits; spelling the
        # table with tomlkit-rendered keys and values and parsing it keeps the file's style
        pairs = ", ".join(f"{tomlkit.key(k).as_string()} = {_item(v).as_string()}" for k, v in value.items())
        return tomlkit.value("{ " + pairs + " }" if pairs else "{}")
    return tomlkit.item(value)
