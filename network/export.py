"""Export a run's spikes to standard formats: NWB (pynwb) and NIX (nixio, through Neo).

Both formats get every recorded spike of every population, presimulation
included, with times from the start of the simulation, and the run's metadata
(model, seed, scale, config hash, versions, analysis window):

* **NWB**: one row per neuron in the ``units`` table; its ``id`` is the global
  neuron id (populations in network order, neurons in order within each),
  ``population`` and ``population_neuron_id`` are columns, ``spike_times`` are
  in seconds. The metadata is a one-line summary in ``session_description``
  and JSON in ``notes`` (the summary and the whole ``metadata.json``); the
  analysis window is also the epoch tagged ``analysis_window``.
* **NIX**: Neo's NixIO writes one Block with one Segment holding one
  ``neo.SpikeTrain`` per neuron (times in ms, annotations ``population``,
  ``neuron_id`` and ``global_id``), the metadata as Block annotations and the
  analysis window as the Epoch ``analysis_window``. NIX stores every spike
  train as its own objects: about 25 kB and 25 ms per neuron, so a full-scale
  run (77,169 neurons) takes about 2 GB and half an hour; NWB stays compact.

The file is written beside its destination in a hidden
``.<name>.partial-<host>-<pid>/`` folder and renamed into place when whole, so
a failed or killed export never leaves a file that looks finished.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib
import importlib.metadata
import json
import os
import shutil
from pathlib import Path

import numpy as np

from cortexzoo import __version__
from cortexzoo.errors import CortexzooError
from cortexzoo.locking import clear_dead_debris, host_tag
from cortexzoo.network.output import METADATA_FILE, load_run

# Format -> (library modules it needs, the pip requirement that provides them).
FORMATS = {
    "nwb": (("pynwb",), "pynwb>=4.2"),
    "nix": (("nixio", "neo"), "nixio>=1.5.4"),
}


def export_run(run_dir, fmt: str, out, overwrite: bool = False, progress=None) -> Path:
    """Write the spikes and metadata of one finished run to an NWB or NIX file.

    Every check (format, library, destination, run directory) runs before
    anything is written.

    Parameters
    ----------
    run_dir : str or pathlib.Path
        A finished run directory.
    fmt : {"nwb", "nix"}
        The file format.
    out : str or pathlib.Path
        The file to write.
    overwrite : bool
        Replace an existing file at ``out``.
    progress : callable, optional
        Receives one progress line per step.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    CortexzooError
        For an unknown format, a missing library, an existing ``out`` without
        ``overwrite``, a missing, unfinished or damaged run directory, or a
        failed write (nothing is left at ``out`` then).
    """
    say = progress or (lambda message: None)
    fmt = check_format(fmt)
    out = check_destination(out, overwrite)
    run = load_run(run_dir)
    writer = {"nwb": write_nwb, "nix": write_nix}[fmt]
    n_neurons, n_spikes = sum(run.sizes.values()), sum(len(ids) for ids, _ in run.spikes.values())
    say(f"exporting {n_spikes} spikes of {n_neurons} neurons in {len(run.populations)} populations to {fmt}")
    return write_atomically(out, lambda tmp: writer(run, tmp, say))


def check_format(fmt: str) -> str:
    """Check that ``fmt`` is a known format and its library can be imported.

    Parameters
    ----------
    fmt : str

    Returns
    -------
    str
        The format, lower case.

    Raises
    ------
    CortexzooError
        For an unknown format or a library that is not installed.
    """
    key = str(fmt).lower()
    if key not in FORMATS:
        raise CortexzooError(f"Unknown export format {fmt!r}.", f"Use one of: {', '.join(FORMATS)}.")
    modules, requirement = FORMATS[key]
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise CortexzooError(
                f"Exporting to {key} needs the Python package {module}, which cannot be imported ({exc}).",
                f"Install it: pip install '{requirement}' (or reinstall cortexzoo: pip install -e .).",
            ) from None
    return key


def check_destination(out, overwrite: bool) -> Path:
    """Refuse a destination that exists (unless ``overwrite``) or is a directory.

    Parameters
    ----------
    out : str or pathlib.Path
    overwrite : bool

    Returns
    -------
    pathlib.Path

    Raises
    ------
    CortexzooError
    """
    out = Path(out)
    if out.is_dir():
        raise CortexzooError(f"--out {out} is a directory.", "Give the path of the file to write, e.g. run.nwb.")
    if out.exists() and not overwrite:
        raise CortexzooError(f"--out {out} already exists.", "Choose another file, or pass --overwrite to replace it.")
    return out


def write_atomically(out: Path, write) -> Path:
    """Call ``write(tmp_file)`` and move the finished file to ``out``.

    A failure (or an interrupt) removes the temporary file and leaves ``out``
    as it was: absent, or the previous file when overwriting.

    Parameters
    ----------
    out : pathlib.Path
    write : callable
        Writes the whole file at the path it is given.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    CortexzooError
        When writing fails with an OS error (full disk, permissions).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.parent / f".{out.name}.partial-{host_tag()}-{os.getpid()}"
    clear_dead_debris(out.parent, f".{out.name}.partial-*", keep=work)  # left by killed exports
    work.mkdir()
    try:
        tmp = work / out.name
        write(tmp)
        os.replace(tmp, out)
    except OSError as exc:
        raise CortexzooError(f"Could not write {out} ({type(exc).__name__}: {exc}); nothing was written.",
                             "Check the free space and permissions of its folder, then export again.") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def run_summary(run) -> dict:
    """The run's metadata that both formats carry: model, seed, scale, hash, versions, window.

    Parameters
    ----------
    run : cortexzoo.network.output.RunData

    Returns
    -------
    dict
        JSON-serialisable; keys the run does not record are None.
    """
    meta = run.metadata
    config = meta.get("config") or {}
    network = config.get("network") or {}
    model = meta.get("model") or {}
    return {
        "run": run.path.name,
        "model": model.get("catalogue_name") or (config.get("neuron") or {}).get("model"),
        "nest_model": model.get("nest_model"),
        "calibration_rule": model.get("calibration_rule"),
        "seed": meta.get("seed"),
        "N_scaling": network.get("N_scaling"),
        "K_scaling": network.get("K_scaling"),
        "config_hash": meta.get("config_hash"),
        "versions": meta.get("versions"),
        "analysis_window_ms": [run.t_start_ms, run.t_stop_ms],
        "populations": dict(run.sizes),
        "exported_by": {"cortexzoo": __version__},
    }


