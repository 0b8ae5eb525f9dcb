"""Render an experiment report in headless Chromium: a screenshot and an image check.

Used by the report browser test and to regenerate the README figure (``make
screenshot``); it lives in ``tests/`` and is not installed::

    python tests/screenshot.py results/quick docs/report_screenshot.png

Chromium is the Debian package ``chromium`` (``make test`` installs it as root).
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cortexzoo.errors import CortexzooError

# A page-side check: after load, every <img> reports its source kind and the
# size the browser decoded, written into the DOM that --dump-dom prints.
_IMAGE_PROBE = """
<script>
window.addEventListener("load", function () {
  var out = Array.prototype.map.call(document.images, function (img) {
    return {alt: img.alt, data_uri: img.src.indexOf("data:image/") === 0, complete: img.complete,
            width: img.naturalWidth, height: img.naturalHeight};
  });
  var pre = document.createElement("pre");
  pre.id = "cortexzoo-image-probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""
_PROBE_RE = re.compile(r'<pre id="cortexzoo-image-probe">(.*?)</pre>', re.S)
# Flags for a headless run that touches no network, no GPU and no user profile.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def find_chromium() -> str:
    """Path of the Chromium executable.

    Returns
    -------
    str

    Raises
    ------
    CortexzooError
        When no Chromium is installed.
    """
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise CortexzooError("Chromium is not installed; it renders the HTML report headless.",
                         "Install the Debian package: sudo apt-get install -y chromium (or run `make test` as root).")


def _chromium(args, profile: Path, timeout_s: float) -> subprocess.CompletedProcess:
    cmd = [find_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)


def render_report(html_path, png_path=None, width: int = 1400, height: int = 3000, timeout_s: float = 120.0) -> dict:
    """Open a report in headless Chromium; take a screenshot and list the images it decoded.

    Parameters
    ----------
    html_path : str or pathlib.Path
        The report page (``report/index.html``).
    png_path : str or pathlib.Path, optional
        Where to save a screenshot of the top ``width`` x ``height`` pixels.
    width, height : int
        Browser window size in pixels.
    timeout_s : float
        Limit for each Chromium call.

    Returns
    -------
    dict
        ``{"images": [{"alt", "data_uri", "complete", "width", "height"}, ...],
        "title": str, "dom": str, "screenshot": pathlib.Path or None}``; ``dom`` is the
        page as Chromium built it (with the probe's ``<pre>`` at the end).

    Raises
    ------
    CortexzooError
        When Chromium is missing, fails, or prints no page.
    """
    html_path = Path(html_path).resolve()
    if not html_path.is_file():
        raise CortexzooError(f"Report {html_path} does not exist.", "Run `cortexzoo report EXPERIMENT_DIR` first.")
    with tempfile.TemporaryDirectory(prefix="cortexzoo-chromium-") as tmp:
        tmp = Path(tmp)
        # The probe goes into a copy; the report itself stays script-free.
        probe_page = tmp / "probe.html"
        probe_page.write_text(html_path.read_text().replace("</body>", _IMAGE_PROBE + "</body>"))
        dom = _chromium(["--virtual-time-budget=10000", "--dump-dom", probe_page.as_uri()], tmp / "profile-dom",
                        timeout_s)
        match = _PROBE_RE.search(dom.stdout)
        if dom.returncode != 0 or not match:
            raise CortexzooError(f"Chromium did not render {html_path} (exit {dom.returncode}): "
                                 f"{dom.stderr.strip()[-500:]}", "Check the Chromium installation.")
        images = json.loads(html.unescape(match.group(1)))
        title = re.search(r"<title>(.*?)</title>", dom.stdout, re.S)
        shot = None
        if png_path is not None:
            shot = Path(png_path).resolve()
            shot.parent.mkdir(parents=True, exist_ok=True)
            result = _chromium([f"--screenshot={shot}", f"--window-size={width},{height}", html_path.as_uri()],
                               tmp / "profile-shot", timeout_s)
            if result.returncode != 0 or not shot.is_file():
                raise CortexzooError(f"Chromium took no screenshot of {html_path} (exit {result.returncode}): "
                                     f"{result.stderr.strip()[-500:]}", "Check the Chromium installation.")
    return {"images": images, "title": html.unescape(title.group(1)) if title else "", "dom": dom.stdout,
            "screenshot": shot}


def rendered_captions(html_path, png_path=None) -> list:
    """Render a report and return the captions (alt texts) of the images Chromium decoded inline.

    Parameters
    ----------
    html_path : str or pathlib.Path
    png_path : str or pathlib.Path, optional

    Returns
    -------
    list of str
        One per ``<img>`` that is a data URI, loaded, and larger than 100 x 50 pixels.
    """
    page = render_report(html_path, png_path, width=1400, height=2000)
    return [im["alt"] for im in page["images"]
            if im["data_uri"] and im["complete"] and im["width"] > 100 and im["height"] > 50]


def main(argv=None) -> int:
    """Screenshot an experiment's report: ``python tests/screenshot.py EXP_DIR PNG``.

    Parameters
    ----------
    argv : list of str, optional

    Returns
    -------
    int
        Exit status.
    """
    parser = argparse.ArgumentParser(description="Screenshot an experiment's HTML report in headless Chromium.")
    parser.add_argument("experiment_dir", type=Path, help="experiment directory with report/index.html")
    parser.add_argument("png", type=Path, help="screenshot to write, e.g. docs/report_screenshot.png")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=3000)
    args = parser.parse_args(argv)
    try:
        out = render_report(args.experiment_dir / "report" / "index.html", args.png, args.width, args.height)
    except CortexzooError as err:
        print(f"screenshot: error: {err}", file=sys.stderr)
        return err.exit_code
    decoded = sum(1 for im in out["images"] if im["width"] > 0 and im["height"] > 0)
    print(f"{out['screenshot']}: {decoded} of {len(out['images'])} images decoded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
