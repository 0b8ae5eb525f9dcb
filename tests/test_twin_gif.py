"""Twin tests: gif_psc_exp_nestml vs NEST's gif_psc_exp (stochastic GIF, escape noise).

Both models draw one uniform number per non-refractory step from NEST's
per-thread RNG (NESTML's ``random_uniform`` prints as
``nest::get_vp_specific_rng(get_thread())->drand()``, NEST's gif_psc_exp calls
the same) and follow the same step scheme, so a network built the same way
with the same seed gives the *same* spikes in both: that is tested exactly
(``test_same_seed_same_spikes_as_nest``), with the V, threshold and
spike-triggered-current traces to 1e-9.

The statistical twin does not rely on that identity: 300 neurons of each
model are simulated side by side in one kernel (so their draws come from
different parts of the stream) under the same drive, and we test per drive
(a) the per-neuron spike-count distributions (two-sample KS), (b) the mean
counts (Welch's t), (c) the pooled ISI distributions (chi-square statistic
on 20 equal-frequency bins, p-value by permuting neurons between the models,
20,000 permutations: neurons are independent given the drive, ISIs of one
neuron are not, so neurons and not ISIs are exchanged).
False-failure rate: 3 drives x 3 tests = 9 tests, each at 0.1 % / 9
(Bonferroni), so the module's statistical tests together reject a correct
twin with probability <= 0.1 % over the choice of seed (the KS test on
integer counts is conservative; the seeds are fixed, so a given checkout
passes or fails deterministically). ``test_statistics_detect_missing_component``
shows that the same criterion rejects a model that lacks one adaptation
component.

Parameters: the L5 pyramidal cell of NEST's ``gif_population`` example
(fitted to the data of Mensi et al. 2012), two stc and two sfa components;
the identity tests add a third of each so that every slot is exercised.
"""

import numpy as np
import pytest
from scipy import stats

from cortexzoo.models import ready_kernel

from twin_helpers import dc_steps, noisy_current

H = 0.1
N = 300            # neurons per model in the statistical tests
T_STAT_MS = 3000.0
ALPHA = 1e-3 / 9   # family-wise 0.1 % over the nine statistical tests
N_PERM = 20_000

MEMBRANE = {"C_m": 83.1, "g_L": 3.7, "E_L": -67.0, "Delta_V": 1.4, "V_T_star": -39.6, "t_ref": 4.0,
            "V_reset": -36.7, "lambda_0": 1.0}
E_STC = [(56.7, 57.8), (-6.9, 218.2)]   # (q_stc pA, tau_stc ms)
E_SFA = [(11.7, 53.8), (1.8, 640.0)]    # (q_sfa mV, tau_sfa ms)
THIRD_STC, THIRD_SFA = (20.0, 5.0), (4.0, 10.0)  # exercise slot 3 in the identity tests


def builtin_params(stc, sfa):
    """gif_psc_exp parameters: NEST's vectors, synapses of the shared interface (0.5 ms)."""
    return dict(MEMBRANE, q_stc=[q for q, _ in stc], tau_stc=[t for _, t in stc],
                q_sfa=[q for q, _ in sfa], tau_sfa=[t for _, t in sfa], tau_syn_ex=0.5, tau_syn_in=0.5)


def nestml_params(stc, sfa):
    """gif_psc_exp_nestml parameters: NEST's vector entries as numbered scalars."""
    p = dict(MEMBRANE, tau_syn_exc=0.5, tau_syn_inh=0.5)
    for kind, comps in (("stc", stc), ("sfa", sfa)):
        for i, (q, tau) in enumerate(comps, start=1):
            p[f"q_{kind}_{i}"], p[f"tau_{kind}_{i}"] = q, tau
    return p


def drives(t_sim_ms):
    """DC steps around the rheobase (~100 pA), a noisy current and Poisson spike input (~5 Hz)."""
    return {
        "dc_steps": {"currents": [dc_steps(100.0, t_sim_ms)]},
        "noise": {"currents": [noisy_current(120.0, 100.0, t_sim_ms=t_sim_ms)]},
        "spikes": {"currents": [], "I_e": 40.0,
                   "spikes": {"exc_rate": 6000.0, "inh_rate": 1000.0, "exc_weight": 87.8, "inh_weight": -351.2}},
    }


def connect_drive(nest, pops, drive):
    """Connect one set of generators to every population ({name: nodes}): all neurons see the same input.

    Spike input passes through one parrot per source, so both models get the
    same trains (NEST's receptor 0 routes by sign; NESTML uses its ports).
    """
    for params in drive["currents"]:
        gen = nest.Create("step_current_generator", params=params)
        for pop in pops.values():
            nest.Connect(gen, pop)
    spikes = drive.get("spikes")
    if not spikes:
        return
    for kind, port in (("exc", "EXC_SPIKES"), ("inh", "INH_SPIKES")):
        pg = nest.Create("poisson_generator", params={"rate": spikes[f"{kind}_rate"]})
        parrot = nest.Create("parrot_neuron")
        nest.Connect(pg, parrot)
        for name, pop in pops.items():
            syn = {"weight": spikes[f"{kind}_weight"], "delay": 1.0}
            if name.endswith("_nestml"):
                syn["receptor_type"] = pop[0].get("receptor_types")[port]
            nest.Connect(parrot, pop, syn_spec=syn)


