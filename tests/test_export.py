"""`cortexzoo export`: NWB and NIX files that hold every spike of a run, its metadata, and nothing half-written.

The files are read back with the formats' own libraries (pynwb; nixio directly, not through
the Neo reader that mirrors the writer) and compared spike by spike with the run directory.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from validation_synth import make_run

from cortexzoo.experiments.cli import main
from cortexzoo.locking import host_tag
from cortexzoo.network import export
from cortexzoo.network.output import RunWriter, load_run
from cortexzoo.network.params import parse_run_config
from cortexzoo.network.run import run_network

# Small, uneven populations with one silent: NIX costs ~25 ms per neuron, and a silent
# population is where offsets and empty index ranges go wrong.
SYNTH_POPS = {"L23E": 60, "L23I": 17, "L4E": 45, "L4I": 9}
SUMMARY_KEYS = ("model", "seed", "N_scaling", "K_scaling", "config_hash", "versions", "analysis_window_ms")


@pytest.fixture(scope="module")
def synth_run(tmp_path_factory):
    """A synthetic run with rates high enough for many spikes per neuron, and L4I silent."""
    root = tmp_path_factory.mktemp("export_synth")
    return make_run(root / "synth-seed3", 3, populations=SYNTH_POPS, t_start_ms=100.0, t_stop_ms=1100.0,
                    rates_hz={"L23E": 8.0, "L23I": 20.0, "L4E": 12.0, "L4I": 5.0}, silent=("L4I",))


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """A real PD14 run in NEST (N_scaling 0.02, 100 ms presimulation + 200 ms), with its real metadata."""
    root = tmp_path_factory.mktemp("export_real")
    config = parse_run_config({"simulation": {"threads": 1, "t_presim_ms": 100.0, "t_sim_ms": 200.0, "seed": 5},
                               "network": {"N_scaling": 0.02, "K_scaling": 0.05, "background": "poisson"},
                               "neuron": {"model": "iaf_psc_exp"}})
    return run_network(config, root / "reference-seed5")


@pytest.fixture(scope="module")
def real_run_subset(real_run, tmp_path_factory):
    """The first 12 neurons of each population of the real run, with its metadata: NIX-sized."""
    data = load_run(real_run)
    writer = RunWriter(tmp_path_factory.mktemp("export_subset") / "reference-seed5")
    sizes = {}
    for pop in data.populations:
        ids, times = data.spikes[pop]
        keep = ids < 12
        writer.write_spikes(pop, ids[keep], times[keep])
        sizes[pop] = min(12, data.sizes[pop])
    return writer.finish({**data.metadata, "populations": sizes})


def expected_trains(run_dir):
    """(population, neuron id, global id) -> sorted spike times in ms, from the run directory itself."""
    data = load_run(run_dir)
    out, offset = {}, 0
    for pop in data.populations:
        ids, times = data.spikes[pop]
        for i in range(data.sizes[pop]):
            out[(pop, i, offset + i)] = np.sort(times[ids == i])
        offset += data.sizes[pop]
    return out


def read_nwb(path):
    """Read back an NWB file with pynwb: (trains in seconds keyed like expected_trains, notes JSON, epochs)."""
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        units = nwb.units
        trains = {(units["population"][k], int(units["population_neuron_id"][k]), int(units.id[k])):
                  np.asarray(units["spike_times"][k]) for k in range(len(units))}
        epochs = nwb.epochs.to_dataframe()
        return trains, json.loads(nwb.notes), nwb.session_description, epochs


def read_nix(path):
    """Read back a NIX file with nixio itself: (trains in ms keyed like expected_trains, block metadata)."""
    import nixio

    with nixio.File.open(str(path), nixio.FileMode.ReadOnly) as nix:
        (block,) = [b for b in nix.blocks if b.type == "neo.block"]
        (group,) = block.groups
        trains = {}
        for tag in group.multi_tags:
            if tag.type == "neo.epoch":  # the analysis window
                continue
            assert tag.type == "neo.spiketrain" and tag.positions.unit == "ms"
            md = tag.metadata
            key = (md["population"], int(md["neuron_id"]), int(md["global_id"]))
            trains[key] = np.asarray(tag.positions[:], dtype=np.float64)
        meta = {prop.name: (prop.values[0] if len(prop.values) == 1 else list(prop.values))
                for prop in block.metadata.props}
        return trains, meta


def assert_same_trains(expected, got, per_ms=1.0):
    """Every neuron present once, with exactly the run's spike times (ms / per_ms: the nearest double)."""
    assert sorted(got) == sorted(expected)
    for key, times in expected.items():
        np.testing.assert_array_equal(got[key], times / per_ms, err_msg=str(key))


