"""SciUnit/NetworkUnit layer: one test per compatibility fix (unfixed original still fails), suite == pipeline."""

import re
from pathlib import Path

import numpy as np
import pytest
import sciunit
from networkunit import scores as nu_scores
from networkunit.capabilities.ProducesSpikeTrains import ProducesSpikeTrains
from networkunit import tests as nu_tests
from sciunit.errors import ObservationError
from sciunit.scores.collections import ScoreMatrix as SciunitScoreMatrix
from validation_synth import make_run

from cortexzoo.validation import networkunit_compat as compat
from cortexzoo.validation import scores as S
from cortexzoo.validation.settings import load_settings
from cortexzoo.validation.sciunit_tests import (CorrelationTest, CVTest, FiringRateTest, LVTest, RunModel,
                                                TEST_CLASSES, build_suite)

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("sciunit")
    pops = {"L4E": 150, "L4I": 80}
    return (RunModel(make_run(root / "ref", seed=1, populations=pops)),
            RunModel(make_run(root / "other", seed=2, populations=pops, rates_hz={"L4I": 9.0})))


class SpikeTrainsOnly(sciunit.Model, ProducesSpikeTrains):
    """A model offering only neo spike trains: forces the Elephant route."""

    def __init__(self, run_model):
        self.inner = run_model
        super().__init__(name="trains-only")

    def produce_spiketrains(self, population=None, **kwargs):
        return self.inner.produce_spiketrains(population=population)


# ---------------------------------------------------------------- one test per compatibility fix

def test_fix1_unfixed_networkunit_tests_reject_array_observations(models):
    ref, other = models
    plain = type("Plain", (nu_tests.firing_rate_test,), {"score_type": nu_scores.ks_distance})
    observation = plain().generate_prediction(ref)
    with pytest.raises(ObservationError, match="not a dictionary"):
        plain(observation=observation).judge(other)
    fixed = type("Fixed", (compat.ArrayObservation, nu_tests.firing_rate_test), {"score_type": nu_scores.ks_distance})
    assert 0 < float(fixed(observation=observation).judge(other).score) <= 1


def test_fix2_unfixed_distance_scores_rank_larger_distance_as_better():
    near, far = nu_scores.ks_distance(0.1), nu_scores.ks_distance(0.9)
    assert far > near  # SciUnit's ordering: the worse fit wins
    assert compat.KSDistance(0.1) > compat.KSDistance(0.9)
    assert compat.EffectSize(0.0).norm_score == 1.0 and compat.EffectSize(3.0).norm_score == 0.25
    ranked = sorted([compat.KSDistance(d) for d in (0.5, 0.1, 0.9)], key=lambda s: s.sort_key, reverse=True)
    assert [float(s.score) for s in ranked] == [0.1, 0.5, 0.9]  # best first = lowest distance first


def test_fix3_unfixed_score_matrix_tables_fail_on_pandas3(models):
    ref, other = models
    suite = build_suite(ref, statistics=["rates"])
    fixed = suite.judge([ref, other])
    unfixed = SciunitScoreMatrix(fixed.tests, fixed.models, scores=fixed.values)
    with pytest.raises(AttributeError, match="applymap"):
        unfixed.scores
    with pytest.raises(AttributeError, match="applymap"):
        unfixed.norm_scores
    table = fixed.scores
    assert table.shape == (2, 2) and (table.iloc[0] == 0).all() and (table.iloc[1] > 0).all()
    assert (fixed.norm_scores.iloc[0] == 1).all()
    assert "<table" in fixed._repr_html_()


# ---------------------------------------------------------------- consistency

