"""Python API for notebooks: open an experiment directory, read its results, plot, re-score; simulate one run.

An experiment directory is the folder ``cortexzoo compare`` writes
(``experiment.toml``, ``runs/``, ``validation/``, ``theory/``, ``report/``)::

    import cortexzoo

    exp = cortexzoo.open_experiment("results/quick")
    exp.decision_table()                       # variants x measures
    exp.plot_effects()                         # matplotlib Figure
    ids, times = exp.spikes("reference-seed1", "L4E")
    loose = exp.rescore({"scores": {"fdr": 0.1}}, out="results/quick-fdr10")

Everything here reads what the command line wrote and scores through the same
:func:`cortexzoo.validation.pipeline.validate`; nothing is recomputed
differently for notebooks.
"""

from __future__ import annotations

import copy
import logging
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

from cortexzoo.errors import CortexzooError
from cortexzoo.schema import read_toml

__all__ = ["Experiment", "open_experiment", "simulate"]

CONFIG_FILE = "experiment.toml"
VALIDATION_DIR = "validation"
RESCORE_DIR = "rescored"


def open_experiment(path) -> Experiment:
    """Open an experiment directory written by ``cortexzoo compare`` (or ``cortexzoo run``).

    Parameters
    ----------
    path : str or pathlib.Path
        The experiment directory, ``<results_dir>/<name>``.

    Returns
    -------
    Experiment

    Raises
    ------
    CortexzooError
        When ``path`` is not an experiment directory (no ``experiment.toml``).
    """
    return Experiment(path)


def simulate(config: dict, out_dir, overwrite: bool = False, progress=None):
    """Simulate one PD14 run and load it.

    Parameters
    ----------
    config : dict
        A run config as in a run TOML file: tables ``simulation``, ``network``
        and ``neuron``, e.g. ``{"network": {"N_scaling": 0.05, "K_scaling":
        0.1}, "neuron": {"model": "iaf_psc_exp"}, "simulation": {"seed": 1}}``;
        missing keys take their defaults.
    out_dir : str or pathlib.Path
        Run directory to write; must not hold a finished run unless ``overwrite``.
    overwrite : bool
        Replace a finished run at ``out_dir``.
    progress : callable, optional
        Receives one-line progress messages (e.g. ``print``).

    Returns
    -------
    cortexzoo.network.output.RunData
        The finished run (``.path``, ``.window(population)``, ``.to_neo(population)``).

    Raises
    ------
    CortexzooError
        For an invalid config (naming the table and key) or an unusable ``out_dir``.
    """
    from cortexzoo.network.output import load_run
    from cortexzoo.network.params import parse_run_config
    from cortexzoo.network.run import run_network

    if not isinstance(config, dict):
        raise CortexzooError(f"simulate() takes the run config as a dict, not {type(config).__name__}.",
                             "Pass {'simulation': {...}, 'network': {...}, 'neuron': {...}}.")
    run_config = parse_run_config(copy.deepcopy(config), where="simulate() config")
    return load_run(run_network(run_config, out_dir, overwrite=overwrite, progress=progress))


