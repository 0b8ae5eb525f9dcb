"""A ready NEST kernel with the cortexzoo NESTML module installed."""

from __future__ import annotations

import os
import warnings

from cortexzoo.models.build import build_module


def import_nest():
    """Import NEST quietly (no banner, errors only) and return the module.

    Returns
    -------
    module
        The ``nest`` package.
    """
    os.environ.setdefault("PYNEST_QUIET", "1")
    # OMP_WAIT_POLICY is left to the user: PASSIVE made 2-thread runs ~2x faster
    # on a busy machine but ~2.4x slower at full scale on an idle one (README).
    import nest

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nest.set_verbosity("M_ERROR")
    return nest


def ready_kernel(threads: int = 1, resolution_ms: float = 0.1, seed: int = 1, install_module: bool = True,
                 progress=None):
    """Reset NEST and return it with the cortexzoo NESTML module loaded.

    ``nest.ResetKernel()`` forgets installed modules, so the module is
    installed here, after the reset; callers never need to know that rule.
    The module is built first if the cache has none for the current sources.

    Parameters
    ----------
    threads : int
        OpenMP threads (``local_num_threads``).
    resolution_ms : float
        Simulation time step in ms.
    seed : int
        NEST's ``rng_seed``.
    install_module : bool
        Set False to skip the NESTML module (built-in models only).
    progress : callable, optional
        Receives build status lines.

    Returns
    -------
    module
        The ``nest`` package, freshly reset and configured.
    """
    nest = import_nest()
    nest.ResetKernel()
    if install_module:
        result = build_module(progress=progress)
        nest.Install(str(result.module_path))
    nest.SetKernelStatus({"local_num_threads": int(threads), "resolution": float(resolution_ms),
                          "rng_seed": int(seed), "print_time": False})
    return nest
