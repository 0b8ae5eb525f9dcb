"""Experiment configs: one comparison of neuron models in the PD14 network.

An experiment config (TOML) names the reference model and its seeds, the
variants with per-variant parameter overrides, the shared scale, background,
durations and threads, and the validation settings. It expands into one run
config per (model, seed); every run shares the network settings, so reference
and variants always run at the same scale. A variant may change PD14 values
(``pd14 = { synapses = { g = -4.4 } }``, merged over ``[network] pd14``) for
its own runs only, e.g. as a positive control of the validation.

An experiment of kind ``perturbation`` lists the perturbed neurons in
``[stimulus] neurons``; every (model, seed) then gets its unperturbed twin
(stimulus ``none``, named ``<label>-seed<k>``) and one run per perturbed
neuron ``n`` (named ``<label>-seed<k>-p<n>``), each with the same seed and
network as the twin and one extra input to neuron ``n``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from cortexzoo.errors import CortexzooError
from cortexzoo.network.params import (NETWORK_FIELDS, SIMULATION_FIELDS, RunConfig, check_pd14_overrides,
                                      merge_pd14_overrides, parse_run_config)
from cortexzoo.network.stimulus import STIMULUS_FIELDS
from cortexzoo.schema import REQUIRED, Field, check_table, read_toml

EXPERIMENTS_DIR = Path(__file__).resolve().parent

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: Experiment kind -> the stimulus its runs get (network/stimulus.py).
EXPERIMENT_KINDS = {"stationary": "none", "transient": "thalamic_pulses", "separability": "thalamic_patterns",
                    "perturbation": "perturbation"}


def _label_ok(value):
    return None if _LABEL.match(value) else "use letters, digits, '_', '-' and '.' only"


def _seeds_ok(value):
    if not value or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in value):
        return "must be a non-empty list of integers >= 1"
    if len(set(value)) != len(value):
        return "seeds must be distinct"
    return None


EXPERIMENT_FIELDS = {
    "name": Field(str, REQUIRED, "experiment name; results go to <results_dir>/<name>", check=_label_ok),
    "description": Field(str, "", "one paragraph shown in the report"),
    "results_dir": Field(str, "results", "folder for experiment results, relative to the working directory"),
    "kind": Field(str, "stationary", "what is compared: stationary activity, the responses to thalamic pulses "
                  "(transient) or to thalamic patterns (separability), or the divergence after one extra input "
                  "spike (perturbation)", choices=tuple(EXPERIMENT_KINDS)),
    # Recorded in each run's metadata (origin in the report and in packages); never part of a run's identity.
    "contributor": Field(str, "", "who runs this experiment (person or lab), recorded with every run it makes"),
}
REFERENCE_FIELDS = {
    "model": Field(str, "iaf_psc_exp", "catalogue name of the reference model"),
    "label": Field(str, "reference", "label of the reference in tables", check=_label_ok),
    "seeds": Field(list, [1, 2, 3], "reference seeds; >= 3 give a null distribution", check=_seeds_ok),
}
VARIANT_FIELDS = {
    "model": Field(str, REQUIRED, "catalogue name (see `cortexzoo models`)"),
    "seeds": Field(list, None, "seeds for this variant (default: [validation] variant_seeds)", check=_seeds_ok),
    "params": Field(dict, {}, "parameter overrides for all populations, e.g. {a = 0.02}"),
    "by_population": Field(dict, {}, "per-population overrides, e.g. [variants.X.by_population.L4E]"),
    "calibration": Field(str, "", "calibration rule: published, psp_rheobase or operating_point "
                         "(docs/calibration.md); empty: the model's default_rule in the catalogue"),
    "pd14": Field(dict, {}, "overrides of network/pd14.toml values for this variant's runs only, merged over "
                  "[network] pd14, e.g. { synapses = { g = -4.4 }, bg_rate_Hz = 7.6 }"),
}
# Validation refuses runs whose population sizes differ, so a variant must keep the reference's.
_SHARED_PD14_KEYS = ("full_num_neurons",)
# Simulation settings shared by all runs; the seed comes from the seed lists.
SHARED_SIMULATION_FIELDS = {k: v for k, v in SIMULATION_FIELDS.items() if k != "seed"}
VALIDATION_FIELDS = {
    "variant_seeds": Field(list, [101], "default seeds of variants; keep them apart from the reference seeds",
                           check=_seeds_ok),
    "settings": Field(dict, {}, "overrides of validation/defaults.toml (same layout)"),
}
CONTROLS_FIELDS = {
    "negative": Field(list, [], "variants that are the reference model with other seeds (negative control)"),
    "twins": Field(list, [], "variants that implement the reference's dynamics otherwise (e.g. its NESTML twin)"),
    "positive": Field(dict, {}, "positive controls: variant label -> the known change it makes"),
    "group_size": Field(int, 3, "seeds per pseudo-variant cut from the negative seeds (the design's seeds per "
                        "variant)", minimum=1),
}


def _neurons_ok(value):
    if not value or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value):
        return "must be a non-empty list of neuron indices >= 0"
    return "neurons must be distinct" if len(set(value)) != len(value) else None


# The experiment's [stimulus] may list several perturbed neurons; each planned run gets one ``neuron``.
EXPERIMENT_STIMULUS_FIELDS = {
    **STIMULUS_FIELDS,
    "neurons": Field(list, [0, 1, 2], "perturbation: indices (within population) of the perturbed neurons, one "
                     "perturbed run per neuron and seed next to the unperturbed twin", check=_neurons_ok),
}
TABLES = {
    "experiment": EXPERIMENT_FIELDS,
    "simulation": SHARED_SIMULATION_FIELDS,
    "network": NETWORK_FIELDS,
    "stimulus": EXPERIMENT_STIMULUS_FIELDS,
    "reference": REFERENCE_FIELDS,
    "validation": VALIDATION_FIELDS,
    "controls": CONTROLS_FIELDS,
}


def _check_controls(controls: dict, variants: dict, where: str) -> None:
    """Every variant the ``[controls]`` table names exists, and plays one role only."""
    named = [*controls["negative"], *controls["twins"], *controls["positive"]]
    unknown = [label for label in named if label not in variants]
    if unknown:
        raise CortexzooError(f"{where} [controls] names unknown variant(s) {', '.join(map(repr, unknown))}.",
                             f"Use labels of [variants.*]: {', '.join(variants) or '(none)'}.")
    twice = sorted({label for label in named if named.count(label) > 1})
    if twice:
        raise CortexzooError(f"{where} [controls] gives variant(s) {', '.join(twice)} more than one role.",
                             "A variant is a negative control, a twin or a positive control, not several.")


@dataclass(frozen=True)
class PlannedRun:
    """One simulation of an experiment.

    Attributes
    ----------
    label : str
        Reference label or variant name.
    seed : int
    is_reference : bool
    config : RunConfig
    perturbed_neuron : int or None
        In a perturbation experiment, the neuron this run perturbs; None for
        every other run (including the unperturbed twin).
    """

    label: str
    seed: int
    is_reference: bool
    config: RunConfig
    perturbed_neuron: int | None = None

    @property
    def name(self) -> str:
        """Directory name of the run inside the experiment's ``runs/``.

        ``<label>-seed<k>``; a perturbed run is ``<label>-seed<k>-p<neuron>``,
        so it sits next to its twin and no name ends like another's.
        """
        twin = f"{self.label}-seed{self.seed}"
        return twin if self.perturbed_neuron is None else f"{twin}-p{self.perturbed_neuron}"

    @property
    def is_perturbed(self) -> bool:
        """Whether this is a perturbed run (not one seed's own run)."""
        return self.perturbed_neuron is not None


@dataclass(frozen=True)
class Experiment:
    """A validated experiment config.

    Attributes
    ----------
    path : pathlib.Path
    raw : dict
        The config as read (for the report).
    tables : dict
        Validated tables with defaults.
    variants : dict
        Label -> validated variant table.
    runs : list of PlannedRun
        References first, then variants in config order; in a perturbation
        experiment each seed's twin is followed by its perturbed runs.
    """

    path: Path
    raw: dict
    tables: dict
    variants: dict
    runs: list

    @property
    def name(self) -> str:
        """Experiment name."""
        return self.tables["experiment"]["name"]

    def out_dir(self, base: Path | None = None) -> Path:
        """Experiment result directory (``<results_dir>/<name>`` unless ``base`` is given)."""
        return Path(base) if base else Path(self.tables["experiment"]["results_dir"]) / self.name

    @property
    def reference_runs(self) -> list:
        """Planned reference runs, one per seed (perturbed runs are in :attr:`perturbed_runs`)."""
        return [r for r in self.runs if r.is_reference and not r.is_perturbed]

    @property
    def variant_runs(self) -> list:
        """Planned variant runs, one per seed (perturbed runs are in :attr:`perturbed_runs`)."""
        return [r for r in self.runs if not r.is_reference and not r.is_perturbed]

    @property
    def perturbed_runs(self) -> list:
        """Planned perturbed runs of a perturbation experiment (empty otherwise).

        Validation finds them next to their twins (``<twin>-p<neuron>``), so
        every seed-level consumer (decisions, controls, theory) sees one run
        per seed.
        """
        return [r for r in self.runs if r.is_perturbed]


def resolve_config_path(path) -> Path:
    """Find a config: a path when the argument looks like one, else a config shipped in ``experiments/``.

    An argument containing ``/`` or ending in ``.toml`` is a path and must
    exist; it never falls back to a shipped config of the same name (a typo
    must not silently run another study). A bare name (``quick``) is a
    shipped config.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    pathlib.Path

    Raises
    ------
    CortexzooError
        For a missing file or an unknown shipped name.
    """
    text = str(path)
    shipped = ", ".join(sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.toml")))
    if "/" in text or os.sep in text or text.endswith(".toml"):
        if Path(text).is_file():
            return Path(text)
        what = "is a directory, not a file" if Path(text).is_dir() else "does not exist"
        raise CortexzooError(f"Experiment config {text} {what}.",
                             f"Check the path; a shipped config is given by bare name ({shipped}).")
    candidate = EXPERIMENTS_DIR / f"{text}.toml"
    if text and candidate.is_file():
        return candidate
    raise CortexzooError(f"No shipped experiment config is called {text!r}.",
                         f"Shipped configs: {shipped}; or give a path to a TOML file (e.g. ./{text}.toml).")


def load_experiment(path) -> Experiment:
    """Read and validate an experiment config.

    Parameters
    ----------
    path : str or pathlib.Path
        File, or the name of a config shipped in ``experiments/``.

    Returns
    -------
    Experiment

    Raises
    ------
    CortexzooError
        Naming the file, the table, the key and the allowed values.
    """
    path = resolve_config_path(path)
    raw = read_toml(path, "Experiment config")
    allowed = [*TABLES, "variants"]
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        raise CortexzooError(f"{path}: unknown table(s) {', '.join(map(repr, unknown))}.",
                             f"Allowed tables: {', '.join(allowed)}.")
    tables = {name: check_table(raw.get(name, {}), fields, f"{path} [{name}]") for name, fields in TABLES.items()}
    tables["network"]["pd14"] = check_pd14_overrides(tables["network"]["pd14"], f"{path} [network] pd14")
    stimulus, perturbed = _stimulus_table(raw.get("stimulus", {}), tables["experiment"]["kind"], str(path))
    raw_variants = raw.get("variants", {})
    if not isinstance(raw_variants, dict):
        raise CortexzooError(f"{path} [variants] must be a table of tables.", "Write [variants.<label>] sections.")
    variants = {}
    ref = tables["reference"]
    for label, table in raw_variants.items():
        where = f"{path} [variants.{label}]"
        problem = _label_ok(label)
        if problem:
            raise CortexzooError(f"{where}: label {label!r}: {problem}.", "Rename the variant table.")
        if label == ref["label"]:
            raise CortexzooError(f"{where}: label clashes with the reference label.", "Rename the variant.")
        variants[label] = check_table(table, VARIANT_FIELDS, where)
        variants[label]["pd14"] = _variant_pd14(variants[label]["pd14"], where)
        seeds = variants[label]["seeds"] or tables["validation"]["variant_seeds"]
        variants[label]["seeds"] = seeds

    def run_config(model, seed, params, by_population, where, calibration="", pd14=None, run_stimulus=None):
        # The variant's PD14 overrides go over the experiment's, for this run only.
        network = {**tables["network"], "pd14": merge_pd14_overrides(tables["network"]["pd14"], pd14 or {})}
        try:
            return parse_run_config({
                "simulation": {**tables["simulation"], "seed": seed},
                "network": network,
                "neuron": {"model": model, "params": params, "by_population": by_population,
                           "calibration": calibration},
                "stimulus": stimulus if run_stimulus is None else run_stimulus,
            }, where=where)
        except CortexzooError as err:
            if where in err.problem:
                raise
            # The catalogue does not know the file: name it and the key (e.g. an unknown model).
            raise CortexzooError(f"{where} model = {model!r}: {err.problem}", err.fix) from None

    def planned(label, seed, is_reference, *args):
        """The seed's run, then (perturbation) one run per perturbed neuron with the same seed and network."""
        if perturbed is None:
            return [PlannedRun(label, seed, is_reference, run_config(*args))]
        twin = PlannedRun(label, seed, is_reference, run_config(*args, run_stimulus={"kind": "none"}))
        kicked = [PlannedRun(label, seed, is_reference, run_config(*args, run_stimulus={**stimulus, "neuron": n}),
                             perturbed_neuron=n) for n in perturbed]
        return [twin, *kicked]

    runs = [r for s in ref["seeds"] for r in planned(ref["label"], s, True, ref["model"], s, {}, {},
                                                     f"{path} [reference]")]
    for label, v in variants.items():
        runs += [r for s in v["seeds"]
                 for r in planned(label, s, False, v["model"], s, v["params"], v["by_population"],
                                  f"{path} [variants.{label}]", v["calibration"], v["pd14"])]
    if perturbed is not None:
        _check_perturbation(runs, perturbed, f"{path} [stimulus]")
    # Validate the validation overrides now, not after an hour of simulation.
    from cortexzoo.validation.settings import load_settings

    try:
        load_settings(tables["validation"]["settings"])
    except CortexzooError as err:
        raise CortexzooError(f"{path} [validation.settings]: {err.problem}", err.fix) from None
    _check_controls(tables["controls"], variants, str(path))
    return Experiment(path, raw, tables, variants, runs)


def _stimulus_table(raw: dict, kind: str, where: str) -> tuple:
    """The runs' ``[stimulus]`` as written, its kind taken from the experiment kind (or checked against it).

    Returns the table without ``neurons`` and, for a perturbation experiment,
    the list of perturbed neurons (None otherwise).
    """
    wanted = EXPERIMENT_KINDS[kind]
    given = raw.get("kind", wanted)
    if given != wanted:
        raise CortexzooError(f"{where} [stimulus] kind = {given!r} does not fit [experiment] kind = {kind!r}.",
                             f"Leave [stimulus] kind out (it follows the experiment: {wanted!r}), or change "
                             "[experiment] kind.")
    table = {k: v for k, v in raw.items() if k != "neurons"}
    if wanted != "perturbation":
        if "neurons" in raw:
            raise CortexzooError(f"{where} [stimulus] neurons is not used by [experiment] kind = {kind!r}.",
                                 "Remove it; it lists the perturbed neurons of a perturbation experiment.")
        return {**table, "kind": wanted}, None
    if "neuron" in raw:
        raise CortexzooError(f"{where} [stimulus] neuron is set by the experiment from [stimulus] neurons.",
                             "Write neurons = [...] (the perturbed neurons, one run per neuron and seed) instead.")
    return {**table, "kind": wanted}, raw.get("neurons", EXPERIMENT_STIMULUS_FIELDS["neurons"].default)


def _check_perturbation(runs: list, neurons: list, where: str) -> None:
    """Perturbed neurons exist at this scale.

    (The self-consistent K-scaling compensation is the stationary network's,
    shared by twin and perturbed runs: network/compensation.py.)
    """
    from cortexzoo.network.params import derive

    net = derive(runs[0].config.network)  # population sizes are shared by every run (_SHARED_PD14_KEYS)
    population = next(r.config.stimulus["population"] for r in runs if r.is_perturbed)
    size = int(net.num_neurons[net.populations.index(population)])
    too_large = [n for n in neurons if n >= size]
    if too_large:
        raise CortexzooError(f"{where} neurons = {neurons}: {population} has {size} neurons at this scale, so "
                             f"{', '.join(map(str, too_large))} do not exist.", f"Use indices below {size}.")


def _variant_pd14(overrides: dict, where: str) -> dict:
    """A variant's PD14 overrides, checked and with the file's types; population sizes stay shared."""
    shared = [key for key in _SHARED_PD14_KEYS if key in overrides]
    if shared:
        raise CortexzooError(f"{where} pd14.{shared[0]}: a variant cannot change the population sizes; validation "
                             "compares populations of equal size.",
                             f"Set pd14 = {{ {shared[0]} = [...] }} in [network] to change them for all runs.")
    return check_pd14_overrides(overrides, f"{where} pd14")
