"""Experiment packages and merged validation: runs made by one lab, packed, checked and scored by another.

Lab A runs a tiny experiment (3 reference seeds and one variant, real NEST) and
packs its variant run; lab B, which has the same reference, unpacks it next to
its own and validates the union. Damaged, altered or clashing packages must be
refused without touching lab B's directory, and a run of another network must
never be scored against the reference.
"""

import hashlib
import json
import platform
import shutil
import struct
import zipfile

import pandas as pd
import pytest
from experiment_helpers import cli, write_tiny_config

from cortexzoo.errors import CortexzooError
from cortexzoo.experiments import package
from cortexzoo.experiments.config import load_experiment
from cortexzoo.experiments.package import pack_experiment, unpack_package
from cortexzoo.network.identity import identity_hash, run_identity
from cortexzoo.validation.provenance import network_mismatches

VARIANT = "lif_hot-seed101"
REFERENCES = ["reference-seed1", "reference-seed2", "reference-seed3"]


def tiny_config(path, results, contributor=None):
    """The tiny experiment of experiment_helpers, with an optional [experiment] contributor."""
    write_tiny_config(path, "share", results, variants=("lif_hot",))
    if contributor is not None:
        text = path.read_text().replace('description = "tiny test experiment"\n',
                                        f'description = "tiny test experiment"\ncontributor = "{contributor}"\n')
        path.write_text(text)
    return path


@pytest.fixture(scope="module")
def lab_a(tmp_path_factory, nestml_module):
    """Lab A's experiment directory: simulated, validated, and its variant run packed (all through the CLI)."""
    tmp = tmp_path_factory.mktemp("lab_a")
    config = tiny_config(tmp / "share.toml", tmp / "results", contributor="lab A")
    exp = tmp / "results" / "share"
    for command in (("run", config), ("validate", config), ("pack", exp, "--out", tmp / "variant.zip",
                                                              "--runs", VARIANT)):
        result = cli(*command, cwd=tmp)
        assert result.returncode == 0, result.stderr[-3000:]
    return {"tmp": tmp, "config": config, "exp": exp, "archive": tmp / "variant.zip"}


def lab_b(lab_a, folder):
    """Lab B's experiment directory: the same config and its own reference runs, without the variant."""
    (folder / "runs").mkdir(parents=True)
    shutil.copyfile(lab_a["exp"] / "experiment.toml", folder / "experiment.toml")
    for name in REFERENCES:
        shutil.copytree(lab_a["exp"] / "runs" / name, folder / "runs" / name)
    return folder


