"""One PD14 run: config -> simulation -> self-describing run directory."""

from __future__ import annotations

import hashlib
import os
import platform
import time
from contextlib import contextmanager
from pathlib import Path

from cortexzoo.errors import CortexzooError
from cortexzoo.models.catalogue import model_spec
from cortexzoo.network.identity import dist_version, identity_hash, run_identity, tool_versions
from cortexzoo.network.output import RunWriter, check_output_dir
from cortexzoo.network.params import RunConfig
from cortexzoo.network.stimulus import schedule


def model_provenance(config: RunConfig) -> dict:
    """Identify the run's neuron model: NEST model name, calibration rule and, for NESTML, the source hash.

    Parameters
    ----------
    config : RunConfig

    Returns
    -------
    dict
    """
    spec = model_spec(config)
    info = {"catalogue_name": spec.name, "nest_model": spec.nest_model, "kind": spec.kind,
            "calibration_rule": spec.rule, "psc_per_reference_psc": spec.psc_per_reference_psc,
            "bias_pA": spec.bias_pA}
    if spec.conductance_map is not None:
        info["conductance_per_reference_psc"] = spec.conductance_map
    if spec.source is not None:
        info["source"] = spec.source.name
        info["source_sha256"] = hashlib.sha256(spec.source.read_bytes()).hexdigest()
    return info


def versions() -> dict:
    """Versions of the tools that produced a run (those in the identity, plus Python and numpy).

    Returns
    -------
    dict
    """
    return {**tool_versions(), "python": platform.python_version(), "numpy": dist_version("numpy")}


def run_hash(config: RunConfig) -> str:
    """Hash identifying a run: the digest of :func:`cortexzoo.network.identity.run_identity`.

    Parameters
    ----------
    config : RunConfig

    Returns
    -------
    str
    """
    return identity_hash(run_identity(config))


def run_network(config: RunConfig, out_dir, overwrite: bool = False, progress=None,
                keep_replaced: Path | None = None, contributor: str = "") -> Path:
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
    keep_replaced : pathlib.Path, optional
        With ``overwrite``: move the replaced run here instead of deleting it
        (only once the new run is whole).
    contributor : str
        Who made the run (``[experiment] contributor``), recorded in the
        metadata next to host and date; not part of the run identity.

    Returns
    -------
    pathlib.Path
        The finished run directory.
    """
    from cortexzoo.network.pd14 import simulate_pd14

    out_dir = Path(out_dir)
    check_output_dir(out_dir, overwrite)  # fail before any simulation work
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    identity = run_identity(config)  # before simulating: the inputs as they were when the run started
    t0 = time.perf_counter()
    with _disk_errors(out_dir):
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        writer = RunWriter(out_dir, overwrite=overwrite, keep_replaced=keep_replaced)
    try:
        result = simulate_pd14(config, progress=progress)
        with _disk_errors(out_dir):
            for pop, (ids, times) in result.spikes.items():
                writer.write_spikes(pop, ids, times)
            return writer.finish(_metadata(config, identity, result, started, time.perf_counter() - t0,
                                           contributor))
    except BaseException:
        writer.abort()
        raise


@contextmanager
def _disk_errors(out_dir: Path):
    """Turn a failed write (disk full, quota, file size limit, permissions) into a user error."""
    try:
        yield
    except OSError as exc:
        raise CortexzooError(
            f"Could not write the run {out_dir}: {exc.strerror or exc} ({exc.filename or out_dir}).",
            "Free disk space (or raise the quota / file size limit, or fix permissions), then run again: this "
            "run was not kept, finished runs are untouched.",
        ) from None


def _metadata(config: RunConfig, identity: dict, result, started: str, total_s: float,
              contributor: str = "") -> dict:
    t_presim = result.presim_ms  # what was run, not re-read from inputs that may have changed since
    return {
        "config": config.as_dict(),
        "config_hash": identity_hash(identity),
        "identity": identity,
        "neuron_parameters": result.neuron_parameters,
        "seed": config.simulation["seed"],
        "threads": config.simulation["threads"],
        "model": model_provenance(config),
        "versions": versions(),
        "populations": result.counts["neurons"],
        "analysis_window_ms": [t_presim, t_presim + config.simulation["t_sim_ms"]],
        "stimulus": schedule(config.stimulus, t_presim),
        "warmup": {"presim_ms": t_presim, "slowest_time_constant_ms": result.slowest_time_constant_ms,
                   "warmup_factor": config.simulation["warmup_factor"]},
        "counts": result.counts,
        # Set when the rate guard stopped the run: the spikes end there and validation leaves the run out.
        "runaway": result.runaway,
        "timings_s": {**{k: round(v, 4) for k, v in result.timings_s.items()}, "total": round(total_s, 4)},
        "real_time_factor": result.timings_s["sim"] / (config.simulation["t_sim_ms"] / 1000.0),
        "peak_memory_mb": round(result.peak_memory_mb, 1),
        "derived": result.derived,
        "k_compensation": result.compensation,
        "started": started,
        "host": platform.node(),
        "contributor": contributor,
        "pid": os.getpid(),
    }
