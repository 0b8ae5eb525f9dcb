"""Stage outputs beside their folder and publish them at once, so a killed stage leaves the last good files.

A stage (validation, report) writes every file into a hidden sibling folder
and only then publishes it: a folder cortexzoo owns is swapped in whole (two
renames), a user's folder gets each file by ``os.replace`` (atomic per file). A process killed while writing leaves the
previous outputs untouched and only a partial folder
``.<name>.partial-<host>-<pid>``, which the next run of the stage on the same
host removes once that process is gone.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from cortexzoo.errors import CortexzooError
from cortexzoo.locking import clear_dead_debris, host_tag


@contextmanager
def staged_folder(final, whole: bool = False):
    """Write into a private folder; on success publish it as ``final``.

    Parameters
    ----------
    final : str or pathlib.Path
        The output folder (created if needed).
    whole : bool
        Replace the whole folder in two renames (the old one is removed
        afterwards), so no file of an earlier generation survives: for folders
        cortexzoo owns (an experiment's ``validation/`` and ``report/``).
        Otherwise each written file is moved in with ``os.replace`` and other
        files already there are left alone (a user's ``--out`` folder).

    Yields
    ------
    pathlib.Path
        The private folder to write into (same file names as in ``final``).

    Raises
    ------
    CortexzooError
        When the disk is full or not writable; the previous outputs are kept.
    """
    final = Path(final)
    stage = final.parent / f".{final.name}.partial-{host_tag()}-{os.getpid()}"
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        clear_dead_debris(final.parent, f".{final.name}.*-*-*")  # stage or old folders of a killed stage
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir()
        yield stage
        _publish(stage, final, whole)
    except OSError as exc:
        raise CortexzooError(
            f"Could not write {final}: {exc.strerror or exc} ({exc.filename or final}).",
            "Free disk space or fix permissions and run again; the previous outputs are unchanged.",
        ) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _publish(stage: Path, final: Path, whole: bool) -> None:
    if whole:
        old = final.parent / f".{final.name}.old-{host_tag()}-{os.getpid()}"
        if final.exists():
            final.rename(old)
        stage.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        return
    final.mkdir(exist_ok=True)
    for path in sorted(stage.rglob("*")):
        if path.is_file():
            target = final / path.relative_to(stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
