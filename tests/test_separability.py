"""Separability statistics (validation/separability.py, validation/spike_distances.py): planted stimuli,
van Rossum against Elephant, state distances against scipy on explicit vectors."""

import warnings

import numpy as np
import pytest
import quantities as pq
import scipy.spatial.distance
from response_synth import inhomogeneous_poisson, pattern_rate

from cortexzoo.errors import CortexzooError
from cortexzoo.network.output import to_neo
from cortexzoo.validation.separability import (
    decorrelation_curve,
    readout_accuracy,
    separability_analysis,
    van_rossum_curve,
)
from cortexzoo.validation.spike_distances import (
    pairwise_state_distances,
    paired_state_distance,
    van_rossum_distance,
    van_rossum_matrix,
)
from cortexzoo.validation.transient import align_trials

N, P, R = 150, 3, 12
STIM_MS = 50.0
ONSETS = 300.0 + 200.0 * np.arange(P * R)


def _run(patterns, seed):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(P), R))
    rate = pattern_rate(ONSETS, labels, patterns, 5.0, STIM_MS)
    ids, times = inhomogeneous_poisson(rate, N, 0.0, ONSETS[-1] + 200.0, patterns.max(), rng)
    return align_trials(ids, times, N, ONSETS, -20.0, 60.0), labels


@pytest.fixture(scope="module")
def identical():
    """Every stimulus drives the same pattern: only the noise differs between trials."""
    pattern = np.random.default_rng(1).uniform(5.0, 60.0, N)
    return _run(np.tile(pattern, (P, 1)), 2)


@pytest.fixture(scope="module")
def separated():
    """Each stimulus drives its own third of the neurons at 100 Hz, the others at 2 Hz."""
    patterns = np.full((P, N), 2.0)
    for p, chosen in enumerate(np.array_split(np.random.default_rng(3).permutation(N), P)):
        patterns[p, chosen] = 100.0
    return _run(patterns, 4)


def test_identical_stimuli_give_equal_inter_and_intra_distance(identical):
    """With identical stimuli, inter-class = intra-class distance (ratio 1 within sampling error) for counts
    and filtered states.

    Catches pairs assigned to the wrong class (e.g. the diagonal counted as
    intra-class pairs at distance 0, or labels in sorted instead of onset order)."""
    trials, labels = identical
    for state in ("counts", "filtered"):
        curve = decorrelation_curve(trials, labels, bin_ms=5.0, state=state)
        post = curve[curve["bin_start_ms"] >= 0]
        assert post["ratio"].mean() == pytest.approx(1.0, abs=0.03)
        assert np.all(np.abs(post["ratio"] - 1.0) < 0.1)
        assert curve["n_inter_pairs"].iloc[0] == 3 * R * R and curve["n_intra_pairs"].iloc[0] == 3 * R * (R - 1) // 2


def test_identical_stimuli_give_chance_accuracy(identical):
    """A linear readout of identical stimuli is at chance (1/3): mean over bins within 0.1.

    Catches information leaking into the readout (e.g. scaling fitted on all
    trials together with the label order, or states that encode the onset order)."""
    trials, labels = identical
    acc = readout_accuracy(trials, labels, bin_ms=5.0)
    assert acc["chance"].iloc[0] == pytest.approx(1.0 / 3.0)
    assert acc["accuracy"].mean() == pytest.approx(1.0 / 3.0, abs=0.1)
    assert acc["accuracy"].max() <= acc["chance_upper95"].iloc[0] + 0.15


def test_separated_stimuli_are_read_out(separated):
    """Stimuli with different patterns: accuracy ~1 during the stimulus, chance before onset, and
    inter-class distance above intra-class during the stimulus only, by the expected ratio.

    Expected count-distance ratio: Poisson counts of mean m per bin give
    E d**2 = 2 sum(m) within a class (26 spikes per trial and bin) and
    sum((m_p - m_q)**2) + 2 sum(m) = 24 + 52 between classes, so
    inter / intra ~ sqrt(76 / 52) = 1.21.

    Catches states misaligned with the onsets (accuracy high before onset or
    low during the stimulus) and a curve that does not follow time."""
    trials, labels = separated
    acc = readout_accuracy(trials, labels, bin_ms=5.0, state="filtered", tau_ms=5.0)
    during = acc[(acc["bin_start_ms"] >= 5.0) & (acc["bin_end_ms"] <= STIM_MS)]
    assert during["accuracy"].min() >= 0.95
    assert acc[acc["bin_end_ms"] <= 0]["accuracy"].mean() < 0.6
    curve = decorrelation_curve(trials, labels, bin_ms=5.0)
    inside = curve[(curve["bin_start_ms"] >= 0) & (curve["bin_end_ms"] <= STIM_MS)]
    assert inside["ratio"].mean() == pytest.approx(np.sqrt(76.01 / 52.0), abs=0.03)
    assert inside["ratio"].min() > 1.12
    assert curve[curve["bin_end_ms"] <= 0]["ratio"].mean() == pytest.approx(1.0, abs=0.1)


