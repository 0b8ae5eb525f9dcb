"""Validation settings: data in ``validation/defaults.toml``, overridable.

Overrides come as a nested dict or a TOML file with the same layout; unknown
keys are errors so that a typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
from pathlib import Path

from cortexzoo.errors import CortexzooError
from cortexzoo.schema import read_toml

DEFAULTS_PATH = Path(__file__).resolve().parent / "defaults.toml"

STATISTICS = ("rates", "cv", "lv", "cc", "complexity", "synchrony", "psd")
DISTRIBUTION_STATISTICS = ("rates", "cv", "lv", "cc", "complexity")
SCORE_KINDS = {
    **{s: ("ks", "wasserstein", "effect_size") for s in DISTRIBUTION_STATISTICS},
    "synchrony": ("relative_difference",),
    "psd": ("log_psd_rms", "peak_shift_hz"),
}


def _merge(base: dict, override: dict, where: str) -> None:
    for key, value in override.items():
        if key not in base:
            raise CortexzooError(
                f"Unknown validation setting '{where}{key}'.",
                f"Use one of: {', '.join(where + k for k in base)} (see validation/defaults.toml).",
            )
        if isinstance(base[key], dict) and key != "primary":
            if not isinstance(value, dict):
                raise CortexzooError(f"Validation setting '{where}{key}' must be a table.", "See validation/defaults.toml.")
            _merge(base[key], value, f"{where}{key}.")
        elif key == "primary":
            if not isinstance(value, dict):
                raise CortexzooError("Validation setting 'scores.primary' must be a table.", "See validation/defaults.toml.")
            base[key] = {**base[key], **value}
        else:
            base[key] = value


def load_settings(overrides=None) -> dict:
    """Defaults from ``defaults.toml`` with optional overrides.

    Parameters
    ----------
    overrides : dict or str or pathlib.Path, optional
        Nested dict (``{"statistics": {"cc_bin_ms": 5.0}}``) or a TOML file
        with the same layout. Only the keys given are replaced.

    Returns
    -------
    dict
        The full, checked settings.

    Raises
    ------
    CortexzooError
        For unknown keys or values out of range.
    """
    settings = read_toml(DEFAULTS_PATH, "Settings file")
    if overrides is not None:
        if not isinstance(overrides, dict):
            overrides = read_toml(overrides, "Settings file")
        _merge(settings, copy.deepcopy(overrides), "")
    check_settings(settings)
    return settings


def check_settings(settings: dict) -> None:
    """Raise :class:`CortexzooError` for values that make no sense.

    Parameters
    ----------
    settings : dict
        As returned by :func:`load_settings`.
    """
    s = settings["statistics"]

    def bad(key, why):
        raise CortexzooError(f"Validation setting 'statistics.{key}' = {s[key]!r} {why}.", "Fix it in your settings file.")

    for key in ("cc_bin_ms", "synchrony_bin_ms", "complexity_bin_ms", "psd_bin_ms", "welch_segment_ms"):
        if not isinstance(s[key], (int, float)) or s[key] <= 0:
            bad(key, "must be a positive number")
    for key in ("min_spikes_isi", "cc_subsample_neurons", "n_peaks"):
        if not isinstance(s[key], int) or s[key] < 1:
            bad(key, "must be a positive integer")
    if s["cc_subsample_neurons"] < 2:
        bad("cc_subsample_neurons", "must be at least 2 (correlations need pairs)")
    if not 0 <= s["welch_overlap"] < 1:
        bad("welch_overlap", "must be in [0, 1)")
    band = s["band_hz"]
    if len(band) != 2 or not 0 <= band[0] < band[1]:
        bad("band_hz", "must be [low, high] with 0 <= low < high")
    nyquist = 1000.0 / (2 * s["psd_bin_ms"])
    if band[1] > nyquist + 1e-9:
        bad("band_hz", f"reaches above the Nyquist frequency {nyquist:g} Hz of psd_bin_ms = {s['psd_bin_ms']}")
    sc = settings["scores"]
    if not isinstance(sc["min_reference_seeds"], int) or sc["min_reference_seeds"] < 1:
        raise CortexzooError("Validation setting 'scores.min_reference_seeds' must be a positive integer.", "Fix it.")
    for stat, kind in sc["primary"].items():
        if stat not in SCORE_KINDS or kind not in SCORE_KINDS[stat]:
            raise CortexzooError(
                f"Validation setting 'scores.primary.{stat}' = {kind!r} is not a known statistic/score kind.",
                f"Known: {SCORE_KINDS}.",
            )
