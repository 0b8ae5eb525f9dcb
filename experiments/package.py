"""Experiment packages: finished runs shared between labs as one self-describing zip file.

``cortexzoo pack RESULTS_DIR --out FILE`` writes selected runs of an
experiment directory, with everything needed to judge them, into one zip::

    ro-crate-metadata.json   RO-Crate (https://w3id.org/ro/crate): every file with its sha256 and size,
                             each run as a Dataset (identifier: its run hash) made by a CreateAction
                             (start time, host, contributor, tool versions as SoftwareApplications)
    experiment.toml          the config of the experiment the runs come from
    runs/<run>/...           the run directories as cortexzoo wrote them (metadata.json, COMPLETE,
                             spikes/<pop>.npz)
    models/catalogue.toml    the [models.<name>] tables of the models the runs used
    models/<file>.nestml     the NESTML sources of those models

``cortexzoo unpack FILE --into RESULTS_DIR`` checks every file against its
sha256 in the crate and every run's identity against its hash before adding
anything, and never replaces what RESULTS_DIR already holds.

Why zip and not tar.gz: a zip has a central directory, so ``unpack`` reads the
crate metadata first and then each member on its own (a tar.gz must be
decompressed from its start to reach any member, and is one stream in which a
damaged byte spoils everything after it); each member carries its own CRC-32, so
transfer damage is named per file; RO-Crate describes zipped crates; and
Python's standard library reads and writes it. Spike files are stored
uncompressed by ``numpy.savez``, so deflating them in the zip saves space.

What the checks prove: the sha256 sums catch damage and edits of a file that
leave the crate metadata alone; a run whose metadata was edited is caught by
its identity hash and its own spike-file checksums. Whoever rewrites the crate
metadata, a run's metadata and its hash consistently can still forge a run:
the checksums are for integrity, not a signature.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from cortexzoo.errors import CortexzooError
from cortexzoo.locking import ExperimentLock, clear_dead_debris, host_tag
from cortexzoo.network.identity import identity_hash
from cortexzoo.network.output import COMPLETE_MARKER, METADATA_FILE, damaged_files, file_sha256, is_complete
from cortexzoo.schema import read_toml

CRATE_FILE = "ro-crate-metadata.json"
CONFIG_FILE = "experiment.toml"
# The crate's term for a file checksum: the Workflow Run RO-Crate vocabulary's sha256.
SHA256_TERM = {"sha256": "https://w3id.org/ro/terms/workflow-run#sha256"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_BLOCK = 1 << 20
_DAMAGED_FIX = ("The archive was damaged or altered after it was packed: ask its sender for a new copy (check the "
                "transfer, e.g. compare `sha256sum FILE` on both machines). Nothing was added.")


# ---------------------------------------------------------------------------------------------- pack


def pack_experiment(experiment_dir, out, runs=None, overwrite: bool = False, progress=None) -> dict:
    """Write finished runs of an experiment directory into one RO-Crate zip.

    Parameters
    ----------
    experiment_dir : str or pathlib.Path
        A directory ``cortexzoo compare``/``run`` wrote (``experiment.toml``, ``runs/``).
    out : str or pathlib.Path
        The zip file to write; written aside and renamed into place.
    runs : list of str, optional
        Run names (``<label>-seed<k>``); default every finished run.
    overwrite : bool
        Replace an existing ``out``.
    progress : callable, optional
        Receives one-line progress messages.

    Returns
    -------
    dict
        ``path``, ``runs`` (names packed) and ``bytes`` (archive size).

    Raises
    ------
    CortexzooError
        For a directory that is not an experiment, an unknown, unfinished or
        damaged run, a run whose model's catalogue entry or NESTML source has
        changed since it was made, or an existing ``out``.
    """
    say = progress or (lambda message: None)
    exp, out = Path(experiment_dir), Path(out)
    if not (exp / CONFIG_FILE).is_file():
        raise CortexzooError(f"{exp} is not a cortexzoo experiment directory (no {CONFIG_FILE}).",
                             "Give the directory `cortexzoo compare` or `cortexzoo run` wrote, e.g. results/quick.")
    if out.exists() and not overwrite:
        raise CortexzooError(f"{out} already exists.", "Choose another --out, or pass --overwrite to replace it.")
    metas = {path.name: verify_run(path, str(path)) for path in _selected_runs(exp, runs, say)}
    entries, sources = _models_used(metas)
    members = [(CONFIG_FILE, exp / CONFIG_FILE)]
    for name, meta in metas.items():
        # What a run is: its metadata, its marker and the spike files its metadata lists (nothing else there).
        members += [(f"runs/{name}/{rel}", exp / "runs" / name / rel)
                    for rel in (METADATA_FILE, COMPLETE_MARKER, *sorted(meta.get("files") or {}))]
    members += [(f"models/{src.name}", src) for src in sources]
    experiment = read_toml(exp / CONFIG_FILE, "Experiment config").get("experiment", {}).get("name", exp.name)
    with _written_aside(out) as tmp:
        say(f"packing {len(metas)} run(s) and {len(sources)} NESTML source(s) into {out}")
        _write_zip(tmp, members, metas, entries, experiment)
    return {"path": out, "runs": list(metas), "bytes": out.stat().st_size}


def _selected_runs(exp: Path, names, say) -> list:
    """The run directories to pack, in name order: those named (each must be there), else every finished one."""
    available = sorted(p.name for p in (exp / "runs").glob("*") if p.is_dir() and not p.name.startswith("."))
    unknown = [n for n in (names or []) if n not in available]
    if unknown:
        raise CortexzooError(f"{exp / 'runs'} has no run named {', '.join(map(repr, unknown))}.",
                             f"Runs there: {', '.join(available) or '(none)'}.")
    if names:
        chosen = sorted(set(names))  # an unfinished one named is refused by verify_run
    else:
        chosen = [n for n in available if is_complete(exp / "runs" / n)]
        for name in sorted(set(available) - set(chosen)):
            say(f"left out runs/{name}: not finished")
    if not chosen:
        raise CortexzooError(f"{exp / 'runs'} holds no run to pack.", "Run the experiment first (`cortexzoo run`).")
    return [exp / "runs" / n for n in chosen]


def verify_run(path, where: str) -> dict:
    """Check a run directory is finished, undamaged and carries the identity its hash names.

    Parameters
    ----------
    path : pathlib.Path
        The run directory.
    where : str
        How messages name it (a path, or a member of an archive).

    Returns
    -------
    dict
        Its ``metadata.json``.

    Raises
    ------
    CortexzooError
        Naming the file that is missing, unreadable or differs.
    """
    path = Path(path)
    if not is_complete(path):
        raise CortexzooError(f"{where} is not a finished run (no {COMPLETE_MARKER} marker or {METADATA_FILE}).",
                             "Finish it first (`cortexzoo run CONFIG`); unfinished runs are never shared.")
    try:
        meta = json.loads((path / METADATA_FILE).read_text())
        identity, recorded = meta["identity"], meta["config_hash"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CortexzooError(f"{where}/{METADATA_FILE} is unreadable or has no run identity "
                             f"({type(exc).__name__}: {exc}).",
                             "Only runs of cortexzoo >= format 2 can be shared; simulate the run again.") from None
    if not isinstance(identity, dict) or identity_hash(identity) != recorded or meta.get("config") != identity["config"]:
        raise CortexzooError(f"{where}/{METADATA_FILE}: its run identity does not match its hash {recorded} "
                             "(the metadata was edited after the run was made).",
                             "Use an unaltered copy of the run, or simulate it again.")
    damaged = damaged_files(path, meta)
    if damaged:
        raise CortexzooError(f"{where} is damaged: {', '.join(damaged)} since it was written.",
                             "Use an undamaged copy, or simulate the run again (`cortexzoo run CONFIG`).")
    return meta


def _models_used(metas: dict) -> tuple:
    """Catalogue tables and NESTML sources of the runs' models, refused if they changed since a run was made."""
    from cortexzoo.models.catalogue import model_spec, raw_models
    from cortexzoo.network.identity import run_identity
    from cortexzoo.network.params import parse_run_config

    # One look-up per (model, rule): reading the catalogue is what takes the time.
    groups = {}
    for name, meta in metas.items():
        neuron = meta["identity"]["config"]["neuron"]
        groups.setdefault((neuron["model"], neuron.get("calibration", "")), []).append(name)
    catalogue, entries, sources = raw_models(), {}, {}
    for names in groups.values():
        config = parse_run_config(metas[names[0]]["identity"]["config"], where=f"{names[0]}/{METADATA_FILE}")
        spec, now = model_spec(config), run_identity(config)["catalogue_entry"]
        for name in names:
            _refuse_changed_model(name, metas[name], spec, now)
        if spec.is_nestml:
            sources[spec.source.name] = spec.source
        entries[spec.name] = catalogue[spec.name]
    return entries, list(sources.values())


