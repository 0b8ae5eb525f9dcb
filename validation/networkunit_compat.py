"""Every compatibility fix for NetworkUnit 0.2.2 / SciUnit 0.2.8 with today's stack, in one place.

Nothing here is monkey-patched into the libraries; each fix is a subclass
that cortexzoo uses instead of the original. ``tests/test_validation_sciunit.py``
has one test per fix that runs the *unfixed* original and shows it still
fails, so a fix can be deleted as soon as its test starts failing.

1. :class:`ArrayObservation` -- SciUnit 0.2.8's ``Test.validate_observation``
   rejects any observation that is not a dict ("Observation is not a
   dictionary."), but NetworkUnit's two-sample tests (firing rate, ISI
   variation, correlation distribution) use arrays of samples as
   observations, so ``judge`` fails for every one of them.
2. :class:`KSDistance`, :class:`EffectSize`, :class:`LowerIsBetter` --
   NetworkUnit's distance scores leave SciUnit's ``norm_score`` (and
   ``sort_key``) equal to the distance, while SciUnit treats a larger
   ``norm_score`` as better: it colours, compares (``>``) and ranks a worse
   model as better. The fix maps a distance ``d`` to ``1 / (1 + d)``.
3. :class:`ScoreMatrix`, :class:`TestSuite` -- ``ScoreMatrix.scores``,
   ``.norm_scores``, ``.related_data`` and the HTML view call
   ``DataFrame.applymap`` / ``Styler.applymap``, which pandas 3 removed.

Not fixed because cortexzoo does not use them (own classes replace them):
``power_spectrum_test`` (in-place z-scoring of an integer histogram fails),
``mwu_statistic`` (``mannwhitneyu(alternative=None)``), the covariance and
eigenvalue tests.
"""

from __future__ import annotations

import logging

import pandas as pd
import sciunit
from networkunit.scores import effect_size as _nu_effect_size
from networkunit.scores import ks_distance as _nu_ks_distance
from sciunit.scores.collections import ScoreMatrix as _SciunitScoreMatrix

# ---------------------------------------------------------------- fix 1


class ArrayObservation:
    """Mixin for NetworkUnit two-sample tests: accept a sample array as observation.

    Keeps SciUnit's pre/post-processing hooks of the score type, drops only the
    dict requirement.
    """

    def validate_observation(self, observation):
        """Return the observation unchanged apart from the score type's hooks."""
        observation = self.score_type.observation_preprocess(observation)
        return self.score_type.observation_postprocess(observation)


# ---------------------------------------------------------------- fix 2


class LowerIsBetter:
    """Mixin for distance scores: SciUnit's ``norm_score`` is ``1 / (1 + d)``, larger is better."""

    _best = 0.0

    @property
    def norm_score(self):
        """``1 / (1 + distance)`` in (0, 1]; 1 is a perfect match."""
        return 1.0 / (1.0 + float(self.score))

    @property
    def sort_key(self):
        """Same as :attr:`norm_score`, so SciUnit sorts better models first."""
        return self.norm_score

    @classmethod
    def _rewrap(cls, score):
        # NetworkUnit's compute() returns an instance of its own class; carry its attributes over.
        new = cls(float(score.score))
        for key, value in vars(score).items():
            if key != "score":
                setattr(new, key, value)
        return new


class KSDistance(LowerIsBetter, _nu_ks_distance):
    """NetworkUnit's Kolmogorov-Smirnov distance with lower-is-better ordering."""

    @classmethod
    def compute(cls, observation, prediction, **kwargs):
        """KS statistic between observation and prediction samples (``scipy.stats.ks_2samp``)."""
        return cls._rewrap(_nu_ks_distance.compute(observation, prediction, **kwargs))


class EffectSize(LowerIsBetter, _nu_effect_size):
    """NetworkUnit's effect size with lower-is-better ordering."""

    @classmethod
    def compute(cls, observation, prediction, **kwargs):
        """``|mean(obs) - mean(pred)| / s_pooled`` as in NetworkUnit."""
        return cls._rewrap(_nu_effect_size.compute(observation, prediction, **kwargs))


# ---------------------------------------------------------------- fix 3


class ScoreMatrix(_SciunitScoreMatrix):
    """SciUnit's score matrix with the tables that pandas 3 broke working again."""

    def _cells(self, fn) -> pd.DataFrame:
        # Plain DataFrame indexed by model and test names (SciUnit indexes by the objects).
        names = [[getattr(x, "name", x) for x in axis] for axis in (self.index, self.columns)]
        return pd.DataFrame(self.values, index=names[0], columns=names[1]).map(fn)

    @property
    def scores(self) -> pd.DataFrame:
        """Raw score values, models x tests (or transposed), indexed by names."""
        return self._cells(lambda s: s.score)

    score = scores

    @property
    def norm_scores(self) -> pd.DataFrame:
        """SciUnit norm scores (larger is better)."""
        return self._cells(lambda s: s.norm_score)

    @property
    def related_data(self) -> pd.DataFrame:
        """Each score's ``related_data``."""
        return self._cells(lambda s: s.related_data)

    def _repr_html_(self):
        return self.scores._repr_html_()


class TestSuite(sciunit.TestSuite):
    """SciUnit test suite whose ``judge`` returns the fixed :class:`ScoreMatrix`.

    Parameters
    ----------
    tests : list of sciunit.Test
    name : str, optional
    """

    __test__ = False  # not a pytest test class

    def judge(self, models, *args, quiet: bool = True, **kwargs):
        """Judge every model on every test.

        Parameters
        ----------
        models : sciunit.Model or list of sciunit.Model
        quiet : bool
            Silence SciUnit's one coloured log line per score.
        *args, **kwargs
            Passed to ``sciunit.TestSuite.judge``.

        Returns
        -------
        ScoreMatrix
        """
        logger = logging.getLogger("sciunit_scores")
        level = logger.level
        if quiet:
            logger.setLevel(logging.CRITICAL + 100)  # score levels go up to 100
        try:
            matrix = super().judge(models, *args, **kwargs)
        finally:
            logger.setLevel(level)
        if isinstance(matrix, _SciunitScoreMatrix):
            return ScoreMatrix(matrix.tests, matrix.models, scores=matrix.values, weights=matrix.weights_ or None)
        return matrix
