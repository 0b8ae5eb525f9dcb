"""The report's figures are readable: a raster of the configured length with visible dots and named
populations, legends at a readable size outside the panels, and a colour bar whose label is not clipped.

No simulator: the figures are drawn from synthetic Poisson runs (``validation_synth.make_run``),
loaded with the real run loader and analysed with the real statistics.
"""

import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from validation_synth import POPULATIONS, make_run

from cortexzoo.network.output import load_run
from cortexzoo.validation import figures
from cortexzoo.validation.settings import load_settings
from cortexzoo.validation.statistics import population_statistics

T_START, T_STOP = 100.0, 3100.0
LABELS = ["reference-seed1", "reference-seed2", "lif_hot-seed101", "lif_hot-seed102", "lif_cold-seed101"]
REFERENCES = LABELS[:2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Label -> RunData: two reference seeds and three variant runs of the 4-population miniature."""
    root = tmp_path_factory.mktemp("runs")
    return {label: load_run(make_run(root / label, seed=k + 1, t_start_ms=T_START, t_stop_ms=T_STOP))
            for k, label in enumerate(LABELS)}


@pytest.fixture(scope="module")
def stats(runs):
    settings = load_settings()
    return {label: {pop: population_statistics(pop, *run.window(pop), run.sizes[pop], run.t_start_ms,
                                               run.t_stop_ms, settings) for pop in POPULATIONS}
            for label, run in runs.items()}


def drawn(fig):
    """Lay out and draw a (closed) figure on an Agg canvas, as saving it would."""
    FigureCanvasAgg(fig).draw()
    return fig


def inside(fig, artist) -> bool:
    """Whether an artist's drawn extent lies within the figure."""
    renderer = fig.canvas.get_renderer()
    box, page = artist.get_window_extent(renderer), fig.bbox
    return box.x0 >= page.x0 - 1 and box.x1 <= page.x1 + 1 and box.y0 >= page.y0 - 1 and box.y1 <= page.y1 + 1


def test_raster_shows_the_configured_excerpt_with_named_populations(runs):
    """Fails if the raster is shorter than ``figures.raster_excerpt_ms`` (the 200 ms excerpt was too short to
    show any structure), its spikes stop before the excerpt's end, the dots shrink back below visibility,
    or the populations are unnamed or upside down (inverting a shared y axis once per panel flipped it back
    with every second panel, putting L23E at the bottom)."""
    shown = load_settings()["figures"]
    excerpt, per_pop = shown["raster_excerpt_ms"], shown["raster_neurons_per_population"]
    assert excerpt >= 1000.0, "the default excerpt is too short to see the network's structure"

    fig = figures.raster(runs, list(POPULATIONS), None, excerpt, per_pop)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == len(runs)
    for ax in panels:
        assert ax.get_xlim() == pytest.approx((T_START, T_START + excerpt))
        times = [t for line in ax.get_lines() for t in line.get_xdata()]
        assert max(times) > T_START + 0.95 * excerpt
        assert all(line.get_markersize() >= 1.5 for line in ax.get_lines() if len(line.get_xdata()))
        low, high = ax.get_ylim()
        assert low > high, "the first population (L23E) must be at the top"
        if ax.get_subplotspec().is_first_col():
            assert [t.get_text() for t in ax.get_yticklabels()] == list(POPULATIONS)
    assert {ax.get_title() for ax in panels} == set(LABELS)


def test_raster_excerpt_stops_at_a_shorter_window(runs, tmp_path):
    """Fails if an excerpt longer than the analysis window runs past its end (empty space drawn as silence)."""
    fig = figures.raster({"reference-seed1": runs["reference-seed1"]}, list(POPULATIONS), tmp_path / "r.png",
                         5000.0, 10)
    assert fig.axes[0].get_xlim() == pytest.approx((T_START, T_STOP))
    assert (tmp_path / "r.png").stat().st_size > 0


@pytest.mark.parametrize("draw", [figures.cv_distributions, figures.psd_overlays])
def test_line_figures_have_one_readable_legend_entry_per_variant(stats, draw):
    """Fails if the legend is back inside a panel at 6 pt, lists every seed instead of every variant, is cut
    off by the figure's edge, or gives two seeds of one variant different colours."""
    fig = draw(stats, list(POPULATIONS), REFERENCES, None)
    drawn(fig)
    assert len(fig.legends) == 1
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["reference", "lif_hot", "lif_cold"]
    assert min(t.get_fontsize() for t in legend.get_texts()) >= 9
    assert inside(fig, legend)
    panel = fig.axes[0]
    artists = [to_rgba(p.get_edgecolor()) for p in panel.patches] or [to_rgba(line.get_color())
                                                                      for line in panel.get_lines()]
    colors = {}
    for color, label in zip(artists, LABELS, strict=True):
        colors.setdefault(figures.variant_of(label), set()).add(color)
    assert all(len(c) == 1 for c in colors.values()) and len(set.union(*colors.values())) == 3, colors


def test_rate_boxes_name_each_variant_once(stats):
    """Fails if the box plot labels are unreadable or missing: every variant named once, at >= 9 pt."""
    fig = figures.rate_boxplots(stats, list(POPULATIONS), REFERENCES, None)
    drawn(fig)
    names = fig.axes[0].get_yticklabels()
    assert [t.get_text() for t in names] == ["reference", "lif_hot", "lif_cold"]
    assert min(t.get_fontsize() for t in names) >= 9
    assert all(inside(fig, t) for t in names)


def test_heatmap_colour_bar_label_is_not_clipped():
    """Fails if the colour bar's label or tick labels fall outside the figure (they were cut at the right
    edge), or an undefined decision shows a coloured effect instead of "n/a"."""
    rows = [{"model": m, "population": p, "measure": ms, "relative_effect": e, "decision": d}
            for m in ("lif_hot", "lif_cold", "adex")
            for p, ms, e, d in [("L23E", "rate_hz", 0.5, "differs"), ("L23E", "cv", 0.02, "consistent"),
                                ("L4E", "rate_hz", 40.0, "differs"), ("L4E", "cv", 0.3, "undefined: few ISIs")]]
    fig = figures.effect_heatmap(pd.DataFrame(rows), None, 0.05)
    drawn(fig)
    bar = fig.axes[-1]
    assert bar.get_ylabel().startswith("relative effect")
    assert inside(fig, bar.yaxis.label) and all(inside(fig, t) for t in bar.get_yticklabels())
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["+50*", "+4.0k*", "+2", "n/a"]
