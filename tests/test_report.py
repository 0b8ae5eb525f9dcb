"""The report's verdicts on hand-made scores: undefined is listed as undefined and never counts as matched.

No simulator is involved: these tests check the report's logic on small
``scores.csv`` files written by hand, in the column layout the validation
stage writes (with and without the newer ``status`` column).
"""

import math

import pandas as pd
import pytest

from cortexzoo.validation.report import write_report

NAN = math.nan


def score_row(model, population, statistic, multiple, matches, status=None, n_ref=3):
    """One primary score row; ``multiple`` is both multiple_of_mean and multiple_of_max (NaN: undefined)."""
    row = {"model": model, "population": population, "statistic": statistic, "score_kind": "ks", "primary": True,
           "raw": 0.1 * multiple, "null_mean": 0.1, "null_max": 0.1, "multiple_of_mean": multiple,
           "multiple_of_max": multiple, "matches": matches, "n_reference_seeds": n_ref, "note": ""}
    return row if status is None else {**row, "status": status}


def write_experiment(root, rows):
    """An experiment directory holding only ``validation/scores.csv``."""
    (root / "validation").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(root / "validation" / "scores.csv", index=False)
    return root


def section(text, heading, next_heading):
    """The text between two headings of the page or summary."""
    return text.split(heading, 1)[1].split(next_heading, 1)[0]


# One variant with one matching, one undefined (NaN) and one differing primary score.
# Today's scores.csv (no status column): the NaN score has matches=False, as the pipeline writes it.
WITHOUT_STATUS = [score_row("lif_hot", "L23E", "rate", 0.5, True),
                  score_row("lif_hot", "L23E", "cv_isi", NAN, False),
                  score_row("lif_hot", "L4E", "rate", 3.0, False)]
# The newer layout: the status column carries the verdict and the reason.
WITH_STATUS = [score_row("lif_hot", "L23E", "rate", 0.5, True, "matches"),
               score_row("lif_hot", "L23E", "cv_isi", NAN, None, "undefined: too few spikes"),
               score_row("lif_hot", "L4E", "rate", 3.0, False, "differs")]


@pytest.mark.parametrize("rows, reason", [(WITHOUT_STATUS, "non-finite score"), (WITH_STATUS, "too few spikes")],
                         ids=["matches-column-only", "status-column"])
def test_undefined_score_is_listed_and_not_matched(tmp_path, rows, reason):
    """Catches a NaN score counted as matched, reported as a difference, or dropped silently,
    and (with the status column) the report ignoring the status and its reason."""
    report = write_report(write_experiment(tmp_path / "exp", rows), calibration_figure=tmp_path / "none.png")
    summary = report["markdown"].read_text()
    page = report["html"].read_text()

    undefined_md = section(summary, "## Undefined scores", "\n## ")
    assert f"- **lif_hot**: L23E cv_isi ({reason})" in undefined_md
    differs_md = section(summary, "## What differs", "## Undefined scores")
    assert "L4E rate (3.0x)" in differs_md and "cv_isi" not in differs_md
    assert "1 undefined" in differs_md
    assert "| lif_hot |" in summary and "1/3" in section(summary, "| model", "## What differs")

    undefined_html = section(page, "<h2>Undefined scores</h2>", "<h2>")
    assert f"<li><b>lif_hot</b>: L23E cv_isi ({reason})</li>" in undefined_html
    differs_html = section(page, "<h2>What differs</h2>", "<h2>")
    assert "L4E rate (3.0&times;)" in differs_html and "cv_isi" not in differs_html
    assert "<td>1/3</td>" in section(page, "<h2>Score table</h2>", "<h2>")


def test_all_defined_and_matching_says_so(tmp_path):
    """Catches the undefined section or the verdict inventing problems when every score matches."""
    rows = [score_row("lif_hot", "L23E", "rate", 0.5, True), score_row("lif_hot", "L4E", "rate", 0.9, True)]
    report = write_report(write_experiment(tmp_path / "exp", rows), calibration_figure=tmp_path / "none.png")
    summary = report["markdown"].read_text()
    assert "- **lif_hot**: within natural variability on every primary statistic." in summary
    assert "Every primary score is defined." in summary and "2/2" in summary
    assert "<p>Every primary score is defined.</p>" in report["html"].read_text()


def test_single_reference_seed_gives_no_verdict(tmp_path):
    """Catches a variant without a null distribution being called "within natural variability"."""
    rows = [score_row("lif_hot", "L23E", "rate", NAN, None, n_ref=1),
            score_row("lif_hot", "L4E", "rate", NAN, None, n_ref=1)]
    report = write_report(write_experiment(tmp_path / "exp", rows), calibration_figure=tmp_path / "none.png")
    summary = report["markdown"].read_text()
    differs_md = section(summary, "## What differs", "## Undefined scores")
    assert "no verdict: a single reference seed" in differs_md
    assert "within natural variability" not in differs_md
    assert "0/2" in summary and "Every primary score is defined." in summary


def test_html_escapes_names_and_config(tmp_path):
    """Catches autoescaping switched off: a variant name or config text would become live markup."""
    exp = write_experiment(tmp_path / "exp", [score_row("<script>x</script>", "L23E", "rate", 0.5, True)])
    (exp / "experiment.toml").write_text('name = "<img src=x>"\n')
    page = write_report(exp, calibration_figure=tmp_path / "none.png")["html"].read_text()
    assert "<script>" not in page and "<img src=x>" not in page
    assert "<b>&lt;script&gt;x&lt;/script&gt;</b>" in page and "&lt;img src=x&gt;" in page


def test_operating_point_section_shows_only_models_run_under_that_rule(tmp_path):
    """Fails if the report omits the operating-point residuals of a model run under that rule, or shows
    figures and rows of models that were run under another rule (or not at all)."""
    import json

    exp = write_experiment(tmp_path / "exp", WITH_STATUS)
    runs = {"adex-seed1": ("aeif_psc_exp_nestml", "operating_point"), "mat2-seed1": ("mat2_psc_exp_nestml", "published")}
    for run, (model, rule) in runs.items():
        (exp / "runs" / run).mkdir(parents=True)
        (exp / "runs" / run / "metadata.json").write_text(json.dumps({
            "model": {"nest_model": model, "calibration_rule": rule}, "seed": 1,
            "counts": {"neurons_total": 1, "synapses_recurrent": 1}, "timings_s": {"create": 0, "connect": 0, "sim": 0},
            "peak_memory_mb": 1, "versions": {}}))
    cal = tmp_path / "calibration"
    cal.mkdir()
    for model in ("aeif_psc_exp_nestml", "mat2_psc_exp_nestml"):
        (cal / f"nu_{model}.png").write_bytes(b"\x89PNG fake " + model.encode())
    pd.DataFrame({"model": ["aeif_psc_exp_nestml", "mat2_psc_exp_nestml"], "cell_type": ["E", "E"],
                  "population": ["L4E", "L5E"], "rate_model_Hz": [1.234, 9.876]}).to_csv(cal / "operating_points.csv",
                                                                                       index=False)
    page = write_report(exp, calibration_figure=cal / "fI_curves.png")["html"].read_text()
    section_text = section(page, "Rate response at PD14", "Runs and provenance")
    assert "aeif_psc_exp_nestml" in section_text and "1.23" in section_text
    assert "mat2_psc_exp_nestml" not in section_text and "9.88" not in section_text
    assert section_text.count("<img") == 1
