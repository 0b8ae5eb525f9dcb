"""The report's verdicts on hand-made decisions: undefined is listed as undefined and never counts as
consistent; effects are shown with their intervals.

No simulator is involved: these tests check the report's logic on small
``scores.csv`` files written by hand, in the column layout the validation
stage writes (:data:`cortexzoo.validation.inference.DECISION_COLUMNS`).
"""

import json
import math
import re

import pandas as pd
import pytest

from cortexzoo.errors import CortexzooError
from cortexzoo.validation.inference import DECISION_COLUMNS
from cortexzoo.validation.report import controls_summary, write_report

NAN = math.nan


def decision_row(model, population, measure, relative, decision, n_var=3):
    """One decision row; ``relative`` is the relative effect (NaN: undefined), reference mean 10."""
    effect = 10.0 * relative
    return {"model": model, "population": population, "measure": measure, "unit": "Hz", "reference_mean": 10.0,
            "reference_sd": 0.5, "variant_mean": 10.0 + effect, "variant_sd": 0.5, "n_reference_seeds": 5,
            "n_variant_seeds": n_var, "effect": effect, "effect_ci_low": effect - 1, "effect_ci_high": effect + 1,
            "relative_effect": relative, "relative_ci_low": relative - 0.1, "relative_ci_high": relative + 0.1,
            "p_value": 0.5 if decision == "consistent" else 1e-6, "q_value": 0.5 if decision == "consistent" else 1e-5,
            "decision": decision, "note": ""}


def write_experiment(root, rows, payload=None):
    """An experiment directory holding only ``validation/scores.csv`` (and ``scores.json``)."""
    (root / "validation").mkdir(parents=True)
    pd.DataFrame(rows, columns=DECISION_COLUMNS).to_csv(root / "validation" / "scores.csv", index=False)
    payload = payload or {"references": [f"ref{i}" for i in range(5)], "variants": {"lif_hot": ["a", "b", "c"]}}
    (root / "validation" / "scores.json").write_text(json.dumps(payload))
    return root


def section(text, heading, next_heading):
    """The text between two headings of the page or summary."""
    return text.split(heading, 1)[1].split(next_heading, 1)[0]


# One variant with one consistent, one undefined and one differing decision.
ROWS = [decision_row("lif_hot", "L23E", "rate_hz", 0.05, "consistent"),
        decision_row("lif_hot", "L23E", "cv", NAN, "undefined: no neuron with >= 10 ISIs"),
        decision_row("lif_hot", "L4E", "rate_hz", 0.5, "differs")]


def test_undefined_decision_is_listed_and_not_consistent(tmp_path):
    """Catches an undefined decision counted as consistent, reported as a difference or dropped, its reason
    lost, or a differing decision shown without its effect and interval."""
    report = write_report(write_experiment(tmp_path / "exp", ROWS), calibration_figure=tmp_path / "none.png")
    summary = report["markdown"].read_text()
    page = report["html"].read_text()

    undefined_md = section(summary, "## Undefined decisions", "\n## ")
    assert "- **lif_hot**: L23E cv (no neuron with >= 10 ISIs)" in undefined_md
    differs_md = section(summary, "## What differs", "## Undefined decisions")
    assert "1 of 3 decisions differ: L4E rate_hz +50 % [+40, +60]" in differs_md and "cv" not in differs_md
    assert "1 undefined" in differs_md
    table = section(summary, "| model", "## What differs")
    assert "| lif_hot |" in summary and "+28 % (1/2)" in table and "n/a" in table and "1/3" in table

    undefined_html = section(page, "<h2>Undefined decisions</h2>", "<h2>")
    assert "<li><b>lif_hot</b>: L23E cv (no neuron with &gt;= 10 ISIs)</li>" in undefined_html
    differs_html = section(page, "<h2>What differs</h2>", "<h2>")
    assert "L4E rate_hz +50&nbsp;% [+40, +60]" in differs_html and "cv (" not in differs_html
    assert "<td class=\"differs\">1/3</td>" in section(page, "<h2>Decisions</h2>", "<h2>")


