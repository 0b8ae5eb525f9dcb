"""Mean-field theory of the PD14 LIF network (cortexzoo.network.theory, on NNMT).

Tolerance for theory against simulated rates. NNMT's stationary theory
describes each population by one neuron with the mean in-degree under the
diffusion approximation. The neglected effect we can size for PD14 is the
spread of in-degrees: with ``fixed_total_number`` each neuron's in-degree is
binomial, mean inputs spread by sigma_het = 1.0-1.6 mV across the neurons
of a population, and the population-averaged rate of such neurons differs
from the rate of the average neuron (Amit & Brunel 1997, Cereb Cortex
7:237; Roxin et al. 2011, J Neurosci 31:16217). Its first-order size,
``|<nu(mu + delta)> - nu(mu)|`` at the theory's working point
(:func:`indegree_heterogeneity`, computed, not chosen), is the tolerance per
population: the homogeneous theory cannot be asked to be closer than what it
leaves out. Further known limits without a computed size: the diffusion
approximation (PSPs of 0.15-0.6 mV against 6-12 mV distance to threshold;
NNMT docs, "Approximations and assumptions") and correlations / collective
oscillations, which the linear-stability margin of the spectra flags.
"""

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from cortexzoo.errors import CortexzooError
from cortexzoo.models import ready_kernel
from cortexzoo.network import theory
from cortexzoo.network.params import derive, load_pd14

PD14 = load_pd14()
POPS = PD14["populations"]
FULL = {"N_scaling": 1.0, "K_scaling": 1.0}
PUBLISHED_RATES_HZ = np.array(PD14["full_mean_rates_Hz"])  # INM-6 full-scale rates (Poisson background)
# Our own full-scale simulation: reference LIF, DC background, seed 55, 1 s analysed (NEST 3.10).
SIMULATED_DC_RATES_HZ = np.array([0.943, 2.997, 4.173, 5.704, 8.065, 8.476, 1.105, 7.655])


def table(background="poisson", **scaling):
    return {**FULL, "background": background, **scaling}


@lru_cache
def dc_working_points():
    return theory.working_points(table("dc"))


def heterogeneity_tolerance(network_table):
    spread = theory.indegree_heterogeneity(network_table)
    return np.abs(spread.rate_heterogeneous_Hz - spread.rate_Hz).to_numpy()


def test_full_scale_rates_agree_with_published_within_indegree_spread():
    """Full-scale Poisson-background rates from NNMT against INM-6's published full-scale rates.

    Measured (Hz, theory vs published): L2/3E 0.754/0.903, L2/3I 2.794/2.965,
    L4E 4.441/4.414, L4I 5.823/5.876, L5E 7.153/7.569, L5I 8.470/8.633,
    L6E 1.159/1.105, L6I 7.756/7.829 (-17 % to +5 %, worst L2/3E); every
    deviation is smaller than the in-degree-spread effect (0.19-0.63 Hz).
    Catches a wrong mapping of pd14.toml into NNMT: in-degrees from the
    source instead of the target size, a lost L4E->L2/3E doubling, PSC->PSP
    units (J = w tau_s / C), NNMT's Bos 2016 K_ext instead of PD14's, a
    missing synaptic-filter correction.
    """
    points = theory.working_points(table())
    deviation = np.abs(points.rate_Hz.to_numpy() - PUBLISHED_RATES_HZ)
    tolerance = heterogeneity_tolerance(table())
    assert list(points.population) == POPS
    assert np.all(deviation <= tolerance), pd.DataFrame(
        {"population": POPS, "theory": points.rate_Hz, "published": PUBLISHED_RATES_HZ, "tolerance": tolerance})


KNOWN_DC_OUTLIERS = {
    # A finding, not a tuning target: with a DC background the theory predicts lower rates than with
    # Poisson input (less noise) but the simulation has higher ones, and the linear theory puts the
    # DC network much closer to its ~325 Hz instability (stability margin 0.006-0.013 against
    # 0.05-0.06 with Poisson input; L5E's peak 20-180x higher), i.e. collective fluctuations the
    # stationary theory leaves out.
    "L23E": "theory 0.687 Hz vs simulated 0.943 Hz; in-degree spread explains 0.19 Hz",
    "L5E": "theory 7.27 Hz vs simulated 8.07 Hz; in-degree spread explains 0.68 Hz",
}


@pytest.mark.parametrize("pop", [
    pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=KNOWN_DC_OUTLIERS[p])) if p in KNOWN_DC_OUTLIERS
    else p for p in POPS])
