"""Faults with real processes: SIGKILL in each stage, a full disk, two writers at once. Nothing is lost.

One tiny experiment (3 reference seeds + 1 variant, ~5 s per run) is finished
once; then each fault hits it and the test checks that every finished output
is byte-for-byte the one before the fault, that nothing half-written looks
finished, and that the next ``compare`` completes.
"""

import shutil
import subprocess

import pytest
from experiment_helpers import CLI, ENV, cli, compare_until, metadata_stamps, write_tiny_config

from cortexzoo.locking import LOCK_FILE
from cortexzoo.network.output import COMPLETE_MARKER, is_complete


def outputs(exp):
    """Bytes of every finished stage output (validation tables and figures, report)."""
    files = [*sorted((exp / "validation").glob("*")), *sorted((exp / "report").glob("*"))]
    return {f.relative_to(exp).as_posix(): f.read_bytes() for f in files if f.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory, nestml_module):
    root = tmp_path_factory.mktemp("faults")
    config = write_tiny_config(root / "f.toml", "f", root / "results", variants=("lif_hot",))
    result = cli("compare", config, cwd=root)
    assert result.returncode == 0, result.stderr
    return root, config, root / "results" / "f"


def assert_resumes(root, config, exp):
    result = cli("compare", config, cwd=root)
    assert result.returncode == 0, result.stderr
    assert "removing the stale lock of cortexzoo compare" in result.stderr  # the killed holder's lock
    assert not (exp / LOCK_FILE).exists()
    assert not [p for p in exp.rglob(".*partial*")], "debris of the killed process must be cleared"
    return result


@pytest.mark.parametrize("stage, pattern", [
    ("simulation", r"lif_hot-seed101: sim: [1-9]00/1000 ms simulated"),
    ("validation", r"\] figures$"),  # inside the staged write: the tables are written, figures not yet
    ("report", r"\] writing report$"),
])
def test_sigkill_in_each_stage_loses_nothing(finished, stage, pattern):
    """Killed while simulating, validating or writing the report: earlier results stay whole.

    Fails if a stage writes its outputs in place (a killed validation or
    report would leave truncated or mixed files), if a killed run looks
    finished, or if the killed process's lock or debris blocks the next run.
    """
    root, config, exp = finished
    runs = exp / "runs"
    if stage == "simulation":
        shutil.rmtree(runs / "lif_hot-seed101")  # the user threw this run away: it must be simulated again
    before_runs, before_outputs = metadata_stamps(runs), outputs(exp)
    compare_until(config, root, pattern)
    assert metadata_stamps(runs) == before_runs
    assert outputs(exp) == before_outputs
    assert all(is_complete(p) for p in runs.iterdir() if not p.name.startswith("."))
    if stage == "simulation":
        partial = [p for p in runs.iterdir() if p.name.startswith(".lif_hot-seed101.partial-")]
        assert partial and not any((p / COMPLETE_MARKER).exists() for p in partial)
    result = assert_resumes(root, config, exp)
    if stage == "simulation":
        assert "run 1/1: lif_hot-seed101" in result.stderr and is_complete(runs / "lif_hot-seed101")
    assert (exp / "report" / "index.html").read_text().rstrip().endswith("</html>")


def test_disk_full_while_writing_a_run(finished, tmp_path):
    """A write that fails (file size limit as a stand-in for a full disk) is a clear error, not a run.

    Fails if the OSError escapes as a traceback, if a COMPLETE marker or a
    visible run directory is left, or if a finished run is touched.
    """
    root, config, exp = finished
    config2 = write_tiny_config(tmp_path / "d.toml", "d", tmp_path / "results", variants=())
    assert cli("run", config2, "--only", "reference-seed1", cwd=tmp_path).returncode == 0
    runs = tmp_path / "results" / "d" / "runs"
    before = metadata_stamps(runs)
    # 16 KiB: the experiment record fits, the L4E spike file (~35 kB) does not. Python ignores SIGXFSZ,
    # so the write fails with EFBIG as it would with ENOSPC on a full disk.
    command = " ".join(f"'{c}'" for c in [*CLI, "run", str(config2), "--only", "reference-seed2"])
    result = subprocess.run(["bash", "-c", f"ulimit -f 16; exec {command}"], cwd=tmp_path, capture_output=True,
                            text=True, env=ENV, timeout=600)
    assert result.returncode == 2, result.stderr
    assert "Could not write the run" in result.stderr and "File too large" in result.stderr
    assert "Traceback" not in result.stderr and "Free disk space" in result.stderr
    assert not (runs / "reference-seed2").exists()
    assert not list((tmp_path / "results").rglob(COMPLETE_MARKER))[1:], "only seed1 may be complete"
    assert metadata_stamps(runs) == before and not [p for p in runs.iterdir() if p.name.startswith(".")]
    assert not (tmp_path / "results" / "d" / LOCK_FILE).exists()
    again = cli("run", config2, "--only", "reference-seed2", cwd=tmp_path)
    assert again.returncode == 0 and is_complete(runs / "reference-seed2")


def test_two_compares_on_one_directory(finished):
    """Two `compare` processes at once: one works, the other stops with a message naming the holder.

    Fails without the experiment lock: both would validate and write the same
    files at the same time.
    """
    root, config, exp = finished
    procs = [subprocess.Popen([*CLI, "compare", str(config)], cwd=root, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=ENV) for _ in range(2)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], [err for _, _, err in results]
    loser = next(err for code, _, err in results if code == 2)
    assert "is in use by cortexzoo compare" in loser and "Wait for it to finish" in loser
    assert not (exp / LOCK_FILE).exists()
    assert (exp / "report" / "index.html").read_text().rstrip().endswith("</html>")