class Experiment:
    """A view of an experiment directory; open it with :func:`open_experiment`.

    It never changes what ``cortexzoo compare`` wrote (:meth:`rescore` writes
    to a folder of its own). Tables are read from the validation folder each
    time they are asked for, so a view stays current while ``compare`` writes.

    Parameters
    ----------
    path : str or pathlib.Path
        The experiment directory.
    validation_dir : str or pathlib.Path, optional
        Folder of the scores to show; default ``<path>/validation``
        (:meth:`rescore` returns views of other folders).

    Attributes
    ----------
    path : pathlib.Path
    validation_dir : pathlib.Path

    Raises
    ------
    CortexzooError
        When ``path`` is not an experiment directory.
    """

    def __init__(self, path, validation_dir=None):
        self.path = Path(path)
        if not (self.path / CONFIG_FILE).is_file():
            what = "does not exist" if not self.path.exists() else f"is not a cortexzoo experiment (no {CONFIG_FILE})"
            raise CortexzooError(f"{self.path} {what}.", "Give the folder `cortexzoo compare` wrote, "
                                 "<results_dir>/<name> (e.g. results/quick).")
        self.validation_dir = Path(validation_dir) if validation_dir is not None else self.path / VALIDATION_DIR

    def __repr__(self) -> str:
        return f"Experiment({str(self.path)!r}, {len(self.runs)} runs, scores in {str(self.validation_dir)!r})"

    # --- config and runs -------------------------------------------------------------------------

    @cached_property
    def config(self) -> dict:
        """The experiment config as recorded in ``experiment.toml`` (dict)."""
        return read_toml(self.path / CONFIG_FILE, "Experiment config")

    @cached_property
    def _plan(self):
        """The validated config (:class:`cortexzoo.experiments.config.Experiment`): runs, labels, settings."""
        from cortexzoo.experiments.config import load_experiment

        return load_experiment(self.path / CONFIG_FILE)

    @property
    def runs(self) -> list:
        """Names of the experiment's runs (``<label>-seed<k>``), references first, in config order."""
        return [r.name for r in self._plan.runs]

    @property
    def references(self) -> list:
        """Names of the reference runs."""
        return [r.name for r in self._plan.reference_runs]

    @property
    def variants(self) -> dict:
        """Variant label -> names of its runs (one per seed)."""
        groups = {}
        for r in self._plan.variant_runs:
            groups.setdefault(r.label, []).append(r.name)
        return groups

    def run(self, run: str):
        """Load one finished run.

        Parameters
        ----------
        run : str
            A name from :attr:`runs`.

        Returns
        -------
        cortexzoo.network.output.RunData

        Raises
        ------
        CortexzooError
            For a run the experiment does not have, or one not (completely) simulated.
        """
        from cortexzoo.network.output import load_run

        if run not in self.runs:
            raise CortexzooError(f"Experiment {self.path} has no run {run!r}.", f"Its runs: {', '.join(self.runs)}.")
        return load_run(self.path / "runs" / run)

    def spikes(self, run: str, population: str):
        """Spikes of one population of one run inside the analysis window.

        Parameters
        ----------
        run : str
            A name from :attr:`runs`.
        population : str
            E.g. ``"L4E"``.

        Returns
        -------
        tuple of numpy.ndarray
            ``(ids, times)``: 0-based neuron indices and spike times in ms,
            window ``(t_start, t_stop]`` (the presimulation left out).

        Raises
        ------
        CortexzooError
            For an unknown run or population.
        """
        data = self.run(run)
        _check_populations(data, [population], run)
        return data.window(population)

    # --- validation results ----------------------------------------------------------------------

    @property
    def scores(self):
        """Decisions, ``scores.csv``: one row per (variant, population, measure) (pandas.DataFrame)."""
        return self._table("scores.csv")

    @property
    def measures(self):
        """Per-seed measures, ``measures.csv``: one value per (run, population, measure) (pandas.DataFrame)."""
        return self._table("measures.csv")

    @property
    def statistics(self):
        """Counts, exclusions and peaks per run and population, ``statistics.csv`` (pandas.DataFrame)."""
        return self._table("statistics.csv")

    @property
    def summary(self):
        """Per variant: how many decisions differ, are consistent or undefined, ``summary.csv`` (pandas.DataFrame)."""
        return self._table("summary.csv")

    @property
    def distances(self):
        """Descriptive distances per candidate run, ``distances.csv`` (pandas.DataFrame); they decide nothing."""
        return self._table("distances.csv")

    @property
    def settings(self) -> dict:
        """The full validation settings of :attr:`validation_dir` (those recorded in its ``scores.json``)."""
        return self._payload()["settings"]

    @property
    def warnings(self) -> list:
        """Warnings of the validation (too few seeds, non-stationary runs, ...), as recorded in ``scores.json``."""
        return list(self._payload().get("warnings", []))

    def decision_table(self):
        """Variants x measures, as in the report: median relative effect and populations that differ.

        Returns
        -------
        pandas.DataFrame
            See :func:`cortexzoo.validation.report.score_table`.
        """
        from cortexzoo.validation.report import score_table

        return score_table(self.scores)

    def _table(self, name: str):
        import pandas as pd

        path = self._validation_file(name)
        # Only empty cells are missing: a variant may be called "null" or "NA", which pandas would read as NaN.
        return pd.read_csv(path, keep_default_na=False, na_values=[""])

    def _payload(self) -> dict:
        import json

        return json.loads(self._validation_file("scores.json").read_text())

    def _validation_file(self, name: str) -> Path:
        path = self.validation_dir / name
        if not path.is_file():
            raise CortexzooError(f"{self.path} has no validation results ({path} is missing).",
                                 f"Run `cortexzoo compare` (or `cortexzoo validate`) on {self.path / CONFIG_FILE} "
                                 "first; finished runs are reused.")
        return path

    # --- re-scoring ------------------------------------------------------------------------------

    def rescore(self, settings=None, out=None, figures: bool = True, progress=None) -> Experiment:
        """Score the experiment's runs again with other validation settings, into another folder.

        The runs and the scoring path are those of ``cortexzoo compare``; only
        the settings differ. The experiment's own ``validation/`` is never touched.

        Parameters
        ----------
        settings : dict or str or pathlib.Path, optional
            Overrides on top of the experiment's ``[validation.settings]``
            (nested dict or TOML file, layout of ``validation/defaults.toml``),
            e.g. ``{"scores": {"fdr": 0.1}}``.
        out : str or pathlib.Path, optional
            Folder for the new tables and figures; default ``<experiment>/rescored``
            (replaced as a whole). A folder given here keeps files it already
            holds except those written.
        figures : bool
            Also write the PNG figures (a few seconds per figure).
        progress : callable, optional
            Receives one-line progress messages.

        Returns
        -------
        Experiment
            A view of the same experiment showing the new scores.

        Raises
        ------
        CortexzooError
            For unknown settings, runs missing or made from other inputs than the
            config names, ``out`` being the experiment's own folders, or while
            another process writes the experiment.
        """
        from cortexzoo.locking import ExperimentLock
        from cortexzoo.validation.pipeline import validate
        from cortexzoo.validation.settings import load_settings

        out_dir = Path(out) if out is not None else self.path / RESCORE_DIR
        self._refuse_own_folder(out_dir)
        merged = _merge_settings(self._plan.tables["validation"]["settings"], settings)
        load_settings(merged)  # a misspelt setting fails here, before any work
        references, groups = self._ready_run_dirs()
        # One writer per experiment: a compare replacing runs meanwhile would mix old and new runs.
        with ExperimentLock(self.path, f"rescore {self.path} into {out_dir}", progress), _quiet_score_log():
            validate(references, groups, out_dir, settings=merged, progress=progress, make_figures=figures,
                     degenerate_candidates="flag", replace_folder=out is None)
        return Experiment(self.path, validation_dir=out_dir)

    def _refuse_own_folder(self, out_dir: Path) -> None:
        target = out_dir.resolve()
        own = [self.path.resolve() / name for name in ("", VALIDATION_DIR, "runs", "theory", "report")]
        if target in own or self.path.resolve() / "runs" in target.parents:
            raise CortexzooError(f"rescore(out={str(out_dir)!r}) would write into the experiment's own {target}.",
                                 f"Give another folder, or leave out= empty for {self.path / RESCORE_DIR}.")

    def _ready_run_dirs(self):
        """Reference run dirs and {variant: [run dirs]}, refusing runs missing or made from other inputs."""
        from cortexzoo.experiments.orchestrate import require_finished_runs, run_dir

        plan = self._plan
        require_finished_runs(plan, self.path, f"Run `cortexzoo compare {self.path / CONFIG_FILE}` first.")
        groups = {}
        for r in plan.variant_runs:
            groups.setdefault(r.label, []).append(run_dir(self.path, r))
        return [run_dir(self.path, r) for r in plan.reference_runs], groups

    # --- figures ---------------------------------------------------------------------------------

    def plot_raster(self, runs=None, populations=None, excerpt_ms=None, neurons_per_population=None):
        """Raster excerpt, one panel per run (the report's raster).

        Parameters
        ----------
        runs : list of str, optional
            Default: the first reference run and the first run of each variant.
        populations : list of str, optional
            Default: the populations scored (``scores.populations``), else all.
        excerpt_ms : float, optional
            Length shown from the start of the analysis window; default from the settings.
        neurons_per_population : int, optional
            Neurons shown per population; default from the settings.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from cortexzoo.validation import figures

        runs = runs or [self.references[0]] + [members[0] for members in self.variants.values()]
        data = {name: self.run(name) for name in runs}
        populations = self._populations(data, populations)
        shown = self._figure_settings()
        return _displayable(figures.raster(data, populations, None, excerpt_ms or shown["raster_excerpt_ms"],
                                           neurons_per_population or shown["raster_neurons_per_population"]))

    def plot_rates(self, runs=None, populations=None):
        """Box plots of single-neuron firing rates per population, one box per run; references in grey.

        Parameters
        ----------
        runs : list of str, optional
            Default: every run.
        populations : list of str, optional
            Default: the populations scored, else all.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from cortexzoo.validation import figures
        from cortexzoo.validation.statistics import population_statistics

        data = {name: self.run(name) for name in (runs or self.runs)}
        populations = self._populations(data, populations)
        settings = self._statistics_settings()
        stats = {name: {pop: population_statistics(pop, *run.window(pop), run.sizes[pop], run.t_start_ms,
                                                   run.t_stop_ms, settings) for pop in populations}
                 for name, run in data.items()}
        return _displayable(figures.rate_boxplots(stats, populations, self.references, None))

    def plot_effects(self):
        """Heatmap of relative effects per variant, measure and population; ``*`` marks "differs".

        Returns
        -------
        matplotlib.figure.Figure
        """
        from cortexzoo.validation import figures

        return _displayable(figures.effect_heatmap(self.scores, None, self.settings["scores"]["fdr"]))

    def _populations(self, data: dict, populations) -> list:
        if populations is None:
            scored = self._statistics_settings()["scores"]["populations"]
            populations = list(scored) or next(iter(data.values())).populations
        for name, run in data.items():
            _check_populations(run, populations, name)
        return list(populations)

    def _statistics_settings(self) -> dict:
        """The settings the scores were made with, or the config's when there are no scores yet."""
        if (self.validation_dir / "scores.json").is_file():
            return self.settings
        from cortexzoo.validation.settings import load_settings

        return load_settings(self._plan.tables["validation"]["settings"])

    def _figure_settings(self) -> dict:
        return self._statistics_settings()["figures"]