def neuron_trains(run):
    """Every neuron's spike times in global order.

    Parameters
    ----------
    run : cortexzoo.network.output.RunData

    Yields
    ------
    tuple
        ``(population, neuron_id, global_id, times_ms)``, times sorted.
    """
    offset = 0
    for pop in run.populations:
        ids, times = run.spikes[pop]
        order = np.lexsort((times, ids))
        ids, times = ids[order], times[order]
        bounds = np.searchsorted(ids, np.arange(run.sizes[pop] + 1))
        for i in range(run.sizes[pop]):
            yield pop, i, offset + i, times[bounds[i]:bounds[i + 1]]
        offset += run.sizes[pop]


def write_nwb(run, path: Path, say) -> None:
    """Write the run as an NWB file: a ``units`` table with one row per neuron.

    Parameters
    ----------
    run : cortexzoo.network.output.RunData
    path : pathlib.Path
    say : callable
    """
    from hdmf.common import ElementIdentifiers, VectorData, VectorIndex
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.misc import Units

    summary = run_summary(run)
    summary["exported_by"]["pynwb"] = importlib.metadata.version("pynwb")
    pops, neuron_ids, global_ids, trains = zip(*neuron_trains(run))
    ends = np.cumsum([len(t) for t in trains])
    # Built column-wise: add_unit() per neuron takes minutes at full scale.
    times = VectorData(name="spike_times", description="spike times in s from the start of the simulation",
                       data=np.concatenate(trains) / 1000.0)
    columns = [
        times,
        VectorIndex(name="spike_times_index", data=ends, target=times),
        VectorData(name="population", description="PD14 population of the neuron", data=list(pops)),
        VectorData(name="population_neuron_id", description="0-based index of the neuron within its population",
                   data=np.asarray(neuron_ids, dtype=np.int64)),
    ]
    units = Units(name="units", description="PD14 neurons; id = global neuron id (populations in network order)",
                  id=ElementIdentifiers(name="id", data=np.asarray(global_ids, dtype=np.int64)), columns=columns,
                  colnames=("spike_times", "population", "population_neuron_id"))
    nwb = NWBFile(session_description=_one_line(summary), identifier=_identifier(run),
                  session_start_time=_start_time(run), session_id=run.path.name, notes=_notes(run, summary),
                  experiment_description="Potjans & Diesmann (2014) cortical microcircuit simulated in NEST by "
                                         "cortexzoo; spike times from the start of the simulation, presimulation "
                                         "included (the analysis window is the epoch 'analysis_window').")
    nwb.units = units
    nwb.add_epoch(start_time=run.t_start_ms / 1000.0, stop_time=run.t_stop_ms / 1000.0, tags=["analysis_window"])
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    say(f"wrote {len(global_ids)} units")


