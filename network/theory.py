"""Mean-field theory of the PD14 LIF network: working points, rates and spectra from NNMT.

Everything here is computed by NNMT (Layer et al. 2022, Front. Neuroinform.
16:835657; package ``nnmt``) for the reference LIF (catalogue entry
``iaf_psc_exp``) in the network that :func:`cortexzoo.network.params.derive`
builds from ``network/pd14.toml`` at any N/K scaling and with either
background. NNMT's own microcircuit parameter file is Bos et al. (2016), not
PD14 (it changes K_ext of L4E, the L4I->L4I in-degree and the delay spread),
so this module hands NNMT the numbers of *our* network and never a second
copy of them.

Conventions
-----------
* ``mu_mV`` is the mean free membrane potential relative to the leak
  potential E_L (no threshold), including any constant current:
  ``mu = tau_m * (sum_j K_ij J_ij nu_j + K_ext J_ext nu_ext + I_dc / C)``,
  with ``J = w tau_syn / C`` (NNMT, after Fourcaud & Brunel 2002, Eq. 3.4).
* ``sigma_mV`` is NNMT's noise amplitude,
  ``sigma^2 = tau_m * (sum_j K_ij J_ij^2 nu_j + K_ext J_ext^2 nu_ext)``. The
  standard deviation of the free membrane potential is smaller:
  ``sigma_V = sigma / sqrt(2) * sqrt(tau_m / (tau_m + tau_syn))`` (Campbell's
  theorem for exponential PSCs; reported as ``sigma_V_mV``).
* In-degrees are ``K_ij = num_synapses_ij / num_neurons_i`` (PD14 draws a
  fixed total number of synapses with multapses). Weight and delay spreads
  enter only where NNMT models them (delays: truncated Gaussian; the 10 %
  weight spread would add 1 % to sigma^2). The thalamic pulse, a transient,
  is not part of the stationary theory.

NNMT 1.3 takes a constant input current only as one scalar ``I_ext`` for all
populations, and its ``mean_input`` result leaves it out. A constant current
I is the same as moving the leak potential by ``R I = tau_m I / C``, so the
per-population DC (DC background and K-scaling compensation) is passed as a
shift of threshold and reset relative to that moved rest, and added back
to ``mu_mV`` here.

Known limits (see tests/test_theory.py for the numbers): diffusion
approximation (PSPs small against the distance to threshold, uncorrelated
Poisson input), first order in ``sqrt(tau_syn / tau_m)`` = 0.22 for the
synaptic filtering, one neuron with the mean in-degree standing for its
population (PD14's binomial in-degrees spread ``mu`` by about 1-1.6 mV, see
:func:`indegree_heterogeneity`), and linear response around a stable
stationary state for the spectra.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cortexzoo.errors import CortexzooError
from cortexzoo.network.params import derive, load_pd14

REFERENCE_MODEL = "iaf_psc_exp"  # catalogue entry whose [pd14] table is the theory's neuron
LIF_KEYS = ("C_m", "tau_m", "E_L", "V_reset", "V_th", "t_ref")
# NNMT's Fourcaud-Brunel threshold shift ('shift', NNMT's default) for stationary rates;
# Bos et al. (2016) computed spectra with the Taylor variant, as NNMT's reproduction of their figures does.
RATE_METHOD = "shift"
SPECTRA_METHOD = "taylor"
METHODS = ("shift", "taylor")


def _nnmt():
    # Imported on use: nnmt pulls in pint, mpmath and h5py, which nothing else needs.
    import nnmt

    return nnmt


def reference_lif(neuron: dict | None = None) -> dict:
    """Parameters of the reference LIF, in NEST units.

    Parameters
    ----------
    neuron : dict, optional
        Overrides for any of :data:`LIF_KEYS` (pF, ms, mV, as in NEST).

    Returns
    -------
    dict
        ``C_m, tau_m, E_L, V_reset, V_th, t_ref`` from the catalogue's
        ``[models.iaf_psc_exp.pd14]`` table, updated with ``neuron``.

    Raises
    ------
    CortexzooError
        For a key that is not a LIF parameter of the theory.
    """
    from cortexzoo.models.catalogue import get_model

    neuron = dict(neuron or {})
    unknown = sorted(set(neuron) - set(LIF_KEYS))
    if unknown:
        raise CortexzooError(f"Mean-field LIF: unknown parameter(s) {unknown}.",
                             f"The theory's neuron takes only {', '.join(LIF_KEYS)} (NEST units).")
    base = get_model(REFERENCE_MODEL).params_for()
    return {key: float(neuron.get(key, base[key])) for key in LIF_KEYS}


def nnmt_parameters(network_table: dict, neuron: dict | None = None, compensation_rates_Hz=None) -> dict:
    """NNMT network parameters (pint quantities) for the PD14 LIF network.

    Parameters
    ----------
    network_table : dict
        The ``[network]`` table of a run config (``N_scaling``,
        ``K_scaling``, ``background``; see :func:`derive`).
    neuron : dict, optional
        LIF overrides, see :func:`reference_lif`.
    compensation_rates_Hz : sequence of float, optional
        Rates the K-scaling DC assumes; default: :func:`derive`'s choice
        (the LIF's full-scale rates in ``pd14.toml``).

    Returns
    -------
    dict
        The keys NNMT's LIF tools read (``K, J, K_ext, J_ext, nu_ext, tau_m,
        tau_s, tau_r, V_th_rel, V_0_rel, C, N, Delay, Delay_sd,
        delay_dist``) plus ``populations``, ``E_L`` and ``mu_dc`` (the DC's
        part of the mean input, already folded into ``V_th_rel`` and
        ``V_0_rel``). Pass it to ``nnmt.models.Plain``.
    """
    ureg = _nnmt().ureg
    lif = reference_lif(neuron)
    net = _derived(network_table, compensation_rates_Hz)
    tau_s = net.pd14["reference_neuron"]["tau_syn_ms"]
    n_pops = len(net.populations)
    to_mV = tau_s / lif["C_m"]  # pA -> mV of the integrated PSC (J = w tau_s / C)
    mu_dc = lif["tau_m"] * net.dc_pA / lif["C_m"]
    poisson = network_table["background"] == "poisson"
    return {
        "populations": list(net.populations),
        "N": net.num_neurons.astype(float),
        "K": net.num_synapses / net.num_neurons[:, None],
        "J": net.weight_mean_pA * to_mV * ureg.mV,
        # One external source (the Poisson background); with a DC background it is silent.
        "K_ext": net.ext_indegree[:, None].astype(float),
        "J_ext": np.full((n_pops, 1), net.weight_ext_pA * to_mV) * ureg.mV,
        "nu_ext": np.array([net.bg_rate_Hz if poisson else 0.0]) * ureg.Hz,
        "C": lif["C_m"] * ureg.pF,
        "tau_m": lif["tau_m"] * ureg.ms,
        "tau_s": tau_s * ureg.ms,
        "tau_r": lif["t_ref"] * ureg.ms,
        "E_L": lif["E_L"] * ureg.mV,
        "mu_dc": mu_dc * ureg.mV,
        "V_th_rel": (lif["V_th"] - lif["E_L"] - mu_dc) * ureg.mV,
        "V_0_rel": (lif["V_reset"] - lif["E_L"] - mu_dc) * ureg.mV,
        "Delay": net.delay_mean_ms * ureg.ms,
        "Delay_sd": net.delay_mean_ms * net.pd14["synapses"]["delay_rel_std"] * ureg.ms,
        "delay_dist": "truncated_gaussian",
    }


def working_points(network_table: dict, neuron: dict | None = None, method: str = RATE_METHOD) -> pd.DataFrame:
    """Self-consistent stationary working point of every population.

    With ``K_scaling < 1`` and ``k_compensation = "self_consistent"`` the
    compensating DC is computed from the theory's own rates (the fixed point
    is then the full in-degree network's, van Albada et al. 2015); otherwise
    from the rates :func:`derive` assumes.

    Parameters
    ----------
    network_table : dict
        The ``[network]`` table of a run config.
    neuron : dict, optional
        LIF overrides, see :func:`reference_lif`.
    method : {"shift", "taylor"}
        NNMT's approximation of the rate with synaptic filtering.

    Returns
    -------
    pandas.DataFrame
        One row per population: ``population, mu_mV`` (relative to E_L,
        DC included), ``sigma_mV`` (NNMT's sigma), ``sigma_V_mV`` (SD of the
        free membrane potential), ``rate_Hz``.
    """
    rates, params = _solve(network_table, neuron, method)
    return _moments_table(params, rates).assign(rate_Hz=rates)


def input_moments(network_table: dict, rates_Hz, neuron: dict | None = None,
                  compensation_rates_Hz=None) -> pd.DataFrame:
    """Mean and fluctuation of every population's input at given rates.

    Parameters
    ----------
    network_table : dict
        The ``[network]`` table of a run config.
    rates_Hz : sequence of float
        Rate of each population, in ``populations`` order.
    neuron : dict, optional
        LIF overrides, see :func:`reference_lif`.
    compensation_rates_Hz : sequence of float, optional
        Rates the K-scaling DC assumes (see :func:`nnmt_parameters`).

    Returns
    -------
    pandas.DataFrame
        ``population, mu_mV, sigma_mV, sigma_V_mV`` as in :func:`working_points`.
    """
    params = nnmt_parameters(network_table, neuron, compensation_rates_Hz)
    return _moments_table(params, np.asarray(rates_Hz, dtype=float))


def lif_rate(mu_mV, sigma_mV, neuron: dict | None = None, method: str = RATE_METHOD, tau_syn_ms: float | None = None):
    """Stationary rate of the reference LIF for given input mean and noise.

    Parameters
    ----------
    mu_mV, sigma_mV : float or array_like
        Mean input relative to E_L and NNMT's sigma (as in :func:`working_points`).
    neuron : dict, optional
        LIF overrides, see :func:`reference_lif`.
    method : {"shift", "taylor"}
    tau_syn_ms : float, optional
        Synaptic time constant; defaults to ``pd14.toml``'s.

    Returns
    -------
    numpy.ndarray
        Rates in Hz, broadcast over ``mu_mV`` and ``sigma_mV``.
    """
    from nnmt.lif.exp import _firing_rates_for_given_input

    _check_method(method)
    lif = reference_lif(neuron)
    tau_s = tau_syn_ms if tau_syn_ms is not None else load_pd14()["reference_neuron"]["tau_syn_ms"]
    mu, sigma = np.broadcast_arrays(np.asarray(mu_mV, dtype=float), np.asarray(sigma_mV, dtype=float))
    # NNMT's parameter functions work in SI units.
    rate = _firing_rates_for_given_input(
        mu.ravel() * 1e-3, sigma.ravel() * 1e-3, (lif["V_reset"] - lif["E_L"]) * 1e-3,
        (lif["V_th"] - lif["E_L"]) * 1e-3, lif["tau_m"] * 1e-3, lif["t_ref"] * 1e-3, tau_s * 1e-3, method=method)
    return np.asarray(rate, dtype=float).reshape(mu.shape)


def indegree_heterogeneity(network_table: dict, neuron: dict | None = None, method: str = RATE_METHOD) -> pd.DataFrame:
    """How much the spread of in-degrees moves each population's mean rate (first-order estimate).

    NNMT describes a population by one neuron with the mean in-degree. In
    PD14 each neuron's in-degree from source j is binomial (variance ~K_ij),
    so mean inputs spread across neurons with
    ``sigma_het^2 = tau_m^2 sum_j K_ij J_ij^2 nu_j^2`` (the Poisson background
    is the same for all neurons). Averaging the LIF rate over that spread at
    the homogeneous working point, not self-consistently, estimates the
    error this neglect causes (Amit & Brunel 1997, Cereb Cortex 7:237;
    Roxin et al. 2011, J Neurosci 31:16217).

    Parameters
    ----------
    network_table : dict
        The ``[network]`` table of a run config.
    neuron : dict, optional
        LIF overrides, see :func:`reference_lif`.
    method : {"shift", "taylor"}

    Returns
    -------
    pandas.DataFrame
        ``population, sigma_het_mV, rate_Hz`` (homogeneous theory),
        ``rate_heterogeneous_Hz`` (averaged over the spread).
    """
    rates, params = _solve(network_table, neuron, method)
    points = _moments_table(params, rates)
    J, K = params["J"].to("mV").magnitude, params["K"]
    sigma_het = params["tau_m"].to("s").magnitude * np.sqrt((K * J**2) @ rates**2)
    nodes, weights = np.polynomial.hermite_e.hermegauss(41)  # E[f(x)], x ~ N(0, 1)
    weights = weights / weights.sum()
    spread = lif_rate(points.mu_mV.to_numpy()[:, None] + sigma_het[:, None] * nodes,
                      points.sigma_mV.to_numpy()[:, None], neuron, method,
                      params["tau_s"].to("ms").magnitude)
    return pd.DataFrame({"population": params["populations"], "sigma_het_mV": sigma_het, "rate_Hz": rates,
                         "rate_heterogeneous_Hz": spread @ weights})


def power_spectra(network_table: dict, freqs_Hz, neuron: dict | None = None,
                  method: str = SPECTRA_METHOD) -> pd.DataFrame:
    """Population-rate power spectra in linear response (Bos et al. 2016, Eq. 18; NNMT).

    Normalisation: ``power_Hz`` is NNMT's spectrum of the population-averaged
    rate ``r(t) = (1/N) sum_i s_i(t)`` (spike trains ``s_i`` as sums of delta
    functions), ``C(w) = Q(w) diag(nu/N) Q(w)^H`` with
    ``Q = (1 - W_eff(w))^-1``; it tends to the shot-noise floor ``nu/N`` at
    high frequencies (units Hz^2/Hz = Hz). ``power_per_neuron_Hz = N *
    power_Hz`` tends to ``nu`` there and does not depend on the population
    size by itself. ``stability_margin`` is ``min |1 - lambda(w)|`` over the
    eigenvalues of the effective connectivity: near 0 the stationary state
    is close to an oscillatory instability and peak heights scale like its
    inverse square (linear response loses accuracy there).

    Parameters
    ----------
    network_table : dict
        The ``[network]`` table of a run config; N, K and the DC enter as
        in the simulated network.
    freqs_Hz : array_like
        Positive frequencies in Hz (NNMT's cost grows linearly with their
        number, about 0.15 s each).
    neuron : dict, optional
        LIF overrides, see :func:`reference_lif`.
    method : {"taylor", "shift"}
        Approximation for the working point and the transfer function
        (Bos et al. 2016 used "taylor").

    Returns
    -------
    pandas.DataFrame
        Long format: ``freq_Hz, population, power_Hz, power_per_neuron_Hz,
        stability_margin``.
    """
    nnmt = _nnmt()
    freqs = np.atleast_1d(np.asarray(freqs_Hz, dtype=float))
    if freqs.ndim != 1 or not np.all(np.isfinite(freqs)) or np.any(freqs <= 0):
        raise CortexzooError(f"Power spectra: frequencies must be a list of positive numbers in Hz, got {freqs_Hz!r}.",
                             "Pass e.g. numpy.arange(1, 201) for 1-200 Hz.")
    _rates, params, model = _solve(network_table, neuron, method, return_model=True)
    nnmt.lif.exp.transfer_function(model, freqs=freqs, method=method)
    nnmt.network_properties.delay_dist_matrix(model, freqs=freqs)
    effective = np.asarray(nnmt.lif.exp.effective_connectivity(model))
    power = np.asarray(nnmt.lif.exp.power_spectra(model))  # (freqs, populations)
    margin = np.abs(1.0 - np.linalg.eigvals(effective)).min(axis=1)
    pops, n = params["populations"], params["N"]
    return pd.DataFrame({
        "freq_Hz": np.repeat(freqs, len(pops)),
        "population": np.tile(pops, len(freqs)),
        "power_Hz": power.ravel(),
        "power_per_neuron_Hz": (power * n).ravel(),
        "stability_margin": np.repeat(margin, len(pops)),
    })


# ---------------------------------------------------------------------------


def _check_method(method):
    if method not in METHODS:
        raise CortexzooError(f"Mean-field method {method!r} is unknown.", f"Use one of {list(METHODS)}.")


def _derived(network_table, compensation_rates_Hz=None):
    if compensation_rates_Hz is None:
        return derive(network_table)
    return derive(network_table, rates_Hz=compensation_rates_Hz)


def _self_consistent(network_table) -> bool:
    return network_table["K_scaling"] < 1.0 and network_table.get("k_compensation") == "self_consistent"


def _solve(network_table, neuron, method, return_model=False):
    """NNMT's fixed point for the network as simulated; returns rates (Hz) and the parameter dict."""
    _check_method(method)
    compensation = None
    if _self_consistent(network_table):
        # A DC computed from the network's own rates restores exactly the mean input of the
        # full in-degree network while 1/sqrt(K) weights keep its variance: its fixed point is
        # the full in-degree network's. Solve that, then the scaled network with the DC from
        # those rates (which only has to absorb in-degree rounding).
        compensation, _, _ = _fixed_point({**network_table, "K_scaling": 1.0}, neuron, method, None)
    rates, params, model = _fixed_point(network_table, neuron, method, compensation)
    return (rates, params, model) if return_model else (rates, params)


