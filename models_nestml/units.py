"""Parse parameter values written with units ("250 pF", "-65 mV") into NEST's units."""

from __future__ import annotations

import re

from cortexzoo.errors import CortexzooError

# NEST's units for neuron parameters, and how other spellings convert into them.
_SCALE = {
    # voltage -> mV
    "V": ("mV", 1e3), "mV": ("mV", 1.0), "uV": ("mV", 1e-3),
    # time -> ms
    "s": ("ms", 1e3), "ms": ("ms", 1.0), "us": ("ms", 1e-3),
    # current -> pA
    "nA": ("pA", 1e3), "pA": ("pA", 1.0),
    # capacitance -> pF
    "nF": ("pF", 1e3), "pF": ("pF", 1.0),
    # conductance -> nS
    "uS": ("nS", 1e3), "nS": ("nS", 1.0),
    # rates -> Hz; per-ms and per-mV quantities stay in their own unit
    "Hz": ("Hz", 1.0), "kHz": ("Hz", 1e3),
    "1/ms": ("1/ms", 1.0), "1/s": ("1/ms", 1e-3),
    "1/mV": ("1/mV", 1.0),
    "pA/mV": ("pA/mV", 1.0), "nS/mV": ("nS/mV", 1.0),
    "pA*ms": ("pA*ms", 1.0), "mV/ms": ("mV/ms", 1.0),
    "GOhm": ("GOhm", 1.0), "MOhm": ("GOhm", 1e-3),
}

_PATTERN = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S.*?)?\s*$")

KNOWN_UNITS = tuple(_SCALE)


def parse_quantity(value, where: str = "value"):
    """Convert ``"250 pF"`` to ``(250.0, "pF")`` in NEST's unit for that dimension.

    Plain numbers (and booleans) are dimensionless and returned unchanged with
    unit ``""``.

    Parameters
    ----------
    value : str, int, float or bool
        The value as written in a TOML file.
    where : str
        Name of the file and key, used in error messages.

    Returns
    -------
    tuple
        ``(magnitude, unit)``.

    Raises
    ------
    CortexzooError
        On an unknown unit or a string that is not "<number> <unit>".
    """
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return value, ""
    if not isinstance(value, str):
        raise CortexzooError(
            f"{where}: expected a number or a string like '250 pF', got {value!r}.",
            "Write the value as a number followed by its unit.",
        )
    match = _PATTERN.match(value)
    if not match:
        raise CortexzooError(
            f"{where}: cannot read {value!r} as '<number> <unit>'.",
            f"Write e.g. '250 pF'; known units: {', '.join(KNOWN_UNITS)}.",
        )
    number, unit = float(match.group(1)), (match.group(2) or "")
    if not unit:
        return number, ""
    if unit not in _SCALE:
        raise CortexzooError(
            f"{where}: unknown unit {unit!r} in {value!r}.",
            f"Use one of: {', '.join(KNOWN_UNITS)}.",
        )
    target, factor = _SCALE[unit]
    return number * factor, target


def to_nest(value, expected_unit: str | None = None, where: str = "value") -> float:
    """Return the magnitude of ``value`` in NEST's unit, optionally checking the unit.

    Parameters
    ----------
    value : str, int, float or bool
        The value as written in a TOML file.
    expected_unit : str, optional
        NEST unit the value must have after conversion (e.g. ``"pA"``);
        ``""`` demands a plain number.
    where : str
        Name of the file and key, used in error messages.

    Returns
    -------
    float or bool
    """
    magnitude, unit = parse_quantity(value, where)
    if expected_unit is not None and unit != expected_unit:
        shown = unit or "no unit"
        raise CortexzooError(
            f"{where}: {value!r} has {shown}, but a value in {expected_unit or 'plain numbers'} is needed.",
            f"Write it like '1.0 {expected_unit}'." if expected_unit else "Write a plain number.",
        )
    return magnitude
