"""SciUnit models and tests: every validation statistic as a SciUnit test.

Models (:class:`RunModel`) wrap run directories and have NetworkUnit's
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
from pathlib import Path

import numpy as np
import sciunit
from networkunit.capabilities.ProducesSpikeTrains import ProducesSpikeTrains
from networkunit.scores import wasserstein_distance as _nu_wasserstein
from networkunit.tests import correlation_dist_test, firing_rate_test, isi_variation_test, two_sample_test

from cortexzoo.errors import CortexzooError
from cortexzoo.network.output import RunData, load_run
from cortexzoo.validation import elephant_route
from cortexzoo.validation import scores as _scores
from cortexzoo.validation.networkunit_compat import ArrayObservation, EffectSize, KSDistance, LowerIsBetter, TestSuite
from cortexzoo.validation.settings import load_settings
from cortexzoo.validation.statistics import population_statistics


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