def _fixed_point(network_table, neuron, method, compensation):
    nnmt = _nnmt()
    params = nnmt_parameters(network_table, neuron, compensation)
    model = nnmt.models.Plain(params)
    if compensation is not None:
        start = np.asarray(compensation, dtype=float)
    else:
        # NNMT starts from silence by default, where a DC-driven network has sigma = 0 and the
        # rate formula divides by zero; PD14's published rates are a start inside the basin.
        start = np.asarray(load_pd14()["full_mean_rates_Hz"], dtype=float)
    # working_point also stores NNMT's mean and std input, which its transfer function reads; its
    # mean leaves out the DC, consistent with the thresholds measured from the DC-shifted rest.
    rates = np.asarray(nnmt.lif.exp.working_point(model, method=method, nu_0=start)["firing_rates"], dtype=float)
    if not np.all(np.isfinite(rates)):
        raise CortexzooError(f"NNMT found no finite stationary rates for {network_table} ({method}).",
                             "Check the network table; the theory needs a stationary, asynchronous state.")
    return rates, params, model


def _moments_table(params, rates) -> pd.DataFrame:
    from nnmt.lif.exp import _mean_input, _std_input

    si = {key: params[key].to_base_units().magnitude for key in ("J", "J_ext", "nu_ext", "tau_m")}
    args = dict(J=si["J"], K=params["K"], tau_m=si["tau_m"], J_ext=si["J_ext"], K_ext=params["K_ext"],
                nu_ext=si["nu_ext"])
    mu = 1e3 * np.asarray(_mean_input(rates, **args)) + params["mu_dc"].to("mV").magnitude
    sigma = 1e3 * np.asarray(_std_input(rates, **args))
    tau_m, tau_s = params["tau_m"].to("ms").magnitude, params["tau_s"].to("ms").magnitude
    return pd.DataFrame({"population": params["populations"], "mu_mV": mu, "sigma_mV": sigma,
                         "sigma_V_mV": sigma / np.sqrt(2.0) * np.sqrt(tau_m / (tau_m + tau_s))})

