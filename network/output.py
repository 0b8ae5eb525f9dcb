"""Run directories: spikes on disk, with the metadata that describes them.

Layout of one run directory::

    RUN/
      metadata.json        identity and hash, resolved config, neuron parameters as NEST
                           reports them, seed, versions, counts, timings, memory, and
                           ``files``: the SHA-256 of every spike file
      spikes/<pop>.npz     arrays ``ids`` (int32, 0-based index within the population)
                           and ``times`` (float64, ms, absolute simulation time)
      COMPLETE             written last; a directory without it is not a finished run

A run is first written into a hidden sibling ``.RUN.partial-<host>-<pid>`` and
renamed into place when everything is on disk, so a run killed midway never
leaves a directory that looks complete. A partial directory is removed only by
a later writer on the same host whose PID check shows its writer is gone; one
of another host (a cluster node sharing the filesystem) is never touched,
since its writer may still be at work.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cortexzoo.errors import CortexzooError
from cortexzoo.locking import clear_dead_debris, host_tag

COMPLETE_MARKER = "COMPLETE"
METADATA_FILE = "metadata.json"
SPIKE_DIR = "spikes"
FORMAT_VERSION = 2  # 2: metadata records identity, neuron_parameters and file checksums


@dataclass
class RunData:
    """Spikes and metadata of one finished run.

    Attributes
    ----------
    path : pathlib.Path
        The run directory.
    metadata : dict
        Contents of ``metadata.json``.
    populations : list of str
        Population names in network order.
    sizes : dict
        Population -> number of neurons.
    spikes : dict
        Population -> ``(ids, times)``; ids are 0-based within the population,
        times in ms of absolute simulation time.
    t_start_ms, t_stop_ms : float
        The analysis window (presimulation excluded).
    """

    path: Path
    metadata: dict
    populations: list
    sizes: dict
    spikes: dict
    t_start_ms: float
    t_stop_ms: float

    @property
    def duration_ms(self) -> float:
        """Length of the analysis window in ms."""
        return self.t_stop_ms - self.t_start_ms

    def window(self, population: str):
        """Spikes of one population inside the analysis window (t_start, t_stop].

        Parameters
        ----------
        population : str

        Returns
        -------
        tuple of numpy.ndarray
            ``(ids, times)``.
        """
        ids, times = self.spikes[population]
        # NEST stamps a spike at the end of its time step, so a spike at exactly
        # t_start happened during the presimulation: the window is (start, stop].
        keep = (times > self.t_start_ms) & (times <= self.t_stop_ms)
        return ids[keep], times[keep]

    def to_neo(self, population: str):
        """Convert one population to a list of ``neo.SpikeTrain`` (one per neuron).

        Parameters
        ----------
        population : str

        Returns
        -------
        list of neo.SpikeTrain
            In neuron order, spikes inside the analysis window, in ms.
        """
        return to_neo(*self.window(population), self.sizes[population], self.t_start_ms, self.t_stop_ms)


def to_neo(ids, times, n_neurons, t_start_ms, t_stop_ms):
    """Flat ``(ids, times)`` arrays to a list of ``neo.SpikeTrain`` for Elephant.

    Parameters
    ----------
    ids : numpy.ndarray
        0-based neuron indices.
    times : numpy.ndarray
        Spike times in ms.
    n_neurons : int
        Number of neurons (silent ones get empty trains).
    t_start_ms, t_stop_ms : float
        Window of the trains.

    Returns
    -------
    list of neo.SpikeTrain
    """
    import neo
    import quantities as pq

    order = np.lexsort((times, ids))
    ids, times = np.asarray(ids)[order], np.asarray(times)[order]
    bounds = np.searchsorted(ids, np.arange(n_neurons + 1))
    return [
        neo.SpikeTrain(times[bounds[i]:bounds[i + 1]] * pq.ms, t_start=t_start_ms * pq.ms, t_stop=t_stop_ms * pq.ms)
        for i in range(n_neurons)
    ]


class RunWriter:
    """Write one run directory atomically.

    Parameters
    ----------
    path : pathlib.Path
        Final run directory.
    overwrite : bool
        Replace a finished run already there.
    keep_replaced : pathlib.Path, optional
        With ``overwrite``: move the replaced run to this path (it must not
        exist) instead of deleting it.

    Raises
    ------
    CortexzooError
        When ``path`` holds a finished run and ``overwrite`` is False, or holds
        something that is not a run directory.
    """

    def __init__(self, path, overwrite: bool = False, keep_replaced: Path | None = None):
        self.path = Path(path)
        self.keep_replaced = None if keep_replaced is None else Path(keep_replaced)
        check_output_dir(self.path, overwrite)
        self.tmp = self.path.parent / f".{self.path.name}.partial-{host_tag()}-{os.getpid()}"
        remove_dead_partials(self.path, keep=self.tmp)
        (self.tmp / SPIKE_DIR).mkdir(parents=True)

    def write_spikes(self, population: str, ids, times) -> None:
        """Store one population's spikes (ids 0-based within the population, times in ms)."""
        ids = np.asarray(ids, dtype=np.int32)
        times = np.asarray(times, dtype=np.float64)
        order = np.lexsort((ids, times))
        np.savez(self.tmp / SPIKE_DIR / f"{population}.npz", ids=ids[order], times=times[order])

    def finish(self, metadata: dict) -> Path:
        """Write metadata and the COMPLETE marker, then move the run into place.

        Parameters
        ----------
        metadata : dict
            Must contain ``populations`` (name -> size) and ``analysis_window_ms``.

        Returns
        -------
        pathlib.Path
            The finished run directory.
        """
        files = {p.relative_to(self.tmp).as_posix(): file_sha256(p) for p in sorted(self.tmp.rglob("*.npz"))}
        metadata = {"format_version": FORMAT_VERSION, **metadata, "files": files}
        (self.tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=False, default=str))
        (self.tmp / COMPLETE_MARKER).write_text("ok\n")
        if self.path.exists():
            # Only reached with overwrite=True; keep the old run until the new one is whole.
            old = self.path.parent / f".{self.path.name}.old-{os.getpid()}"
            self.path.rename(old)
            self.tmp.rename(self.path)
            if self.keep_replaced is None:
                shutil.rmtree(old, ignore_errors=True)
            else:
                self.keep_replaced.parent.mkdir(parents=True, exist_ok=True)
                old.rename(self.keep_replaced)
        else:
            self.tmp.rename(self.path)
        return self.path

    def abort(self) -> None:
        """Remove the partial directory."""
        shutil.rmtree(self.tmp, ignore_errors=True)