def _refuse_changed_model(name: str, meta: dict, spec, catalogue_entry: str) -> None:
    """A package ships the model description a run was made with, or refuses it."""
    if catalogue_entry != meta["identity"]["catalogue_entry"]:
        raise CortexzooError(f"The catalogue entry of {spec.name} changed since {name} was made; the package would "
                             "describe the run with values it was not made with.",
                             "Simulate the run again with the current catalogue (`cortexzoo run CONFIG`), or leave "
                             "it out (--runs).")
    recorded = meta["model"].get("source_sha256")
    if spec.is_nestml and file_sha256(spec.source) != recorded:
        raise CortexzooError(f"{spec.source} changed since {name} was made (sha256 {str(recorded)[:12]}... then).",
                             "Simulate the run again with the current source, or leave it out (--runs).")


def _write_zip(path: Path, members: list, metas: dict, entries: dict, experiment: str) -> None:
    """Deflate every member, hashing as it goes, then the catalogue tables and the crate metadata."""
    import tomli_w

    files = {}
    # Level 1: on the study's spike files 4.6x faster than the default 6 for an archive 8 % larger.
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for member, source in members:
            files[member] = _add_member(zf, member, source)
        catalogue = tomli_w.dumps({"models": entries}).encode()
        zf.writestr("models/catalogue.toml", catalogue)
        files["models/catalogue.toml"] = (hashlib.sha256(catalogue).hexdigest(), len(catalogue))
        _check_packed_spikes(files, metas)
        crate = _crate(files, metas, experiment)
        zf.writestr(CRATE_FILE, json.dumps(crate.metadata.generate(), indent=1))


