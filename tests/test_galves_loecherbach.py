"""Statistical tests of galves_loecherbach_nestml (no NEST built-in exists).

* V held fixed (V_reset = E_L above V_rheo, no input, no refractoriness):
  every step is a Bernoulli trial with p = Phi(V), so the fraction of steps
  with a spike must match Phi(V) within 4 binomial standard deviations.
* Constant drive: V follows a known deterministic path after each reset, so
  the ISI distribution is P(ISI = t_ref + k h) = Phi(V_k) prod_{j<k} (1 - Phi(V_j)).
  A chi-square test (bins with >= 5 expected counts) must not reject it at
  the 0.1% level; the mean ISI must match within 2%.
* Reproducibility: the same rng_seed gives the same spikes, another seed
  gives other spikes.
"""

import numpy as np
import pytest
from scipy import stats

H = 0.1  # ms


def phi(v, params):
    """Per-step spike probability, as written in the model."""
    v = np.asarray(v, dtype=float)
    if params["phi_type"] == 1:
        x = np.clip(params["gamma"] * (v - params["V_rheo"]), 0.0, None)
        return np.where(v > params["V_rheo"], np.minimum(1.0, x ** params["r"]), 0.0)
    rate = params["rho_0"] * np.exp((v - params["V_rheo"]) / params["Delta_V"])
    return -np.expm1(-rate * H)


POWER = {"phi_type": 1, "V_rheo": -55.0, "gamma": 0.02, "r": 1.0}
POWER_SQ = {"phi_type": 1, "V_rheo": -55.0, "gamma": 0.05, "r": 2.0}
ESCAPE = {"phi_type": 2, "V_rheo": -50.0, "rho_0": 0.5, "Delta_V": 2.0}


@pytest.mark.parametrize("phi_params", [POWER, POWER_SQ, ESCAPE], ids=["power_r1", "power_r2", "escape"])
def test_spike_fraction_matches_phi_at_fixed_v(nest_kernel, phi_params):
    nest = nest_kernel
    v_hold = -52.0
    params = dict(phi_params, E_L=v_hold, V_reset=v_hold, V_m=v_hold, t_ref=0.0)
    n_neurons, t_sim = 20, 1000.0
    pop = nest.Create("galves_loecherbach_nestml", n_neurons, params=params)
    sr = nest.Create("spike_recorder")
    nest.Connect(pop, sr)
    nest.Simulate(t_sim)
    n_steps = n_neurons * round(t_sim / H)
    p = float(phi(v_hold, phi_params))
    assert 0.005 < p < 0.5, "test setup: Phi(V) should be well inside (0, 1)"
    frac = sr.n_events / n_steps
    sigma = np.sqrt(p * (1 - p) / n_steps)
    assert abs(frac - p) < 4 * sigma, f"fraction {frac:.5f} vs Phi(V) = {p:.5f}"


@pytest.mark.parametrize("phi_params", [POWER, ESCAPE], ids=["power_r1", "escape"])
def test_isi_distribution_matches_prediction(nest_kernel, phi_params):
    nest = nest_kernel
    C_m, tau_m, E_L, V_reset, t_ref, I_e = 250.0, 10.0, -65.0, -65.0, 2.0, 400.0
    params = dict(phi_params, C_m=C_m, tau_m=tau_m, E_L=E_L, V_reset=V_reset, t_ref=t_ref, I_e=I_e, V_m=E_L)
    pop = nest.Create("galves_loecherbach_nestml", 50, params=params)
    sr = nest.Create("spike_recorder")
    nest.Connect(pop, sr)
    nest.Simulate(2000.0)
    ev = sr.events
    isis_steps = []
    for g in pop.global_id:
        t = np.sort(ev["times"][ev["senders"] == g])
        isis_steps.append(np.round(np.diff(t) / H).astype(int))
    isis_steps = np.concatenate(isis_steps)
    assert len(isis_steps) > 2000

    # predicted distribution: deterministic V path after the refractory period
    ref_steps = round(t_ref / H)
    k = np.arange(1, 2000)
    v_inf = E_L + I_e * tau_m / C_m
    v_k = v_inf + (V_reset - v_inf) * np.exp(-k * H / tau_m)
    p_k = phi(v_k, phi_params)
    survive = np.concatenate([[1.0], np.cumprod(1 - p_k)[:-1]])
    pmf = p_k * survive
    assert abs(pmf.sum() - 1) < 1e-9
    isi_values = ref_steps + k

    n = len(isis_steps)
    expected = n * pmf
    observed = np.bincount(isis_steps - ref_steps, minlength=len(k) + 1)[1:len(k) + 1]
    assert observed.sum() == n, "no ISI may be shorter than the refractory period or unexpectedly long"
    # merge the tails so every bin expects at least 5 ISIs
    keep = expected >= 5
    obs_b = np.append(observed[keep], observed[~keep].sum())
    exp_b = np.append(expected[keep], expected[~keep].sum())
    if exp_b[-1] < 5:
        obs_b[-2] += obs_b[-1]
        exp_b[-2] += exp_b[-1]
        obs_b, exp_b = obs_b[:-1], exp_b[:-1]
    _, pval = stats.chisquare(obs_b, exp_b)
    assert pval > 1e-3, f"chi-square p = {pval:.2e}"
    mean_pred = float(np.sum(isi_values * pmf))
    assert abs(isis_steps.mean() - mean_pred) < 0.02 * mean_pred


def _spikes(nest, seed):
    nest.ResetKernel()
    from cortexzoo.models import ready_kernel

    nest = ready_kernel(threads=1, resolution_ms=H, seed=seed)
    pop = nest.Create("galves_loecherbach_nestml", 10, params=dict(POWER, I_e=400.0))
    sr = nest.Create("spike_recorder")
    nest.Connect(pop, sr)
    nest.Simulate(500.0)
    return np.asarray(sr.events["times"]), np.asarray(sr.events["senders"])


def test_seed_reproducibility(nest_kernel):
    t1, s1 = _spikes(nest_kernel, 11)
    t2, s2 = _spikes(nest_kernel, 11)
    t3, s3 = _spikes(nest_kernel, 12)
    assert len(t1) > 100
    assert np.array_equal(t1, t2) and np.array_equal(s1, s2)
    assert len(t1) != len(t3) or not np.array_equal(t1, t3)