#: The network whose operating point the ``operating_point`` calibration matches: full scale, Poisson background.
FULL_SCALE = {"N_scaling": 1.0, "K_scaling": 1.0, "background": "poisson"}


def working_point_inputs(pd14: dict | None = None) -> list:
    """Per-population Poisson input at PD14's full-scale operating point.

    The presynaptic populations fire at ``full_mean_rates_Hz`` (the
    reference network's rates), in-degrees are ``K_ij = num_synapses /
    num_neurons`` of :func:`derive` at N = K = 1 with Poisson background.
    Inputs are grouped by distinct weight (excitatory 87.8 pA together with
    the background, L4E -> L2/3E at twice that, inhibitory -351 pA), so
    each group can be one Poisson generator.

    Parameters
    ----------
    pd14 : dict, optional
        Parameter file contents; defaults to ``network/pd14.toml``. The
        theory always reads that file, so a different ``pd14`` must give the
        same mean input (else CortexzooError).

    Returns
    -------
    list of cortexzoo.models.operating_point.WorkingPointInput
        In ``populations`` order.
    """
    from cortexzoo.models.operating_point import WorkingPointInput

    pd14 = pd14 or load_pd14()
    net = derive(FULL_SCALE, pd14)
    rates = np.asarray(pd14["full_mean_rates_Hz"], dtype=float)
    moments = input_moments(FULL_SCALE, rates)
    lif = lif_rate(moments.mu_mV.to_numpy(), moments.sigma_mV.to_numpy())
    indegree = net.num_synapses / net.num_neurons[:, None]
    out = []
    for i, pop in enumerate(net.populations):
        groups = _group_by_weight(np.append(indegree[i] * rates, net.ext_indegree[i] * net.bg_rate_Hz),
                                  np.append(net.weight_mean_pA[i], net.weight_ext_pA))
        out.append(WorkingPointInput(pop, tuple(groups.values()), tuple(groups), float(moments.mu_mV[i]),
                                     float(moments.sigma_mV[i]), float(moments.sigma_V_mV[i]), float(lif[i])))
    _check_against_theory(out, pd14)
    return out