def _add_member(zf: zipfile.ZipFile, member: str, source: Path) -> tuple:
    digest, size = hashlib.sha256(), 0
    # Members carry no file dates (zip's 1980 default): the crate records when each run was made.
    with open(source, "rb") as src, zf.open(member, "w", force_zip64=True) as dst:
        for block in iter(lambda: src.read(_BLOCK), b""):
            digest.update(block)
            dst.write(block)
            size += len(block)
    return digest.hexdigest(), size


def _check_packed_spikes(files: dict, metas: dict) -> None:
    # The bytes in the zip are those the run was written with, even if it was replaced while packing.
    for name, meta in metas.items():
        for rel, expected in (meta.get("files") or {}).items():
            if files.get(f"runs/{name}/{rel}", (None,))[0] != expected:
                raise CortexzooError(f"runs/{name}/{rel} changed while it was packed (its checksum differs from the "
                                     "run's metadata).",
                                     "Wait until no `cortexzoo run`/`compare` writes the experiment, then pack again.")


def _crate(files: dict, metas: dict, experiment: str):
    """The RO-Crate: files with sha256 and size, a Dataset per run and the CreateAction that made it."""
    from rocrate.rocrate import ROCrate

    crate = ROCrate()
    crate.metadata.extra_terms.update(SHA256_TERM)
    crate.name = f"cortexzoo runs of the experiment {experiment}: {len(metas)} run(s)"
    crate.description = ("Finished runs of the cortexzoo PD14 microcircuit (spikes per population, metadata with "
                         "the run identity and its hash), the experiment config, the catalogue entries and NESTML "
                         "sources of the models used. Unpack with `cortexzoo unpack FILE --into RESULTS_DIR`.")
    crate.datePublished = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    for member, (digest, size) in files.items():
        crate.add_file(dest_path=member, properties={"sha256": digest, "contentSize": str(size),
                                                     "encodingFormat": _format(member)})
    for name, meta in metas.items():
        _describe_run(crate, name, meta, [m for m in files if m.startswith(f"runs/{name}/")])
    return crate


