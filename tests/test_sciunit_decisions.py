"""The decision table through SciUnit (issue 13, one scoring path): SeedSetModel, MeasureTest, decision_table."""

import numpy as np
import pandas as pd
import pytest
import sciunit
from validation_synth import make_run

from cortexzoo.errors import CortexzooError
from cortexzoo.network.output import load_run
from cortexzoo.validation import inference
from cortexzoo.validation.networkunit_compat import TestSuite
from cortexzoo.validation.pipeline import measure_table
from cortexzoo.validation.sciunit_tests import (EffectScore, FiringRateTest, RelativeDifference, RunModel,
                                                SeedSetModel, decision_suite, decision_table, inference_options)
from cortexzoo.validation.settings import decided_measures, load_settings
from cortexzoo.validation.statistics import MEASURE_UNITS, fano_key
from cortexzoo.validation.statistics import run_statistics

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

# L23I has 120 neurons: the fixed CC and synchrony subsamples must fit into it.
SETTINGS = load_settings({"statistics": {"cc_subsample_neurons": 60, "synchrony_subsample_neurons": 60}})
FDR = SETTINGS["scores"]["fdr"]
MEASURES = decided_measures(SETTINGS, [*MEASURE_UNITS, *(fano_key(w) for w in SETTINGS["statistics"]["fano_windows_ms"])])
REFERENCE = [(f"ref{s}", {"seed": s}) for s in range(1, 6)]
VARIANTS = {
    "same_model": [(f"same{s}", {"seed": 100 + s}) for s in range(3)],
    "doubled_L4E": [(f"doubled{s}", {"seed": 110 + s, "rates_hz": {"L4E": 8.0}}) for s in range(3)],
    # L4I silent in every seed (undefined measures with the statistics' reason); L23E silent in one
    # seed only, so its spike measures are defined in 2 of 3 variant seeds.
    "silent_L4I": [(f"silent{s}", {"seed": 130 + s, "silent": ("L4I", "L23E") if s == 0 else ("L4I",)})
                   for s in range(3)],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run directories and their statistics: {label: path}, {label: {population: PopulationStatistics}}."""
    root = tmp_path_factory.mktemp("seedsets")
    every = REFERENCE + [seed for members in VARIANTS.values() for seed in members]
    dirs = {label: make_run(root / label, **kw) for label, kw in every}
    stats = {label: run_statistics(load_run(path), SETTINGS) for label, path in dirs.items()}
    return dirs, stats


def seed_set(stats, members, name):
    return SeedSetModel({label: stats[label] for label, _ in members}, name)


@pytest.fixture(scope="module")
def models(runs):
    _, stats = runs
    return seed_set(stats, REFERENCE, "reference"), [seed_set(stats, m, name) for name, m in VARIANTS.items()]


def variant_decisions_table(stats, options):
    """The decisions as pipeline.decision_rows made them before the switch: inference.variant_decisions per variant."""
    measures = measure_table(stats)
    measures = measures[measures["measure"].isin(MEASURES)]
    units = dict(zip(measures["measure"], measures["unit"]))
    reasons = {(r.run, r.population, r.measure): r.note for r in measures.itertuples() if r.note}
    ref = [label for label, _ in REFERENCE]
    return pd.concat([inference.variant_decisions(measures, ref, [label for label, _ in members], name, options,
                                                  units, reasons)
                      for name, members in VARIANTS.items()], ignore_index=True)


@pytest.mark.parametrize("override", [{}, {"test": "permutation", "ci_method": "bootstrap", "bootstrap_samples": 500}])
def test_suite_decisions_equal_variant_decisions(runs, models, override):
    """The SciUnit path gives exactly inference.variant_decisions' table: rows, numbers, NaNs, notes.

    Catches a second implementation of the statistics drifting from inference, a Benjamini-Hochberg
    family that is not one variant (pooled over variants or per population), rows out of
    population-then-measure order, options (test, interval, bootstrap) not reaching compare_measure,
    seeds reordered (the bootstrap depends on the order), and the statistics' reason for an undefined
    measure replaced by a generic note.
    """
    _, stats = runs
    reference, variants = models
    options = {**inference_options(SETTINGS), **override}
    table = decision_table(decision_suite(reference, SETTINGS["scores"]["populations"] or None,
                                          MEASURES, options), variants, FDR)
    expected = variant_decisions_table(stats, options)
    pd.testing.assert_frame_equal(table, expected, check_exact=True)
    # Not vacuous: every kind of row is there.
    by = table.set_index(["model", "population", "measure"])
    assert by.loc[("doubled_L4E", "L4E", "rate_hz"), "decision"] == "differs" or override
    assert by.loc[("silent_L4I", "L4I", "lv"), "decision"].startswith("undefined: no neuron has the 2 inter-spike")
    assert by.loc[("silent_L4I", "L23E", "lv"), "note"].startswith("defined in 5 of 5 reference and 2 of 3 variant seeds;")
    assert (table["decision"] == "consistent").sum() > 50 and table["p_value"].isna().sum() >= 9


def test_every_constructor_gives_the_same_table(runs, models):
    """Models from run directories and from the measure table decide exactly like models from statistics.

    Catches from_runs computing the statistics with other settings (or the defaults instead of the
    overrides), seed labels or order lost, and from_measure_table dropping the reasons of undefined values.
    """
    dirs, stats = runs
    reference, variants = models
    options = inference_options(SETTINGS)
    measures = MEASURES
    want = decision_table(decision_suite(reference, None, measures, options), variants[1:], FDR)

    def from_dirs(members, name):
        return SeedSetModel.from_runs([dirs[label] for label, _ in members], name, SETTINGS)

    table = measure_table(stats)

    def from_table(members, name):
        return SeedSetModel.from_measure_table(table, [label for label, _ in members], name)

    for build in (from_dirs, from_table):
        ref = build(REFERENCE, "reference")
        var = [build(VARIANTS[name], name) for name in ("doubled_L4E", "silent_L4I")]
        got = decision_table(decision_suite(ref, None, measures, options), var, FDR)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert ref.seeds == [label for label, _ in REFERENCE]
    with pytest.raises(CortexzooError, match="no measure 'rate'"):
        ref.seed_measures("L4E", "rate")
    with pytest.raises(CortexzooError, match="has no statistics"):
        ref.seed_statistics("L4E")


class SilentFractionScore(sciunit.Score):
    """A user's score with a p-value: the difference of the silent fractions over seeds."""


class SilentFractionTest(sciunit.Test):
    """A user's own seed-level test: fraction of silent neurons per seed, pooled t-test over seeds."""

    required_capabilities = ()
    score_type = SilentFractionScore

    def generate_prediction(self, model):
        fractions = [np.mean(st.rates_hz == 0) for st in model.seed_statistics(self.params["population"])]
        return {"values": np.array(fractions)}

    def compute_score(self, observation, prediction):
        ref, var = observation["values"], prediction["values"]
        score = SilentFractionScore(float(var.mean() - ref.mean()))
        score.p_value = inference.t_test(ref, var)
        score.effect, score.unit = score.score, "1"
        return score


class MeanRateDistance(sciunit.Test):
    """A user's test without a p-value: relative difference of the first seed's mean rate."""

    score_type = RelativeDifference

    def generate_prediction(self, model):
        return {"value": model.seed_measures(self.params["population"], "rate_hz")[0][0]}


def test_users_own_tests_join_the_table(models):
    """A user's SciUnit test appears as rows: with a p-value inside the variant's BH family, without one undefined.

    Catches user tests dropped from the table, a p-value left out of the family (q-values computed
    without it), and a score without p-value that breaks the table or changes the other q-values.
    """
    reference, variants = models
    suite = decision_suite(reference, ["L4E", "L4I"], ["rate_hz", "lv"], inference_options(SETTINGS))
    probe = SilentFractionTest(None, population="L4I")
    mine = SilentFractionTest(probe.generate_prediction(reference), name="L4I silent fraction",
                              population="L4I", measure="silent_fraction")
    distance = MeanRateDistance(MeanRateDistance(None, population="L4E").generate_prediction(reference),
                                name="L4E rate distance", population="L4E")
    table = decision_table(TestSuite(suite.tests + [mine, distance]), variants, FDR)
    assert len(table) == len(variants) * (len(suite.tests) + 2)
    for name, rows in table.groupby("model", sort=False):
        rows = rows.set_index(["population", "measure"])
        assert np.isfinite(rows.loc[("L4I", "silent_fraction"), "p_value"]) and rows.loc[("L4I", "silent_fraction"),
                                                                                       "unit"] == "1"
        q = inference.benjamini_hochberg(rows["p_value"].to_numpy(float))
        np.testing.assert_array_equal(rows["q_value"].to_numpy(float), q)  # the user's p is in the family
        assert rows.loc[("L4E", "L4E rate distance"), "decision"] == "undefined: L4E rate distance gives no p-value"
    alone = decision_table(TestSuite(suite.tests + [mine]), variants, FDR)
    together = table[table["measure"] != "L4E rate distance"].reset_index(drop=True)
    pd.testing.assert_frame_equal(together, alone)  # a score without p-value changes no other decision
    silent = table.set_index(["model", "measure"]).loc[("silent_L4I", "silent_fraction")]
    assert silent["decision"] == "differs" and silent["effect"] > 0.5


def test_score_matrix_has_one_row_per_variant(models):
    """suite.judge(variants) is the score matrix variants x (population, measure), holding the relative effects.

    Catches the seeds of all variants judged as one model, a transposed matrix, scores that are not the
    table's relative effects, and decision_table giving another answer from the matrix than from the suite.
    """
    reference, variants = models
    suite = decision_suite(reference, None, MEASURES, inference_options(SETTINGS))
    matrix = suite.judge(variants)
    scores = matrix.scores
    assert list(scores.index) == [v.name for v in variants]
    assert scores.shape == (len(variants), 4 * len(MEASURES))
    table = decision_table(matrix, variants, FDR)
    pd.testing.assert_frame_equal(table, decision_table(suite, variants, FDR))
    np.testing.assert_array_equal(scores.to_numpy(float).ravel(), table["relative_effect"].to_numpy(float))
    assert all(isinstance(s, EffectScore) for s in matrix.values.ravel())


def test_undefined_comparisons_are_scores_not_errors(runs, models):
    """Too few seeds give an EffectScore with NaN and its note; SciUnit's logging and colouring take it.

    Catches an exception (or SciUnit ErrorScore) instead of an undefined score, and a NaN norm score
    that crashes SciUnit's score logging (``math.floor(nan)``) in suite.judge.
    """
    _, stats = runs
    _, variants = models
    lone = seed_set(stats, REFERENCE[:1], "one seed")
    matrix = decision_suite(lone, ["L4E"], ["rate_hz", "cv"], inference_options(SETTINGS)).judge(variants)
    for score in matrix.values.ravel():
        assert isinstance(score, EffectScore) and np.isnan(score.score) and score.norm_score is None
        assert "at least 2 reference seeds" in score.note and str(score).startswith("undefined: defined in 1 of 1")
        score.log()
        assert score.color() == (128, 128, 128)


def test_spike_trains_come_from_the_first_seed(runs, models):
    """A model from run directories gives its first seed's spike trains to spike-train tests; one from statistics says it has none.

    Catches spike trains of another seed (or of all seeds concatenated), and an AttributeError or
    recursion (NetworkUnit's default produce_spiketrains calls produce_grouped_spiketrains and back)
    instead of a clear error.
    """
    dirs, _ = runs
    labels = [label for label, _ in VARIANTS["doubled_L4E"]]
    model = SeedSetModel.from_runs([dirs[lb] for lb in labels], "doubled_L4E", SETTINGS, populations=["L4I"])
    first = RunModel(dirs[labels[0]])
    for got, want in zip(model.produce_spiketrains(population="L4I"), first.produce_spiketrains(population="L4I")):
        np.testing.assert_array_equal(got.magnitude, want.magnitude)
    ref = RunModel(dirs["ref1"])
    test = FiringRateTest.from_reference(ref, "L4I", settings=SETTINGS)
    assert float(test.judge(model).score) == pytest.approx(float(test.judge(first).score), abs=1e-12)
    _, variants = models
    with pytest.raises(CortexzooError, match="from_runs"):
        variants[0].produce_spiketrains(population="L4I")
    with pytest.raises(CortexzooError, match="from_runs"):
        variants[0].produce_grouped_spiketrains()