def write_nix(run, path: Path, say) -> None:
    """Write the run as a NIX file through Neo: one Segment, one SpikeTrain per neuron.

    Parameters
    ----------
    run : cortexzoo.network.output.RunData
    path : pathlib.Path
    say : callable
    """
    import neo
    import quantities as pq
    from neo.io import NixIO

    summary = run_summary(run)
    summary["exported_by"]["nixio"] = importlib.metadata.version("nixio")
    block = neo.Block(name=run.path.name, description=_one_line(summary), rec_datetime=_start_time(run),
                      **_nix_annotations(run, summary))
    segment = neo.Segment(name="simulation", description="spike times in ms from the start of the simulation")
    block.segments.append(segment)
    # NEST stamps spikes at the end of a step, so none is later than the end of the simulation.
    t_stop = max([run.t_stop_ms] + [float(t.max()) for _, t in run.spikes.values() if len(t)])
    for pop, neuron_id, global_id, times in neuron_trains(run):
        segment.spiketrains.append(neo.SpikeTrain(times * pq.ms, t_start=0.0 * pq.ms, t_stop=t_stop * pq.ms,
                                                  name=f"{pop} {neuron_id}", population=pop, neuron_id=neuron_id,
                                                  global_id=global_id))
    segment.epochs.append(neo.Epoch(times=[run.t_start_ms] * pq.ms, durations=[run.duration_ms] * pq.ms,
                                    labels=np.array(["analysis_window"]), name="analysis_window"))
    with NixIO(str(path), mode="ow") as io:
        io.write_block(block)
    say(f"wrote {len(segment.spiketrains)} spike trains")


def _nix_annotations(run, summary: dict) -> dict:
    # NIX properties hold scalars and flat lists, not None or nested dicts: those go in as JSON.
    flat = {key: summary[key] for key in ("run", "model", "nest_model", "calibration_rule", "seed", "N_scaling",
                                          "K_scaling", "config_hash") if summary[key] is not None}
    return {**flat, "analysis_window_start_ms": run.t_start_ms, "analysis_window_stop_ms": run.t_stop_ms,
            "populations": list(run.populations), "population_sizes": [run.sizes[p] for p in run.populations],
            "versions_json": json.dumps(summary["versions"]), "exported_by_json": json.dumps(summary["exported_by"]),
            "metadata_json": json.dumps(run.metadata, default=str)}


def _one_line(summary: dict) -> str:
    start, stop = summary["analysis_window_ms"]
    parts = [f"{label} {summary[key]}" for label, key in (("PD14 with", "model"), ("seed", "seed"),
                                                          ("N_scaling", "N_scaling"), ("K_scaling", "K_scaling"),
                                                          ("config hash", "config_hash"))
             if summary[key] is not None]  # synthetic or older runs may not record them
    return f"cortexzoo run {summary['run']}: {', '.join(parts + [f'analysis window {start:g}-{stop:g} ms'])}"


def _notes(run, summary: dict) -> str:
    return json.dumps({"cortexzoo_run": summary, "metadata.json": run.metadata}, indent=1, default=str)


def _identifier(run) -> str:
    # Stable: exporting the same run twice gives the same identifier.
    digest = hashlib.sha256((run.path / METADATA_FILE).read_bytes()).hexdigest()[:16]
    return f"cortexzoo-{run.path.name}-{digest}"


def _start_time(run) -> datetime.datetime:
    """When the simulation started (``metadata.json`` ``started``, else the file's time), in UTC."""
    started = run.metadata.get("started")
    if started:
        try:
            return datetime.datetime.fromisoformat(str(started)).astimezone(datetime.timezone.utc)
        except ValueError:
            pass
    mtime = (run.path / METADATA_FILE).stat().st_mtime
    return datetime.datetime.fromtimestamp(mtime, tz=datetime.timezone.utc)