def _describe_run(crate, name: str, meta: dict, parts: list) -> None:
    """A run as a Dataset (its hash, model, seed, contributor) and the CreateAction that made it."""
    from rocrate.model.contextentity import ContextEntity

    credit = {"creditText": meta["contributor"]} if meta.get("contributor") else {}
    crate.add_dataset(dest_path=f"runs/{name}", properties={
        "name": name, "identifier": meta["config_hash"], "hasPart": [{"@id": m} for m in parts], **credit,
        "description": f"{meta['model']['catalogue_name']} ({meta['model'].get('calibration_rule', '')}), "
                       f"seed {meta['seed']}"})
    source = [f"models/{meta['model']['source']}"] if meta["model"].get("source") else []
    models = [{"@id": m} for m in ("models/catalogue.toml", *source)]
    tools = [crate.add(ContextEntity(crate, f"#{tool}-{version}", properties={
        "@type": "SoftwareApplication", "name": tool, "version": str(version)}))
        for tool, version in sorted(meta["versions"].items()) if version]
    crate.add(ContextEntity(crate, f"#simulate-{name}", properties={
        "@type": "CreateAction", "name": f"simulate {name}", "startTime": meta.get("started", ""),
        "location": meta.get("host", ""), "instrument": [{"@id": t.id} for t in tools],
        "object": [{"@id": CONFIG_FILE}, *models], "result": {"@id": f"runs/{name}/"}}))


def _format(member: str) -> str:
    return {".json": "application/json", ".toml": "application/toml", ".npz": "application/x-npz",
            ".nestml": "text/plain"}.get(PurePosixPath(member).suffix, "text/plain")


@contextmanager
def _written_aside(out: Path):
    """Yield a hidden sibling of ``out``; rename it into place on success, remove it on failure."""
    tmp = out.parent / f".{out.name}.partial-{host_tag()}-{os.getpid()}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        clear_dead_debris(out.parent, f".{out.name}.partial-*")
        yield tmp
        os.replace(tmp, out)
    except OSError as exc:
        raise CortexzooError(f"Could not write {out}: {exc.strerror or exc} ({exc.filename or out}).",
                             "Free disk space or fix permissions and pack again.") from None
    finally:
        tmp.unlink(missing_ok=True)


# -------------------------------------------------------------------------------------------- unpack


def unpack_package(archive, into, progress=None) -> dict:
    """Verify a package and add its runs to an experiment directory, never replacing anything there.

    Every file is extracted beside ``into`` and checked against its sha256 in
    the crate, and every run against its identity hash and own checksums,
    before the first run is added. A run already in ``into`` with the same
    identity is skipped; one with another identity refuses the whole package.
    Each run then moves into ``into/runs/`` by one rename, so an interrupted
    unpack leaves whole runs or none. The crate, config and models go to
    ``into/imports/<experiment>-<package id>/``; ``into`` without a config of
    its own gets the package's ``experiment.toml``.

    Parameters
    ----------
    archive : str or pathlib.Path
        A zip written by :func:`pack_experiment`.
    into : str or pathlib.Path
        An experiment directory, or a new or empty one.
    progress : callable, optional
        Receives one-line progress messages.

    Returns
    -------
    dict
        ``added`` and ``skipped`` (run names) and ``imports`` (the folder
        holding the package's crate, config and models).

    Raises
    ------
    CortexzooError
        For an unreadable, damaged or altered archive (naming the file), a run
        whose identity does not match its hash, a run name already used in
        ``into`` by another run, or a foreign ``into``.
    """
    from cortexzoo.experiments.orchestrate import refuse_foreign_dir

    say = progress or (lambda message: None)
    archive, into = Path(archive), Path(into).absolute()
    refuse_foreign_dir(into)
    with _open_archive(archive) as zf:
        crate_bytes, files = _crate_files(zf, archive)
        package = f"{_experiment_name(zf, archive)}-{hashlib.sha256(crate_bytes).hexdigest()[:12]}"
        with _stage_beside(into) as stage:
            _extract_verified(zf, files, stage / "package", archive)
            (stage / "package" / CRATE_FILE).write_bytes(crate_bytes)
            if (stage / "package" / "runs").is_dir():
                (stage / "package" / "runs").rename(stage / "runs")  # the rest is the package's description
            (stage / "runs").mkdir(exist_ok=True)
            metas = {p.name: verify_run(p, f"{archive}: runs/{p.name}") for p in sorted((stage / "runs").glob("*"))}
            say(f"{archive}: {len(files)} files and {len(metas)} run(s) verified")
            with ExperimentLock(into, f"cortexzoo unpack {archive}", say):
                return _publish(stage, into, metas, package, say)


