"""Run directories: spikes on disk, with the metadata that describes them.

Layout of one run directory::

    RUN/
      metadata.json        resolved config, hash, seed, versions, counts, timings, memory
      spikes/<pop>.npz     arrays ``ids`` (int32, 0-based index within the population)
                           and ``times`` (float64, ms, absolute simulation time)
      COMPLETE             written last; a directory without it is not a finished run

A run is first written into a hidden sibling ``.RUN.partial-<pid>`` and renamed
into place when everything is on disk, so a run killed midway never leaves a
directory that looks complete.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cortexzoo.errors import CortexzooError

COMPLETE_MARKER = "COMPLETE"
METADATA_FILE = "metadata.json"
SPIKE_DIR = "spikes"
FORMAT_VERSION = 1


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

    Raises
    ------
    CortexzooError
        When ``path`` holds a finished run and ``overwrite`` is False, or holds
        something that is not a run directory.
    """

    def __init__(self, path, overwrite: bool = False):
        self.path = Path(path)
        check_output_dir(self.path, overwrite)
        self.tmp = self.path.parent / f".{self.path.name}.partial-{os.getpid()}"
        for stale in self.path.parent.glob(f".{self.path.name}.partial-*"):
            if stale == self.tmp or not _pid_alive(stale.name.rsplit("-", 1)[-1]):
                shutil.rmtree(stale, ignore_errors=True)  # left by a killed run
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
        metadata = {"format_version": FORMAT_VERSION, **metadata}
        (self.tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=False, default=str))
        (self.tmp / COMPLETE_MARKER).write_text("ok\n")
        if self.path.exists():
            # Only reached with overwrite=True; keep the old run until the new one is whole.
            old = self.path.parent / f".{self.path.name}.old-{os.getpid()}"
            self.path.rename(old)
            self.tmp.rename(self.path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            self.tmp.rename(self.path)
        return self.path

    def abort(self) -> None:
        """Remove the partial directory."""
        shutil.rmtree(self.tmp, ignore_errors=True)


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


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
