"""One PD14 run: config -> simulation -> self-describing run directory."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import time
from pathlib import Path

from cortexzoo import __version__
from cortexzoo.models.catalogue import get_model
from cortexzoo.network.output import RunWriter, check_output_dir
from cortexzoo.network.params import RunConfig


def model_provenance(model_name: str) -> dict:
    """Identify the neuron model's code: NEST model name and, for NESTML, the source hash.

    Parameters
    ----------
    model_name : str
        Catalogue name.

    Returns
    -------
    dict
    """
    spec = get_model(model_name)
    info = {"catalogue_name": spec.name, "nest_model": spec.nest_model, "kind": spec.kind,
            "psc_per_reference_psc": spec.psc_per_reference_psc}
    if spec.source is not None:
        info["source"] = spec.source.name
        info["source_sha256"] = hashlib.sha256(spec.source.read_bytes()).hexdigest()
    return info


def versions() -> dict:
    """Versions of the tools that produced a run.

    Returns
    -------
    dict
    """
    out = {"cortexzoo": __version__, "python": platform.python_version()}
    for dist in ("nest-simulator", "nestml", "numpy"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def run_hash(config: RunConfig) -> str:
    """Hash identifying a run: resolved config plus the neuron model's source.

    Parameters
    ----------
    config : RunConfig

    Returns
    -------
    str
    """
    return config.config_hash(extra={"model": model_provenance(config.neuron["model"])})


def run_network(config: RunConfig, out_dir, overwrite: bool = False, progress=None) -> Path:
    """Simulate one config and write its run directory atomically.

    Parameters
    ----------
    config : RunConfig
        Validated run config.
    out_dir : str or pathlib.Path
        Final run directory; must not hold a finished run unless ``overwrite``.
    overwrite : bool
        Replace a finished run at ``out_dir``.
    progress : callable, optional
        Receives one-line progress messages.

    Returns
    -------
    pathlib.Path
        The finished run directory.
    """
    from cortexzoo.network.pd14 import simulate_pd14

    out_dir = Path(out_dir)
    check_output_dir(out_dir, overwrite)  # fail before any simulation work
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t0 = time.perf_counter()
    result = simulate_pd14(config, progress=progress)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    writer = RunWriter(out_dir, overwrite=overwrite)
    try:
        for pop, (ids, times) in result.spikes.items():
            writer.write_spikes(pop, ids, times)
        t_presim = config.simulation["t_presim_ms"]
        metadata = {
            "config": config.as_dict(),
            "config_hash": run_hash(config),
            "seed": config.simulation["seed"],
            "threads": config.simulation["threads"],
            "model": model_provenance(config.neuron["model"]),
            "versions": versions(),
            "populations": result.counts["neurons"],
            "analysis_window_ms": [t_presim, t_presim + config.simulation["t_sim_ms"]],
            "counts": result.counts,
            "timings_s": {**{k: round(v, 4) for k, v in result.timings_s.items()},
                          "total": round(time.perf_counter() - t0, 4)},
            "real_time_factor": result.timings_s["sim"] / (config.simulation["t_sim_ms"] / 1000.0),
            "peak_memory_mb": round(result.peak_memory_mb, 1),
            "derived": result.derived,
            "started": started,
            "host": platform.node(),
            "pid": os.getpid(),
        }
        return writer.finish(metadata)
    except BaseException:
        writer.abort()
        raise