@contextmanager
def _open_archive(archive: Path):
    if not archive.is_file():
        raise CortexzooError(f"Package {archive} does not exist.", "Check the path of the file `cortexzoo pack` wrote.")
    try:
        with zipfile.ZipFile(archive) as zf:
            yield zf
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise CortexzooError(f"{archive} is not a readable cortexzoo package ({exc}).", _DAMAGED_FIX) from None


def _crate_files(zf: zipfile.ZipFile, archive: Path) -> tuple:
    """The crate metadata's bytes and its files (name -> entity); the zip must hold exactly those files."""
    try:
        crate_bytes = zf.read(CRATE_FILE)
        graph = json.loads(crate_bytes)["@graph"]
    except KeyError:
        raise CortexzooError(f"{archive} has no {CRATE_FILE}: it is not a cortexzoo package, or its list of "
                             "files is damaged.",
                             "Make packages with `cortexzoo pack RESULTS_DIR --out FILE`; for a damaged one, ask its "
                             "sender for a new copy. Nothing was added.") from None
    except (zipfile.BadZipFile, zlib.error, ValueError, TypeError) as exc:
        raise CortexzooError(f"{archive}: {CRATE_FILE} is damaged ({exc}).", _DAMAGED_FIX) from None
    files = {e["@id"]: e for e in graph if "File" in _types(e) and e.get("@id") != CRATE_FILE}
    members = {m for m in zf.namelist() if not m.endswith("/")} - {CRATE_FILE}
    stray, missing = sorted(members - set(files)), sorted(set(files) - members)
    if stray or missing:
        what = (f"files the crate does not list: {', '.join(stray[:5])}" if stray else
                f"files the crate lists are missing: {', '.join(missing[:5])}")
        raise CortexzooError(f"{archive}: {what}.", _DAMAGED_FIX)
    for name, entity in files.items():
        _check_member_name(name, archive)
        if not isinstance(entity.get("sha256"), str):
            raise CortexzooError(f"{archive}: {CRATE_FILE} gives {name} no sha256.", _DAMAGED_FIX)
    return crate_bytes, files


def _types(entity: dict) -> list:
    kind = entity.get("@type", [])
    return kind if isinstance(kind, list) else [kind]


def _check_member_name(name: str, archive: Path) -> None:
    """Only the layout pack writes: no absolute paths, no '..', nothing outside runs/ and models/."""
    parts = PurePosixPath(name).parts
    layout_ok = (parts == (CONFIG_FILE,) or (len(parts) == 2 and parts[0] == "models")
                 or (len(parts) in (3, 4) and parts[0] == "runs" and (len(parts) == 3 or parts[2] == "spikes")))
    if not layout_ok or not all(_NAME.match(p) for p in parts):
        raise CortexzooError(f"{archive} holds {name!r}, outside the layout of a cortexzoo package.",
                             "Unpack only files made by `cortexzoo pack`.")


