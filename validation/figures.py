"""Validation figures (matplotlib, Agg backend): raster, rates, CV, PSD, effect heatmap."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _colors(labels, references):
    cmap = plt.get_cmap("tab10")
    out, k = {}, 0
    for label in labels:
        if label in references:
            out[label] = "0.55"
        else:
            out[label] = cmap(k % 10)
            k += 1
    return out


def _finish(fig, path, dpi):
    """Save ``fig`` to ``path`` unless it is None, close it and return it.

    Closed, so that pyplot never shows it a second time on its own (e.g. in a
    notebook); a closed figure still draws, saves and displays when returned.
    """
    if path is not None:
        fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return fig


def _grid(n):
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def raster(runs, populations, path, excerpt_ms, neurons_per_population):
    """Raster excerpt: the first ``excerpt_ms`` of the analysis window, one panel per run.

    Parameters
    ----------
    runs : dict
        Label -> RunData.
    populations : list of str
    path : pathlib.Path or None
        PNG file to write; None only returns the figure.
    excerpt_ms : float
    neurons_per_population : int

    Returns
    -------
    matplotlib.figure.Figure
        The figure, closed (saved first when ``path`` is given).
    """
    fig, axes = plt.subplots(1, len(runs), figsize=(3.2 * len(runs), 4.5), squeeze=False, sharey=True)
    cmap = plt.get_cmap("tab10")
    for ax, (label, run) in zip(axes[0], runs.items()):
        offset = 0
        ticks = []
        for k, pop in enumerate(populations):
            ids, times = run.window(pop)
            keep = (times < run.t_start_ms + excerpt_ms) & (ids < neurons_per_population)
            ax.scatter(times[keep], offset + ids[keep], s=1.5, color=cmap(k % 10), marker="|", lw=0.6)
            ticks.append(offset + neurons_per_population / 2)
            offset += neurons_per_population
        ax.set_title(label, fontsize=8)
        ax.set_xlabel("time (ms)")
        ax.set_xlim(run.t_start_ms, run.t_start_ms + excerpt_ms)
        ax.set_yticks(ticks, populations, fontsize=7)
        ax.invert_yaxis()
    fig.tight_layout()
    return _finish(fig, path, dpi=130)


def rate_boxplots(stats, populations, references, path):
    """Per-population box plots of single-neuron rates, one box per run.

    Parameters
    ----------
    stats : dict
        Label -> {population -> PopulationStatistics}.
    populations : list of str
    references : list of str
        Labels drawn in grey.
    path : pathlib.Path or None
        PNG file to write; None only returns the figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, closed (saved first when ``path`` is given).
    """
    labels = list(stats)
    colors = _colors(labels, references)
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(labels) * len(populations) + 2), 4))
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        pos = np.arange(len(populations)) + (i - (len(labels) - 1) / 2) * width
        bp = ax.boxplot([stats[label][p].rates_hz for p in populations], positions=pos, widths=width * 0.9,
                        patch_artist=True, showfliers=False)
        for box in bp["boxes"]:
            box.set_facecolor(colors[label])
        ax.plot([], [], color=colors[label], lw=6, label=label)
    ax.set_xticks(np.arange(len(populations)), populations)
    ax.set_ylabel("firing rate (Hz)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return _finish(fig, path, dpi=130)


def cv_distributions(stats, populations, references, path):
    """CV histograms per population, one line per run.

    Parameters
    ----------
    stats, populations, references, path
        As in :func:`rate_boxplots`.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, closed (saved first when ``path`` is given).
    """
    labels = list(stats)
    colors = _colors(labels, references)
    fig, axes = _grid(len(populations))
    for ax, pop in zip(axes, populations):
        top = max(max((stats[lb][pop].cv.max() if len(stats[lb][pop].cv) else 0) for lb in labels), 1e-9)
        bins = np.linspace(0, top, 30)
        for label in labels:
            ax.hist(stats[label][pop].cv, bins=bins, density=True, histtype="step", color=colors[label], label=label)
        ax.set_title(pop, fontsize=9)
        ax.set_xlabel("CV of ISI")
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    return _finish(fig, path, dpi=130)


def psd_overlays(stats, populations, references, path):
    """Population-rate PSDs per population, one line per run.

    Parameters
    ----------
    stats, populations, references, path
        As in :func:`rate_boxplots`.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, closed (saved first when ``path`` is given).
    """
    labels = list(stats)
    colors = _colors(labels, references)
    fig, axes = _grid(len(populations))
    for ax, pop in zip(axes, populations):
        for label in labels:
            s = stats[label][pop]
            ax.loglog(s.psd_freqs_hz, s.psd, color=colors[label], lw=0.8, label=label)
        ax.set_title(pop, fontsize=9)
        ax.set_xlabel("frequency (Hz)")
        ax.set_ylabel("PSD (Hz²/Hz)", fontsize=7)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    return _finish(fig, path, dpi=130)


def effect_heatmap(scores, path, fdr):
    """Relative effects per variant: one panel per model, measures x populations; '*' marks "differs".

    Parameters
    ----------
    scores : pandas.DataFrame
        Decision rows (``model, population, measure, relative_effect, decision``).
    path : pathlib.Path or None
        PNG file to write; None only returns the figure.
    fdr : float
        For the title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, closed (saved first when ``path`` is given).
    """
    models = list(dict.fromkeys(scores["model"]))
    pops = list(dict.fromkeys(scores["population"]))
    measures = list(dict.fromkeys(scores["measure"]))
    n = max(len(models), 1)
    ncols = min(n, 3)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols + 1.2, 0.34 * len(measures) * nrows + 1.6),
                             squeeze=False)
    # Relative effects are signed; beyond +-100 % the colour saturates and the number still tells.
    im = None
    for k, ax in enumerate(axes.flat):
        if k >= len(models):
            ax.axis("off")
            continue
        mine = scores[scores["model"] == models[k]].set_index(["measure", "population"])
        grid = np.array([[mine["relative_effect"].get((m, p), np.nan) for p in pops] for m in measures], float)
        im = ax.imshow(np.clip(grid, -1, 1), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
        for i, m in enumerate(measures):
            for j, p in enumerate(pops):
                decision = str(mine["decision"].get((m, p), "undefined"))
                text = "n/a" if decision.startswith("undefined") or not np.isfinite(grid[i, j]) else \
                    f"{100 * grid[i, j]:+.0f}{'*' if decision == 'differs' else ''}"
                ax.text(j, i, text, ha="center", va="center", fontsize=6)
        ax.set_xticks(range(len(pops)), pops, rotation=90, fontsize=7)
        ax.set_yticks(range(len(measures)), measures, fontsize=7)
        ax.set_title(models[k], fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=list(axes.flat), shrink=0.6, label="relative effect (variant - reference) / reference")
    fig.suptitle(f"Relative effect in %; * = differs (Benjamini-Hochberg, FDR {fdr:.0%})", fontsize=10)
    return _finish(fig, path, dpi=110)
