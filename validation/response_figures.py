"""Figures of stimulus experiments (issue 14): PSTH per population per model, latency by layer."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def response_figures(out_dir, psth: pd.DataFrame, measures: pd.DataFrame, ref_labels: list, groups: dict) -> dict:
    """Write ``psth.png`` and ``latency_by_layer.png``.

    Parameters
    ----------
    out_dir : path
    psth : pandas.DataFrame
        :func:`cortexzoo.validation.responses.psth_table`.
    measures : pandas.DataFrame
        The measure table (reads ``latency_ms``).
    ref_labels : list of str
    groups : dict
        Variant label -> run labels.

    Returns
    -------
    dict
        File name -> path.
    """
    out = Path(out_dir)
    files = {"psth.png": out / "psth.png", "latency_by_layer.png": out / "latency_by_layer.png"}
    _psth_figure(psth, files["psth.png"])
    _latency_figure(measures, ref_labels, groups, files["latency_by_layer.png"])
    return files


def _psth_figure(psth: pd.DataFrame, path: Path) -> None:
    pops = list(dict.fromkeys(psth["population"]))
    fig, axes = plt.subplots(2, (len(pops) + 1) // 2, figsize=(3.2 * ((len(pops) + 1) // 2), 5.6), sharex=True,
                             squeeze=False)
    for ax, pop in zip(axes.flat, pops):
        for model, curve in psth[psth["population"] == pop].groupby("model", sort=False):
            line, = ax.plot(curve["time_ms"], curve["rate_hz"], lw=1.2, label=model)
            if curve["sd_over_seeds_hz"].notna().any():
                ax.fill_between(curve["time_ms"], curve["rate_hz"] - curve["sd_over_seeds_hz"],
                                curve["rate_hz"] + curve["sd_over_seeds_hz"], color=line.get_color(), alpha=0.15,
                                lw=0)
        ax.axvline(0.0, color="k", lw=0.6, ls=":")
        ax.set_title(pop, fontsize=11)
        ax.tick_params(labelsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("time after onset (ms)", fontsize=10)
    for ax in axes[:, 0]:
        ax.set_ylabel("rate (Hz per neuron)", fontsize=10)
    axes.flat[0].legend(fontsize=8, frameon=False)
    fig.suptitle("Trial-averaged PSTH, mean over seeds (band: SD over seeds)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
