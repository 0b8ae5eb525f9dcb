"""One writer per experiment directory, on a local disk or a cluster's shared filesystem.

The lock is a file created with ``O_CREAT | O_EXCL`` (atomic on local disks
and on NFS v3+), holding the holder's host, PID, process start time, command
and a random token. ``fcntl``/``flock`` locks (and the ``filelock`` package
built on them) are not used: on many cluster filesystems they are not shared
between nodes, and they cannot say who holds the lock.

* A lock of a **live** process is never removed: the second writer stops with
  a message naming the holder.
* A lock of a process **on this host that is gone** (PID not running, or
  running with another start time: a reused PID) is stale and is removed.
* A lock of **another host** is never removed: this host cannot see whether
  its process still runs. The message gives the command to remove it once
  the user has checked.

Child processes of the holder (Snakemake's jobs) work inside the lock: the
holder exports its token in ``$CORTEXZOO_EXPERIMENT_LOCK``, and a process
whose environment carries the token of the current lock proceeds without
taking it again.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import sys
import time
from pathlib import Path

import psutil

from cortexzoo.errors import CortexzooError

LOCK_FILE = ".cortexzoo.lock"
TOKEN_ENV = "CORTEXZOO_EXPERIMENT_LOCK"
# A lock file that stays empty or unreadable this long is debris, not a writer mid-write.
_UNREADABLE_GRACE_S = 10.0


class LockBusy(CortexzooError):
    """Another live process holds the experiment's lock."""


def host_tag() -> str:
    """This host's name, safe inside a file name (partial directories carry it)."""
    return "".join(c if c.isalnum() or c in "._" else "_" for c in platform.node()) or "host"


def pid_alive(pid) -> bool:
    """True when a process with this PID runs on this host (or exists but is not ours to signal)."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def clear_dead_debris(folder, pattern: str, keep=None) -> list:
    """Remove work folders ``<...>-<host>-<pid>`` in ``folder`` whose writer on this host is gone.

    A folder of another host, or of a live process here, may still be in use
    and is left in place (on a shared filesystem this host cannot see other
    nodes' processes).

    Parameters
    ----------
    folder : pathlib.Path
    pattern : str
        Glob of the work folders, e.g. ``".run.partial-*"``.
    keep : pathlib.Path, optional
        A folder never to remove (the caller's own).

    Returns
    -------
    list of pathlib.Path
        The matching folders left in place.
    """
    left = []
    for entry in Path(folder).glob(pattern):
        if entry == keep:
            continue
        parts = entry.name.rsplit("-", 2)
        if len(parts) == 3 and parts[1] == host_tag() and not pid_alive(parts[2]):
            shutil.rmtree(entry, ignore_errors=True)
        else:
            left.append(entry)
    return left


def _process_start(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, ValueError):
        return None


def read_holder(path: Path) -> dict | None:
    """The holder recorded in a lock file, or None when there is none or it is unreadable."""
    try:
        holder = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def holder_state(holder: dict) -> str:
    """``"live"``, ``"gone"`` (this host, process not running) or ``"unknown"`` (another host).

    Parameters
    ----------
    holder : dict
        As written by :class:`ExperimentLock`.

    Returns
    -------
    str
    """
    if holder.get("host") != platform.node():
        return "unknown"
    try:
        pid, recorded = int(holder.get("pid")), holder.get("process_start")
        recorded = None if recorded is None else float(recorded)
    except (TypeError, ValueError):
        return "unknown"  # a lock we cannot read is never judged dead
    start = _process_start(pid)
    if start is None:
        # psutil may be refused a process it cannot see (hidepid): trust the kernel's answer.
        return "live" if pid_alive(pid) else "gone"
    # A PID reused by a later process has a later start time.
    return "live" if recorded is None or abs(start - recorded) < 1.0 else "gone"


def describe(holder: dict) -> str:
    """One line naming a lock's holder."""
    return (f"{holder.get('command', '?')} (host {holder.get('host', '?')}, PID {holder.get('pid', '?')}, "
            f"since {holder.get('started', '?')})")


class ExperimentLock:
    """Exclusive lock of one experiment directory; a context manager.

    Parameters
    ----------
    directory : pathlib.Path
        The experiment directory (created if needed).
    command : str
        What the holder does, shown to anyone who finds the lock taken.
    say : callable, optional
        Progress printer (reports a removed stale lock).

    Raises
    ------
    LockBusy
        On entry, when another live process (or another host) holds the lock.
    """

    def __init__(self, directory, command: str, say=None):
        self.path = Path(directory) / LOCK_FILE
        self.command = command
        self.say = say or (lambda message: None)
        self.token = None
        self.inherited = False

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
        return False

    def acquire(self) -> None:
        """Take the lock, or join it when this process's environment carries its token."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            holder = read_holder(self.path)
            if holder and os.environ.get(TOKEN_ENV) == holder.get("token"):
                self.inherited, self.token = True, holder["token"]
                return
            if self._try_create():
                return
            self._clear_or_refuse(read_holder(self.path))
        raise LockBusy(f"Could not take the lock {self.path}: it keeps changing hands.",
                       "Another cortexzoo process is starting on this experiment; wait for it to finish.")

    def _try_create(self) -> bool:
        token = secrets.token_hex(8)
        record = {"host": platform.node(), "pid": os.getpid(), "process_start": _process_start(os.getpid()),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": self.command, "token": token}
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(record, indent=1))
        self.token = token
        os.environ[TOKEN_ENV] = token  # jobs started by this process work inside the lock
        return True

    def _clear_or_refuse(self, holder: dict | None) -> None:
        if holder is None:
            self._clear_unreadable()
            return
        state = holder_state(holder)
        if state == "gone":
            self.say(f"removing the stale lock of {describe(holder)}: that process no longer runs")
            _remove_if_unchanged(self.path, holder)
            return
        where = "on this host" if state == "live" else f"on host {holder.get('host')}"
        fix = ("Wait for it to finish, or stop it." if state == "live" else
               f"If that process no longer runs on {holder.get('host')} (check there, e.g. `ps -p "
               f"{holder.get('pid')}`), remove the lock: rm {self.path}")
        raise LockBusy(f"The experiment directory {self.path.parent} is in use by {describe(holder)} {where}; "
                       "two processes writing one experiment could mix their results.", fix)

    def _clear_unreadable(self) -> None:
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return
        if age < _UNREADABLE_GRACE_S:
            time.sleep(0.5)  # a writer between create and write
            return
        raise LockBusy(f"The lock file {self.path} is unreadable (empty or corrupted).",
                       f"If no cortexzoo process works on this experiment, remove it: rm {self.path}")

    def release(self) -> None:
        """Remove the lock if this process created it (never one it only joined)."""
        if self.inherited or self.token is None:
            return
        holder = read_holder(self.path)
        if holder and holder.get("token") == self.token:
            self.path.unlink(missing_ok=True)
        if os.environ.get(TOKEN_ENV) == self.token:
            del os.environ[TOKEN_ENV]
        self.token = None


def _remove_if_unchanged(path: Path, holder: dict) -> None:
    """Remove a stale lock, unless another process replaced it meanwhile."""
    aside = path.with_name(f"{path.name}.stale-{os.getpid()}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    if read_holder(aside) == holder:
        aside.unlink(missing_ok=True)
        return
    # Someone else's fresh lock: put it back (fails harmlessly if a third process took the name).
    try:
        os.link(aside, path)
    except OSError as exc:
        print(f"cortexzoo: could not restore lock {path}: {exc}", file=sys.stderr)
    aside.unlink(missing_ok=True)