def simulate(nest, models, n, drive, t_sim_ms, record=False):
    """Simulate populations of ``models`` ({name: params}) under one drive.

    Returns
    -------
    dict
        name -> (list of per-neuron spike-time arrays, multimeter events of neuron 0 or None).
    """
    pops, recorders, meters = {}, {}, {}
    for name, params in models.items():
        params = dict(params, I_e=drive.get("I_e", 0.0))
        pops[name] = nest.Create(name, n, params=params)
        recorders[name] = nest.Create("spike_recorder")
        nest.Connect(pops[name], recorders[name])
        if record:
            meters[name] = nest.Create("multimeter", params={"record_from": ["V_m", "E_sfa", "I_stc"],
                                                             "interval": H})
            nest.Connect(meters[name], pops[name][0])
    connect_drive(nest, pops, drive)
    nest.Simulate(t_sim_ms)
    out = {}
    for name, pop in pops.items():
        ev = recorders[name].events
        idx = np.asarray(ev["senders"]) - pop[0].global_id
        times = np.asarray(ev["times"])
        trains = [np.sort(times[idx == i]) for i in range(n)]
        out[name] = (trains, meters[name].events if record else None)
    return out


def isi_permutation_p(trains_a, trains_b, n_bins=20, n_perm=N_PERM, seed=0):
    """p-value of the chi-square distance between two pooled ISI histograms, neurons permuted.

    Bins are equal-frequency bins of all ISIs pooled. Each neuron contributes
    one histogram row; under the null the rows of both models are exchangeable.
    """
    isis = [np.diff(t) for t in list(trains_a) + list(trains_b)]
    pooled = np.concatenate(isis)
    edges = np.quantile(pooled, np.linspace(0, 1, n_bins + 1)[1:-1])
    rows = np.array([np.bincount(np.searchsorted(edges, d, side="right"), minlength=n_bins) for d in isis], float)
    total = rows.sum(axis=0)

    def chi2(in_a):  # in_a: (k, n_neurons) 0/1 membership of model a
        a = in_a @ rows
        b = total - a
        n_a, n_b = a.sum(axis=1, keepdims=True), b.sum(axis=1, keepdims=True)
        expect_a = total * n_a / (n_a + n_b)
        expect_b = total * n_b / (n_a + n_b)
        return (((a - expect_a) ** 2 / expect_a) + ((b - expect_b) ** 2 / expect_b)).sum(axis=1)

    n_a, n = len(trains_a), len(isis)
    observed = chi2(np.r_[np.ones(n_a), np.zeros(n - n_a)][None, :])[0]
    rng = np.random.default_rng(seed)
    exceed = 0
    for start in range(0, n_perm, 2000):
        k = min(2000, n_perm - start)
        member = np.zeros((k, n))
        perms = np.argsort(rng.random((k, n)), axis=1)[:, :n_a]
        np.put_along_axis(member, perms, 1.0, axis=1)
        exceed += int(np.sum(chi2(member) >= observed))
    return (1 + exceed) / (1 + n_perm)


def twin_pvalues(trains_a, trains_b):
    """The three p-values of the statistical twin: count distribution, mean count, ISI distribution."""
    counts_a = np.array([len(t) for t in trains_a])
    counts_b = np.array([len(t) for t in trains_b])
    return {
        "counts_ks": stats.ks_2samp(counts_a, counts_b).pvalue,
        "mean_count_welch": stats.ttest_ind(counts_a, counts_b, equal_var=False).pvalue,
        "isi_chi2_perm": isi_permutation_p(trains_a, trains_b),
    }


@pytest.mark.parametrize("drive", ["dc_steps", "noise", "spikes"])
def test_statistical_twin(nest_kernel, drive):
    """Spike counts and ISI distributions of 300 + 300 neurons agree (family-wise alpha 0.1 %).

    Catches any change of the spiking statistics: a wrong escape rate (units of
    lambda_0, exp(-lambda h) for 1 - exp(-lambda h)), Delta_V, a misplaced or
    missing adaptation jump, refractoriness, reset, synaptic or current input.
    """
    out = simulate(nest_kernel, {"gif_psc_exp": builtin_params(E_STC, E_SFA),
                                 "gif_psc_exp_nestml": nestml_params(E_STC, E_SFA)},
                   N, drives(T_STAT_MS)[drive], T_STAT_MS)
    a, b = out["gif_psc_exp"][0], out["gif_psc_exp_nestml"][0]
    rate_a = sum(map(len, a)) / N / (T_STAT_MS / 1000)
    rate_b = sum(map(len, b)) / N / (T_STAT_MS / 1000)
    assert rate_a > 2.0, f"the drive must make the neurons fire ({rate_a:.2f} Hz)"
    p = twin_pvalues(a, b)
    print(f"{drive}: NEST {rate_a:.3f} Hz, NESTML {rate_b:.3f} Hz, p = {p}")
    for name, value in p.items():
        assert value > ALPHA, f"{drive}: {name} p = {value:.2e} (NEST {rate_a:.3f} Hz, NESTML {rate_b:.3f} Hz)"


