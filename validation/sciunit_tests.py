"""SciUnit models and tests: the decisions and every validation statistic as SciUnit tests.

Decisions (``scores.csv``)
--------------------------
:class:`SeedSetModel` is one model (a variant or the reference) as the set of
its seeds. :class:`MeasureTest` compares the variant's per-seed values of one
(population, measure) with the reference's (its observation) through
:func:`cortexzoo.validation.inference.compare_measure` and returns an
:class:`EffectScore` (value: the relative effect; attributes: effect,
intervals, p-value, ... and unit). :func:`decision_suite` builds one
MeasureTest per (population, measure); :func:`decision_table` judges the
variants and applies Benjamini-Hochberg per variant (one family = one row of
the score matrix), giving the columns of
:data:`cortexzoo.validation.inference.DECISION_COLUMNS`::

    reference = SeedSetModel(stats_of_reference_seeds, "reference")
    variants = [SeedSetModel.from_runs(dirs, name, settings) for name, dirs in groups.items()]
    suite = decision_suite(reference, populations, measures, inference_options(settings))
    table = decision_table(suite, variants, fdr=0.05)

Your own test in the decision table. Add any ``sciunit.Test`` to the suite
(``TestSuite(suite.tests + [MyTest(...)])``); each variant judges it like
the built-in tests. Its score joins the variant's Benjamini-Hochberg family
when it has an attribute ``p_value`` (a float; NaN means undefined, and the
score's ``note`` says why). Attributes named like the numeric columns of
``DECISION_COLUMNS`` (``effect``, ``effect_ci_low``, ``relative_effect``,
``n_variant_seeds``, ...) and ``unit`` / ``note`` fill those columns, the
others stay NaN / empty. The ``population`` and ``measure`` columns come from
the test's params ``population`` and ``measure`` (default: empty and the
test's name). A score without ``p_value`` (a distance, a NoneScore) gives
the decision ``undefined: <test name> gives no p-value`` and no q-value;
it does not change the other decisions' q-values. The variant models are
:class:`SeedSetModel` s: ``seed_statistics(population)`` gives every seed's
statistics, ``produce_spiketrains`` the first seed's spike trains.

Distances (descriptive)
-----------------------
Models (:class:`RunModel`) wrap single run directories and have NetworkUnit's
``ProducesSpikeTrains`` capability, so any SciUnit/NetworkUnit test that needs
``neo`` spike trains can judge them. The tests below are NetworkUnit's test
classes where those work (firing rate, ISI variation, correlation
distribution), plus cortexzoo classes for complexity, synchrony and the power
spectrum. For speed they take their numbers from the numpy statistics when the
model provides them (:meth:`RunModel.population_statistics`), and from the
Elephant route on ``produce_spiketrains`` otherwise; the tests check both agree.

Every test is per population (``population`` parameter); a test's observation
is the prediction for a reference model (:meth:`PopulationTestMixin.from_reference`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import sciunit
from networkunit.capabilities.ProducesSpikeTrains import ProducesSpikeTrains
from networkunit.scores import wasserstein_distance as _nu_wasserstein
from networkunit.tests import correlation_dist_test, firing_rate_test, isi_variation_test, two_sample_test

from cortexzoo.errors import CortexzooError
from cortexzoo.network.output import RunData, load_run
from cortexzoo.validation import elephant_route, inference
from cortexzoo.validation import scores as _scores
from cortexzoo.validation.networkunit_compat import ArrayObservation, EffectSize, KSDistance, LowerIsBetter, TestSuite
from cortexzoo.validation.settings import load_settings
from cortexzoo.validation.statistics import measure_unit, population_statistics, scalar_measures


class RunModel(sciunit.Model, ProducesSpikeTrains):
    """A finished run directory as a SciUnit model.

    Parameters
    ----------
    run : str or pathlib.Path or RunData
        Run directory (loaded with ``load_run``) or an already loaded run.
    name : str, optional
        Defaults to the directory name.
    """

    def __init__(self, run, name=None):
        self.run = run if isinstance(run, RunData) else load_run(run)
        self._stats = {}
        super().__init__(name=name or Path(self.run.path).name)

    @property
    def populations(self):
        """Population names in network order."""
        return list(self.run.populations)

    def produce_spiketrains(self, population=None, **kwargs):
        """Spike trains of the analysis window, one ``neo.SpikeTrain`` per neuron.

        Parameters
        ----------
        population : str, optional
            One population; all populations in network order when omitted.
        **kwargs
            Ignored (NetworkUnit passes the test parameters).

        Returns
        -------
        list of neo.SpikeTrain
        """
        if population is None:
            return [st for pop in self.populations for st in self.run.to_neo(pop)]
        self._check_population(population)
        return self.run.to_neo(population)

    def produce_grouped_spiketrains(self, **kwargs):
        """One list of spike trains per population, in network order.

        Returns
        -------
        list of list of neo.SpikeTrain
        """
        return [self.run.to_neo(pop) for pop in self.populations]

    def population_statistics(self, population, settings=None):
        """All numpy statistics of one population, cached per settings.

        Parameters
        ----------
        population : str
        settings : dict, optional
            Defaults to ``validation/defaults.toml``.

        Returns
        -------
        cortexzoo.validation.statistics.PopulationStatistics
        """
        settings = settings or load_settings()
        self._check_population(population)
        key = (population, json.dumps(settings, sort_keys=True))
        if key not in self._stats:
            ids, times = self.run.window(population)
            self._stats[key] = population_statistics(population, ids, times, self.run.sizes[population],
                                                     self.run.t_start_ms, self.run.t_stop_ms, settings)
        return self._stats[key]

    def _check_population(self, population):
        if population not in self.run.sizes:
            raise CortexzooError(f"Run {self.run.path} has no population {population!r}.",
                                 f"Use one of {', '.join(self.populations)}.")


class Wasserstein(LowerIsBetter, _nu_wasserstein):
    """NetworkUnit's Wasserstein distance (``norm='both'``), computed exactly in 1-D.

    NetworkUnit solves a general transport problem with OpenCV in float32,
    whose cost matrix grows as n x m; in 1-D the distance of the sorted samples
    is exact and takes milliseconds for full populations.
    """

    @classmethod
    def compute(cls, observation, prediction, **kwargs):
        """Distance of the two samples z-scored with their pooled mean and std."""
        obs, pred = np.asarray(observation, float), np.asarray(prediction, float)
        obs, pred = obs[np.isfinite(obs)], pred[np.isfinite(pred)]
        score = cls(_scores.wasserstein(obs, pred))
        score.obsv_samples, score.pred_samples = len(obs), len(pred)
        return score

    def __str__(self):
        return f"Wasserstein distance = {self.score:.4g}"


class RelativeDifference(LowerIsBetter, sciunit.Score):
    """``|prediction - observation| / observation`` of a scalar statistic."""

    _description = "Relative difference to the reference (lower is better)"

    @classmethod
    def compute(cls, observation, prediction):
        """Score from ``{'value': float}`` observation and prediction; undefined values give no score."""
        value = _scores.relative_difference(observation["value"], prediction["value"])
        if np.isnan(value):
            # e.g. synchrony of a population smaller than its fixed subsample
            return sciunit.scores.InsufficientDataScore("the statistic is undefined for this population")
        return cls(value)

    def __str__(self):
        return f"relative difference = {self.score:.4g}"


class LogPSDDistance(LowerIsBetter, sciunit.Score):
    """RMS difference of log10 PSDs over the band (decades); ``peak_shift_hz`` attached."""

    _description = "RMS log10-PSD difference over the band (lower is better)"

    @classmethod
    def compute(cls, observation, prediction):
        """Score from ``{'freqs_hz', 'psd', 'peaks_hz'}`` observation and prediction."""
        if not np.allclose(observation["freqs_hz"], prediction["freqs_hz"]):
            raise CortexzooError("Power spectra on different frequency grids cannot be compared.",
                                 "Use the same Welch settings and band for all runs.")
        score = cls(_scores.log_psd_rms(observation["psd"], prediction["psd"]))
        score.peak_shift_hz = float(abs(prediction["peaks_hz"][0] - observation["peaks_hz"][0]))
        return score

    def __str__(self):
        return f"log-PSD RMS distance = {self.score:.4g} decades, peak shift {self.peak_shift_hz:g} Hz"


class PopulationTestMixin:
    """Per-population test: prediction from numpy statistics or, failing that, Elephant.

    Parameters (SciUnit test params)
    --------------------------------
    population : str
        Population to test.
    settings : dict, optional
        Validation settings (defaults from ``validation/defaults.toml``).
    """

    statistic = None  #: key of :class:`PopulationStatistics` this test compares

    def _stats_value(self, model):
        settings = self.params.get("settings") or load_settings()
        population = self.params["population"]
        if hasattr(model, "population_statistics"):
            return self._from_stats(model.population_statistics(population, settings))
        trains = model.produce_spiketrains(population=population)
        return self._from_elephant(elephant_route.population_statistics(trains, settings))

    def _from_stats(self, stats):
        return stats.sample(self.statistic)

    def _from_elephant(self, stats):
        return np.asarray(stats[{"rates": "rates_hz"}.get(self.statistic, self.statistic)])

    def generate_prediction(self, model):
        """The statistic of the test's population for ``model``.

        Parameters
        ----------
        model : sciunit.Model
            With ``ProducesSpikeTrains``; :class:`RunModel` gives the fast route.
        """
        return self._stats_value(model)

    @classmethod
    def from_reference(cls, reference, population, settings=None, name=None, score_type=None, **params):
        """A test whose observation is the reference model's prediction.

        Parameters
        ----------
        reference : sciunit.Model
            Usually a :class:`RunModel` of a reference seed.
        population : str
        settings : dict, optional
        name : str, optional
            Defaults to ``"<population> <statistic>"``.
        score_type : type, optional
            Replace the default score class (e.g. :class:`Wasserstein`, ``EffectSize``).
        **params
            More SciUnit test parameters.

        Returns
        -------
        sciunit.Test
        """
        settings = settings or load_settings()
        probe = cls(observation=None, population=population, settings=settings, **params)
        observation = probe.generate_prediction(reference)
        test = cls(observation=observation, name=name or f"{population} {cls.statistic}",
                   population=population, settings=settings, **params)
        if score_type is not None:
            test.score_type = score_type
        test.reference_name = reference.name
        return test


class FiringRateTest(PopulationTestMixin, ArrayObservation, firing_rate_test):
    """Distribution of single-neuron firing rates (Hz); NetworkUnit ``firing_rate_test``."""

    statistic = "rates"
    score_type = KSDistance


class CVTest(PopulationTestMixin, ArrayObservation, isi_variation_test):
    """Distribution of ISI CVs; NetworkUnit ``isi_variation_test`` with ``variation_measure='cv'``."""

    statistic = "cv"
    score_type = KSDistance
    default_params = {**isi_variation_test.default_params, "variation_measure": "cv"}


class LVTest(PopulationTestMixin, ArrayObservation, isi_variation_test):
    """Distribution of ISI LVs; NetworkUnit ``isi_variation_test`` with ``variation_measure='lv'``."""

    statistic = "lv"
    score_type = KSDistance
    default_params = {**isi_variation_test.default_params, "variation_measure": "lv"}


class CorrelationTest(PopulationTestMixin, ArrayObservation, correlation_dist_test):
    """Distribution of pairwise spike-count correlation coefficients; NetworkUnit ``correlation_dist_test``."""

    statistic = "cc"
    score_type = KSDistance


class ComplexityTest(PopulationTestMixin, ArrayObservation, two_sample_test):
    """Distribution of spike-count complexity (distinct neurons spiking per bin)."""

    statistic = "complexity"
    score_type = KSDistance
    required_capabilities = (ProducesSpikeTrains,)


class SynchronyTest(PopulationTestMixin, sciunit.Test):
    """PD14 synchrony: variance / mean of the population spike-count histogram."""

    statistic = "synchrony"
    score_type = RelativeDifference
    required_capabilities = (ProducesSpikeTrains,)

    def _from_stats(self, stats):
        return {"value": stats.synchrony}

    def _from_elephant(self, stats):
        return {"value": stats["synchrony"]}


class PowerSpectrumTest(PopulationTestMixin, sciunit.Test):
    """Welch PSD of the population rate over the band (NetworkUnit's ``power_spectrum_test`` is broken)."""

    statistic = "psd"
    score_type = LogPSDDistance
    required_capabilities = (ProducesSpikeTrains,)

    def _from_stats(self, stats):
        return {"freqs_hz": stats.psd_freqs_hz, "psd": stats.psd, "peaks_hz": stats.peaks_hz}

    def _from_elephant(self, stats):
        return {"freqs_hz": stats["psd_freqs_hz"], "psd": stats["psd"], "peaks_hz": stats["peaks_hz"]}


TEST_CLASSES = {
    "rates": FiringRateTest, "cv": CVTest, "lv": LVTest, "cc": CorrelationTest,
    "complexity": ComplexityTest, "synchrony": SynchronyTest, "psd": PowerSpectrumTest,
}

#: SciUnit score class per score kind of :mod:`cortexzoo.validation.scores`.
SCORE_CLASSES = {"ks": KSDistance, "wasserstein": Wasserstein, "effect_size": EffectSize}


def build_suite(reference, populations=None, statistics=None, settings=None, name="cortexzoo validation"):
    """A SciUnit test suite: one test per (population, statistic), observed on a reference.

    ``suite.judge(models)`` gives the score matrix models x (population, statistic).

    Parameters
    ----------
    reference : sciunit.Model
        Usually ``RunModel(reference_dir)``.
    populations : list of str, optional
        Defaults to all populations of the reference.
    statistics : list of str, optional
        Subset of ``TEST_CLASSES``; defaults to all.
    settings : dict, optional
    name : str

    Returns
    -------
    cortexzoo.validation.networkunit_compat.TestSuite
    """
    settings = settings or load_settings()
    populations = populations or reference.populations
    statistics = statistics or list(TEST_CLASSES)
    unknown = set(statistics) - set(TEST_CLASSES)
    if unknown:
        raise CortexzooError(f"Unknown statistics {sorted(unknown)}.", f"Use some of {list(TEST_CLASSES)}.")
    tests = [TEST_CLASSES[stat].from_reference(reference, pop, settings=settings)
             for pop in populations for stat in statistics]
    return TestSuite(tests, name=name)


# ================================================================ decisions over seeds


def inference_options(settings=None) -> dict:
    """The options of :func:`cortexzoo.validation.inference.compare_measure` from the settings.

    Parameters
    ----------
    settings : dict or str or pathlib.Path, optional
        Overrides of ``validation/defaults.toml``; the ``scores`` table is used.

    Returns
    -------
    dict
        ``test``, ``fdr``, ``ci_level``, ``ci_method``, ``bootstrap_samples``, ``seed``.
    """
    sc = load_settings(settings)["scores"]
    return {"test": sc["test"], "fdr": sc["fdr"], "ci_level": sc["ci_level"], "ci_method": sc["ci_method"],
            "bootstrap_samples": sc["bootstrap_samples"], "seed": sc["inference_seed"]}


class ProducesSeedMeasures(sciunit.Capability):
    """Gives one value per seed of a scalar measure (:meth:`PopulationStatistics.measures`)."""

    def seed_measures(self, population, measure):
        """Values per seed in seed order and the reasons for undefined ones.

        Parameters
        ----------
        population, measure : str

        Returns
        -------
        values : numpy.ndarray
        reasons : dict
            Seed label -> why its value is NaN (only seeds with a reason).
        """
        self.unimplemented()


class SeedSetModel(sciunit.Model, ProducesSpikeTrains, ProducesSeedMeasures):
    """One model (a variant or the reference) as the set of its seeds.

    Build it from statistics already computed (nothing is recomputed), with
    :meth:`from_runs` from run directories, or with :meth:`from_measure_table`
    from the per-seed measures of ``measures.csv``.

    Parameters
    ----------
    stats : dict
        Seed (run) label -> {population -> PopulationStatistics}, in seed order.
    name : str
        The model's label (the ``model`` column of the decisions).
    runs : list of RunModel, optional
        The seeds' runs, same order; without them there are no spike trains.
    """

    def __init__(self, stats, name, runs=None):
        self.stats = dict(stats)
        self.runs = list(runs or [])
        self._measures = {}  # (seed, population) -> (values, reasons), filled on first use
        self._populations = None  # set when built from a measure table (no statistics to read them from)
        super().__init__(name=name)
        if not self.stats:
            raise CortexzooError(f"Model {name!r} has no seed.", "Give at least one run per model.")

    @classmethod
    def from_runs(cls, run_dirs, name, settings=None, populations=None):
        """Load run directories (one per seed) and compute their statistics.

        Parameters
        ----------
        run_dirs : list of str or pathlib.Path or RunData
        name : str
        settings : dict or str or pathlib.Path, optional
            Overrides of ``validation/defaults.toml``.
        populations : list of str, optional
            Defaults to every population of the runs.

        Returns
        -------
        SeedSetModel
        """
        settings = load_settings(settings)
        runs = [RunModel(d) for d in run_dirs]
        names = [r.name for r in runs]
        labels = names if len(set(names)) == len(names) else [str(r.run.path) for r in runs]
        stats = {label: {pop: run.population_statistics(pop, settings) for pop in populations or run.populations}
                 for label, run in zip(labels, runs)}
        return cls(stats, name, runs)

    @classmethod
    def from_measure_table(cls, measures: pd.DataFrame, seeds, name):
        """A model from the long table of per-seed measures (``pipeline.measure_table``, ``measures.csv``).

        Such a model has neither statistics nor spike trains, only measures.

        Parameters
        ----------
        measures : pandas.DataFrame
            Columns ``run, population, measure, value`` and optionally ``note``
            (why a value is NaN).
        seeds : list of str
            The run labels of this model, in seed order.
        name : str

        Returns
        -------
        SeedSetModel
        """
        missing = [seed for seed in seeds if seed not in set(measures["run"])]
        if missing:
            raise CortexzooError(f"Seeds {', '.join(map(str, missing))} of {name} are not in the measure table.",
                                 "Pass run labels the table has (a typo would read as 'consistent').")
        model = cls({seed: {} for seed in seeds}, name)
        model._populations = list(dict.fromkeys(measures["population"]))
        mine = measures[measures["run"].isin(list(seeds))]
        notes = mine["note"] if "note" in mine else pd.Series("", index=mine.index)
        for seed in seeds:
            for pop in model._populations:
                model._measures[(seed, pop)] = ({}, {})
        for row, note in zip(mine.itertuples(), notes):
            values, reasons = model._measures[(row.run, row.population)]
            values[row.measure] = float(row.value)
            if isinstance(note, str) and note:
                reasons[row.measure] = note
        return model

    @property
    def seeds(self):
        """Seed (run) labels in seed order."""
        return list(self.stats)

    @property
    def populations(self):
        """Population names of the first seed."""
        return self._populations or list(self.stats[self.seeds[0]])

    def seed_statistics(self, population):
        """Every seed's statistics of one population, in seed order.

        Parameters
        ----------
        population : str

        Returns
        -------
        list of cortexzoo.validation.statistics.PopulationStatistics
        """
        self._check_population(population)
        if not self.stats[self.seeds[0]]:
            raise CortexzooError(f"Model {self.name!r} was built from a measure table and has no statistics.",
                                 "Build it with SeedSetModel(stats, name) or SeedSetModel.from_runs(run_dirs, name).")
        return [self.stats[seed][population] for seed in self.seeds]

    def seed_measures(self, population, measure):
        """One value of ``measure`` per seed, in seed order, and the reasons for undefined ones.

        Parameters
        ----------
        population, measure : str
            ``measure`` is a key of :meth:`PopulationStatistics.measures`.

        Returns
        -------
        values : numpy.ndarray
            NaN where the measure is undefined in a seed.
        reasons : dict
            Seed label -> why its value is NaN, for the seeds that say why.
        """
        self._check_population(population)
        per_seed = [self._seed_measures(seed, population) for seed in self.seeds]
        if not any(measure in values for values, _ in per_seed):
            known = sorted({m for values, _ in per_seed for m in values})
            raise CortexzooError(f"Model {self.name!r} has no measure {measure!r} in {population}.",
                                 f"Use one of {', '.join(known)}.")
        values = np.array([values.get(measure, np.nan) for values, _ in per_seed], dtype=float)
        reasons = {seed: why[measure] for seed, (_, why) in zip(self.seeds, per_seed) if why.get(measure)}
        return values, reasons

    def _seed_measures(self, seed, population):
        key = (seed, population)
        if key not in self._measures:
            self._measures[key] = scalar_measures(vars(self.stats[seed][population]))
        return self._measures[key]

    def produce_spiketrains(self, population=None, **kwargs):
        """Spike trains of the first seed's run (one ``neo.SpikeTrain`` per neuron).

        A SciUnit spike-train test sees one realisation only; a test that
        needs every seed can use :attr:`runs` or :meth:`seed_statistics`.

        Parameters
        ----------
        population : str, optional
        **kwargs
            Ignored.

        Returns
        -------
        list of neo.SpikeTrain

        Raises
        ------
        CortexzooError
            When the model was built from statistics or measures only (no runs).
        """
        return self._first_run().produce_spiketrains(population=population)

    def produce_grouped_spiketrains(self, **kwargs):
        """One list of spike trains per population of the first seed's run.

        Returns
        -------
        list of list of neo.SpikeTrain
        """
        return self._first_run().produce_grouped_spiketrains()

    def _first_run(self):
        if not self.runs:
            raise CortexzooError(f"Model {self.name!r} was built from statistics only and has no spike trains.",
                                 "Build it with SeedSetModel.from_runs(run_dirs, name) for spike-train tests.")
        return self.runs[0]

    def _check_population(self, population):
        if population not in self.populations:
            raise CortexzooError(f"Model {self.name!r} has no population {population!r}.",
                                 f"Use one of {', '.join(self.populations)}.")


class EffectScore(sciunit.Score):
    """Seed-level comparison of one measure: the relative effect, with everything behind it.

    The score is ``relative_effect`` (variant mean - reference mean) / |reference
    mean|. The attributes are the fields of
    :func:`cortexzoo.validation.inference.compare_measure` (``reference_mean``
    ... ``p_value``, ``note``) plus ``unit``. Undefined comparisons (too few
    seeds with a value) have NaN values and say why in ``note``.
    """

    _best = 0.0
    _description = "Relative effect (variant - reference) / |reference| over seeds; p_value from the seed-level test"
    FIELDS = tuple(c for c in inference.DECISION_COLUMNS
                   if c not in ("model", "population", "measure", "unit", "q_value", "decision"))

    @classmethod
    def compute(cls, observation, prediction, options, unit=""):
        """Compare the reference seeds (observation) with the variant seeds (prediction).

        Parameters
        ----------
        observation, prediction : dict
            ``values`` (one per seed) and ``reasons`` (seed -> why NaN), as
            :meth:`MeasureTest.generate_prediction` gives them.
        options : dict
            As :func:`cortexzoo.validation.inference.compare_measure`.
        unit : str

        Returns
        -------
        EffectScore
        """
        res = inference.compare_measure(observation["values"], prediction["values"], options)
        if res["n_variant_seeds"] == 0:
            # The variant's own reason (e.g. "no neuron has the 10 ISIs CV needs") says more than the counts.
            why = list(prediction["reasons"].values())
            res["note"] = why[0] if why else "undefined in every variant seed"
        score = cls(res["relative_effect"])
        for key in cls.FIELDS:
            setattr(score, key, res[key])
        score.unit = unit
        return score

    @property
    def norm_score(self):
        """``1 / (1 + |relative effect|)`` (1: same mean as the reference); None when undefined."""
        return None if math.isnan(self.score) else 1.0 / (1.0 + abs(self.score))

    @property
    def sort_key(self):
        """Same as :attr:`norm_score`, NaN when undefined."""
        return float("nan") if self.norm_score is None else self.norm_score

    def __str__(self):
        if not np.isfinite(self.p_value):
            return f"undefined: {self.note}"
        return (f"effect {self.effect:+.4g} {self.unit} [{self.effect_ci_low:.4g}, {self.effect_ci_high:.4g}], "
                f"relative {self.score:+.1%}, p = {self.p_value:.3g}")


_OPTION_KEYS = ("test", "ci_level", "ci_method", "bootstrap_samples", "seed")


class MeasureTest(sciunit.Test):
    """Does the variant's seeds' value of one measure come from the reference seeds' distribution?

    Parameters (SciUnit test params)
    --------------------------------
    population : str
    measure : str
        A key of :meth:`PopulationStatistics.measures`, e.g. ``rate_hz``.
    options : dict, optional
        ``test``, ``ci_level``, ``ci_method``, ``bootstrap_samples``, ``seed``
        (:func:`cortexzoo.validation.inference.compare_measure`); missing
        keys come from ``validation/defaults.toml``.

    The observation is the reference's prediction (:meth:`from_reference`).
    """

    required_capabilities = (ProducesSeedMeasures,)
    score_type = EffectScore

    def compute_params(self):
        """Complete ``options`` with the defaults, so a partial dict still names every choice."""
        # Complete dicts skip reading defaults.toml: a suite builds one test per (population, measure).
        given = self.params.get("options") or {}
        self.params["options"] = given if set(given) >= set(_OPTION_KEYS) else {**inference_options(), **given}

    def generate_prediction(self, model):
        """The model's per-seed values of the test's (population, measure).

        Parameters
        ----------
        model : sciunit.Model
            With :class:`ProducesSeedMeasures` (a :class:`SeedSetModel`).

        Returns
        -------
        dict
            ``values`` (numpy.ndarray, seed order), ``reasons`` (seed -> why NaN).
        """
        values, reasons = model.seed_measures(self.params["population"], self.params["measure"])
        return {"values": values, "reasons": reasons}

    def compute_score(self, observation, prediction):
        """:class:`EffectScore` of the prediction against the observation (undefined: NaN, not an error)."""
        return EffectScore.compute(observation, prediction, self.params["options"],
                                   measure_unit(self.params["measure"]))

    @classmethod
    def from_reference(cls, reference, population, measure, options=None):
        """A test whose observation is the reference model's per-seed values.

        Parameters
        ----------
        reference : SeedSetModel
        population, measure : str
        options : dict, optional

        Returns
        -------
        MeasureTest
        """
        probe = cls(observation=None, population=population, measure=measure, options=options)
        return cls(observation=probe.generate_prediction(reference), name=f"{population} {measure}",
                   population=population, measure=measure, options=probe.params["options"])



def decision_suite(reference, populations=None, measures=None, options=None, name="cortexzoo decisions"):
    """One :class:`MeasureTest` per (population, measure), observed on the reference seeds.

    Parameters
    ----------
    reference : SeedSetModel
    populations : list of str, optional
        Defaults to the reference's populations.
    measures : list of str, optional
        Defaults to ``scores.measures`` of ``validation/defaults.toml``.
    options : dict, optional
        As :class:`MeasureTest` (``fdr`` is ignored here; see :func:`decision_table`).
    name : str

    Returns
    -------
    cortexzoo.validation.networkunit_compat.TestSuite
        Tests in population-then-measure order.
    """
    options = {**inference_options(), **(options or {})}
    populations = populations or reference.populations
    measures = measures or load_settings()["scores"]["measures"]
    tests = [MeasureTest.from_reference(reference, pop, measure, options) for pop in populations for measure in measures]
    return TestSuite(tests, name=name)


def decision_table(suite_or_matrix, variants, fdr: float) -> pd.DataFrame:
    """Decisions of every variant: one Benjamini-Hochberg family per variant (a row of the score matrix).

    Parameters
    ----------
    suite_or_matrix : sciunit.TestSuite or sciunit.scores.collections.ScoreMatrix
        A suite (judged here on ``variants``) or the score matrix of an
        earlier ``suite.judge(variants)``. Tests other than
        :class:`MeasureTest` enter as the module docstring describes.
    variants : list of sciunit.Model
        Usually :class:`SeedSetModel` s; their order is the table's order.
    fdr : float
        False discovery rate, e.g. 0.05.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`cortexzoo.validation.inference.DECISION_COLUMNS`, per
        variant in the suite's test order (population, then measure).
    """
    variants = list(variants)
    if not variants:
        return pd.DataFrame(columns=inference.DECISION_COLUMNS)
    matrix = suite_or_matrix
    if isinstance(suite_or_matrix, sciunit.TestSuite):
        matrix = suite_or_matrix.judge(variants)
    parts = []
    for model in variants:
        rows = pd.DataFrame([_decision_row(matrix[model, test], test, model) for test in matrix.tests])
        parts.append(inference.decide(rows, fdr)[inference.DECISION_COLUMNS])
    return pd.concat(parts, ignore_index=True)


def _decision_row(score, test, model) -> dict:
    """One row of the decision table from any SciUnit score (see the module docstring's contract)."""
    row = {"model": model.name, "population": test.params.get("population", ""),
           "measure": test.params.get("measure", test.name), "unit": getattr(score, "unit", "")}
    for key in EffectScore.FIELDS:
        row[key] = getattr(score, key, float("nan"))
    row["note"] = getattr(score, "note", "") or ""
    if getattr(score, "p_value", None) is None:
        row["p_value"], row["note"] = float("nan"), f"{test.name} gives no p-value"
    return row