def _experiment_name(zf: zipfile.ZipFile, archive: Path) -> str:
    import tomllib

    try:
        name = tomllib.loads(zf.read(CONFIG_FILE).decode())["experiment"]["name"]
    except (KeyError, TypeError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
        raise CortexzooError(f"{archive}: {CONFIG_FILE} is damaged or names no experiment ({exc}).",
                             _DAMAGED_FIX) from None
    return name if isinstance(name, str) and _NAME.match(name) else "package"


@contextmanager
def _stage_beside(into: Path):
    """A hidden sibling of ``into`` (same filesystem: runs move out of it by rename); always removed."""
    stage = into.parent / f".{into.name}.unpack-{host_tag()}-{os.getpid()}"
    try:
        into.parent.mkdir(parents=True, exist_ok=True)
        clear_dead_debris(into.parent, f".{into.name}.unpack-*")  # of an unpack that was killed
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir()
        yield stage
    except OSError as exc:
        raise CortexzooError(f"Could not unpack into {into}: {exc.strerror or exc} ({exc.filename or into}).",
                             "Free disk space or fix permissions and unpack again; nothing half-written was "
                             "left in it.") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _extract_verified(zf: zipfile.ZipFile, files: dict, stage: Path, archive: Path) -> None:
    """Extract every listed file into ``stage``, refusing the first whose bytes differ from the crate."""
    for name, entity in files.items():
        info = zf.getinfo(name)
        if str(info.file_size) != str(entity.get("contentSize", info.file_size)):
            raise CortexzooError(f"{archive}: {name} holds {info.file_size} bytes, the crate says "
                                 f"{entity.get('contentSize')}.", _DAMAGED_FIX)
        target = stage / name
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with open(target, "wb") as dst:
            for block in _member_blocks(zf, name, archive):
                digest.update(block)
                dst.write(block)
        if digest.hexdigest() != entity["sha256"]:
            raise CortexzooError(f"{archive}: {name} differs from its sha256 in {CRATE_FILE} (the file was changed "
                                 "after packing).", _DAMAGED_FIX)


def _member_blocks(zf: zipfile.ZipFile, name: str, archive: Path):
    try:
        with zf.open(name) as src:
            yield from iter(lambda: src.read(_BLOCK), b"")
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise CortexzooError(f"{archive}: {name} is damaged ({exc}).", _DAMAGED_FIX) from None


def _publish(stage: Path, into: Path, metas: dict, package: str, say) -> dict:
    """Move verified runs into ``into/runs`` (skipping identical ones), then the package's description."""
    added, skipped = _plan(into, metas, say)
    imports = into / "imports" / package
    if not (into / CONFIG_FILE).exists():
        # A new experiment directory takes the package's config (so `cortexzoo report` and `run` know it).
        shutil.copyfile(stage / "package" / CONFIG_FILE, stage / CONFIG_FILE)
        (stage / CONFIG_FILE).rename(into / CONFIG_FILE)
    if not imports.exists():
        imports.parent.mkdir(parents=True, exist_ok=True)
        (stage / "package").rename(imports)
    (into / "runs").mkdir(exist_ok=True)
    for name in added:
        (stage / "runs" / name).rename(into / "runs" / name)
        say(f"added runs/{name} (run hash {metas[name]['config_hash']})")
    return {"added": added, "skipped": skipped, "imports": imports}


def _plan(into: Path, metas: dict, say) -> tuple:
    """Runs to add and runs already there with the same identity; any other clash refuses everything."""
    added, skipped = [], []
    for name, meta in metas.items():
        target = into / "runs" / name
        if not target.exists():
            added.append(name)
            continue
        there = _recorded_hash(target)
        if there != meta["config_hash"]:
            raise CortexzooError(
                f"{target} already holds another run (run hash {there}; the package's {name} has "
                f"{meta['config_hash']}). Nothing was added.",
                "Unpack into another directory (--into), or move that run away first; unpack never replaces a run.")
        skipped.append(name)
        say(f"skipped runs/{name}: already there with the same identity (run hash {there})")
    return added, skipped


def _recorded_hash(run: Path) -> str:
    try:
        return str(json.loads((run / METADATA_FILE).read_text())["config_hash"]) if is_complete(run) else "(unfinished)"
    except (OSError, ValueError, KeyError, TypeError):
        return "(unreadable)"
