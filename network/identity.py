"""A run's identity: every input that decides its spikes, and what changed between two runs.

A cached run is reused only when its identity equals the one the current
inputs give. The identity holds

* ``config``: the resolved run config (seed, threads, durations, scale, overrides);
* ``neuron_parameters``: population -> parameters the neurons get (catalogue,
  network roles and config overrides, resolved before anything runs);
* ``catalogue_entry``: hash of the model's ``[models.<name>]`` table without
  its description and ``[calibration]`` provenance (which never reach NEST);
* ``pd14``: hash of the PD14 parameter file ``network/pd14.toml``;
* ``resolution_ms``: the simulation step (also inside ``pd14``; named so a
  change of it is reported as such);
* ``versions``: cortexzoo, NEST and NESTML;
* ``code``: a digest of the cortexzoo modules that build and run the network
  (construction, parameters, units, compensation, kernel set-up);
* ``model_build``: for NESTML models the build key of the model's own code
  (its source, tool versions, compiler flags and template patches), ``None``
  for NEST built-ins. Other models' sources do not enter: they do not change
  this model's generated code;
* ``k_compensation``: with self-consistent K-scaling compensation, the key of
  the compensation (everything above except seed and durations); the bias in
  ``neuron_parameters`` is then the DC of the starting point (the LIF's
  full-scale rates), the compensated DC is recorded in the run's metadata.

The run hash is a digest of all of it; ``metadata.json`` keeps the identity
itself so that a re-run can say which input changed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path

from cortexzoo import __version__
from cortexzoo.models.catalogue import model_spec
from cortexzoo.network.params import RunConfig, load_pd14


# Catalogue fields that describe a model but never reach NEST: a re-calibration that only
# changes the date must not re-simulate every run.
_PROVENANCE_KEYS = ("description", "calibration")
# The cortexzoo modules whose code decides a run's spikes (construction, parameters, units,
# compensation, kernel set-up). cortexzoo's version number changes too rarely to stand for them.
_CODE_FILES = ("network/pd14.py", "network/params.py", "network/compensation.py", "models_nestml/catalogue.py",
               "models_nestml/units.py", "models_nestml/kernel.py", "cortexzoo/synapse.py",
               "network/stimulus.py")


def code_digest() -> str:
    """Digest of the cortexzoo source files that decide a run's spikes (see ``_CODE_FILES``).

    Returns
    -------
    str
    """
    import cortexzoo
    import cortexzoo.models
    import cortexzoo.network

    # Folders as installed (the package maps models_nestml/ to cortexzoo.models, network/ to cortexzoo.network).
    roots = {"network": Path(cortexzoo.network.__file__).parent,
             "models_nestml": Path(cortexzoo.models.__file__).parent,
             "cortexzoo": Path(cortexzoo.__file__).parent}
    digest = hashlib.sha256()
    for name in _CODE_FILES:
        folder, file = name.split("/")
        digest.update(name.encode() + b"\0" + (roots[folder] / file).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _digest(value) -> str:
    blob = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def dist_version(dist: str):
    """Installed version of a distribution, or None when it is not installed."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def tool_versions() -> dict:
    """Versions of the tools that decide a run's spikes.

    Returns
    -------
    dict
        ``{"cortexzoo": ..., "nest-simulator": ..., "nestml": ...}``.
    """
    return {"cortexzoo": __version__, "nest-simulator": dist_version("nest-simulator"),
            "nestml": dist_version("nestml")}


def run_identity(config: RunConfig) -> dict:
    """Everything that decides the spikes of one run (see the module docstring).

    Parameters
    ----------
    config : RunConfig

    Returns
    -------
    dict
        JSON-able; equal identities give equal spikes (same machine-independent
        NEST results for the same seed and thread count).
    """
    from cortexzoo.models.build import model_build_key
    from cortexzoo.network.pd14 import resolved_neuron_parameters

    from cortexzoo.network.compensation import needs_compensation

    spec = model_spec(config)
    pd14 = load_pd14()
    identity = {
        "config": config.as_dict(),
        "neuron_parameters": resolved_neuron_parameters(config, spec),
        "catalogue_entry": _digest(_without_provenance(spec.raw)),
        "pd14": _digest(pd14),
        "resolution_ms": pd14["simulation"]["resolution_ms"],
        "versions": tool_versions(),
        "code": code_digest(),
        "model_build": model_build_key(spec.source) if spec.is_nestml else None,
    }
    identity["k_compensation"] = _compensation_digest(identity) if needs_compensation(config) else None
    return identity