def snapshot(folder):
    """Every file below ``folder`` with its modification time and bytes (the lock file excluded)."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def flip_byte(archive, member, out):
    """A copy of ``archive`` with one bit flipped in the middle of ``member``'s stored (deflated) bytes."""
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(member)
    data = bytearray(archive.read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    data[info.header_offset + 30 + name_len + extra_len + info.compress_size // 2] ^= 0x01
    out.write_bytes(bytes(data))
    return out


def rewrite(archive, out, edits, update_crate=False):
    """A well-formed zip whose members ``edits`` (name -> bytes) are replaced; optionally the crate's sums too."""
    with zipfile.ZipFile(archive) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    members.update(edits)
    if update_crate:
        crate = json.loads(members[package.CRATE_FILE])
        for entity in crate["@graph"]:
            if entity["@id"] in edits:
                entity.update(sha256=hashlib.sha256(edits[entity["@id"]]).hexdigest(),
                              contentSize=str(len(edits[entity["@id"]])))
        members[package.CRATE_FILE] = json.dumps(crate).encode()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out


def test_unpacked_runs_validate_to_the_original_scores(lab_a, tmp_path):
    """Catches a package or unpack that changes a run (spikes, metadata, window) or loses it: the union of lab B's
    reference and lab A's unpacked variant must give exactly lab A's scores.csv; and a report without origins."""
    b = lab_b(lab_a, tmp_path / "lab_b")
    result = cli("unpack", lab_a["archive"], "--into", b, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"added runs/{VARIANT}" in result.stderr and (b / "runs" / VARIANT / "COMPLETE").is_file()
    result = cli("validate", lab_a["config"], "--out", b, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    original = lab_a["exp"] / "validation" / "scores.csv"
    assert (b / "validation" / "scores.csv").read_bytes() == original.read_bytes()

    # The same union from explicit run directories (the form for runs that are not one experiment's).
    result = cli("validate", "--reference", *[b / "runs" / r for r in REFERENCES], "--candidate",
                 b / "runs" / VARIANT, "--out", tmp_path / "explicit", "--no-figures", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    explicit = pd.read_csv(tmp_path / "explicit" / "scores.csv").replace({"model": {VARIANT: "lif_hot"}})
    pd.testing.assert_frame_equal(explicit, pd.read_csv(original))

    from cortexzoo.validation.report import write_report

    page = write_report(b)["html"].read_text()
    table = page[page.index("<h2>Runs and provenance</h2>"):page.index("<h2>All decisions")]
    assert "lab A" in table and platform.node() in table and ">contributor<" in table
    assert json.loads((b / "runs" / VARIANT / "metadata.json").read_text())["started"][:10] in table


def test_crate_describes_every_file_and_run(lab_a):
    """Catches a crate that lists a file without its true sha256, or runs without their hash and origin."""
    from rocrate.rocrate import ROCrate

    crate = ROCrate(lab_a["archive"])
    run_dir = lab_a["exp"] / "runs" / VARIANT
    meta = json.loads((run_dir / "metadata.json").read_text())
    for rel in ["metadata.json", "COMPLETE", *meta["files"]]:
        entity = crate.get(f"runs/{VARIANT}/{rel}")
        assert entity["sha256"] == hashlib.sha256((run_dir / rel).read_bytes()).hexdigest()
    assert crate.get("experiment.toml")["sha256"] == hashlib.sha256(
        (lab_a["exp"] / "experiment.toml").read_bytes()).hexdigest()
    assert crate.get("models/catalogue.toml") is not None  # iaf_psc_exp is a built-in: no NESTML source
    dataset = crate.get(f"runs/{VARIANT}/")
    assert dataset["identifier"] == meta["config_hash"] and dataset["creditText"] == "lab A"
    action = crate.get(f"#simulate-{VARIANT}")
    assert action["startTime"] == meta["started"] and action["location"] == platform.node()
    assert {t["name"]: t["version"] for t in action["instrument"]}["nest-simulator"] == "3.10.0"


@pytest.mark.parametrize("member", [f"runs/{VARIANT}/spikes/L4E.npz", f"runs/{VARIANT}/metadata.json",
                                    package.CRATE_FILE])
def test_one_modified_byte_is_refused(lab_a, tmp_path, member):
    """Catches an unpack that adds (or half-adds) anything from a damaged archive, or does not name the file."""
    b = lab_b(lab_a, tmp_path / "lab_b")
    before = snapshot(b)
    bad = flip_byte(lab_a["archive"], member, tmp_path / "bad.zip")
    result = cli("unpack", bad, "--into", b, cwd=tmp_path)
    assert result.returncode == 2 and member in result.stderr and "Fix:" in result.stderr
    assert snapshot(b) == before
    assert not list(tmp_path.glob(".lab_b.unpack-*"))


def test_altered_file_in_a_well_formed_zip_is_refused(lab_a, tmp_path):
    """Catches an unpack that trusts the zip's own CRC: a replaced spike file must fail its crate sha256."""
    member = f"runs/{VARIANT}/spikes/L23E.npz"
    data = bytearray(zipfile.ZipFile(lab_a["archive"]).read(member))
    data[len(data) // 2] ^= 0x01  # same size: only the checksum can tell
    bad = rewrite(lab_a["archive"], tmp_path / "bad.zip", {member: bytes(data)})
    with pytest.raises(CortexzooError, match=f"{member} differs from its sha256"):
        unpack_package(bad, tmp_path / "lab_b")
    assert not (tmp_path / "lab_b").exists()


def test_run_whose_identity_does_not_match_its_hash_is_refused(lab_a, tmp_path):
    """Catches a package whose crate was re-made around an edited run: the run's own identity hash must hold."""
    member = f"runs/{VARIANT}/metadata.json"
    meta = json.loads(zipfile.ZipFile(lab_a["archive"]).read(member))
    meta["identity"]["config"]["network"]["K_scaling"] = meta["config"]["network"]["K_scaling"] = 0.2
    bad = rewrite(lab_a["archive"], tmp_path / "bad.zip", {member: json.dumps(meta).encode()}, update_crate=True)
    with pytest.raises(CortexzooError, match="identity does not match its hash"):
        unpack_package(bad, tmp_path / "lab_b")
    assert not (tmp_path / "lab_b").exists()


def test_unpacking_twice_skips_and_overwrites_nothing(lab_a, tmp_path):
    """Catches an unpack that rewrites runs or provenance already there (same identity: skipped, said so)."""
    into = tmp_path / "fresh"
    first = unpack_package(lab_a["archive"], into)
    assert first["added"] == [VARIANT] and (into / "experiment.toml").is_file()  # a new dir takes the config
    before = snapshot(into)
    said = []
    second = unpack_package(lab_a["archive"], into, progress=said.append)
    assert second == {"added": [], "skipped": [VARIANT], "imports": first["imports"]}
    assert any(f"skipped runs/{VARIANT}: already there with the same identity" in line for line in said)
    assert snapshot(into) == before


def test_run_name_taken_by_another_run_is_refused(lab_a, tmp_path):
    """Catches an unpack that replaces (or skips silently) a different run of the same name."""
    b = lab_b(lab_a, tmp_path / "lab_b")
    shutil.copytree(b / "runs" / "reference-seed1", b / "runs" / VARIANT)  # another identity under the name
    before = snapshot(b)
    result = cli("unpack", lab_a["archive"], "--into", b, cwd=tmp_path)
    assert result.returncode == 2 and f"runs/{VARIANT} already holds another run" in result.stderr
    assert snapshot(b) == before


def test_failed_write_leaves_nothing(lab_a, tmp_path, monkeypatch):
    """Catches a half-written unpack: a disk that fills up during extraction leaves RESULTS_DIR as it was."""
    b = lab_b(lab_a, tmp_path / "lab_b")
    before = snapshot(b)
    blocks = package._member_blocks
    calls = []

    def disk_full_on_fifth_file(*args):
        calls.append(args)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        yield from blocks(*args)

    monkeypatch.setattr(package, "_member_blocks", disk_full_on_fifth_file)
    with pytest.raises(CortexzooError, match="No space left on device"):
        unpack_package(lab_a["archive"], b)
    assert snapshot(b) == before and not list(tmp_path.glob(".lab_b.unpack-*"))


def test_pack_refuses_damaged_or_unknown_runs(lab_a, tmp_path):
    """Catches a pack that ships a run whose spikes no longer match its metadata, or ignores a misspelt run."""
    exp = tmp_path / "copy"
    shutil.copytree(lab_a["exp"], exp, ignore=shutil.ignore_patterns("validation"))
    with pytest.raises(CortexzooError, match="no run named 'lif_hot-seed1'"):
        pack_experiment(exp, tmp_path / "x.zip", runs=["lif_hot-seed1"])
    spikes = exp / "runs" / VARIANT / "spikes" / "L4E.npz"
    data = bytearray(spikes.read_bytes())
    data[len(data) // 2] ^= 0x01
    spikes.write_bytes(bytes(data))
    with pytest.raises(CortexzooError, match=r"spikes/L4E.npz \(checksum differs\)"):
        pack_experiment(exp, tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()
    result = pack_experiment(exp, tmp_path / "refs.zip", runs=REFERENCES)
    assert result["runs"] == REFERENCES and zipfile.ZipFile(tmp_path / "refs.zip").testzip() is None


def test_run_of_another_network_is_refused_by_validate(lab_a, tmp_path):
    """Catches validation that scores a run of another K_scaling (same population sizes and window) against
    the reference: the refusal must name the field and both values."""
    run_config = tmp_path / "other_k.toml"
    run_config.write_text('[simulation]\nseed = 101\nt_presim_ms = 100.0\nt_sim_ms = 1000.0\n\n'
                          '[network]\nN_scaling = 0.03\nK_scaling = 0.05\nbackground = "poisson"\n'
                          # reference_rates: no compensation windows to simulate (the test is about K_scaling)
                          'k_compensation = "reference_rates"\n\n'
                          '[neuron]\nmodel = "iaf_psc_exp"\nparams = { V_th = "-52 mV" }\n')
    result = cli("simulate", run_config, "--out", tmp_path / "other_k", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    refs = [lab_a["exp"] / "runs" / r for r in REFERENCES]
    result = cli("validate", "--reference", *refs, "--candidate", tmp_path / "other_k", "--out", tmp_path / "v",
                 "--no-figures", cwd=tmp_path)
    assert result.returncode == 2, result.stdout[-2000:]
    assert "another network" in result.stderr and "K_scaling: 0.1 vs 0.05" in result.stderr
    assert not (tmp_path / "v" / "scores.csv").exists()


def _meta(**changes):
    meta = {"identity": {"pd14": "abc", "resolution_ms": 0.1, "config": {
        "simulation": {"t_sim_ms": 1000.0, "t_presim_ms": 100.0, "seed": 1},
        "network": {"N_scaling": 0.03, "K_scaling": 0.1, "background": "poisson", "thalamic_input": False,
                    "thalamic_indegree": "pd14"}, "stimulus": {"kind": "none"}}}}
    for path, value in changes.items():
        *tables, key = path.split(".")
        target = meta["identity"]
        for table in tables:
            target = target[table]
        target[key] = value
    return meta


@pytest.mark.parametrize("path, value, field", [
    ("pd14", "def", "pd14 parameter file (hash)"), ("resolution_ms", 0.05, "resolution_ms"),
    ("config.network.N_scaling", 0.1, "N_scaling"), ("config.network.K_scaling", 0.2, "K_scaling"),
    ("config.network.background", "dc", "background"), ("config.network.thalamic_input", True, "thalamic_input"),
    ("config.stimulus", {"kind": "thalamic_pulses", "count": 3}, "stimulus"),
    ("config.simulation.t_sim_ms", 2000.0, "t_sim_ms")])
def test_network_mismatches_names_each_field(path, value, field):
    """Catches a network field the check forgets: each one alone must be named with both values."""
    differ = network_mismatches(_meta(), _meta(**{path: value}))
    assert len(differ) == 1 and differ[0].startswith(f"{field}: ") and repr(value) in differ[0]


def test_thalamic_rule_and_old_runs():
    """Catches a thalamic in-degree rule compared when no thalamic input is driven (it changes nothing
    then), one ignored when the thalamus is driven, and runs made before stimuli existed refused
    against new stationary runs although they simulated the same network."""
    driven = {"config.network.thalamic_input": True}
    assert network_mismatches(_meta(**driven), _meta(**driven, **{
        "config.network.thalamic_indegree": "reference_package"}))[0].startswith("thalamic_indegree: ")
    assert network_mismatches(_meta(), _meta(**{"config.network.thalamic_indegree": "reference_package"})) == []
    old = _meta()
    del old["identity"]["config"]["stimulus"], old["identity"]["config"]["network"]["thalamic_indegree"]
    assert network_mismatches(old, _meta()) == []
    assert network_mismatches(old, _meta(**{"config.stimulus": {"kind": "thalamic_pulses"}}))[0].startswith(
        "stimulus: ")


def test_network_mismatches_ignores_what_runs_may_differ_in():
    """Catches a check that refuses every variant: presimulation (model-dependent), seed, and 1 vs 1.0."""
    other = _meta(**{"config.simulation.t_presim_ms": 720.0, "config.simulation.seed": 7,
                     "config.network.K_scaling": 0.1})
    assert network_mismatches(_meta(), other) == []
    assert network_mismatches(_meta(**{"config.network.N_scaling": 1}), _meta(**{"config.network.N_scaling": 1.0})) == []
    # A run that does not record its network cannot be shown to match; two such runs (tests' hand-made runs) can.
    assert network_mismatches(_meta(), {})[0] == "pd14 parameter file (hash): 'abc' vs '(not recorded)'"
    assert network_mismatches({}, {}) == []


def test_contributor_is_recorded_but_not_part_of_the_run_identity(lab_a, tmp_path):
    """Catches a contributor that changes run hashes (every shared run would be re-simulated) or is not recorded."""
    with_contributor = load_experiment(lab_a["config"])
    without = load_experiment(tiny_config(tmp_path / "share.toml", lab_a["tmp"] / "results"))
    assert with_contributor.tables["experiment"]["contributor"] == "lab A"
    for a, b in zip(with_contributor.runs, without.runs, strict=True):
        assert identity_hash(run_identity(a.config)) == identity_hash(run_identity(b.config))
    meta = json.loads((lab_a["exp"] / "runs" / VARIANT / "metadata.json").read_text())
    assert meta["contributor"] == "lab A" and meta["config_hash"] == identity_hash(run_identity(without.runs[-1].config))