def _group_by_weight(rates, weights) -> dict:
    """{weight: total rate}; silent sources dropped, equal weights (to 1e-9 pA) merged."""
    groups = {}
    for rate, weight in zip(rates, weights):
        if rate > 0:
            key = float(np.round(weight, 9))
            groups[key] = groups.get(key, 0.0) + float(rate)
    return groups


def _check_against_theory(inputs, pd14) -> None:
    # The grouped input must carry the theory's mean, mu = tau_m tau_s / C sum(rate w);
    # it would not for a pd14 the theory does not read.
    ref = pd14["reference_neuron"]
    per_pA_Hz = ref["tau_m_ms"] * ref["tau_syn_ms"] / ref["C_m_pF"] * 1e-3
    for wp in inputs:
        mu = per_pA_Hz * float(np.dot(wp.rates_Hz, wp.weights_pA))
        if not np.isclose(mu, wp.mu_mV, rtol=1e-6, atol=1e-9):
            raise CortexzooError(
                f"Operating point of {wp.population}: the Poisson input gives mu = {mu:.4f} mV, the theory "
                f"module {wp.mu_mV:.4f} mV.",
                "The theory reads network/pd14.toml; pass pd14=None or edit that file.")


def working_point_inputs_by_type(pd14: dict | None = None) -> dict:
    """:func:`working_point_inputs` grouped by the populations' cell type.

    Parameters
    ----------
    pd14 : dict, optional

    Returns
    -------
    dict
        ``{"E": [...], "I": [...]}`` in ``populations`` order.
    """
    pd14 = pd14 or load_pd14()
    by_type = {}
    for wp, cell_type in zip(working_point_inputs(pd14), pd14["cell_types"]):
        by_type.setdefault(cell_type, []).append(wp)
    return by_type
