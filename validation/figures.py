"""Validation figures (matplotlib, Agg backend): raster, rates, CV, PSD, effect heatmap.

Made to be read in the report, where a figure is scaled to the page width (about
1200 px): fonts are at least 8 pt, legends sit outside the panels, every figure
uses constrained layout (nothing clipped at the edges), and the seeds of one
variant share its colour, so that a study with 20 variants and 60 runs stays legible.
"""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

REFERENCE_COLOR = "0.55"
# Run directories and labels are "<variant>-seed<k>" (experiments/config.py); the seeds of a variant are
# drawn alike and next to each other.
_SEED_SUFFIX = re.compile(r"-seed\d+$")
# Raster dots 1.6 pt across (about 2 px in the report) show single spikes at 40 neurons per population;
# the ticks of 1.5 pt^2 area used before were below a pixel once the figure was scaled to the page.
RASTER_MARKER_PT = 1.6
# Sizes for a figure about 14 in wide shown 1200 px wide: 10 pt is then about 12 px on the page.
LEGEND_FONTSIZE = 10


def variant_of(label: str) -> str:
    """The variant a run label belongs to: ``"adex_op-seed102"`` -> ``"adex_op"``.

    Parameters
    ----------
    label : str

    Returns
    -------
    str
        The label without its ``-seed<k>`` suffix (unchanged when it has none).
    """
    return _SEED_SUFFIX.sub("", label)


def _groups(labels) -> dict:
    """Variant -> its run labels, in first-appearance order."""
    out = {}
    for label in labels:
        out.setdefault(variant_of(label), []).append(label)
    return out


def _palette(n: int) -> list:
    """``n`` variant colours without grey (grey is the reference's): tab10, or tab20 + tab20b beyond nine."""
    names = ("tab10",) if n <= 9 else ("tab20", "tab20b")
    colors = [c for name in names for c in plt.get_cmap(name).colors]
    return [c for c in colors if np.ptp(c) > 0.05]


def _variant_colors(labels, references) -> dict:
    """Variant -> colour: references grey, every other variant its own colour (cycled beyond 38)."""
    variants = [v for v in _groups(labels) if not any(variant_of(r) == v for r in references)]
    palette = _palette(len(variants))
    colors = {variant_of(r): REFERENCE_COLOR for r in references}
    colors.update({v: palette[k % len(palette)] for k, v in enumerate(variants)})
    return colors


def _colors(labels, references) -> dict:
    """Run label -> colour; every seed of a variant gets the variant's colour."""
    by_variant = _variant_colors(labels, references)
    return {label: by_variant[variant_of(label)] for label in labels}


def _variant_legend(fig, labels, references) -> None:
    """One legend entry per variant, outside the panels (right), at a readable size."""
    colors = _variant_colors(labels, references)
    handles = [Line2D([], [], color=c, lw=2.5 if c == REFERENCE_COLOR else 1.8) for c in colors.values()]
    fig.legend(handles, list(colors), loc="outside right upper", fontsize=LEGEND_FONTSIZE, frameon=False,
               title="variant (all seeds)", title_fontsize=LEGEND_FONTSIZE)


def _finish(fig, path, dpi):
    """Save ``fig`` to ``path`` unless it is None, close it and return it.

    Closed, so that pyplot never shows it a second time on its own (e.g. in a
    notebook); a closed figure still draws, saves and displays when returned.
    """
    if path is not None:
        fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return fig


def _grid(n, panel_w=2.9, panel_h=2.6, extra_w=0.0, **kwargs):
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(panel_w * cols + extra_w, panel_h * rows), squeeze=False,
                             layout="constrained", **kwargs)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def _raster_rows(labels) -> list[list[str]]:
    """Panels of the raster: one row per variant (its seeds side by side) or, one run each, rows of four."""
    groups = list(_groups(labels).values())
    if max(len(g) for g in groups) > 1:
        return groups
    return [labels[i:i + 4] for i in range(0, len(labels), 4)]