def test_van_rossum_curve_separates_only_during_the_stimulus(separated, identical):
    """The exact van Rossum distance in windows: ratio >> 1 during separated stimuli, ~1 for identical ones.

    Catches windows cut at the wrong place relative to the onsets."""
    for (trials, labels), inside_ratio in ((separated, (1.15, np.inf)), (identical, (0.9, 1.1))):
        curve = van_rossum_curve(trials, labels, tau_ms=5.0, window_ms=20.0)
        assert list(curve["bin_start_ms"]) == [-20.0, 0.0, 20.0, 40.0]
        assert inside_ratio[0] < curve["ratio"].iloc[1] < inside_ratio[1]
        assert curve["ratio"].iloc[0] == pytest.approx(1.0, abs=0.1)


def _elephant_vr(a, b, tau_ms):
    from elephant.spike_train_dissimilarity import van_rossum_distance as elephant_vr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Elephant clips its own tiny negative rounding for identical trains
        return np.array([elephant_vr([x, y], tau_ms * pq.ms)[0, 1] for x, y in zip(a, b)])


def test_van_rossum_distance_equals_elephant():
    """Per-neuron van Rossum distance == ``elephant.spike_train_dissimilarity.van_rossum_distance``
    to 1e-9 relative, for empty, identical, shifted, coincident and bursty trains and two time constants.

    Catches a kernel normalised as in the paper (1/sqrt 2 off), pairs lost
    across neuron boundaries, a cutoff that drops pairs still within reach,
    and identical trains left at Elephant's rounding noise instead of 0."""
    rng = np.random.default_rng(7)
    n = 40
    ids_a = rng.integers(0, n - 2, 900)
    times_a = np.round(rng.uniform(0.0, 1000.0, 900), 1)
    ids_b, times_b = ids_a.copy(), times_a.copy()
    moved = (rng.random(900) < 0.2) & (ids_a >= 10)  # neurons 0..9 keep identical trains
    times_b[moved] = np.round(times_b[moved] + rng.normal(0.0, 3.0, moved.sum()), 1).clip(0.0, 1000.0)
    burst = np.full(30, n - 2), 500.0 + 0.1 * np.arange(30)  # a dense burst in one run only
    ids_b, times_b = np.r_[ids_b, burst[0], [n - 1, n - 1]], np.r_[times_b, burst[1], [20.0, 20.0]]
    for tau in (2.0, 25.0):
        ours = van_rossum_distance(ids_a, times_a, ids_b, times_b, n, tau)
        ref = _elephant_vr(to_neo(ids_a, times_a, n, 0.0, 1000.0), to_neo(ids_b, times_b, n, 0.0, 1000.0), tau)
        same = ours == 0
        assert same.sum() >= 3  # untouched neurons exist and are exactly 0
        assert np.all(ref[same] < 1e-6)
        assert np.max(np.abs(ours[~same] - ref[~same]) / ref[~same]) < 1e-9


def test_van_rossum_matrix_equals_elephant():
    """Trial-by-trial population van Rossum distance == sqrt of the sum over neurons of Elephant's squared
    distances, to 1e-9 relative.

    Catches kernel sums across groups counted once instead of in both
    orders, or pairs of different neurons mixed in."""
    rng = np.random.default_rng(8)
    m, n = 5, 12
    groups, ids, times = rng.integers(0, m, 700), rng.integers(0, n, 700), rng.uniform(-20.0, 80.0, 700)
    ours = van_rossum_matrix(groups, ids, times, m, 5.0)
    trains = [to_neo(ids[groups == g], times[groups == g], n, -20.0, 80.0) for g in range(m)]
    ref = np.zeros((m, m))
    for g in range(m):
        for h in range(g + 1, m):
            ref[g, h] = ref[h, g] = np.sqrt(np.sum(_elephant_vr(trains[g], trains[h], 5.0) ** 2))
    off = ~np.eye(m, dtype=bool)
    assert np.max(np.abs(ours[off] - ref[off]) / ref[off]) < 1e-9
    assert np.all(np.diag(ours) == 0)


def _explicit_states(groups, ids, times, m, n, start, n_bins, bin_ms, tau_ms):
    """Counts with np.histogram and traces summed spike by spike, as (trials, neurons * bins) arrays."""
    edges = start + bin_ms * np.arange(n_bins + 1)
    counts = np.zeros((m, n, n_bins))
    traces = np.zeros((m, n, n_bins))
    for g in range(m):
        for i in range(n):
            t = times[(groups == g) & (ids == i)]
            counts[g, i] = np.histogram(t[t < edges[-1]], edges)[0]  # np.histogram closes its last bin
            lag = edges[1:, None] - t[None, (t >= start)]
            traces[g, i] = np.sum(np.where(lag > 0, np.exp(-lag / tau_ms), 0.0), axis=1)
    return counts, traces


