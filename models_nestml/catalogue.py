"""The model catalogue: what the network needs to know about each neuron model.

The catalogue is data (``models_nestml/catalogue.toml``); this module reads
and validates it and answers the network's questions (NEST model name, PD14
parameters, weight mapping, ports) without the network ever naming a model's
own parameters.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cortexzoo.errors import CortexzooError
from cortexzoo.models.units import to_nest
from cortexzoo.schema import read_toml

CATALOGUE_PATH = Path(__file__).resolve().parent / "catalogue.toml"
# A lab's own catalogue (or a test's edited copy) without touching the installed one.
CATALOGUE_ENV = "CORTEXZOO_CATALOGUE"


def catalogue_path() -> Path:
    """The catalogue in use: ``$CORTEXZOO_CATALOGUE`` if set, else ``models_nestml/catalogue.toml``.

    Returns
    -------
    pathlib.Path
    """
    return Path(os.environ.get(CATALOGUE_ENV) or CATALOGUE_PATH)

ROLES = ("tau_syn_exc", "tau_syn_inh", "membrane_potential", "bias_current")
CELL_TYPES = ("E", "I")
#: Calibration rules (docs/calibration.md): which values make a zoo model comparable to the PD14 LIF.
RULES = ("published", "psp_rheobase", "operating_point")
_ENTRY_KEYS = {
    "description", "kind", "nest_model", "source", "rheobase", "slowest_time_constant", "roles", "ports", "weights",
    "pd14", "pd14_by_type", "pd14_by_population", "numerics", "calibration", "default_rule", "rules",
}
# What a [rules.<rule>] table may hold: overrides of the entry's fields, a bias and its provenance.
_RULE_KEYS = {"rheobase", "slowest_time_constant", "weights", "pd14", "pd14_by_type", "bias", "provenance"}
_KINDS = ("builtin", "nestml")


@dataclass(frozen=True)
class ModelSpec:
    """One catalogue entry, validated.

    Attributes
    ----------
    name : str
        Catalogue name (what configs use).
    description : str
        One line for tables and reports.
    kind : str
        ``"builtin"`` or ``"nestml"``.
    nest_model : str
        Model name inside NEST.
    source : pathlib.Path or None
        The ``.nestml`` file for NESTML models.
    rheobase_pA : float or None
        Smallest DC (pA) that makes the PD14-parameterised neuron fire.
    slowest_time_constant_ms : float
        Slowest time constant of the model's dynamics (sets the warm-up).
    roles : dict
        Role name -> the model's parameter name.
    ports : dict
        ``{"exc": int or str, "inh": int or str}``.
    psc_per_reference_psc : float or dict
        Model weight = this x PD14 reference PSC; a ``{"E": .., "I": ..}``
        table when the two cell types have different input resistances
        (the ``published`` rule), applied by the target's cell type.
    pd14 : dict
        Common PD14 parameters, already in NEST units.
    pd14_by_type : dict
        ``{"E": {...}, "I": {...}}`` overrides, in NEST units.
    pd14_by_population : dict
        ``{pop: {...}}`` overrides, in NEST units.
    extra : dict
        Other tables of the entry (numerics, calibration), as written.
    raw : dict
        The ``[models.<name>]`` table as written, with only the calibration
        rule in use left under ``rules`` (part of a run's identity).
    rule : str
        The calibration rule applied (:data:`RULES`), or ``"published"`` for
        a model without rules (the PD14 LIF and its twin).
    bias_pA : dict
        ``{"E": .., "I": ..}`` constant current the rule adds to the bias
        role, in the model's own current units (after the weight map).
    conductance_map : dict or None
        For conductance-based synapses: ``{"exc": {pop: f}, "inh": {pop: f}}``,
        the synaptic weight in nS per reference-PSC pA for each target
        population (:mod:`cortexzoo.models.conductance`). None for
        current-based models, whose weights are ``psc_per_reference_psc`` x the PSC.
    """

    name: str
    description: str
    kind: str
    nest_model: str
    source: Path | None
    rheobase_pA: float | None
    slowest_time_constant_ms: float
    roles: dict
    ports: dict
    psc_per_reference_psc: float
    pd14: dict
    pd14_by_type: dict = field(default_factory=dict)
    pd14_by_population: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)
    rule: str = "published"
    bias_pA: dict = field(default_factory=dict)
    conductance_map: dict | None = None

    @property
    def is_nestml(self) -> bool:
        """True when the model comes from the cortexzoo NESTML module."""
        return self.kind == "nestml"

    def params_for(self, population: str | None = None, cell_type: str | None = None) -> dict:
        """PD14 parameters for one population, in NEST units.

        Parameters
        ----------
        population : str, optional
            Population name such as ``"L4E"``; applies its overrides.
        cell_type : str, optional
            ``"E"`` or ``"I"``; applies the type overrides.

        Returns
        -------
        dict
            Parameter name -> value, ready for ``nest.Create``/``SetStatus``.
        """
        params = dict(self.pd14)
        if cell_type is not None:
            params.update(self.pd14_by_type.get(cell_type, {}))
        if population is not None:
            params.update(self.pd14_by_population.get(population, {}))
        return params

    def role(self, role: str) -> str:
        """The model's parameter name for a network role (see :data:`ROLES`).

        Parameters
        ----------
        role : str

        Returns
        -------
        str
        """
        return self.roles[role]

    def weight(self, reference_psc_pA, cell_type: str | None = None, population: str | None = None,
               source_type: str = "E"):
        """Map PD14 reference PSC amplitudes (pA) onto a target cell's synaptic weights.

        Parameters
        ----------
        reference_psc_pA : float or numpy.ndarray
            Negative for inhibitory synapses; the sign is kept.
        cell_type : {"E", "I"}, optional
            The target's cell type; needed when the map differs by type.
        population : str, optional
            The target population; needed by conductance-based models, whose
            map depends on the population's working-point voltage.
        source_type : {"E", "I"}
            The presynaptic cell type (external and thalamic inputs are E).

        Returns
        -------
        float or numpy.ndarray
            Model pA, or nS for a conductance-based model.
        """
        if self.conductance_map is not None:
            return reference_psc_pA * self.conductance_factor(population, source_type)
        return reference_psc_pA * self.scale_for(cell_type)

    def conductance_factor(self, population: str | None, source_type: str) -> float:
        """nS of synaptic conductance per reference-PSC pA, for one target population and source type.

        Parameters
        ----------
        population : str
        source_type : {"E", "I"}

        Returns
        -------
        float
        """
        table = self.conductance_map["exc" if source_type == "E" else "inh"]
        if population not in table:
            raise CortexzooError(f"Model {self.name!r} (rule {self.rule}) has conductance weights for "
                                 f"{sorted(table)}, not for population {population!r}.",
                                 "Pass the target population, or recompute the map with "
                                 "`python -m cortexzoo.experiments.conductance_table`.")
        return float(table[population])

    def scale_for(self, cell_type: str | None = None) -> float:
        """The input scale (model pA per LIF pA) of a target cell type.

        Parameters
        ----------
        cell_type : {"E", "I"}, optional

        Returns
        -------
        float
        """
        scale = self.psc_per_reference_psc
        if not isinstance(scale, dict):
            return float(scale)
        if cell_type not in scale:
            raise CortexzooError(f"Model {self.name!r} (rule {self.rule}) maps inputs per cell type; "
                                 f"no cell type given.", "Pass the target population's cell type (E or I).")
        return float(scale[cell_type])

    def weights_by_target(self, reference_psc_pA, cell_types, populations=None):
        """Map a target x source matrix (or a per-target vector from E sources) of reference PSCs to weights.

        Parameters
        ----------
        reference_psc_pA : numpy.ndarray
            First axis: target populations; a matrix's second axis: source
            populations, in the same order (so ``cell_types`` also gives the
            sources' types).
        cell_types : sequence of str
            Cell type of each target.
        populations : sequence of str, optional
            Target population names; needed by conductance-based models.

        Returns
        -------
        numpy.ndarray
        """
        import numpy as np

        ref = np.asarray(reference_psc_pA, dtype=float)
        if self.conductance_map is None:
            return self.currents_by_target(ref, cell_types)
        sources = list(cell_types) if ref.ndim == 2 else ["E"]
        factors = np.array([[self.conductance_factor(p, s) for s in sources] for p in populations])
        return ref * (factors if ref.ndim == 2 else factors[:, 0])

    def currents_by_target(self, reference_pA, cell_types):
        """Map reference-LIF currents (DC, drives) per target population onto model pA.

        Parameters
        ----------
        reference_pA : numpy.ndarray
            First axis: target populations.
        cell_types : sequence of str
            Cell type of each target.

        Returns
        -------
        numpy.ndarray
        """
        import numpy as np

        scales = np.array([self.scale_for(t) for t in cell_types])
        ref = np.asarray(reference_pA, dtype=float)
        return ref * scales.reshape((-1,) + (1,) * (ref.ndim - 1))

    def bias_current(self, dc_pA: float, cell_type: str | None = None) -> float:
        """The bias-role value for a population: its DC (LIF pA) mapped, plus the rule's bias.

        Parameters
        ----------
        dc_pA : float
            DC background and K-scaling compensation, in reference-LIF pA.
        cell_type : {"E", "I"}, optional

        Returns
        -------
        float
            In the model's own current units.
        """
        # A current, also in a conductance-based model: the input scale, never the conductance map.
        return float(dc_pA * self.scale_for(cell_type)) + float(self.bias_pA.get(cell_type, 0.0))

    def receptor(self, which: str, receptor_types: dict | None = None) -> int:
        """NEST receptor type for ``"exc"`` or ``"inh"`` spikes.

        Parameters
        ----------
        which : {"exc", "inh"}
        receptor_types : dict, optional
            The model's ``receptor_types`` default from NEST, needed when the
            port is given by name.

        Returns
        -------
        int
        """
        port = self.ports[which]
        if isinstance(port, int):
            return port
        types = {k.lower(): v for k, v in (receptor_types or {}).items()}
        if port.lower() not in types:
            raise CortexzooError(
                f"Model {self.name!r}: input port {port!r} is not among NEST's receptor types {sorted(types)}.",
                "Correct [ports] in models_nestml/catalogue.toml to a port declared in the .nestml input block.",
            )
        return int(types[port.lower()])


def _convert_table(table: dict, where: str) -> dict:
    return {k: to_nest(v, where=f"{where}.{k}") for k, v in table.items()}


def _parse_entry(name: str, raw: dict, path: Path, rule: str | None = None) -> ModelSpec:
    where = f"{path.name}: [models.{name}]"

    def bad(problem, fix):
        raise CortexzooError(f"{where}: {problem}", fix)

    unknown = set(raw) - _ENTRY_KEYS
    if unknown:
        bad(f"unknown key(s) {sorted(unknown)}.", f"Allowed keys: {sorted(_ENTRY_KEYS)}.")
    rule, raw = _apply_rule(name, raw, rule, where)
    for key in ("description", "kind", "nest_model", "roles", "ports", "pd14"):
        if key not in raw:
            bad(f"missing key {key!r}.", "See the field list at the top of catalogue.toml.")
    if raw["kind"] not in _KINDS:
        bad(f"kind = {raw['kind']!r} is not one of {list(_KINDS)}.", "Use 'builtin' or 'nestml'.")
    source = None
    if raw["kind"] == "nestml":
        if "source" not in raw:
            bad("a nestml model needs 'source' (its .nestml file).", "Add source = \"<file>.nestml\".")
        # The NESTML module is compiled from this folder (models_nestml/), whichever catalogue
        # names the model: a run's identity must hash the source that was really built.
        source = CATALOGUE_PATH.parent / raw["source"]
        if not source.exists():
            bad(f"source file {source} does not exist.", "Add the .nestml file to models_nestml/ or correct 'source'.")
    missing_roles = [r for r in ROLES if r not in raw["roles"]]
    if missing_roles:
        bad(f"[roles] lacks {missing_roles}.", f"Every model must name its parameter for each of {list(ROLES)}.")
    for which in ("exc", "inh"):
        if which not in raw["ports"] or not isinstance(raw["ports"][which], (int, str)):
            bad(f"[ports] needs '{which}' as a receptor number or NESTML port name.", "See catalogue.toml's header.")
    by_type = raw.get("pd14_by_type", {})
    if set(by_type) - set(CELL_TYPES):
        bad(f"[pd14_by_type] has {sorted(set(by_type) - set(CELL_TYPES))}.", "Only 'E' and 'I' are cell types.")
    if "slowest_time_constant" not in raw:
        bad("missing key 'slowest_time_constant'.", "State the slowest time constant of the model's dynamics, "
            "e.g. slowest_time_constant = \"144 ms\" (with the variable and its source in a comment).")
    rheobase = raw.get("rheobase")
    bias = {t: to_nest(v, "pA", f"{where}.rules.{rule}.bias.{t}") for t, v in raw.get("bias", {}).items()}
    return ModelSpec(
        name=name,
        description=raw["description"],
        kind=raw["kind"],
        nest_model=raw["nest_model"],
        source=source,
        rheobase_pA=None if rheobase is None else to_nest(rheobase, "pA", f"{where}.rheobase"),
        slowest_time_constant_ms=to_nest(raw["slowest_time_constant"], "ms", f"{where}.slowest_time_constant"),
        roles=dict(raw["roles"]),
        ports=dict(raw["ports"]),
        psc_per_reference_psc=_input_scale(raw.get("weights", {}).get("psc_per_reference_psc", 1.0), where),
        pd14=_convert_table(raw["pd14"], f"{where}.pd14"),
        pd14_by_type={t: _convert_table(v, f"{where}.pd14_by_type.{t}") for t, v in by_type.items()},
        pd14_by_population={
            p: _convert_table(v, f"{where}.pd14_by_population.{p}")
            for p, v in raw.get("pd14_by_population", {}).items()
        },
        extra={k: raw[k] for k in ("numerics", "calibration") if k in raw},
        raw={k: v for k, v in raw.items() if k != "bias"},
        rule=rule,
        bias_pA=bias,
        conductance_map=_conductance_map(raw.get("weights", {}).get("conductance_per_reference_psc"), where),
    )


def _conductance_map(value, where: str):
    """The ``weights.conductance_per_reference_psc`` table, checked: exc and inh, positive factors per population."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"exc", "inh"}:
        raise CortexzooError(f"{where}.weights.conductance_per_reference_psc must have exactly 'exc' and 'inh'.",
                             "Write it with `python -m cortexzoo.experiments.conductance_table <model>`.")
    out = {}
    for which, table in value.items():
        bad = {p: f for p, f in table.items() if not isinstance(f, (int, float)) or not f > 0}
        if bad or not table:
            raise CortexzooError(f"{where}.weights.conductance_per_reference_psc.{which}: factors must be "
                                 f"positive numbers (nS per pA), one per population; got {bad or 'none'}.",
                                 "Recompute them with `python -m cortexzoo.experiments.conductance_table <model>`.")
        out[which] = {p: float(f) for p, f in table.items()}
    return out


def _input_scale(value, where: str):
    if isinstance(value, dict):
        if set(value) != set(CELL_TYPES):
            raise CortexzooError(f"{where}.weights: psc_per_reference_psc table has {sorted(value)}.",
                                 "Give one number, or a table with exactly E and I.")
        return {t: float(to_nest(v, "", f"{where}.weights.{t}")) for t, v in value.items()}
    return float(to_nest(value, "", f"{where}.weights"))


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def _apply_rule(name: str, raw: dict, rule: str | None, where: str) -> tuple:
    """The entry as the network sees it under one calibration rule: ``(rule, entry)``.

    The entry's own tables hold the published cell parameters; a rule's table
    overrides some of them (and may add a bias). Only the applied rule stays
    in the returned entry, so a run's identity changes with that rule's
    values and not with another rule's.
    """
    rules = raw.get("rules", {})
    rule = rule or raw.get("default_rule") or "published"
    if rule not in RULES:
        raise CortexzooError(f"{where}: unknown calibration rule {rule!r}.",
                             f"Use one of {', '.join(RULES)} (docs/calibration.md).")
    if not rules:
        if rule != "published":
            raise CortexzooError(
                f"{where}: the model has no calibration rules, so rule {rule!r} cannot be applied.",
                "Leave `calibration` empty for this model (its catalogue values are used as they are), or run "
                f"`cortexzoo calibrate --rule {rule} --models {name}` if a recipe exists.")
        return rule, raw
    if rule not in rules:
        raise CortexzooError(
            f"{where}: no values for calibration rule {rule!r} (the catalogue has {', '.join(sorted(rules))}).",
            f"Run `cortexzoo calibrate --rule {rule} --models {name}`, or choose one of those rules.")
    table = rules[rule]
    unknown = set(table) - _RULE_KEYS
    if unknown:
        raise CortexzooError(f"{where}.rules.{rule}: unknown key(s) {sorted(unknown)}.",
                             f"Allowed keys: {sorted(_RULE_KEYS)}.")
    bad_types = set(table.get("pd14_by_type", {})) | set(table.get("bias", {}))
    if bad_types - set(CELL_TYPES):
        raise CortexzooError(f"{where}.rules.{rule}: cell types {sorted(bad_types - set(CELL_TYPES))}.",
                             "Only 'E' and 'I' are cell types.")
    entry = _merge({k: v for k, v in raw.items() if k != "rules"}, {k: v for k, v in table.items()
                                                                     if k != "provenance"})
    entry["rules"] = {rule: table}
    return rule, entry


def load_catalogue(path: Path | None = None) -> dict:
    """Read and validate the model catalogue (each model under its default rule).

    Every rule of every model is validated too, so a broken rule table is
    found when the catalogue is read, not when a run first asks for it.

    Parameters
    ----------
    path : pathlib.Path, optional
        Defaults to :func:`catalogue_path`.

    Returns
    -------
    dict
        Catalogue name -> :class:`ModelSpec`.
    """
    path = Path(path or catalogue_path())
    return _parse_all(raw_models(path), path)


def raw_models(path: Path | None = None) -> dict:
    """The ``[models]`` tables of the catalogue as written (not validated).

    Parameters
    ----------
    path : pathlib.Path, optional
        Defaults to :func:`catalogue_path`.

    Returns
    -------
    dict
    """
    return read_toml(Path(path or catalogue_path()), "Model catalogue").get("models", {})


def _parse_all(models: dict, path: Path) -> dict:
    for name, entry in models.items():
        for rule in entry.get("rules", {}) if isinstance(entry, dict) else ():
            _parse_entry(name, entry, path, rule)
    return {name: _parse_entry(name, entry, path) for name, entry in models.items()}


def model_rules(name: str, path: Path | None = None) -> list:
    """The calibration rules the catalogue has values for (``["published"]`` for a model without rules).

    Parameters
    ----------
    name : str
    path : pathlib.Path, optional

    Returns
    -------
    list of str
    """
    path = Path(path or catalogue_path())
    models = raw_models(path)
    if name not in models:
        get_model(name, path=path)  # raises, listing the catalogue's models
    return [r for r in RULES if r in models[name].get("rules", {})] or ["published"]


def get_model(name: str, rule: str | None = None, path: Path | None = None) -> ModelSpec:
    """Look a model up by catalogue name, under a calibration rule.

    Parameters
    ----------
    name : str
        Catalogue name, e.g. ``"iaf_psc_exp_nestml"``.
    rule : str, optional
        Calibration rule (:data:`RULES`); default: the entry's ``default_rule``.
    path : pathlib.Path, optional
        Catalogue file; defaults to :func:`catalogue_path`.

    Returns
    -------
    ModelSpec

    Raises
    ------
    CortexzooError
        When the name is not in the catalogue; the message lists the known models.
    """
    path = Path(path or catalogue_path())
    models = raw_models(path)
    catalogue = _parse_all(models, path)  # the whole catalogue is validated on every lookup
    if name not in catalogue:
        raise CortexzooError(
            f"Unknown neuron model {name!r}; the catalogue has: {', '.join(sorted(catalogue))}.",
            "Use one of those names, or add the model: a .nestml file in models_nestml/ plus a "
            "[models.<name>] table in models_nestml/catalogue.toml.",
        )
    return catalogue[name] if not rule else _parse_entry(name, models[name], path, rule)


def model_spec(config) -> ModelSpec:
    """The model of a run config, under the calibration rule its ``[neuron]`` table names.

    Parameters
    ----------
    config : cortexzoo.network.params.RunConfig

    Returns
    -------
    ModelSpec
    """
    return get_model(config.neuron["model"], config.neuron.get("calibration") or None)
