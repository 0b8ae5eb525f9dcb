"""Figures of stimulus experiments (issue 14): PSTH per population per model, latency by layer, divergence."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cortexzoo.validation.perturbation import NETWORK  # noqa: E402


def response_figures(out_dir, curves: dict, measures: pd.DataFrame, ref_labels: list, groups: dict,
                     settings=None) -> dict:
    """Write the figures of a stimulus experiment.

    Pulses (``curves`` has ``psth``): ``psth.png`` and ``latency_by_layer.png``.
    Patterns (``decorrelation``, ``readout``): ``decorrelation.png`` and ``readout.png``.
    Perturbations (``divergence``): ``divergence.png`` (the decorrelation curve
    over the independent-runs level) and ``divergence_growth.png`` (the growth
    curve, log scale), one panel per population; the pooled network's curves
    stay in ``divergence.csv`` and its values in the report's table.

    Parameters
    ----------
    out_dir : path
    curves : dict
        :func:`cortexzoo.validation.responses.response_curves`.
    measures : pandas.DataFrame
        The measure table (reads ``latency_ms``).
    ref_labels : list of str
    groups : dict
        Variant label -> run labels.
    settings : dict, optional
        Full validation settings (perturbations: which curves to draw).

    Returns
    -------
    dict
        File name -> path.
    """
    out = Path(out_dir)
    files = {}
    if "psth" in curves:
        psth = curves["psth"].rename(columns={"rate_hz": "value", "sd_over_seeds_hz": "sd_over_seeds"})
        files["psth.png"] = _curve_figure(psth, "rate (Hz per neuron)", "Trial-averaged PSTH", out / "psth.png")
        files["latency_by_layer.png"] = out / "latency_by_layer.png"
        _latency_figure(measures, ref_labels, groups, files["latency_by_layer.png"])
    if "decorrelation" in curves:
        files["decorrelation.png"] = _curve_figure(
            curves["decorrelation"], "inter / intra distance", "Decorrelation curve (1 = patterns not separated)",
            out / "decorrelation.png", level=1.0)
        files["readout.png"] = _curve_figure(curves["readout"], "readout accuracy",
                                             "Linear readout of the pattern (chance: 1 / patterns)", out / "readout.png",
                                             level=None)
    if "divergence" in curves:
        files.update(_divergence_figures(out, curves["divergence"], (settings or {}).get("perturbation", {})))
    return files


def _divergence_figures(out: Path, table: pd.DataFrame, s: dict) -> dict:
    """Divergence over the independent-runs level (linear), and the growth curve (log) over its first part."""
    decorrelation, growth = s.get("decorrelation_curve", "van_rossum"), s.get("growth_curve", "fraction_differs")
    # The panels keep PD14's 2 x 4 layout (layers by E/I); the whole network is the report's table.
    table = table[table["population"] != NETWORK]
    relative = table[table["curve"] == decorrelation].drop(columns=["value", "sd_over_seeds"]).rename(
        columns={"relative": "value", "relative_sd_over_seeds": "sd_over_seeds"})
    # A nearly silent population has a tiny independent-runs level, so one changed spike is many times
    # it; clipped at 3, the approach to 1 of every other model stays readable.
    files = {"divergence.png": _curve_figure(
        relative, f"{decorrelation.replace('_', ' ')} / independent runs",
        "Divergence from the unperturbed twin (1 = as different as two seeds; axis clipped at 3)",
        out / "divergence.png", level=1.0, ylim=(0.0, 3.0))}
    # The exponential phase lies in the first tens of ms; the rest of the window is saturation.
    early = table[(table["curve"] == growth) & (table["time_ms"] <= min(100.0, table["time_ms"].max()))]
    files["divergence_growth.png"] = _curve_figure(early, f"{growth.replace('_', ' ')} (log)",
                                                   "Growth of the divergence", out / "divergence_growth.png",
                                                   logy=True)
    return files


def _curve_figure(table: pd.DataFrame, ylabel: str, title: str, path: Path, level=None, logy: bool = False,
                  ylim=None) -> Path:
    """One panel per population, one line per model (mean over seeds, band: SD over seeds)."""
    pops = list(dict.fromkeys(table["population"]))
    ncol = (len(pops) + 1) // 2
    fig, axes = plt.subplots(2, ncol, figsize=(3.2 * ncol, 5.6), sharex=True, squeeze=False)
    for ax, pop in zip(axes.flat, pops):
        for model, curve in table[table["population"] == pop].groupby("model", sort=False):
            line, = ax.plot(curve["time_ms"], curve["value"], lw=1.2, label=model)
            if curve["sd_over_seeds"].notna().any():
                ax.fill_between(curve["time_ms"], curve["value"] - curve["sd_over_seeds"],
                                curve["value"] + curve["sd_over_seeds"], color=line.get_color(), alpha=0.15, lw=0)
        ax.axvline(0.0, color="k", lw=0.6, ls=":")
        if level is not None:
            ax.axhline(level, color="0.4", lw=0.6, ls="--")
        if logy:
            ax.set_yscale("log")
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_title(pop, fontsize=11)
        ax.tick_params(labelsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("time after onset (ms)", fontsize=10)  # onset: of the stimulus or the perturbation
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize=10)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=9, frameon=False)
    fig.suptitle(f"{title}; mean over seeds, band: SD over seeds", fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.88, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _latency_figure(measures: pd.DataFrame, ref_labels: list, groups: dict, path: Path) -> None:
    lat = measures[measures["measure"] == "latency_ms"]
    pops = list(dict.fromkeys(lat["population"]))
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    models = {"reference": ref_labels, **groups}
    width = 0.8 / max(len(models), 1)
    for k, (model, labels) in enumerate(models.items()):
        mine = lat[lat["run"].isin(labels)]
        by_pop = mine.groupby("population")["value"]
        mean, sd = by_pop.mean().reindex(pops), by_pop.std(ddof=1).reindex(pops)
        x = np.arange(len(pops)) + (k - (len(models) - 1) / 2) * width
        ax.bar(x, mean.to_numpy(), width, yerr=sd.to_numpy(), label=model, capsize=2)
    ax.set_xticks(np.arange(len(pops)), pops, fontsize=10)
    ax.set_ylabel("onset latency (ms; mean ± SD over seeds)", fontsize=10)
    ax.set_title("Latency by layer (missing bar: no response)", fontsize=11)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
