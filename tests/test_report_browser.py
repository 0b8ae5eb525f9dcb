"""The HTML report of a real tiny comparison renders in headless Chromium, with every image decoded."""

import matplotlib.image
import numpy as np
import pytest
from experiment_helpers import cli, write_tiny_config
from screenshot import render_report

from cortexzoo.validation.report import VALIDATION_FIGURES


@pytest.fixture(scope="module")
def report(tmp_path_factory, nestml_module):
    """Report of a tiny `cortexzoo compare` (3 reference seeds, a LIF and a NESTML LIF variant)."""
    tmp = tmp_path_factory.mktemp("report")
    config = write_tiny_config(tmp / "browse.toml", "browse", tmp / "results", variants=("lif_hot", "lif_nestml"))
    result = cli("-q", "compare", config, cwd=tmp)
    assert result.returncode == 0, result.stderr
    return tmp / "results" / "browse" / "report" / "index.html"


def test_report_renders_with_all_images_in_chromium(report, tmp_path):
    shot = tmp_path / "report.png"
    page = render_report(report, shot, width=1400, height=3000)

    assert page["title"] == "cortexzoo report browse"
    dom = page["dom"]
    assert "<h2>Decisions</h2>" in dom and 'class="dataframe scores decisions"' in dom and '<td class="' in dom
    assert "lif_hot" in dom and "lif_nestml" in dom
    assert "<h2>Experiment config</h2>" in dom and "Versions: " in dom

    images = page["images"]
    alts = [im["alt"] for im in images]
    for _, caption in VALIDATION_FIGURES:
        assert caption in alts, f"figure {caption!r} missing from the page"
    for im in images:
        # Self-contained: every image is inline and was decoded by the browser.
        assert im["data_uri"] and im["complete"], im
        assert im["width"] > 100 and im["height"] > 50, im

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape == (3000, 1400, 3)
    ink = (pixels < 0.9).any(axis=2)
    assert ink.mean() > 0.03, "the screenshot is (nearly) blank"
    # Figures have colour, not only black text on white.
    saturation = pixels.max(axis=2) - pixels.min(axis=2)
    assert (saturation > 0.3).mean() > 0.002
    assert np.unique(pixels.reshape(-1, 3).round(2), axis=0).shape[0] > 100