def remove_dead_partials(path, keep: Path | None = None) -> list:
    """Remove partial directories of ``path`` whose writer on this host is gone.

    Parameters
    ----------
    path : pathlib.Path
        The final run directory.
    keep : pathlib.Path, optional
        A partial directory never to remove (the caller's own).

    Returns
    -------
    list of pathlib.Path
        Partial directories left in place because another host (or a live
        process here) may still be writing them.
    """
    path = Path(path)
    return clear_dead_debris(path.parent, f".{path.name}.partial-*", keep=keep)


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks.

    Parameters
    ----------
    path : pathlib.Path

    Returns
    -------
    str
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def damaged_files(path, metadata: dict) -> list:
    """Files of a finished run that are missing or differ from the checksums written with it.

    Runs written before checksums were recorded (format 1) have none to check.

    Parameters
    ----------
    path : pathlib.Path
        The run directory.
    metadata : dict
        Its ``metadata.json``.

    Returns
    -------
    list of str
        ``"<file> (missing)"`` or ``"<file> (checksum differs)"``.
    """
    out = []
    for name, expected in (metadata.get("files") or {}).items():
        file = Path(path) / name
        if not file.is_file():
            out.append(f"{name} (missing)")
        elif file_sha256(file) != expected:
            out.append(f"{name} (checksum differs)")
    return out


def is_complete(path) -> bool:
    """True when ``path`` is a finished run directory.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    bool
    """
    path = Path(path)
    return (path / COMPLETE_MARKER).is_file() and (path / METADATA_FILE).is_file()


def check_output_dir(path, overwrite: bool = False) -> None:
    """Refuse to write a run where a finished run or other files already are.

    Parameters
    ----------
    path : pathlib.Path
    overwrite : bool
        Allow replacing a finished run.

    Raises
    ------
    CortexzooError
    """
    path = Path(path)
    if not path.exists():
        return
    if is_complete(path):
        if overwrite:
            return
        raise CortexzooError(
            f"Output directory {path} already holds a finished run.",
            "Choose another output directory, or pass --overwrite to replace it.",
        )
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()
        return
    raise CortexzooError(
        f"Output directory {path} exists and is not a finished cortexzoo run (no {COMPLETE_MARKER} marker).",
        "Remove it or choose another output directory; cortexzoo never writes into foreign directories.",
    )


def load_run(path) -> RunData:
    """Load a finished run directory.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    RunData

    Raises
    ------
    CortexzooError
        For missing, incomplete or corrupted run directories.
    """
    path = Path(path)
    if not path.is_dir():
        raise CortexzooError(f"Run directory {path} does not exist.", "Check the path, or run the simulation first.")
    if not is_complete(path):
        raise CortexzooError(
            f"{path} is not a finished run: the {COMPLETE_MARKER} marker or {METADATA_FILE} is missing "
            "(the run was interrupted or the directory is not a cortexzoo run).",
            "Re-run that simulation; incomplete runs are never analysed.",
        )
    try:
        metadata = json.loads((path / METADATA_FILE).read_text())
        sizes = {p: int(n) for p, n in metadata["populations"].items()}
        t_start, t_stop = (float(x) for x in metadata["analysis_window_ms"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CortexzooError(
            f"{path / METADATA_FILE} is corrupted ({type(exc).__name__}: {exc}).",
            "Re-run that simulation.",
        ) from None
    damaged = damaged_files(path, metadata)
    if damaged:
        raise CortexzooError(
            f"Run {path} is damaged: {', '.join(damaged)} since it was written.",
            "Run its experiment again (`cortexzoo run CONFIG`): a damaged run is simulated again and the damaged "
            "copy kept in <experiment>/superseded/.",
        )
    spikes = {}
    for pop in sizes:
        file = path / SPIKE_DIR / f"{pop}.npz"
        try:
            with np.load(file) as data:
                spikes[pop] = (data["ids"].astype(np.int64), data["times"].astype(np.float64))
        except Exception as exc:  # zipfile/pickle/OS errors all mean the same thing here
            raise CortexzooError(
                f"Spike file {file} is missing or corrupted ({type(exc).__name__}: {exc}).",
                "Re-run that simulation.",
            ) from None
        ids = spikes[pop][0]
        if ids.size and (ids.min() < 0 or ids.max() >= sizes[pop]):
            raise CortexzooError(
                f"Spike file {file} has neuron ids outside 0..{sizes[pop] - 1}; the run is corrupted.",
                "Re-run that simulation.",
            )
    return RunData(path, metadata, list(sizes), sizes, spikes, t_start, t_stop)
