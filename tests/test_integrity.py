"""Every result matches its inputs: run identity, superseded runs, config ownership, config paths, locks.

The runs are tiny (N 0.03, K 0.1, 1 s) and only ``reference-seed1`` is simulated
where one run is enough.
"""

import json
import os
import platform
import subprocess
import sys
import time

import psutil
import pytest
from experiment_helpers import ENV, REPO, cli, write_tiny_config

from cortexzoo.locking import LOCK_FILE, TOKEN_ENV, ExperimentLock, LockBusy, host_tag
from cortexzoo.network.output import is_complete, load_run, remove_dead_partials

ONE = ("--only", "reference-seed1")


def catalogue_copy(tmp_path, v_th="-50 mV"):
    """A copy of the catalogue whose built-in LIF has ``V_th`` (NESTML sources stay in models_nestml/)."""
    folder = tmp_path / "catalogue"
    folder.mkdir(exist_ok=True)
    text = (REPO / "models_nestml" / "catalogue.toml").read_text()
    head, sep, rest = text.partition("[models.iaf_psc_exp.pd14]")
    old = 'V_th = "-50 mV"'
    assert old in rest.split("[models.", 1)[0], "the LIF's V_th moved; update this helper"
    (folder / "catalogue.toml").write_text(head + sep + rest.replace(old, f'V_th = "{v_th}"', 1))
    return {"CORTEXZOO_CATALOGUE": str(folder / "catalogue.toml")}


def meta(run_dir):
    return json.loads((run_dir / "metadata.json").read_text())


def test_changed_catalogue_reruns_says_why_and_keeps_the_old_run(tmp_path):
    """The issue's reproduction: a changed catalogue parameter must not be scored as the old spikes.

    Fails if the run hash ignores the catalogue, if ``neuron_parameters`` is not
    what was simulated, or if the replaced run is deleted silently.
    """
    config = write_tiny_config(tmp_path / "t.toml", "t", tmp_path / "results", variants=())
    run = tmp_path / "results" / "t" / "runs" / "reference-seed1"
    first = cli("run", config, *ONE, cwd=tmp_path, env=catalogue_copy(tmp_path))
    assert first.returncode == 0, first.stderr
    params = meta(run)["neuron_parameters"]
    assert sorted(params) == ["L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I"]
    assert {p["V_th"] for p in params.values()} == {-50.0} and all(p["tau_m"] == 10.0 for p in params.values())
    again = cli("run", config, *ONE, cwd=tmp_path, env=catalogue_copy(tmp_path))
    assert "1 of 1 runs already done (cached)" in again.stderr and "0 run(s) simulated" in again.stdout
    old_hash = meta(run)["config_hash"]

    # Scoring before the re-run is refused: the run on disk is not the model the catalogue now names.
    refused = cli("validate", config, cwd=tmp_path, env=catalogue_copy(tmp_path, "-51 mV"))
    assert refused.returncode == 2 and "reference-seed1 (stale: " in refused.stderr and "V_th" in refused.stderr
    changed = cli("run", config, *ONE, cwd=tmp_path, env=catalogue_copy(tmp_path, "-51 mV"))
    assert changed.returncode == 0, changed.stderr
    assert "reference-seed1 is simulated again" in changed.stderr
    assert "V_th: -50.0 -> -51.0 in all populations" in changed.stderr and "catalogue entry" in changed.stderr
    assert "1 run(s) simulated (1 redone: their inputs changed), 0 cached" in changed.stdout
    assert {p["V_th"] for p in meta(run)["neuron_parameters"].values()} == {-51.0}
    kept = tmp_path / "results" / "t" / "superseded" / f"reference-seed1.{old_hash}"
    assert is_complete(kept) and {p["V_th"] for p in meta(kept)["neuron_parameters"].values()} == {-50.0}

    # --replace deletes what it replaces instead of keeping it.
    replaced = cli("run", config, *ONE, "--replace", cwd=tmp_path, env=catalogue_copy(tmp_path))
    assert replaced.returncode == 0, replaced.stderr
    assert [p.name for p in kept.parent.iterdir()] == [kept.name]
    assert {p["V_th"] for p in meta(run)["neuron_parameters"].values()} == {-50.0}