def export_cli(*argv):
    return main(["--quiet", "export", *map(str, argv)])


# --- round trips -------------------------------------------------------------------------------------


def test_nwb_holds_every_spike_of_every_population(synth_run, tmp_path):
    """Catches spikes lost, moved to another neuron or population (index bounds, global-id offsets, a
    silent population shifting the rest), times left in ms, and a units table built column-wise that
    breaks the NWB schema."""
    from pynwb import validate

    out = tmp_path / "run.nwb"
    assert export_cli(synth_run, "--format", "nwb", "--out", out) == 0
    assert validate(path=str(out)) == []
    trains, _, _, _ = read_nwb(out)
    expected = expected_trains(synth_run)
    assert_same_trains(expected, trains, per_ms=1000.0)
    assert sum(len(t) for t in trains.values()) == sum(len(ids) for ids, _ in load_run(synth_run).spikes.values())
    assert all(len(t) == 0 for (pop, _, _), t in trains.items() if pop == "L4I")


def test_nix_holds_every_spike_of_every_population(synth_run, tmp_path):
    """Catches the same losses in the NIX file (one Neo SpikeTrain per neuron), and times written in
    another unit than ms."""
    out = tmp_path / "run.nix"
    assert export_cli(synth_run, "--format", "nix", "--out", out) == 0
    trains, _ = read_nix(out)
    assert_same_trains(expected_trains(synth_run), trains)


def test_nix_reads_back_through_neo_as_spike_trains(synth_run, tmp_path):
    """Catches a NIX file that nixio accepts but Neo cannot read back as annotated SpikeTrains."""
    from neo.io import NixIO

    out = export.export_run(synth_run, "nix", tmp_path / "run.nix")
    with NixIO(str(out), mode="ro") as io:
        block = io.read_block()
    (segment,) = block.segments
    expected = expected_trains(synth_run)
    got = {(st.annotations["population"], int(st.annotations["neuron_id"]), int(st.annotations["global_id"])):
           st.rescale("ms").magnitude for st in segment.spiketrains}
    assert_same_trains(expected, got)
    (epoch,) = segment.epochs
    assert epoch.name == "analysis_window" and float(epoch.times[0]) == 100.0 and float(epoch.durations[0]) == 1000.0


def test_real_nest_run_round_trips_to_nwb_with_its_metadata(real_run, tmp_path):
    """Catches, on a real NEST run, spikes lost or misassigned across all eight populations, presimulation
    spikes dropped, and metadata (model, seed, scale, config hash, versions, window) missing or wrong."""
    out = tmp_path / "reference.nwb"
    assert export_cli(real_run, "--format", "nwb", "--out", out) == 0
    trains, notes, description, epochs = read_nwb(out)
    assert_same_trains(expected_trains(real_run), trains, per_ms=1000.0)
    assert min(t.min() for t in trains.values() if len(t)) < 0.1  # presimulation (0-100 ms) is kept
    data = load_run(real_run)
    summary = notes["cortexzoo_run"]
    assert summary["model"] == "iaf_psc_exp" and summary["seed"] == 5
    assert summary["N_scaling"] == 0.02 and summary["K_scaling"] == 0.05
    assert summary["config_hash"] == data.metadata["config_hash"]
    assert summary["versions"] == data.metadata["versions"] and summary["versions"]["nest-simulator"]
    assert summary["analysis_window_ms"] == [100.0, 300.0]
    assert notes["metadata.json"] == json.loads(json.dumps(data.metadata, default=str))
    assert "iaf_psc_exp" in description and data.metadata["config_hash"] in description
    (row,) = epochs.itertuples()
    assert (row.start_time, row.stop_time, list(row.tags)) == (0.1, 0.3, ["analysis_window"])


def test_nix_carries_the_run_metadata(real_run_subset, tmp_path):
    """Catches NIX block annotations that lose the model, seed, scale, config hash, versions or window."""
    out = export.export_run(real_run_subset, "nix", tmp_path / "reference.nix")
    trains, meta = read_nix(out)
    assert_same_trains(expected_trains(real_run_subset), trains)
    data = load_run(real_run_subset)
    assert meta["model"] == "iaf_psc_exp" and meta["seed"] == 5
    assert meta["N_scaling"] == 0.02 and meta["K_scaling"] == 0.05
    assert meta["config_hash"] == data.metadata["config_hash"]
    assert json.loads(meta["versions_json"]) == data.metadata["versions"]
    assert (meta["analysis_window_start_ms"], meta["analysis_window_stop_ms"]) == (100.0, 300.0)
    assert meta["populations"] == data.populations
    assert json.loads(meta["metadata_json"])["config_hash"] == data.metadata["config_hash"]


