"""Scale fidelity: a downscaled network of each model against one full-scale run of the same model (issue 12).

Usage::

    python -m cortexzoo.experiments.scale_fidelity --full results/scale_fidelity \\
        --down results/quick --out docs/scale_fidelity.md

For every run label present in both experiment directories (the full-scale
one has seed 1 per model; the downscaled one any seeds; ``--pair
FULL=DOWN`` pairs labels that differ, e.g. ``adex=adex_op`` for the study),
per population: the
mean rate, mean CV and mean LV of the ISIs, and the downscaled network's
relative rate error against full scale. The yardstick is the downscaled
reference's seed-to-seed spread (SD of the population rate over its seeds).
Full-scale runs analyse a shorter window (1 s) than quick (3 s): rates are
precise either way (>= 10^4 neurons per population at full scale), CV/LV
use only neurons with enough spikes in their window, which biases CV
down for short windows (Poisson: E[CV] ~ 0.65 with 3 ISIs); compare CV/LV
between models at the same scale rather than across scales.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from cortexzoo.network.output import load_run
from cortexzoo.validation.settings import load_settings
from cortexzoo.validation.statistics import run_statistics


def run_table(run_dir: Path, settings: dict) -> pd.DataFrame:
    """Per population: rate (Hz), mean CV, mean LV and the neurons they come from.

    Parameters
    ----------
    run_dir : pathlib.Path
    settings : dict
        Validation settings (:func:`load_settings`).

    Returns
    -------
    pandas.DataFrame
        Indexed by population.
    """
    stats = run_statistics(load_run(run_dir), settings)
    return pd.DataFrame({pop: {"rate_Hz": float(np.mean(s.rates_hz)),
                               "cv": float(np.mean(s.cv)) if len(s.cv) else np.nan,
                               "lv": float(np.mean(s.lv)) if len(s.lv) else np.nan,
                               "n_cv": len(s.cv)} for pop, s in stats.items()}).T


def compare(full: pd.DataFrame, down: list) -> pd.DataFrame:
    """Downscaled (mean over seeds) against full scale, per population.

    Parameters
    ----------
    full : pandas.DataFrame
        :func:`run_table` of the full-scale run.
    down : list of pandas.DataFrame
        :func:`run_table` of each downscaled seed.

    Returns
    -------
    pandas.DataFrame
        ``rate_full, rate_down, rate_rel_error, cv_full, cv_down, lv_full, lv_down``.
    """
    mean = sum(d[["rate_Hz", "cv", "lv"]].astype(float) for d in down) / len(down)
    out = pd.DataFrame({"rate_full": full.rate_Hz.astype(float), "rate_down": mean.rate_Hz,
                        "cv_full": full.cv.astype(float), "cv_down": mean.cv,
                        "lv_full": full.lv.astype(float), "lv_down": mean.lv})
    out.insert(2, "rate_rel_error", (out.rate_down - out.rate_full) / out.rate_full)
    return out


def seed_spread(down: list) -> pd.Series:
    """Relative SD of each population's rate over downscaled seeds (the yardstick)."""
    rates = pd.concat([d.rate_Hz.astype(float) for d in down], axis=1)
    return rates.std(axis=1, ddof=1) / rates.mean(axis=1)


def same_model(full_meta: dict, down_meta: dict) -> list:
    """What makes two runs different models: catalogue entry (with the rule's values) or the model's build.

    Parameters
    ----------
    full_meta, down_meta : dict
        ``metadata.json`` of a full-scale and a downscaled run.

    Returns
    -------
    list of str
        The identity fields that differ (empty: the same model, so the comparison isolates scale).
    """
    a, b = full_meta.get("identity", {}), down_meta.get("identity", {})
    return [key for key in ("catalogue_entry", "model_build") if a.get(key) != b.get(key)]


def _labels(exp_dir: Path) -> dict:
    out = {}
    for run in sorted((exp_dir / "runs").glob("*-seed*")):
        out.setdefault(run.name.rsplit("-seed", 1)[0], []).append(run)
    return out


def markdown(tables: dict, spread: pd.Series, header: str) -> str:
    """The report: one summary table over models and one detail table per model."""
    lines = [header, "", "| model | mean abs. rate error | max abs. rate error (population) | "
             "mean CV full / down | mean LV full / down |", "|---|---|---|---|---|"]
    for label, t in tables.items():
        err = t.rate_rel_error.abs().replace(np.inf, np.nan)  # a population silent at full scale has no relative error
        lines.append(f"| {label} | {err.mean():.1%} | {err.max():.1%} ({err.idxmax()}) | "
                     f"{t.cv_full.mean():.2f} / {t.cv_down.mean():.2f} | {t.lv_full.mean():.2f} / "
                     f"{t.lv_down.mean():.2f} |")
    lines += ["", f"Yardstick: the downscaled reference's seed-to-seed rate SD is {spread.mean():.1%} on average "
              f"(max {spread.max():.1%}, {spread.idxmax()}).", ""]
    for label, t in tables.items():
        lines += [f"### {label}", "", "| population | rate full (Hz) | rate down (Hz) | error | CV full | CV down | "
                  "LV full | LV down |", "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {pop} | {r.rate_full:.3f} | {r.rate_down:.3f} | {_relative(r.rate_rel_error)} | {r.cv_full:.2f} | "
                  f"{r.cv_down:.2f} | {r.lv_full:.2f} | {r.lv_down:.2f} |" for pop, r in t.iterrows()]
        lines.append("")
    return "\n".join(lines)


def _relative(x: float) -> str:
    return f"{x:+.1%}" if np.isfinite(x) else "(silent at full scale)"


def main(argv=None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", type=Path, required=True, help="experiment directory of the full-scale runs")
    parser.add_argument("--down", type=Path, nargs="+", required=True,
                        help="experiment directories of the downscaled runs (labels are merged)")
    parser.add_argument("--out", type=Path, required=True, help="markdown file to write")
    parser.add_argument("--header", default="# Scale fidelity", help="first line(s) of the markdown")
    parser.add_argument("--pair", nargs="*", default=[], metavar="FULL=DOWN",
                        help="pair a full-scale label with a downscaled label of another name")
    args = parser.parse_args(argv)
    settings = load_settings()
    full, down = _labels(args.full), {}
    renamed = dict(item.split("=", 1)[::-1] for item in args.pair)  # downscaled label -> full-scale label
    for folder in args.down:
        for label, runs in _labels(folder).items():
            down.setdefault(renamed.get(label, label), []).extend(runs)
    for label, runs in down.items():
        if label in full:
            differ = same_model(load_run(full[label][0]).metadata, load_run(runs[0]).metadata)
            if differ:
                print(f"warning: {label}: full-scale and downscaled runs differ in {', '.join(differ)}; "
                      "their difference is not scale alone")
    down = {label: [run_table(r, settings) for r in runs] for label, runs in down.items() if label in full}
    tables = {label: compare(run_table(full[label][0], settings), down[label]) for label in down}
    spread = seed_spread(down.get("reference", []))
    args.out.write_text(markdown(tables, spread, args.header) + "\n")
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