def test_suite_matrix_equals_pipeline_scores(models):
    ref, other = models
    settings = load_settings()
    matrix = build_suite(ref, settings=settings).judge([ref, other]).scores
    assert matrix.shape == (2, 2 * len(TEST_CLASSES))
    for pop in ref.populations:
        a, b = ref.population_statistics(pop, settings), other.population_statistics(pop, settings)
        raw = S.score_pair(a, b)
        row = matrix.loc["other"]
        for stat in TEST_CLASSES:
            kind = settings["scores"]["primary"][stat]
            if np.isnan(raw[(stat, kind)]):  # undefined (population below a fixed subsample): no score
                assert "undefined" in str(row[f"{pop} {stat}"]), (pop, stat)  # InsufficientDataScore's message
                continue
            assert row[f"{pop} {stat}"] == pytest.approx(raw[(stat, kind)], abs=1e-12), (pop, stat)
    assert row["L4I rates"] > row["L4E rates"]  # the planted change shows in the matrix


def test_networkunit_predictions_equal_fast_predictions(models):
    ref, _ = models
    settings = load_settings()
    for pop in ref.populations:
        fast = ref.population_statistics(pop, settings)
        counts = np.array([len(st) for st in ref.produce_spiketrains(population=pop)])
        # NetworkUnit's own generate_prediction (Elephant inside), bypassing our override.
        rates = nu_tests.firing_rate_test.generate_prediction(FiringRateTest(population=pop), ref)
        np.testing.assert_allclose(rates, fast.rates_hz, rtol=0, atol=1e-12)
        for cls, key, need in ((CVTest, "cv", fast.min_spikes_cv), (LVTest, "lv", fast.min_spikes_lv)):
            nu = nu_tests.isi_variation_test.generate_prediction(cls(population=pop), ref)
            np.testing.assert_allclose(nu[counts >= need], getattr(fast, key), rtol=0, atol=1e-12)
        test = CorrelationTest(population=pop)
        trains = ref.produce_spiketrains(population=pop)
        cc = test.generate_correlations(spiketrains=[trains[i] for i in fast.cc_neurons])
        np.testing.assert_allclose(cc, fast.cc, rtol=0, atol=1e-12)


def test_elephant_fallback_for_plain_spike_train_models(models):
    ref, _ = models
    plain = SpikeTrainsOnly(ref)
    for stat, cls in TEST_CLASSES.items():
        test = cls(None, population="L4I")
        slow, fast = test.generate_prediction(plain), test.generate_prediction(ref)
        if isinstance(fast, dict):
            for key in fast:
                np.testing.assert_allclose(slow[key], fast[key], rtol=1e-12, atol=1e-12)
        else:
            np.testing.assert_allclose(slow, fast, rtol=0, atol=1e-12)


def fraction_silent(run, population):
    """Fraction of a population's neurons without a spike in the analysis window, from the raw arrays."""
    ids, _ = run.window(population)
    return 1.0 - len(np.unique(ids)) / run.sizes[population]


def test_readme_example_runs(models, tmp_path):
    """The README's example test scores exactly what it says, and ranks a close model above a far one.

    Fails if the example (or ``RelativeDifference``) computes its score from
    anything but |variant - reference| / reference of the silent fractions, if
    ``norm_score`` is not 1 / (1 + score), or if SciUnit's ordering is inverted
    again (a distance ranked as "larger is better", the bug of fix 2).
    """
    ref, other = models
    text = (Path(__file__).resolve().parents[1] / "validation" / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    namespace = {"REFERENCE_DIR": ref.run.path, "VARIANT_DIR": other.run.path}
    exec(compile(code, "README.md", "exec"), namespace)
    test = namespace["test"]
    score = test.judge(namespace["variant"])

    observed, predicted = fraction_silent(ref.run, "L4E"), fraction_silent(other.run, "L4E")
    assert 0 < observed < 1  # some L4E neurons are silent, so the relative difference is finite
    expected = abs(predicted - observed) / observed
    assert float(score.score) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert score.norm_score == pytest.approx(1.0 / (1.0 + expected), rel=1e-12)

    # A far candidate (L4E much slower, so many more silent neurons) must rank below the close one.
    far = RunModel(make_run(tmp_path / "far", seed=3, populations=ref.run.sizes, rates_hz={"L4E": 0.3}))
    far_score = test.judge(far)
    assert float(far_score.score) > float(score.score)
    assert far_score.norm_score < score.norm_score and far_score.sort_key < score.sort_key