def test_full_scale_dc_rates_against_our_simulation(pop):
    """DC-background rates from NNMT against our full-scale DC simulation, same tolerance as above.

    Measured (Hz, theory vs simulation): L2/3E 0.687/0.943, L2/3I 2.660/2.997,
    L4E 4.244/4.173, L4I 5.625/5.704, L5E 7.266/8.065, L5I 8.216/8.476,
    L6E 1.185/1.105, L6I 7.526/7.655. L2/3E and L5E exceed the tolerance
    (strict xfail: the test reports when that changes). Catches a DC
    background that does not reach the theory's mean input (rates near 0).
    """
    i = POPS.index(pop)
    theory_rate = dc_working_points().rate_Hz[i]
    assert abs(theory_rate - SIMULATED_DC_RATES_HZ[i]) <= heterogeneity_tolerance(table("dc"))[i]


@pytest.mark.parametrize("background", ["poisson", "dc"])
def test_populations_are_fluctuation_driven(background):
    """Mean input below threshold everywhere; without its fluctuations no population would fire.

    Measured (Poisson): mu = 2.6-9.0 mV above E_L, i.e. 5.95-12.4 mV below
    threshold (issue 12 quotes 6-13 mV); NNMT's sigma 4.9-6.4 mV, free
    membrane SD sigma_V 3.4-4.4 mV (issue 12 quotes 4-5 mV). Catches mu
    reported in the wrong frame (absolute, relative to the DC-shifted rest)
    and a rate that does not come from the reported (mu, sigma): the rate
    function at the reported working point must return the network's rate.
    """
    points = theory.working_points(table(background))
    lif = theory.reference_lif()
    threshold = lif["V_th"] - lif["E_L"]
    assert np.all(points.mu_mV < threshold)
    assert np.allclose(theory.lif_rate(points.mu_mV, points.sigma_mV), points.rate_Hz, rtol=1e-6)
    quiet = theory.lif_rate(points.mu_mV, points.sigma_mV / 10.0)
    assert np.all(quiet < 1e-3 * points.rate_Hz)


def test_mean_and_fluctuation_match_the_free_membrane_in_nest():
    """mu_mV and sigma_V_mV are the moments of V of the simulated LIF with its threshold removed.

    Each population: 8 NEST iaf_psc_exp neurons (threshold at +1e6 mV) get
    the population's Poisson input at the theory's rates (one generator per
    source, rate K_ij nu_j, PD14 weights; Poisson or DC background) for 5 s.
    Campbell's theorem makes the theory exact here, so the tolerance is 4
    standard errors. Catches any unit or convention error between
    pd14.toml, derive() and NNMT (J = w tau_s / C, in-degrees, the DC in mu,
    mu relative to E_L, sigma_V = sigma / sqrt(2) sqrt(tau_m / (tau_m + tau_s))).
    """
    t_ms, n_neurons, warmup_ms = 5000.0, 8, 100.0
    nest = ready_kernel(install_module=False, seed=7)
    lif = theory.reference_lif()
    recorders = []
    for background in ("poisson", "dc"):
        net = derive(table(background))
        points = theory.working_points(table(background))
        in_degree = net.num_synapses / net.num_neurons[:, None]
        tau_s = PD14["reference_neuron"]["tau_syn_ms"]
        for i, row in points.iterrows():
            neurons = nest.Create("iaf_psc_exp", n_neurons, params={
                **lif, "V_th": 1e6, "tau_syn_ex": tau_s, "tau_syn_in": tau_s, "I_e": float(net.dc_pA[i]),
                "V_m": lif["E_L"] + row.mu_mV})
            sources = [(k * nu, w) for k, nu, w in zip(in_degree[i], points.rate_Hz, net.weight_mean_pA[i]) if k > 0]
            if background == "poisson":
                sources.append((net.bg_rate_Hz * net.ext_indegree[i], net.weight_ext_pA))
            for rate, weight in sources:
                nest.Connect(nest.Create("poisson_generator", params={"rate": rate}), neurons,
                             syn_spec={"weight": weight, "delay": 1.5})
            meter = nest.Create("multimeter", params={"record_from": ["V_m"], "interval": 1.0, "start": warmup_ms})
            nest.Connect(meter, neurons)
            recorders.append((background, row, meter))
    nest.Simulate(warmup_ms + t_ms)

    correlation_ms = lif["tau_m"] + PD14["reference_neuron"]["tau_syn_ms"]
    rel_se = np.sqrt(correlation_ms / t_ms / n_neurons)  # of a time average over n independent neurons
    for background, row, meter in recorders:
        v = meter.events["V_m"] - lif["E_L"]
        assert abs(v.mean() - row.mu_mV) < 4 * np.sqrt(2) * rel_se * row.sigma_V_mV, (background, row.population)
        assert abs(v.std() / row.sigma_V_mV - 1) < 4 * rel_se, (background, row.population)