# --- bad inputs: exit 2, a message with its fix, nothing written ---------------------------------------


def error_of(capsys):
    err = capsys.readouterr().err
    assert err.startswith("cortexzoo export: error:") and "Fix:" in err and "Traceback" not in err
    return err


def test_existing_out_is_refused_without_overwrite(synth_run, tmp_path, capsys):
    """Catches an export that silently replaces an existing file, or ignores --overwrite."""
    out = tmp_path / "run.nwb"
    out.write_bytes(b"someone else's file")
    assert export_cli(synth_run, "--format", "nwb", "--out", out) == 2
    assert "already exists" in error_of(capsys) and out.read_bytes() == b"someone else's file"
    assert export_cli(synth_run, "--format", "nwb", "--out", out, "--overwrite") == 0
    assert_same_trains(expected_trains(synth_run), read_nwb(out)[0], per_ms=1000.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.nwb"]


@pytest.mark.parametrize("case", ["unknown_format", "missing_run", "unfinished_run", "out_is_directory"])
def test_bad_inputs_write_nothing(case, synth_run, tmp_path, capsys):
    """Catches a bad format, run directory or destination that is not refused with a clear message, or
    that leaves a file behind."""
    run, fmt, out = synth_run, "nwb", tmp_path / "out" / "run.nwb"
    if case == "unknown_format":
        fmt, fragment = "hdf5", "Unknown export format 'hdf5'"
    elif case == "missing_run":
        run, fragment = tmp_path / "nowhere", "does not exist"
    elif case == "unfinished_run":
        run = tmp_path / "half"
        (run / "spikes").mkdir(parents=True)  # what a killed simulation leaves: no COMPLETE marker
        fragment = "is not a finished run"
    else:
        out.mkdir(parents=True)
        fragment = "is a directory"
    before = sorted(tmp_path.rglob("*"))
    assert export_cli(run, "--format", fmt, "--out", out) == 2
    err = error_of(capsys)
    assert fragment in err
    if case == "unknown_format":
        assert "nwb, nix" in err
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("fmt, module, pip", [("nwb", "pynwb", "pip install 'pynwb>=4.2'"),
                                               ("nix", "nixio", "pip install 'nixio>=1.5.4'")])
def test_missing_library_names_the_pip_command(fmt, module, pip, synth_run, tmp_path, capsys, monkeypatch):
    """Catches an ImportError traceback (or a half-written file) instead of the install command when the
    format's library is absent (a None entry in sys.modules makes its import fail, as if uninstalled)."""
    monkeypatch.setitem(sys.modules, module, None)
    assert export_cli(synth_run, "--format", fmt, "--out", tmp_path / f"run.{fmt}") == 2
    err = error_of(capsys)
    assert module in err and pip in err
    assert list(tmp_path.iterdir()) == []


# --- atomic writing ------------------------------------------------------------------------------------


def test_failed_write_leaves_no_partial_file_and_keeps_the_old_one(synth_run, tmp_path, capsys, monkeypatch):
    """Catches an export written in place: a write that fails after the file is on disk (here the disk
    fills up at the end) must leave neither a new file, nor a temporary one, nor a damaged old one."""
    real_write = export.write_nwb

    def write_then_fail(run, path, say):
        real_write(run, path, say)
        assert path.is_file() and path.stat().st_size > 0  # the failure comes after real bytes were written
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "write_nwb", write_then_fail)
    new = tmp_path / "new.nwb"
    assert export_cli(synth_run, "--format", "nwb", "--out", new) == 2
    assert "No space left on device" in error_of(capsys)
    assert list(tmp_path.iterdir()) == []
    old = tmp_path / "old.nwb"
    old.write_bytes(b"previous export")
    assert export_cli(synth_run, "--format", "nwb", "--out", old, "--overwrite") == 2
    error_of(capsys)
    assert old.read_bytes() == b"previous export" and list(tmp_path.iterdir()) == [old]


def test_debris_of_a_killed_export_is_removed(synth_run, tmp_path):
    """Catches hidden partial folders of killed exports piling up beside the destination forever."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    debris = tmp_path / f".run.nwb.partial-{host_tag()}-{dead}"
    debris.mkdir()
    (debris / "run.nwb").write_bytes(b"half")
    export.export_run(synth_run, "nwb", tmp_path / "run.nwb")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.nwb"]
    assert os.path.getsize(tmp_path / "run.nwb") > 0 and Path(tmp_path / "run.nwb").read_bytes() != b"half"