def test_all_consistent_says_what_that_means(tmp_path):
    """Catches the undefined section or the verdict inventing problems when every decision is consistent,
    and "consistent" presented as "the same" without pointing at the detectable change."""
    rows = [decision_row("lif_hot", "L23E", "rate_hz", 0.01, "consistent"),
            decision_row("lif_hot", "L4E", "rate_hz", -0.02, "consistent")]
    report = write_report(write_experiment(tmp_path / "exp", rows), calibration_figure=tmp_path / "none.png")
    summary = report["markdown"].read_text()
    assert "- **lif_hot** (3 seeds): consistent with the reference on all 2 decisions (which says nothing about " \
           "differences below the detectable change; see Controls)." in summary
    assert "Every decision is defined." in summary and "0/2" in summary
    assert "<p>Every decision is defined.</p>" in report["html"].read_text()


def test_old_scores_are_refused_with_the_fix(tmp_path):
    """Catches a report silently built from a pre-decision scores.csv (multiples of natural variability)."""
    exp = tmp_path / "exp"
    (exp / "validation").mkdir(parents=True)
    pd.DataFrame([{"model": "x", "population": "L23E", "statistic": "rates", "matches": True}]).to_csv(
        exp / "validation" / "scores.csv", index=False)
    with pytest.raises(CortexzooError, match="older cortexzoo") as err:
        write_report(exp)
    assert "cortexzoo validate CONFIG" in err.value.fix


def test_controls_apply_only_to_their_design(tmp_path):
    """Catches the shipped false-positive rates shown for an experiment of another scale, duration or seed
    design (they would claim error rates nobody measured)."""
    shipped = tmp_path / "controls"
    shipped.mkdir()
    design = {"N_scaling": 0.1, "K_scaling": 0.25, "background": "poisson", "t_sim_ms": 3000.0,
              "reference_seeds": 5, "group_size": 3, "reference": {"model": "iaf_psc_exp"}}
    (shipped / "design.json").write_text(json.dumps(design))
    (shipped / "summary.md").write_text("FPR TABLE\n")
    exp = write_experiment(tmp_path / "exp", ROWS)
    (exp / "experiment.toml").write_text("[simulation]\nt_sim_ms = 3000.0\n[network]\nN_scaling = 0.1\n"
                                         "K_scaling = 0.25\nbackground = \"poisson\"\n")
    payload = json.loads((exp / "validation" / "scores.json").read_text())
    assert controls_summary(exp, payload, shipped) == "FPR TABLE\n"
    fewer = {**payload, "references": ["r1", "r2", "r3"]}
    text = controls_summary(exp, fewer, shipped)
    assert "reference_seeds 3 (controls: 5)" in text and "FPR" not in text
    (exp / "experiment.toml").write_text("[simulation]\nt_sim_ms = 10000.0\n")
    assert "t_sim_ms 10000.0 (controls: 3000.0)" in controls_summary(exp, payload, shipped)
    # Another FDR or test has other error rates, at the same design.
    (exp / "experiment.toml").write_text("[simulation]\nt_sim_ms = 3000.0\n[network]\nN_scaling = 0.1\n"
                                         "K_scaling = 0.25\nbackground = \"poisson\"\n")
    other = {**payload, "settings": {"scores": {"fdr": 0.1}}}
    assert "the validation settings" in controls_summary(exp, other, shipped)
    assert "No controls" in controls_summary(exp, payload, tmp_path / "nowhere")


def test_variant_named_null_keeps_its_name(tmp_path):
    """Catches pandas reading the variant label "null" (the controls' null seeds) as a missing value."""
    report = write_report(write_experiment(tmp_path / "exp", [decision_row("null", "L23E", "rate_hz", 0.0,
                                                                           "consistent")]),
                          calibration_figure=tmp_path / "none.png")
    assert "| null " in report["markdown"].read_text() and "| nan " not in report["markdown"].read_text()


def test_html_escapes_names_and_config(tmp_path):
    """Catches autoescaping switched off: a variant name or config text would become live markup."""
    exp = write_experiment(tmp_path / "exp", [decision_row("<script>x</script>", "L23E", "rate_hz", 0.5, "differs")])
    (exp / "experiment.toml").write_text('name = "<img src=x>"\n')
    page = write_report(exp, calibration_figure=tmp_path / "none.png")["html"].read_text()
    assert "<script>" not in page and "<img src=x>" not in page
    assert "<b>&lt;script&gt;x&lt;/script&gt;</b>" in page and "&lt;img src=x&gt;" in page