def _check_populations(run, populations, name: str) -> None:
    unknown = [p for p in populations if p not in run.sizes]
    if unknown:
        raise CortexzooError(f"Run {name} has no population {', '.join(map(repr, unknown))}.",
                             f"Its populations: {', '.join(run.populations)}.")


def _merge_settings(base: dict, overrides) -> dict:
    """The experiment's settings overrides with ``overrides`` (dict or TOML file) merged over them."""
    if overrides is None:
        return copy.deepcopy(base)
    if not isinstance(overrides, dict):
        overrides = read_toml(overrides, "Settings file")
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge_settings(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@contextmanager
def _quiet_score_log():
    """Silence SciUnit's coloured log line per score while scoring.

    Under IPython, ``sciunit.scores.base`` reloads :mod:`logging` after taking its
    ``score_logger``, so ``logging.getLogger("sciunit_scores")`` (what the
    TestSuite's ``quiet`` sets) is another object there, and a notebook would
    print one line per decision. This sets the logger SciUnit actually uses.
    """
    from sciunit.scores.base import score_logger

    level = score_logger.level
    score_logger.setLevel(logging.CRITICAL + 100)  # score levels go up to 100
    try:
        yield
    finally:
        score_logger.setLevel(level)


def _displayable(fig):
    """Return ``fig``; under IPython, first make sure a figure shown as a cell's value is drawn as an image.

    :mod:`cortexzoo.validation.figures` switches matplotlib to Agg when imported, before a notebook's
    inline backend is loaded, and it is the inline backend that tells IPython how to draw a figure:
    without it a notebook prints ``<Figure size ...>``. PNG is registered only when no image format is
    (a format the user chose, e.g. SVG, stays).
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return fig
    shell = get_ipython()
    if shell is None:
        return fig
    from IPython.core.pylabtools import select_figure_formats
    from matplotlib.figure import Figure

    if not any(_formats(formatter, Figure) for formatter in shell.display_formatter.formatters.values()):
        select_figure_formats(shell, {"png"}, bbox_inches="tight")
    return fig


def _formats(formatter, kind) -> bool:
    try:
        formatter.lookup_by_type(kind)
    except KeyError:
        return False
    return True