def test_damaged_runs_are_refused_by_validation_and_redone_by_run(tmp_path):
    """A flipped byte in a spike file or a truncated metadata.json is never analysed as a finished run.

    Fails if checksums are not written or not checked, or if a damaged run is
    deleted instead of kept.
    """
    config = write_tiny_config(tmp_path / "t.toml", "t", tmp_path / "results", variants=())
    run = tmp_path / "results" / "t" / "runs" / "reference-seed1"
    assert cli("run", config, *ONE, cwd=tmp_path).returncode == 0
    spikes = run / "spikes" / "L4E.npz"
    data = bytearray(spikes.read_bytes())
    data[len(data) // 2] ^= 0xFF
    spikes.write_bytes(bytes(data))
    with pytest.raises(Exception, match="is damaged: spikes/L4E.npz \\(checksum differs\\)"):
        load_run(run)
    redo = cli("run", config, *ONE, cwd=tmp_path)
    assert redo.returncode == 0, redo.stderr
    assert "damaged since it was written: spikes/L4E.npz (checksum differs)" in redo.stderr
    load_run(run)
    (run / "metadata.json").write_text((run / "metadata.json").read_text()[:100])
    redo = cli("run", config, *ONE, cwd=tmp_path)
    assert redo.returncode == 0 and "its metadata.json is unreadable" in redo.stderr
    load_run(run)
    assert len(list((tmp_path / "results" / "t" / "superseded").iterdir())) == 2


def test_missing_config_path_exits_2_and_writes_nothing(tmp_path):
    """A path that does not exist never falls back to the shipped config of the same name."""
    for arg in ("some/missing/quick.toml", "quick.toml"):
        result = cli("compare", arg, cwd=tmp_path)
        assert result.returncode == 2 and f"Experiment config {arg} does not exist" in result.stderr
    assert list(tmp_path.iterdir()) == []
    result = cli("run", "quik", cwd=tmp_path)
    assert result.returncode == 2 and "No shipped experiment config is called 'quik'" in result.stderr
    assert "quick" in result.stderr and list(tmp_path.iterdir()) == []


def test_same_name_other_config_is_refused(tmp_path):
    """Two configs with one [experiment] name must not mix their runs in one directory."""
    a = write_tiny_config(tmp_path / "a.toml", "shared", tmp_path / "results", variants=("lif_hot",))
    b = write_tiny_config(tmp_path / "b.toml", "shared", tmp_path / "results", variants=("lif_cold",))
    assert cli("run", a, *ONE, cwd=tmp_path).returncode == 0
    recorded = (tmp_path / "results" / "shared" / "experiment.toml").read_text()
    result = cli("run", b, "--only", "lif_cold-seed101", cwd=tmp_path)
    assert result.returncode == 2 and "was made with another config" in result.stderr
    assert "variants.lif_cold" in result.stderr and "variants.lif_hot" in result.stderr
    assert (tmp_path / "results" / "shared" / "experiment.toml").read_text() == recorded
    assert not (tmp_path / "results" / "shared" / "runs" / "lif_cold-seed101").exists()
    # A copy of the same config under another file name, with other comments, is the same config.
    (tmp_path / "a2.toml").write_text("# a comment\n" + a.read_text())
    assert cli("run", tmp_path / "a2.toml", *ONE, cwd=tmp_path).returncode == 0


def _holder(directory):
    """A separate live process holding the experiment lock; returns (process, token)."""
    code = ("import sys, time; from cortexzoo.locking import ExperimentLock; "
            "lock = ExperimentLock(sys.argv[1], 'holder-for-test'); lock.acquire(); "
            "print(lock.token, flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(directory)], stdout=subprocess.PIPE, text=True, env=ENV)
    return proc, proc.stdout.readline().strip()


def test_second_writer_stops_and_lock_children_work_inside(tmp_path):
    """A live holder blocks others, its children (token) work inside it, and its death frees the directory."""
    config = write_tiny_config(tmp_path / "t.toml", "t", tmp_path / "results", variants=())
    exp = tmp_path / "results" / "t"
    holder, token = _holder(exp)
    try:
        blocked = cli("run", config, *ONE, cwd=tmp_path)
        assert blocked.returncode == 2 and "is in use by holder-for-test" in blocked.stderr
        assert f"PID {holder.pid}" in blocked.stderr and not (exp / "runs").exists()
        inside = cli("run", config, *ONE, cwd=tmp_path, env={TOKEN_ENV: token})
        assert inside.returncode == 0, inside.stderr
        assert json.loads((exp / LOCK_FILE).read_text())["token"] == token  # a child never releases it
    finally:
        holder.kill()
        holder.wait()
    after = cli("run", config, *ONE, cwd=tmp_path)
    assert after.returncode == 0 and "removing the stale lock of holder-for-test" in after.stderr
    assert not (exp / LOCK_FILE).exists()


def _write_lock(directory, **fields):
    directory.mkdir(parents=True, exist_ok=True)
    record = {"host": platform.node(), "pid": os.getpid(), "process_start": psutil.Process().create_time(),
              "started": "2026-01-01T00:00:00", "command": "somebody", "token": "t0", **fields}
    (directory / LOCK_FILE).write_text(json.dumps(record))


def test_lock_of_another_host_is_never_removed(tmp_path):
    """On a shared filesystem another node's lock may be live: refuse and say how to clear it."""
    _write_lock(tmp_path, host="node-17.cluster", pid=4242)
    with pytest.raises(LockBusy) as err:
        ExperimentLock(tmp_path, "test").acquire()
    assert "on host node-17.cluster" in str(err.value) and f"rm {tmp_path / LOCK_FILE}" in str(err.value)
    assert json.loads((tmp_path / LOCK_FILE).read_text())["host"] == "node-17.cluster"


def test_lock_of_a_reused_pid_or_dead_process_is_stale(tmp_path):
    """A lock whose PID now belongs to another process (other start time), or to none, is cleared."""
    _write_lock(tmp_path, process_start=12345.0)  # this live PID, but started at another time
    with ExperimentLock(tmp_path, "test"):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["command"] == "test"
    dead = subprocess.Popen(["true"])
    dead.wait()
    _write_lock(tmp_path, pid=dead.pid)
    with ExperimentLock(tmp_path, "test"):
        pass
    assert not (tmp_path / LOCK_FILE).exists()


def test_live_lock_of_this_host_is_refused_and_kept(tmp_path):
    _write_lock(tmp_path)  # this very process, correct start time
    with pytest.raises(LockBusy, match="on this host"):
        ExperimentLock(tmp_path, "test").acquire()
    assert (tmp_path / LOCK_FILE).exists()


def test_unreadable_old_lock_is_reported_not_removed(tmp_path):
    (tmp_path / LOCK_FILE).write_text("")
    old = time.time() - 60
    os.utime(tmp_path / LOCK_FILE, (old, old))
    with pytest.raises(LockBusy, match="unreadable"):
        ExperimentLock(tmp_path, "test").acquire()
    assert (tmp_path / LOCK_FILE).exists()


def test_partial_run_directories_of_other_hosts_or_live_writers_are_kept(tmp_path):
    """Only a partial directory of a dead writer on this host is debris."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = host_tag()
    names = {"dead": f".run.partial-{host}-{dead.pid}", "live": f".run.partial-{host}-{os.getpid()}",
             "other_host": f".run.partial-node-17-{dead.pid}"}
    for name in names.values():
        (tmp_path / name).mkdir()
    left = remove_dead_partials(tmp_path / "run")
    assert not (tmp_path / names["dead"]).exists()
    assert sorted(p.name for p in left) == sorted([names["live"], names["other_host"]])