def raster(runs, populations, path, excerpt_ms, neurons_per_population):
    """Raster excerpt: the first ``excerpt_ms`` of the analysis window, one panel per run.

    Populations are stacked top (first, e.g. L23E) to bottom, each in its own
    colour and named on the y axis; the seeds of a variant share a row.

    Parameters
    ----------
    runs : dict
        Label -> RunData.
    populations : list of str
    path : pathlib.Path or None
        PNG file to write; None only returns the figure.
    excerpt_ms : float
        Shown from the start of the analysis window (less only when the window is shorter).
    neurons_per_population : int

    Returns
    -------
    matplotlib.figure.Figure
        The figure, closed (saved first when ``path`` is given).
    """
    rows = _raster_rows(list(runs))
    ncols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(4.4 * ncols, 3.4 * len(rows) + 0.6), squeeze=False,
                             sharey=True, layout="constrained")
    colors = [plt.get_cmap("tab10")(k % 10) for k in range(len(populations))]
    for ax_row, labels in zip(axes, rows):
        for ax, label in zip(ax_row, labels):
            _raster_panel(ax, runs[label], populations, colors, excerpt_ms, neurons_per_population)
            ax.set_title(label, fontsize=11)
        for ax in ax_row[len(labels):]:
            ax.set_visible(False)
    # Set once on the shared axis (inverting it per panel would flip it back with every other panel).
    axes[0, 0].set_ylim(len(populations) * neurons_per_population, 0)
    for ax_row in axes:
        for tick, color in zip(ax_row[0].get_yticklabels(), colors):
            tick.set_color(color)
    fig.supxlabel("time (ms)", fontsize=10)
    fig.suptitle(f"First {excerpt_ms:g} ms of the analysis window, {neurons_per_population} neurons per population",
                 fontsize=11)
    return _finish(fig, path, dpi=130)


def _raster_panel(ax, run, populations, colors, excerpt_ms, neurons_per_population) -> None:
    stop = min(run.t_start_ms + excerpt_ms, run.t_stop_ms)
    for k, pop in enumerate(populations):
        ids, times = run.window(pop)
        keep = (times <= stop) & (ids < neurons_per_population)
        offset = k * neurons_per_population
        ax.plot(times[keep], offset + ids[keep], ls="", marker="o", ms=RASTER_MARKER_PT, mew=0, color=colors[k],
                rasterized=True)
        if k:
            ax.axhline(offset, color="0.85", lw=0.6)
    ax.set_xlim(run.t_start_ms, stop)
    ax.set_yticks((np.arange(len(populations)) + 0.5) * neurons_per_population, populations, fontsize=10)
    ax.tick_params(axis="x", labelsize=9)


def _grouped_positions(labels) -> tuple[np.ndarray, list[float], list[str]]:
    """Row positions with a gap between variants; the centre and name of each variant's rows."""
    positions, centres, names, y = [], [], [], 0.0
    for variant, members in _groups(labels).items():
        rows = y + np.arange(len(members))
        positions.extend(rows)
        centres.append(float(rows.mean()))
        names.append(variant)
        y = rows[-1] + 1.8
    return np.array(positions), centres, names


def rate_boxplots(stats, populations, references, path):
    """Single-neuron rates: one panel per population, one horizontal box per run.

    The seeds of a variant are adjacent boxes in the variant's colour, named once
    on the y axis; references are grey.

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
    positions, centres, names = _grouped_positions(labels)
    height = 0.14 * (positions[-1] + 2) + 0.9
    fig, axes = _grid(len(populations), panel_w=3.0, panel_h=height, extra_w=1.4, sharey=True)
    for ax, pop in zip(axes, populations):
        bp = ax.boxplot([stats[label][pop].rates_hz for label in labels], positions=positions, widths=0.8,
                        orientation="horizontal", patch_artist=True, showfliers=False,
                        medianprops={"color": "black", "lw": 1.2})
        for box, label in zip(bp["boxes"], labels):
            box.set_facecolor(colors[label])
        _label_panel(ax, pop, "firing rate (Hz)", None)
        ax.grid(axis="x", color="0.9")
    axes[0].set_yticks(centres, names)
    axes[0].set_ylim(positions[-1] + 1, -1)
    fig.suptitle("Single-neuron firing rates: one box per run (median, quartiles, 1.5 IQR whiskers)", fontsize=11)
    return _finish(fig, path, dpi=130)


def cv_distributions(stats, populations, references, path):
    """CV histograms per population, one line per run; the seeds of a variant share its colour.

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
    fig, axes = _grid(len(populations), extra_w=2.2)
    for ax, pop in zip(axes, populations):
        top = max((stats[lb][pop].cv.max() if len(stats[lb][pop].cv) else 0) for lb in labels)
        if not top > 0:
            # Said in words: an empty panel with a 1e-9 axis looked like a plotting error.
            ax.text(0.5, 0.5, "no CV: no neuron\nwith enough ISIs", ha="center", va="center", transform=ax.transAxes)
        bins = np.linspace(0, top if top > 0 else 1.0, 30)
        for label in labels:
            ax.hist(stats[label][pop].cv, bins=bins, density=True, histtype="step", color=colors[label],
                    **_line_style(colors[label], 1.0))
        _label_panel(ax, pop, "CV of ISI", "density")
    _variant_legend(fig, labels, references)
    return _finish(fig, path, dpi=130)


