"""Stage outputs beside their folder and publish them whole, so a killed stage leaves the last good files.

A stage (validation, report) writes every file into a hidden sibling folder
``.<name>.partial-<pid>`` and only then moves each file into place with
``os.replace`` (atomic per file). A process killed while writing leaves the
previous outputs untouched and only a partial folder
``.<name>.partial-<host>-<pid>``, which the next run of the stage on the same
host removes once that process is gone.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from cortexzoo.locking import host_tag, pid_alive


@contextmanager
def staged_folder(final):
    """Write into a private folder; on success move every file into ``final``.

    Parameters
    ----------
    final : str or pathlib.Path
        The output folder (created if needed). Files already there that the
        stage does not write again are left alone.

    Yields
    ------
    pathlib.Path
        The private folder to write into (same file names as in ``final``).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}.partial-{host_tag()}-*"):
        if not pid_alive(stale.name.rsplit("-", 1)[-1]):
            shutil.rmtree(stale, ignore_errors=True)  # left by a killed stage on this host
    stage = final.parent / f".{final.name}.partial-{host_tag()}-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
        final.mkdir(exist_ok=True)
        for path in sorted(stage.rglob("*")):
            if path.is_file():
                target = final / path.relative_to(stage)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
