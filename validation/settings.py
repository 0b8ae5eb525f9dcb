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


# Keys that existed once, with what replaced them: a clear error beats "unknown key" for old settings files.
RETIRED = {
    "statistics.min_spikes_isi": (
        ("was replaced by 'statistics.min_isis_cv' (default 10) and 'statistics.min_isis_lv' (default 2), "
         "thresholds counted in inter-spike intervals, separately for CV and LV: the CV of few intervals is "
         "biased low (its mean then re-measures the rate) while LV is unbiased from 2 intervals on"),
        ("Delete min_spikes_isi from your settings (the defaults are meant for every run) or set min_isis_cv / "
         "min_isis_lv; min_spikes_isi = k meant k - 1 intervals (at least 1 for CV, 2 for LV)."),
    ),
}


def _merge(base: dict, override: dict, where: str) -> None:
    for key, value in override.items():
        if f"{where}{key}" in RETIRED:
            why, fix = RETIRED[f"{where}{key}"]
            raise CortexzooError(f"Validation setting '{where}{key}' {why}.", fix)
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
    _check_statistics(settings["statistics"])
    _check_scores(settings)


def _check_scores(settings: dict) -> None:
    from cortexzoo.validation.inference import CI_METHODS, TESTS
    from cortexzoo.validation.statistics import MEASURE_UNITS, RESPONSE_UNITS, fano_key

    sc = settings["scores"]

    def bad(key, why):
        raise CortexzooError(f"Validation setting 'scores.{key}' = {sc[key]!r} {why}.", "Fix it in your settings file.")

    for key in ("min_reference_seeds", "min_variant_seeds", "bootstrap_samples"):
        if not _is_int(sc[key]) or sc[key] < 1:
            bad(key, "must be a positive integer")
    if not _is_int(sc["inference_seed"]) or sc["inference_seed"] < 0:
        bad("inference_seed", "must be an integer >= 0")
    for key in ("fdr", "ci_level"):
        if isinstance(sc[key], bool) or not isinstance(sc[key], (int, float)) or not 0 < sc[key] < 1:
            bad(key, "must be a number between 0 and 1")
    if sc["test"] not in TESTS:
        bad("test", f"is not one of {', '.join(TESTS)}")
    if sc["ci_method"] not in CI_METHODS:
        bad("ci_method", f"is not one of {', '.join(CI_METHODS)}")
    known = list(MEASURE_UNITS) + list(RESPONSE_UNITS) + [fano_key(w) for w in settings["statistics"]["fano_windows_ms"]]
    unknown = [m for m in [*sc["measures"], *sc["exclude_measures"]] if m not in known]
    if unknown:
        bad("measures", f"names measures no run will have: {unknown} (known: {', '.join(known)}; ff_<window>ms "
                        "follows statistics.fano_windows_ms)")
    for stat, kind in sc["primary"].items():
        if stat not in SCORE_KINDS or kind not in SCORE_KINDS[stat]:
            raise CortexzooError(
                f"Validation setting 'scores.primary.{stat}' = {kind!r} is not a known statistic/score kind.",
                f"Known: {SCORE_KINDS}.",
            )


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_statistics(s: dict) -> None:
    def bad(key, why):
        raise CortexzooError(f"Validation setting 'statistics.{key}' = {s[key]!r} {why}.", "Fix it in your settings file.")

    for key in ("cc_bin_ms", "synchrony_bin_ms", "complexity_bin_ms", "psd_bin_ms", "welch_segment_ms",
                "cc_min_rate_hz"):
        if not _is_number(s[key]) or s[key] <= 0:
            bad(key, "must be a positive number")
    for key in ("cc_subsample_neurons", "synchrony_subsample_neurons", "n_peaks"):
        if not _is_int(s[key]) or s[key] < 1:
            bad(key, "must be a positive integer")
    for key in ("cc_seed", "synchrony_seed"):
        if not _is_int(s[key]) or s[key] < 0:
            bad(key, "must be a non-negative integer (a random seed)")
    if not _is_int(s["min_isis_cv"]) or s["min_isis_cv"] < 2:
        bad("min_isis_cv", "must be an integer >= 2 (the CV of a single interval is always 0)")
    if not _is_int(s["min_isis_lv"]) or s["min_isis_lv"] < 2:
        bad("min_isis_lv", "must be an integer >= 2 (LV compares consecutive intervals)")
    if s["cc_subsample_neurons"] < 2:
        bad("cc_subsample_neurons", "must be at least 2 (correlations need pairs)")
    if not _is_number(s["welch_overlap"]) or not 0 <= s["welch_overlap"] < 1:
        bad("welch_overlap", "must be in [0, 1)")
    _check_band(s, bad)
    _check_fano_windows(s, bad)


def _check_band(s, bad) -> None:
    band = s["band_hz"]
    if not isinstance(band, list) or len(band) != 2 or not all(_is_number(b) for b in band) \
            or not 0 <= band[0] < band[1]:
        bad("band_hz", "must be [low, high] with 0 <= low < high")
    nyquist = 1000.0 / (2 * s["psd_bin_ms"])
    if band[1] > nyquist + 1e-9:
        bad("band_hz", f"reaches above the Nyquist frequency {nyquist:g} Hz of psd_bin_ms = {s['psd_bin_ms']}")


def _check_fano_windows(s, bad) -> None:
    windows = s["fano_windows_ms"]
    if not isinstance(windows, list) or not windows or not all(_is_number(w) and w > 0 for w in windows):
        bad("fano_windows_ms", "must be a non-empty list of positive window lengths in ms")
    names = [f"{w:g}" for w in windows]
    if len(set(names)) != len(names):
        bad("fano_windows_ms", "has repeated windows (each gives the measure ff_<window>ms)")


def decided_measures(settings: dict, available) -> list:
    """The measures decisions are made on: ``scores.measures`` (or every available one) minus
    ``scores.exclude_measures``, in the order given.

    Parameters
    ----------
    settings : dict
        Full settings.
    available : iterable of str
        Measure names the runs have (e.g. the ``measure`` column of a measure table).

    Returns
    -------
    list of str
    """
    sc = settings["scores"]
    chosen = sc["measures"] or list(dict.fromkeys(available))
    return [m for m in chosen if m not in sc["exclude_measures"]]