def _without_provenance(entry: dict) -> dict:
    # Provenance (description, how and when a rule was fitted) does not change spikes; the values do.
    # default_rule neither: the applied rule's name and values are in entry["rules"].
    entry = {k: v for k, v in entry.items() if k not in (*_PROVENANCE_KEYS, "default_rule")}
    if "rules" in entry:
        entry["rules"] = {r: {k: v for k, v in t.items() if k != "provenance"} for r, t in entry["rules"].items()}
    return entry


def _compensation_digest(identity: dict) -> str:
    # Everything but the seed, the durations and the stimulus decides the compensation: it is the
    # stationary network's (network/compensation.py), shared by every stimulus of a model and scale.
    config = {**identity["config"], "simulation": {"threads": identity["config"]["simulation"]["threads"]},
              "stimulus": {"kind": "none"}}
    return _digest({**identity, "config": config, "k_compensation": None})


def compensation_key(config: RunConfig) -> str:
    """Cache key of a config's self-consistent compensation: its identity without seed and durations.

    Parameters
    ----------
    config : RunConfig

    Returns
    -------
    str
    """
    return _compensation_digest(run_identity(config))


def identity_hash(identity: dict) -> str:
    """The run hash: 16 hex characters of the identity's digest.

    Parameters
    ----------
    identity : dict

    Returns
    -------
    str
    """
    return _digest(identity)


# How each part of the identity is named when it changed.
_PARTS = {
    "config": "the run config",
    "neuron_parameters": "the resolved neuron parameters",
    "catalogue_entry": "the model's catalogue entry",
    "pd14": "network/pd14.toml",
    "resolution_ms": "the simulation resolution",
    "versions": "tool versions",
    "code": "cortexzoo's simulation code (network/pd14.py, params.py, compensation.py, ...)",
    "model_build": "the NESTML model's code or build (source, tool versions, compiler flags, template patches)",
    "k_compensation": "the K-scaling compensation",
}


def identity_changes(old: dict | None, new: dict) -> list:
    """Say which inputs differ between a stored identity and the current one.

    Parameters
    ----------
    old : dict or None
        ``metadata["identity"]`` of a finished run (None for runs made before
        identities were recorded).
    new : dict
        :func:`run_identity` of the current inputs.

    Returns
    -------
    list of str
        One phrase per changed part, with the changed values where they are
        short (parameters, versions, config keys); empty when nothing changed.
    """
    if not isinstance(old, dict):
        return ["the run was made before cortexzoo recorded run identities"]
    out = []
    for part, name in _PARTS.items():
        a, b = old.get(part), new.get(part)
        if a == b:
            continue
        if not (isinstance(a, dict) and isinstance(b, dict)):
            detail = []
        elif part == "neuron_parameters":
            detail = _parameter_changes(a, b)
        else:
            detail = nested_differences(a, b)
        out.append(f"{name} ({'; '.join(detail[:4])}{'; ...' if len(detail) > 4 else ''})" if detail else name)
    return out


def _parameter_changes(old: dict, new: dict) -> list:
    """Changed neuron parameters, one phrase per (parameter, old, new) with the populations it affects."""
    groups = {}
    for pop in sorted(set(old) | set(new)):
        a, b = old.get(pop, {}), new.get(pop, {})
        for key in sorted(set(a) | set(b)):
            if a.get(key, "(absent)") != b.get(key, "(absent)"):
                groups.setdefault((key, repr(a.get(key, "(absent)")), repr(b.get(key, "(absent)"))), []).append(pop)
    n_pops = len(set(old) | set(new))
    return [f"{key}: {x} -> {y} in {'all populations' if len(pops) == n_pops else ', '.join(pops)}"
            for (key, x, y), pops in groups.items()]


def nested_differences(a: dict, b: dict, prefix: str = "") -> list:
    """Leaf-level differences of two nested dicts.

    Parameters
    ----------
    a, b : dict
    prefix : str
        Prepended to every key path.

    Returns
    -------
    list of str
        ``"table.key: old -> new"`` per differing leaf, keys sorted; a key
        missing on one side shows as ``(absent)``.
    """
    out = []
    for key in sorted(set(a) | set(b), key=str):
        x, y = a.get(key, "(absent)"), b.get(key, "(absent)")
        if x == y:
            continue
        if isinstance(x, dict) and isinstance(y, dict):
            out += nested_differences(x, y, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}: {x!r} -> {y!r}")
    return out