def test_statistics_detect_missing_component(nest_kernel):
    """The statistical criterion rejects a twin that lacks the slow threshold component.

    Catches a statistical test too weak to see a real bug (e.g. an adaptation
    slot that is not wired): NESTML without sfa_2 (q = 1.8 mV, 640 ms) must fail it.
    """
    broken = nestml_params(E_STC, E_SFA[:1])
    out = simulate(nest_kernel, {"gif_psc_exp": builtin_params(E_STC, E_SFA), "gif_psc_exp_nestml": broken},
                   N, drives(T_STAT_MS)["noise"], T_STAT_MS)
    p = twin_pvalues(out["gif_psc_exp"][0], out["gif_psc_exp_nestml"][0])
    print(f"without sfa_2: p = {p}")
    assert min(p.values()) < ALPHA, p


def run_alone(model, params, drive, seed, t_sim_ms=2000.0, n=50):
    """One population of ``model`` in a fresh kernel with ``rng_seed = seed``."""
    nest = ready_kernel(threads=1, resolution_ms=H, seed=seed)
    return simulate(nest, {model: params}, n, drive, t_sim_ms, record=True)[model]


STC3, SFA3 = E_STC + [THIRD_STC], E_SFA + [THIRD_SFA]


@pytest.mark.parametrize("drive", ["dc_steps", "noise", "spikes"])
def test_same_seed_same_spikes_as_nest(nestml_module, drive):
    """With the same seed, NEST's gif_psc_exp and the NESTML model emit identical spikes.

    Catches any difference in the step scheme (order of decay, input and draw;
    a draw in refractory steps; NESTML drawing from another RNG than NEST's
    per-thread one), a missing third stc/sfa slot, or propagators that differ
    beyond rounding (V, E_sfa and I_stc traces must agree to 1e-9).
    """
    d = drives(2000.0)[drive]
    a_trains, a_ev = run_alone("gif_psc_exp", builtin_params(STC3, SFA3), d, seed=11)
    b_trains, b_ev = run_alone("gif_psc_exp_nestml", nestml_params(STC3, SFA3), d, seed=11)
    n_spikes = sum(map(len, a_trains))
    assert n_spikes > 100, "the drive must make the neurons fire"
    assert all(np.array_equal(x, y) for x, y in zip(a_trains, b_trains))
    for key in ("V_m", "E_sfa", "I_stc"):
        assert np.max(np.abs(np.asarray(a_ev[key]) - np.asarray(b_ev[key]))) < 1e-9, key


def test_seed_decides_spikes(nestml_module):
    """The same seed repeats the NESTML model's spikes and another seed changes them.

    Catches a model whose randomness does not come from NEST's seeded RNG
    (e.g. a fixed or time-seeded generator of its own).
    """
    d = drives(1000.0)["noise"]
    params = nestml_params(E_STC, E_SFA)
    first = run_alone("gif_psc_exp_nestml", params, d, seed=5, t_sim_ms=1000.0)[0]
    again = run_alone("gif_psc_exp_nestml", params, d, seed=5, t_sim_ms=1000.0)[0]
    other = run_alone("gif_psc_exp_nestml", params, d, seed=6, t_sim_ms=1000.0)[0]
    assert sum(map(len, first)) > 50
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    assert not all(np.array_equal(x, y) for x, y in zip(first, other))


def test_defaults_match_nest(nest_kernel):
    """Every parameter both models share has NEST's default (tau_syn: the interface's 0.5 ms).

    Catches a wrong default or unit, e.g. lambda_0 stored per ms instead of per s.
    """
    a = nest_kernel.Create("gif_psc_exp")
    b = nest_kernel.Create("gif_psc_exp_nestml")
    for key in ("C_m", "g_L", "E_L", "V_reset", "t_ref", "V_T_star", "Delta_V", "lambda_0", "I_e", "V_m"):
        assert b.get(key) == pytest.approx(a.get(key), rel=1e-12), key
    assert len(a.get("q_stc")) == 0 and len(a.get("q_sfa")) == 0
    assert all(b.get(f"q_{kind}_{i}") == 0.0 for kind in ("stc", "sfa") for i in (1, 2, 3))
