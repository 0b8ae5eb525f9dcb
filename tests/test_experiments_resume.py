"""`cortexzoo compare` killed (SIGKILL) at any point resumes without redoing finished runs.

One tiny experiment (3 reference seeds, 2 variants, 5 runs of ~1 s) is killed
as its second run finishes, resumed and killed again while validating,
then finished; finally one variant is added and only that one is simulated.
"""

import json
import re

import pytest
from experiment_helpers import cli, compare_until, metadata_stamps, write_tiny_config

from cortexzoo.errors import CortexzooError
from cortexzoo.network.output import is_complete, load_run

RUN_LINE = re.compile(r"\] run (\d+)/(\d+): (\S+) \(")
ALL_RUNS = {"reference-seed1", "reference-seed2", "reference-seed3", "lif_hot-seed101", "lif_nestml-seed101"}


def simulated(lines):
    """Names of the runs a compare started simulating, from its progress lines."""
    return [m.group(3) for m in map(RUN_LINE.search, lines) if m]


def assert_nothing_partial_looks_complete(runs_dir):
    for entry in runs_dir.iterdir():
        if entry.name.startswith("."):
            # The hidden work directory of the killed run: never taken for a run.
            assert ".partial-" in entry.name and not is_complete(entry)
            with pytest.raises(CortexzooError, match="not a finished run"):
                load_run(entry)
        else:
            assert is_complete(entry), f"{entry} is visible but not a finished run"


def test_killed_compare_resumes_only_missing_runs(tmp_path, nestml_module):
    results = tmp_path / "results"
    config = write_tiny_config(tmp_path / "resume.toml", "resume", results, variants=("lif_hot", "lif_nestml"))
    exp = results / "resume"
    runs_dir = exp / "runs"

    # 1. Kill as the second run finishes simulating, just before or while it is written.
    lines = compare_until(config, tmp_path, r"reference-seed2: sim: 1000/1000 ms")
    assert simulated(lines) == ["reference-seed1", "reference-seed2"]
    assert_nothing_partial_looks_complete(runs_dir)
    done = {p.name for p in runs_dir.iterdir() if is_complete(p)}
    assert "reference-seed1" in done and len(done) < 5
    assert not (exp / "validation" / "scores.csv").exists()
    assert not (exp / "report" / "index.html").exists()
    before = metadata_stamps(runs_dir)
    assert set(before) == done

    # 2. Resume, and kill again during validation: only the missing runs were simulated.
    lines = compare_until(config, tmp_path, r"\] validating$")
    text = "".join(lines)
    assert f"{len(done)} of 5 runs already done (cached): " in text
    assert set(simulated(lines)) == ALL_RUNS - done
    assert len(simulated(lines)) == len(ALL_RUNS - done)
    assert {n: s for n, s in metadata_stamps(runs_dir).items() if n in done} == before
    assert not (exp / "report" / "index.html").exists()
    assert_nothing_partial_looks_complete(runs_dir)
    before = metadata_stamps(runs_dir)
    assert set(before) == ALL_RUNS

    # 3. Resume: nothing is simulated again; validation and report are written, and published.
    result = cli("compare", config, "--publish", tmp_path / "published", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "5 of 5 runs already done (cached): " in result.stderr
    assert simulated(result.stderr.splitlines(keepends=True)) == []
    assert metadata_stamps(runs_dir) == before
    assert (exp / "validation" / "scores.csv").is_file()
    assert f"report: {(exp / 'report' / 'index.html').resolve()}" in result.stdout
    assert "| lif_hot " in result.stdout and "| lif_nestml " in result.stdout
    # Catches a publish that misses the summary, the config, the tables or the run costs.
    published = tmp_path / "published"
    assert (published / "summary.md").read_text() == (exp / "report" / "summary.md").read_text()
    assert {"experiment.toml", "scores.csv", "measures.csv", "heatmap.png"} <= {p.name for p in published.iterdir()}
    costs = json.loads((published / "costs.json").read_text())
    assert set(costs["runs"]) == ALL_RUNS and costs["total_s"] > 0 and costs["compare_elapsed_s"] > 0
    assert not [p for p in runs_dir.iterdir() if p.name.startswith(".")], "a later run should clean up debris"

    # 4. One more variant: the directory belongs to the old config, so it is refused
    # (naming the difference) until --replace adopts it; then `run` simulates that one only.
    write_tiny_config(config, "resume", results, variants=("lif_hot", "lif_nestml", "lif_cold"))
    result = cli("run", config, cwd=tmp_path)
    assert result.returncode == 2 and "variants.lif_cold" in result.stderr and "--replace" in result.stderr
    assert metadata_stamps(runs_dir) == before and "lif_cold" not in (exp / "experiment.toml").read_text()
    result = cli("run", config, "--replace", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 run(s) simulated, 5 cached" in result.stdout
    assert simulated(result.stderr.splitlines(keepends=True)) == ["lif_cold-seed101"]
    after = metadata_stamps(runs_dir)
    assert {n: s for n, s in after.items() if n != "lif_cold-seed101"} == before
    assert is_complete(runs_dir / "lif_cold-seed101")