def test_operating_point_section_shows_only_models_run_under_that_rule(tmp_path):
    """Fails if the report omits the operating-point residuals of a model run under that rule, or shows
    figures and rows of models that were run under another rule (or not at all)."""
    exp = write_experiment(tmp_path / "exp", ROWS)
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


def test_decision_tables_mark_every_cell_and_row_with_its_decision(tmp_path):
    """Fails if a cell of the decision table or a row of the all-decisions table loses its decision class (the
    colour the page shows), an all-undefined measure is marked consistent, a differing one is not marked
    differs, or the legend explaining the marks is missing."""
    rows = ROWS + [decision_row("lif_cold", "L23E", "rate_hz", NAN, "undefined: silent"),
                   decision_row("lif_cold", "L23E", "cv", 0.01, "consistent")]
    page = write_report(write_experiment(tmp_path / "exp", rows), calibration_figure=tmp_path / "none.png")[
        "html"].read_text()

    decisions = section(page, "<h2>Decisions</h2>", "<h2>")
    assert '<span class="differs">differs</span>' in decisions and '<span class="undefined">n/a</span>' in decisions
    body = section(decisions, "<tbody>", "</tbody>")
    table = {model: re.findall(r'<td class="(\w+)">([^<]*)</td>', cells)
             for model, cells in re.findall(r"<tr><th>([^<]+)</th>(.*?)</tr>", body)}
    # Columns: rate_hz, cv, differs.
    assert table == {"lif_hot": [("differs", "+28 % (1/2)"), ("undefined", "n/a"), ("differs", "1/3")],
                     "lif_cold": [("undefined", "n/a"), ("consistent", "+1 % (0/1)"),
                                  ("consistent", "0/2")]}

    all_rows = re.findall(r'<tr class="(\w+)"><td>([^<]*)</td>',
                          section(page, "<h2>All decisions (scores.csv)</h2>", "<h2>"))
    assert all_rows == [("consistent", "lif_hot"), ("undefined", "lif_hot"), ("differs", "lif_hot"),
                        ("undefined", "lif_cold"), ("consistent", "lif_cold")]


def test_controls_still_apply_when_only_the_figure_settings_differ(tmp_path):
    """Fails if a figure setting (the raster excerpt, 200 ms when the shipped controls were measured) makes the
    report call the controls "measured at another design": figures change no decision."""
    shipped = tmp_path / "controls"
    shipped.mkdir()
    settings = {"scores": {"fdr": 0.05, "test": "t"}, "figures": {"raster_excerpt_ms": 200.0}}
    (shipped / "design.json").write_text(json.dumps({"reference_seeds": 5, "group_size": 3,
                                                     "reference": {"model": "iaf_psc_exp"}, "settings": settings}))
    (shipped / "summary.md").write_text("FPR TABLE\n")
    exp = write_experiment(tmp_path / "exp", ROWS)
    payload = json.loads((exp / "validation" / "scores.json").read_text())
    longer = {**settings, "figures": {"raster_excerpt_ms": 1000.0}}
    assert controls_summary(exp, {**payload, "settings": longer}, shipped) == "FPR TABLE\n"
    other_fdr = {**longer, "scores": {"fdr": 0.1, "test": "t"}}
    assert "the validation settings" in controls_summary(exp, {**payload, "settings": other_fdr}, shipped)


def summary_rows(model, population, rate, decorrelation, fraction, rate_undefined=0):
    """``perturbation_summary.csv`` rows of one model and population: (mean, ci_low, ci_high) per measure."""
    def row(measure, unit, values, n_undefined=0):
        mean, low, high = values
        return {"model": model, "population": population, "measure": measure, "unit": unit, "mean": mean,
                "sd": 0.1, "ci_low": low, "ci_high": high, "n": 3 - n_undefined, "n_undefined": n_undefined}
    return [row("divergence_rate_per_ms", "1/ms", rate, rate_undefined),
            row("decorrelation_time_ms", "ms", decorrelation), row("fraction_differs", "1", fraction)]