@pytest.mark.parametrize("background", ["poisson", "dc"])
def test_k_compensation_keeps_input_moments(background):
    """K = 0.25 with the compensating DC gives full scale's mu and sigma at the same rates.

    That is what the compensation is for (van Albada et al. 2015): DC for the
    missing (1 - sqrt K) of the mean, 1/sqrt(K) weights for the variance.
    Evaluated at the rates the DC assumes, the identity is exact up to the
    rounding of synapse numbers. Catches a compensation that misses the
    recurrent or the Poisson part, a DC that does not enter mu, and weights
    not rescaled for sigma.
    """
    full = theory.input_moments(table(background), PUBLISHED_RATES_HZ)
    scaled = theory.input_moments(table(background, K_scaling=0.25), PUBLISHED_RATES_HZ)
    assert np.allclose(scaled.mu_mV, full.mu_mV, atol=1e-3)
    assert np.allclose(scaled.sigma_mV, full.sigma_mV, rtol=1e-5)


def test_self_consistent_compensation_recovers_the_full_in_degree_working_point():
    """With the DC from the network's own rates, K = 0.25 has the working point of K = 1.

    Measured: rates agree to 2e-5 relative, mu to 4e-5 mV. With the DC from
    the LIF's published rates instead, K = 0.25 moves L2/3E from 0.754 to
    0.640 Hz (report). Catches a self-consistent mode that still uses the
    published rates, or solves a different network than it reports.
    """
    full = theory.working_points(table())
    scaled = theory.working_points(table(K_scaling=0.25, k_compensation="self_consistent"))
    reference = theory.working_points(table(K_scaling=0.25, k_compensation="reference_rates"))
    assert np.allclose(scaled.rate_Hz, full.rate_Hz, rtol=1e-4)
    assert np.allclose(scaled.mu_mV, full.mu_mV, atol=1e-3)
    assert not np.allclose(reference.rate_Hz, full.rate_Hz, rtol=1e-2)


def test_dc_and_poisson_background_give_the_same_mean_input():
    """At equal rates the DC background replaces exactly the mean of the Poisson background.

    Only sigma differs (the Poisson variance goes). Self-consistently the DC
    network then fires less and its mu is 0.6-1.3 mV higher (report).
    Catches a DC of the wrong size or sign, or one counted twice.
    """
    poisson = theory.input_moments(table("poisson"), PUBLISHED_RATES_HZ)
    dc = theory.input_moments(table("dc"), PUBLISHED_RATES_HZ)
    assert np.allclose(dc.mu_mV, poisson.mu_mV, atol=1e-9)
    assert np.all(dc.sigma_mV < poisson.sigma_mV)


GAMMA_HZ = (30.0, 100.0)


def test_power_spectra_have_a_low_gamma_peak_and_the_shot_noise_floor():
    """Linear-response spectra (Bos et al. 2016): finite, a low-gamma peak in L2/3E and L4E, nu at high f.

    PD14's LIF network has a low-gamma peak (Bos et al. 2016: generated in
    L2/3 and L4); NNMT puts it at ~80 Hz at full scale (stability margin
    0.02 there, so its height is fragile) and at 50-70 Hz at N = 0.1,
    K = 0.25; the test asks for the maximum over 10-150 Hz inside the
    conventional gamma band, 30-100 Hz. Per-neuron power must tend to the rate at 5 kHz (shot noise).
    Catches frequencies passed as angular, a lost 1/N normalisation, and
    delays or the synaptic filter missing from the effective connectivity.
    """
    freqs = np.array([10.0, 20, 30, 40, 50, 60, 70, 80, 90, 100, 120, 150, 5000])
    for network_table in (table(), table(N_scaling=0.1, K_scaling=0.25, k_compensation="self_consistent")):
        spectra = theory.power_spectra(network_table, freqs)
        per_neuron = spectra.pivot(index="freq_Hz", columns="population", values="power_per_neuron_Hz")[POPS]
        rates = theory.working_points(network_table, method=theory.SPECTRA_METHOD).rate_Hz.to_numpy()
        assert np.all(np.isfinite(spectra.power_Hz)) and np.all(spectra.power_Hz > 0)
        assert np.allclose(per_neuron.loc[5000.0], rates, rtol=0.01)
        band = per_neuron.loc[10.0:150.0]
        for pop in ("L23E", "L4E"):
            # The maximum over 10-150 Hz lies inside, not at an edge: a peak, not a monotone trend.
            assert GAMMA_HZ[0] <= band[pop].idxmax() <= GAMMA_HZ[1], (network_table, band[pop])


def test_bad_inputs_name_the_problem():
    """Unknown neuron parameters, methods and frequencies raise a CortexzooError, not an NNMT traceback."""
    with pytest.raises(CortexzooError, match="V_thresh"):
        theory.working_points(table(), neuron={"V_thresh": -50.0})
    with pytest.raises(CortexzooError, match="method"):
        theory.working_points(table(), method="exact")
    with pytest.raises(CortexzooError, match="positive"):
        theory.power_spectra(table(), [0.0, 10.0])