def _line_style(color, lw) -> dict:
    """References thicker and on top: drawn first they vanished under dozens of variant lines."""
    return {"lw": 1.4, "alpha": 0.75, "zorder": 3} if color == REFERENCE_COLOR else {"lw": lw, "zorder": 2}


def _label_panel(ax, title, xlabel, ylabel) -> None:
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel, fontsize=10)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=10)
    ax.tick_params(labelsize=9)


def psd_overlays(stats, populations, references, path):
    """Population-rate PSDs per population, one line per run; the seeds of a variant share its colour.

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
    fig, axes = _grid(len(populations), extra_w=2.2)
    for ax, pop in zip(axes, populations):
        for label in labels:
            s = stats[label][pop]
            ax.loglog(s.psd_freqs_hz, s.psd, color=colors[label], **_line_style(colors[label], 0.8))
        _label_panel(ax, pop, "frequency (Hz)", "PSD (Hz²/Hz)")
    _variant_legend(fig, labels, references)
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
    ncols = min(max(len(models), 1), 3)
    nrows = int(np.ceil(max(len(models), 1) / ncols))
    # Constrained layout makes room for the tick labels and the colour bar's label (clipped before).
    # At least 3.4 in tall: the colour bar's label (two lines, ~2 in) must fit beside a single small panel.
    fig, axes = plt.subplots(nrows, ncols, figsize=(0.46 * len(pops) * ncols + 2.4,
                                                    max(3.4, (0.3 * len(measures) + 1.1) * nrows + 0.6)),
                             squeeze=False, layout="constrained")
    im = None
    for k, ax in enumerate(axes.flat):
        if k >= len(models):
            ax.axis("off")
            continue
        im = _heatmap_panel(ax, scores[scores["model"] == models[k]], measures, pops, first_column=k % ncols == 0)
        ax.set_title(models[k], fontsize=11)
    if im is not None:
        bar = fig.colorbar(im, ax=axes, shrink=min(0.6, 6.0 / (0.3 * len(measures) * nrows + 1)), aspect=30,
                           label="relative effect\n(variant − reference) / reference")
        bar.ax.yaxis.label.set_fontsize(10)
        bar.ax.tick_params(labelsize=9)
    fig.suptitle(f"Relative effect in % (k: thousand %); * = differs (Benjamini–Hochberg, FDR {fdr:.0%}); "
                 "colour saturates at ±100 %", fontsize=11)
    return _finish(fig, path, dpi=110)


def _heatmap_panel(ax, mine, measures, pops, first_column):
    mine = mine.set_index(["measure", "population"])
    decisions = [[str(mine["decision"].get((m, p), "undefined")) for p in pops] for m in measures]
    grid = np.array([[mine["relative_effect"].get((m, p), np.nan) for p in pops] for m in measures], float)
    # An undefined decision shows no effect, whatever its mean: light grey, as in the tables.
    grid[np.array([[d.startswith("undefined") for d in row] for row in decisions], bool)] = np.nan
    # Relative effects are signed; beyond +-100 % the colour saturates and the number still tells.
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.88")
    im = ax.imshow(np.clip(grid, -1, 1), cmap=cmap, vmin=-1, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(grid):
        text = "n/a" if not np.isfinite(value) else _percent(value) + ("*" if decisions[i][j] == "differs" else "")
        # White on the dark ends of the colour map, where black text was unreadable.
        dark = np.isfinite(value) and abs(value) > 0.6
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_xticks(range(len(pops)), pops, rotation=90, fontsize=9)
    ax.set_yticks(range(len(measures)), measures if first_column else [], fontsize=9)
    return im


def _percent(relative: float) -> str:
    """A relative effect in % for a heatmap cell: at most 6 characters: ``+1.4k``, ``+13k`` beyond +-999 %.

    Effects of thousands of percent (e.g. a correlation 100 times the reference's) did not fit a cell.
    """
    percent = 100 * relative
    if abs(percent) < 999.5:
        return f"{percent:+.0f}"
    return f"{percent / 1000:+.1f}k" if abs(percent) < 9950 else f"{percent / 1000:+.0f}k"
