"""Which network a run was made with, and whether two runs were made with the same one.

Runs that came from other machines (``cortexzoo unpack``) are scored against
a reference only when both simulated the same network. The fields compared
are those every run of one experiment shares: the PD14 parameter file (its
hash in the run identity), the scale, the resolution, the background, the
thalamic input and its in-degree rule, the stimulus (kind, times, patterns,
perturbation; :mod:`cortexzoo.network.stimulus`) and the analysed time
``t_sim_ms``. Not compared:

* the presimulation: it is at least ``warmup_factor`` times the model's
  slowest time constant, so it differs between models by design
  (:func:`cortexzoo.network.pd14.presim_ms`);
* ``pd14`` overrides in the run config: a variant may change PD14 values for
  its own runs (a positive control), so they are part of what is compared,
  not of the network the comparison needs;
* seed, threads and the neuron model, which are what varies between runs.
"""

from __future__ import annotations

# Field name -> where it lives in metadata.json. The identity's copy is preferred: the run hash covers it.
NETWORK_FIELDS = {
    "pd14 parameter file (hash)": ("pd14",),
    "N_scaling": ("config", "network", "N_scaling"),
    "K_scaling": ("config", "network", "K_scaling"),
    "resolution_ms": ("resolution_ms",),
    "background": ("config", "network", "background"),
    "thalamic_input": ("config", "network", "thalamic_input"),
    "thalamic_indegree": ("config", "network", "thalamic_indegree"),
    "stimulus": ("config", "stimulus"),
    "t_sim_ms": ("config", "simulation", "t_sim_ms"),
}
_ABSENT = "(not recorded)"
_UNDRIVEN = "(thalamus not driven)"


def network_of(meta: dict) -> dict:
    """The network fields of one run, as its ``metadata.json`` records them.

    Parameters
    ----------
    meta : dict
        A run's ``metadata.json``.

    Returns
    -------
    dict
        Field name (:data:`NETWORK_FIELDS`) -> value, or ``"(not recorded)"``
        for a field the metadata lacks (runs written by hand or by tests).
    """
    identity = meta.get("identity") if isinstance(meta.get("identity"), dict) else {}
    # Runs of format 1 have no identity but do record their config.
    source = identity or {"config": meta.get("config") or {}}
    out = {}
    for name, path in NETWORK_FIELDS.items():
        value = source
        for key in path:
            value = value.get(key, _ABSENT) if isinstance(value, dict) else _ABSENT
        out[name] = value
    return _before_stimuli(out, source)


def _before_stimuli(out: dict, source: dict) -> dict:
    """Read runs made before stimuli existed as what they were: stationary, without a thalamic rule.

    Such runs record no ``stimulus`` table (every run was stationary then) and no
    ``thalamic_indegree``; the in-degree rule only matters when the thalamus is
    driven, so it is compared only then.
    """
    recorded = isinstance(source.get("config"), dict) and "network" in source["config"]
    if recorded and out["stimulus"] == _ABSENT:
        out["stimulus"] = {"kind": "none"}
    driven = out["thalamic_input"] is True or (isinstance(out["stimulus"], dict)
                                               and out["stimulus"].get("kind", "none").startswith("thalamic"))
    if recorded and not driven:
        out["thalamic_indegree"] = _UNDRIVEN
    return out


def network_mismatches(ref_meta: dict, run_meta: dict) -> list[str]:
    """The network fields in which a run differs from the reference.

    Parameters
    ----------
    ref_meta, run_meta : dict
        ``metadata.json`` of a reference run and of the run to compare with it.

    Returns
    -------
    list of str
        ``"<field>: <reference value> vs <run value>"`` per differing field, in
        :data:`NETWORK_FIELDS` order; empty when the networks match. A field
        neither run records is not compared; one only one of them records
        differs (a run that does not say which network it had cannot be
        shown to match).
    """
    ref, run = network_of(ref_meta), network_of(run_meta)
    if _UNDRIVEN in (ref["thalamic_indegree"], run["thalamic_indegree"]):
        ref, run = dict(ref, thalamic_indegree=None), dict(run, thalamic_indegree=None)  # the drive differs, or neither has one
    return [f"{name}: {ref[name]!r} vs {run[name]!r}" for name in NETWORK_FIELDS
            if not _same(ref[name], run[name])]


def _same(a, b) -> bool:
    # 0.1 read back from JSON is the same float; an int 1 and a float 1.0 (TOML written by hand) are one scale.
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return float(a) == float(b)
    return a == b


def run_origin(meta: dict) -> dict:
    """Where and when a run was made, and by whom: the report's origin columns.

    Parameters
    ----------
    meta : dict
        A run's ``metadata.json``.

    Returns
    -------
    dict
        ``host``, ``date`` (the simulation's start, ISO 8601), ``contributor``
        (``[experiment] contributor`` of the config it was run from) and
        ``tools`` (cortexzoo, NEST and NESTML versions, one string); ``""``
        for what the metadata does not record.
    """
    versions = meta.get("versions") or {}
    tools = ", ".join(f"{name} {versions[name]}" for name in ("cortexzoo", "nest-simulator", "nestml")
                      if versions.get(name))
    return {"host": meta.get("host", ""), "date": meta.get("started", ""),
            "contributor": meta.get("contributor", ""), "tools": tools}