def test_perturbation_report_has_the_whole_network_table_per_model(tmp_path):
    """Fails if the per-model perturbation table is missing, reads a population's rows instead of the pooled
    network's, loses the reference-then-variants order, shows a mean without its interval or the count of
    undefined seeds, lacks the caption saying what the interval is, or lets a model name through unescaped."""
    exp = write_experiment(tmp_path / "exp", ROWS)
    rows = (summary_rows("reference", "L4E", (9.0, 8.0, 10.0), (99.0, 98.0, 100.0), (0.9, 0.8, 1.0))
            + summary_rows("reference", "network", (0.1234, 0.0501, 0.1967), (20.0, 1.7, 38.3), (0.512, 0.5, 0.52))
            + summary_rows("<i>hot</i>", "network", (0.25, NAN, NAN), (NAN, NAN, NAN), (0.6, 0.55, 0.65),
                           rate_undefined=2))
    pd.DataFrame(rows).to_csv(exp / "validation" / "perturbation_summary.csv", index=False)
    report = write_report(exp, calibration_figure=tmp_path / "none.png")

    table = section(report["markdown"].read_text(), "## Perturbation sensitivity per model (whole network)", "\n## ")
    assert "t interval over seeds" in table and "With 2-3 seeds it is wide" in table
    lines = [line for line in table.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert cells == [["reference", "0.123 [0.0501, 0.197]", "3", "0", "20 [1.7, 38.3]", "0.512"],
                     ["<i>hot</i>", "0.25", "3", "2", "–", "0.6"]]

    page = section(report["html"].read_text(), "<h2>Perturbation sensitivity per model (whole network)</h2>", "<h2>")
    body = re.findall(r"<tr><th>([^<]*)</th>(.*?)</tr>", section(page, "<tbody>", "</tbody>"), re.S)
    assert [(model, re.findall(r"<td>([^<]*)</td>", cells)) for model, cells in body] == [
        ("reference", ["0.123 [0.0501, 0.197]", "3", "0", "20 [1.7, 38.3]", "0.512"]),
        ("&lt;i&gt;hot&lt;/i&gt;", ["0.25", "3", "2", "–", "0.6"])]
    assert "<i>hot" not in report["html"].read_text()


def test_transient_report_has_the_onset_latency_per_model_in_layer_order(tmp_path):
    """Fails if the latency table is missing, its populations are not in layer order (L4 first), a model's mean
    takes in another model's runs (mapped by run label through scores.json, not by name prefix), a population
    without any response shows a number instead of "–", or one where only some seeds respond hides it."""
    payload = {"references": ["reference-seed1", "reference-seed2"], "variants": {"hot": ["hot-seed1", "hot-seed2"]}}
    exp = write_experiment(tmp_path / "exp", ROWS, payload)
    latency = {"reference-seed1": {"L23E": 8.0, "L4E": 2.0, "L6I": NAN},
               "reference-seed2": {"L23E": 9.0, "L4E": 3.0, "L6I": NAN},
               "reference-seed3": {"L23E": 90.0, "L4E": 90.0, "L6I": 90.0},  # not one of the validated runs
               "hot-seed1": {"L23E": 12.0, "L4E": 4.0, "L6I": 7.5},
               "hot-seed2": {"L23E": 14.0, "L4E": NAN, "L6I": NAN}}
    rows = [{"run": run, "population": pop, "measure": "latency_ms", "value": value, "unit": "ms", "note": ""}
            for run, values in latency.items() for pop, value in values.items()]
    rows.append({"run": "hot-seed1", "population": "L4E", "measure": "peak_hz", "value": 50.0, "unit": "Hz",
                 "note": ""})
    pd.DataFrame(rows).to_csv(exp / "validation" / "measures.csv", index=False)
    summary = write_report(exp, calibration_figure=tmp_path / "none.png")["markdown"].read_text()

    table = section(summary, "## Onset latency per population (ms, mean over seeds)", "\n## ")
    lines = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("|")]
    assert lines[0] == ["model", "L4E", "L23E", "L6I"]
    assert lines[2:] == [["reference", "2.5", "8.5", "–"], ["hot", "4.0 (1/2)", "13.0", "7.5 (1/2)"]]
    assert "Perturbation sensitivity" not in summary