@pytest.mark.parametrize("metric", ["euclidean", "rms", "cosine"])
def test_state_distances_equal_scipy_on_explicit_vectors(metric):
    """Pairwise state distances per bin == ``scipy.spatial.distance.pdist`` of explicitly built count and
    trace vectors (1e-9), and the direct two-run version == the Gram-matrix version.

    Catches states put in the wrong bin (off by one, spikes on a bin edge),
    traces read after instead of before the bin end, and a Gram-matrix
    distance that differs from the difference of the vectors."""
    rng = np.random.default_rng(9)
    m, n, start, n_bins, bin_ms, tau = 4, 25, -10.0, 12, 5.0, 4.0
    groups, ids = rng.integers(0, m, 500), rng.integers(0, n, 500)
    times = np.r_[rng.uniform(-15.0, 55.0, 490), [0.0, 5.0, 10.0, -10.0, 49.99, 50.0, 20.0, 25.0, 30.0, 35.0]]
    counts, traces = _explicit_states(groups, ids, times, m, n, start, n_bins, bin_ms, tau)
    for state, explicit in (("counts", counts), ("filtered", traces)):
        ours = pairwise_state_distances(groups, ids, times, m, n, start, n_bins, bin_ms, state, tau, metric)
        for k in range(n_bins):
            scale = np.sqrt(n) if metric == "rms" else 1.0
            ref = scipy.spatial.distance.pdist(explicit[:, :, k], "cosine" if metric == "cosine" else "euclidean")
            got = ours[k][np.triu_indices(m, 1)]
            assert np.allclose(got, ref / scale, rtol=1e-9, atol=1e-12, equal_nan=True)
        pair = (groups == 0) | (groups == 1)
        a, b = pair & (groups == 0), pair & (groups == 1)
        direct = paired_state_distance(ids[a], times[a], ids[b], times[b], n, start, n_bins, bin_ms, state, tau,
                                       metric)
        assert np.allclose(direct, ours[:, 0, 1], rtol=1e-9, atol=1e-12, equal_nan=True)


def test_filtered_state_integrates_to_the_van_rossum_distance():
    """(2 / tau) * integral of the filtered state distance squared == the exact van Rossum distance squared
    (1 % on a 0.05 ms grid), so the time-resolved and the exact distance share one normalisation.

    Catches a filtered state scaled differently from Elephant's van Rossum
    distance (e.g. by 1/tau or 1/sqrt 2)."""
    rng = np.random.default_rng(10)
    n, tau = 30, 5.0
    groups, ids, times = rng.integers(0, 2, 400), rng.integers(0, n, 400), rng.uniform(0.0, 100.0, 400)
    exact = van_rossum_matrix(groups, ids, times, 2, tau)[0, 1]
    bin_ms, n_bins = 0.05, round((100.0 + 30 * tau) / 0.05)
    curve = pairwise_state_distances(groups, ids, times, 2, n, 0.0, n_bins, bin_ms, "filtered", tau, "euclidean")
    integral = 2.0 / tau * np.sum(curve[:, 0, 1] ** 2) * bin_ms
    assert integral == pytest.approx(exact ** 2, rel=0.01)


def test_separability_analysis_summary(separated):
    """The per-run analysis gives one summary row per population with peak accuracy ~1 inside the stimulus.

    Catches summaries taken over the pre-stimulus bins or the wrong population."""
    trials, labels = separated
    spikes = {"A": (trials.ids, trials.times + ONSETS[trials.trial])}
    res = separability_analysis(spikes, {"A": N}, ONSETS, labels, pre_ms=20.0, post_ms=60.0, bin_ms=5.0)
    row = res.summary.iloc[0]
    assert row["population"] == "A" and row["accuracy_peak"] >= 0.95 and 0 < row["accuracy_peak_ms"] <= 60
    assert row["ratio_peak"] > 1.15 and set(res.curves["population"]) == {"A"}


@pytest.mark.parametrize("call, match", [
    (lambda tr, lab: decorrelation_curve(tr, lab[:-1]), "labels for"),
    (lambda tr, lab: decorrelation_curve(tr, np.zeros(len(lab))), "at least 2 stimuli"),
    (lambda tr, lab: readout_accuracy(tr, np.arange(len(lab))), "at least 2 stimuli"),
    (lambda tr, lab: decorrelation_curve(tr, lab, state="rates"), "Unknown population state"),
    (lambda tr, lab: decorrelation_curve(tr, lab, metric="manhattan"), "Unknown state distance metric"),
    (lambda tr, lab: decorrelation_curve(tr, lab, start_ms=-50.0), "does not fit"),
    (lambda tr, lab: readout_accuracy(tr, lab, classifier="forest"), "Unknown readout classifier"),
    (lambda tr, lab: van_rossum_curve(tr, lab, tau_ms=0.0), "time constant"),
])
def test_bad_inputs_raise_cortexzoo_error(identical, call, match):
    """Mismatched labels, a single stimulus, stimuli never repeated, unknown states, metrics or classifiers,
    a grid outside the trials and a zero time constant are user errors with a fix."""
    with pytest.raises(CortexzooError, match=match):
        call(*identical)
