"""Synaptic charge of every catalogue model (issue 12): one PSC of weight w
must deliver the charge w * tau_syn, as a constant current of that charge
does; otherwise synaptic and DC drive (PD14's background, the bias role) do
not weigh the same.

Bug these tests catch: the Izhikevich models (before issue 12) added the
exponential PSC to V by forward Euler with the current of the start of each
step, so one PSC delivered w h / (1 - exp(-h/tau)) = 0.552 w ms instead of
w tau = 0.500 w ms at h = 0.1 ms, tau = 0.5 ms. Run against that code (its
cached module), ``test_one_psc_delivers_w_tau`` measured a charge ratio of
1.103331 for both Izhikevich models, cell types and ports (theory:
0.2 / (1 - e^-0.2) = 1.103331; 1.025208 at tau = 2 ms), and
``test_dc_and_psc_train_of_equal_charge_match`` found the PSC-driven V
0.28-0.66 mV away from the DC-driven one (tolerance 1e-9 mV for these
models); all other models passed both, as they do now.

How the charge is measured (model-agnostic). At a stable rest point and with
a small input, the neuron is a linear time-invariant system, and the sum of
the sampled deviation, sum_k (V_k - V_rest), is its zero-frequency gain times
the input's charge divided by h. A one-step current pulse of amplitude
w tau / h (step_current_generator; NEST holds its current constant over the
step in every model) has the charge w tau; for it this sum is exact for
any model, because its input is constant over each step. The ratio
r = sum(PSC) / sum(pulse) is then the PSC's charge in units of w tau, with
two model classes to tell apart:

* Models whose V update is a discrete-time (forward-Euler) step seeing each
  synaptic current's average over the step (:data:`STEP_AVERAGE`): the sum
  is the model's own integral, so r = 1 exactly.
* Models that integrate V in continuous time within the step (exact
  propagators or an ODE solver: every other model): their charge is w tau by
  construction, but the grid samples of V alias the PSC's shape within the
  step (Poisson summation of the sampled response): r = 1 - eps with
  eps = h^2 / (12 tau) * g0 / G0 * (1 - h^2 (1/tau^2 + a/tau + a^2) / 60),
  g0 = 1/C the initial slope of V per unit charge, G0 the zero-frequency gain
  (mV/pA), a the initial decay rate of the impulse response, all three read
  off the pulse response. eps = 1.67e-4 for the PD14 LIF; the neglected
  terms of the series are below 1e-8.

The tolerance is the issue's 1e-6. Numerics: the nonlinear part of a
model's response (Izhikevich: 2e-3 of the linear part at 0.1 reference PSC)
is removed by measuring every input at 1, 2 and 3 times its size
(:func:`_linear_part`, error O(w^4)); every probe carries the same charge as
the pulse, so their responses are alike in size; deviations are taken
against a control neuron in the same state; the sum stops where the linear
response has decayed below 1e-9 of its peak, because below that V sits on a
neighbouring floating-point fixed point (a few 1e-12 mV for forward Euler
near -66 mV) whose offset would otherwise add up over the window. Measured
|r - expected| (2026-11-27): <= 1e-8 for the LIF-like models (the
neglected alias terms), <= 8.4e-8 for Izhikevich, 3.2e-7 for AdEx at
tau = 0.5 ms, which is the error control of its GSL solver at its default
tolerance 1e-6 (7e-9 with gsl_*_error_tol = 1e-9).

The Galves-Loecherbach model spikes at random only above V_rheo (power-law
Phi, catalogue phi_type = 1: Phi = 0 below V_rheo = -50.1 mV); its rest at
-65 mV and the drive below (V <= -57.5 mV) stay below, so it is deterministic
here. Every test fails if any neuron spikes.
"""

import numpy as np
import pytest

from cortexzoo.models import load_catalogue

CATALOGUE = load_catalogue()
H = 0.1  # ms, the fixture's resolution (PD14's)
TAU_PD14 = 0.5  # ms, PD14's synaptic time constant, set through the tau_syn roles
TAU_OTHER = 2.0  # ms, a second time constant per port: catches one port using the other's factor
PSC_REF_PA = 87.8  # PD14's reference PSC (0.15 mV PSP in the LIF)
W_FRACTION = 0.1  # probe PSC = 0.1 reference PSC: PSP ~0.015 mV, far below threshold
POPULATION = {"E": "L4E", "I": "L4I"}
# Models whose V update is a discrete-time step that sees the synaptic current's average over
# the step. Any other model is taken to integrate V in continuous time; a new forward-Euler
# model fails the charge test by ~eps (above) until it is listed here.
STEP_AVERAGE = {"izhikevich_nestml", "izhikevich2007_nestml"}
CHARGE_TOL = 1e-6  # relative, issue 12
# Hodgkin-Huxley (issue 15) misses 1e-6 for reasons of the method, not of its charge (measured
# 2026-11-28, GSL and fixed-step alike): at 0.1 reference PSC the 1-2-3 extrapolation leaves a
# nonlinear residual (exc and inh differ by 3e-5, which no charge error can do: it scales both
# alike; 8e-7 at 0.03 PSC), and its multi-timescale impulse response (gates, tau_eff 1.5 ms) leaves
# an alias offset the one-time-constant series above does not model (-1.6e-5 at tau_syn 0.5 ms,
# -4.5e-6 at 2 ms). Largest |r - expected| at 0.1 PSC: 5.5e-5. The bug class the test exists for
# (Euler-type charge error) is 1e-1.
CHARGE_TOL_BY_MODEL = {"hh_psc_exp_nestml": 1e-4, "hh_psc_exp_fast_nestml": 1e-4}
# Spikes act in their arrival step (added before V is propagated, as NEST's gif_psc_exp): a PSC
# train leads a DC switched on at the same time by one step (I h / C, 0.04 mV for the GIF).
SPIKES_IN_ARRIVAL_STEP = {"gif_psc_exp_nestml"}
# Type II Hodgkin-Huxley fires one spike at the onset of a DC step far below the rheobase of
# sustained firing (half of it, 311 pA, does): its DC test drive is a fifth of the rheobase.
DRIVE_FRACTION = {"hh_psc_exp_nestml": 0.2, "hh_psc_exp_fast_nestml": 0.2}
DECAYED = 1e-9  # the charge sum stops where the response fell below this fraction of its peak
SETTLE_MS = 1000.0  # rest: slowest subthreshold mode ~50 ms (Izhikevich RS recovery, 1/a)
WINDOW_MS = 4000.0  # charge window: > 30 slowest time constants (AdEx 122 ms; decay < 1e-12)
DRIVE_MS = 1000.0  # issue 12: 1 s of DC vs PSC train
ROUNDING_MV = 1e-9  # rounding of V over 1e4 steps, at worst 65 mV * 1.1e-16 * 1e4 = 7e-11 mV

AMPLITUDES = (1, 2, 3)  # each input at 1, 2 and 3 times its size ...
LINEAR_COEFFS = (3.0, -1.5, 1.0 / 3.0)  # ... combined into the linear part of the response
# Charge probes: label -> (port, sign of the weight, tau_syn_exc, tau_syn_inh); the port's own tau is probed.
PSC_PROBES = {
    "exc": ("exc", 1.0, TAU_PD14, TAU_PD14),
    "inh": ("inh", -1.0, TAU_PD14, TAU_PD14),
    "exc_tau2": ("exc", 1.0, TAU_OTHER, TAU_PD14),
    "inh_tau2": ("inh", -1.0, TAU_PD14, TAU_OTHER),
}
# Current-based models only: a conductance synapse's charge depends on V (its map to the
# reference charge at the working point is tested in tests/test_conductance.py).
CASES = [(name, ct) for name in sorted(CATALOGUE) if CATALOGUE[name].conductance_map is None for ct in ("E", "I")]


def _params(spec, cell_type, tau_exc=TAU_PD14, tau_inh=TAU_PD14):
    """Catalogue PD14 parameters of one cell type, synaptic time constants set through the roles, with the
    rule's bias current as the network gives it (its rheobase is measured with it)."""
    params = spec.params_for(POPULATION[cell_type], cell_type)
    params[spec.role("bias_current")] = spec.bias_current(0.0, cell_type)
    params[spec.role("tau_syn_exc")] = tau_exc
    params[spec.role("tau_syn_inh")] = tau_inh
    return params


def _ports(spec, neuron):
    """Receptor types of the exc and inh ports (catalogue names looked up in NEST)."""
    rtypes = neuron.get("receptor_types") if spec.is_nestml else {}
    return {"exc": spec.receptor("exc", rtypes), "inh": spec.receptor("inh", rtypes)}


def _record(nest, spec, neurons, start_ms):
    """A multimeter on V at every step after ``start_ms`` and a spike recorder, on every neuron."""
    mm = nest.Create("multimeter", params={"record_from": [spec.role("membrane_potential")],
                                           "interval": H, "start": start_ms})
    sr = nest.Create("spike_recorder")
    for n in neurons.values():
        nest.Connect(mm, n)
        nest.Connect(n, sr)
    return mm, sr


def _deviations(spec, neurons, mm, sr):
    """V minus the control neuron's V, per label; fails if any neuron spiked (the tests need subthreshold)."""
    assert sr.n_events == 0, f"{spec.name}: a neuron spiked, the input must stay subthreshold"
    ev = mm.events
    senders, v = np.asarray(ev["senders"]), np.asarray(ev[spec.role("membrane_potential")])
    trace = {label: v[senders == n.global_id] for label, n in neurons.items()}
    return {label: trace[label] - trace["control"] for label in neurons if label != "control"}


def _linear_part(dev, label):
    """Linear part of the response to input x from the responses to x, 2x and 3x.

    With d(m) = L m + Q m^2 + K m^3 + O(m^4), 3 d(1) - 1.5 d(2) + d(3) / 3 = L:
    the quadratic and cubic terms of a nonlinear model drop out.
    """
    return sum(c * dev[f"{label}{m}"] for m, c in zip(AMPLITUDES, LINEAR_COEFFS))


def _charge_sum(d):
    """Sum of a response over the steps until it has decayed below DECAYED of its peak."""
    peak = np.max(np.abs(d))
    end = np.nonzero(np.abs(d) >= DECAYED * peak)[0][-1] + 1
    assert end < len(d), "the response has not decayed within the window; lengthen WINDOW_MS"
    return float(np.sum(d[:end]))


def _initial_slope(d, amplitude_pA):
    """1/C (mV per pA ms) from a one-step pulse response: its first two steps extrapolated to t = 0+.

    Returns the extrapolated slope and the initial decay rate of the impulse response (1/ms).
    """
    k0 = np.nonzero(d)[0][0]
    g1, g2 = d[k0] / (amplitude_pA * H), d[k0 + 1] / (amplitude_pA * H)  # step means of the impulse response
    return (3.0 * g1 - g2) / 2.0, np.log(g1 / g2) / H  # error O(h^2): 3e-5 relative for the LIF


def _expected_ratio(name, pulse, amplitude_pA, tau):
    """PSC charge over w tau as the grid samples of V show it (see the module docstring)."""
    if name in STEP_AVERAGE:
        return 1.0
    g0, decay = _initial_slope(pulse, amplitude_pA)
    gain = _charge_sum(pulse) / amplitude_pA  # zero-frequency gain, mV/pA
    second_order = H**2 * (1.0 / tau**2 + decay / tau + decay**2) / 60.0
    return 1.0 - H**2 / (12.0 * tau) * g0 / gain * (1.0 - second_order)


def _probe_weight(w, label):
    """Weight of a PSC probe: w scaled so that every probe carries the charge w * TAU_PD14.

    Equal charges give equal response sizes, so what is left of the nonlinear
    terms is alike in the probes and the pulse.
    """
    port, sign, tau_exc, tau_inh = PSC_PROBES[label]
    return sign * w * TAU_PD14 / (tau_exc if port == "exc" else tau_inh)


def _charge_network(nest, spec, cell_type, w):
    """Control, one-step current pulses of charge m w TAU_PD14 and PSC probes of the same charge, m = 1, 2, 3."""
    neurons = {"control": nest.Create(spec.nest_model, params=_params(spec, cell_type))}
    ports = _ports(spec, neurons["control"])
    spike = nest.Create("spike_generator", params={"spike_times": [SETTLE_MS]})
    for m in AMPLITUDES:
        pulse = nest.Create("step_current_generator", params={
            "amplitude_times": [SETTLE_MS, SETTLE_MS + H], "amplitude_values": [m * w * TAU_PD14 / H, 0.0]})
        neurons[f"pulse{m}"] = nest.Create(spec.nest_model, params=_params(spec, cell_type))
        nest.Connect(pulse, neurons[f"pulse{m}"], syn_spec={"delay": H})
        for label, (port, _sign, tau_exc, tau_inh) in PSC_PROBES.items():
            n = neurons[f"{label}{m}"] = nest.Create(spec.nest_model,
                                                     params=_params(spec, cell_type, tau_exc, tau_inh))
            nest.Connect(spike, n, syn_spec={"weight": m * _probe_weight(w, label), "delay": H,
                                             "receptor_type": ports[port]})
    return neurons


@pytest.mark.parametrize(("name", "cell_type"), CASES)
def test_one_psc_delivers_w_tau(nest_kernel, name, cell_type):
    """One PSC of weight w delivers the charge w tau_syn to V, to 1e-6, at each port and two taus.

    Catches a model whose V sees the synaptic current of the start of the
    step (the Izhikevich models before issue 12: ratio 1.1033, see the module
    docstring), a port whose step factor uses the other port's tau (the
    tau = 2 ms probes), a weight scaled on the way in, or a PSC whose decay
    is not exp(-t/tau_syn).
    """
    spec, nest = CATALOGUE[name], nest_kernel
    w = spec.weight(W_FRACTION * PSC_REF_PA, cell_type)
    neurons = _charge_network(nest, spec, cell_type, w)
    mm, sr = _record(nest, spec, neurons, SETTLE_MS)
    nest.Simulate(SETTLE_MS + WINDOW_MS)
    dev = _deviations(spec, neurons, mm, sr)
    pulse, amplitude = _linear_part(dev, "pulse"), w * TAU_PD14 / H
    per_charge = _charge_sum(pulse) / (amplitude * H)  # response sum per unit charge (pA ms)
    report, bad = [], []
    for label, (port, _sign, tau_exc, tau_inh) in PSC_PROBES.items():
        tau = tau_exc if port == "exc" else tau_inh
        ratio = _charge_sum(_linear_part(dev, label)) / (_probe_weight(w, label) * tau) / per_charge
        expected = _expected_ratio(name, pulse, amplitude, tau)
        report.append(f"{label}: charge / (w tau) = {ratio:.9f}, expected {expected:.9f}")
        bad += [label] if abs(ratio - expected) > CHARGE_TOL_BY_MODEL.get(name, CHARGE_TOL) else []
    assert not bad, f"{name} ({cell_type}): " + "; ".join(report)


def _regular_train(nest, w, tau, first_ms, n_spikes):
    """Spike generators for one spike per step from ``first_ms``, weight w, started in steady state.

    The first spike carries w / (1 - exp(-h/tau)), the current a train of one
    spike per step settles to, so the synaptic current is periodic with period
    h from the first step on and the comparison with DC needs no onset
    transient (the first spike's extra charge is the charge still in the
    synapse when the last step ends). Returns ``[(generator, weight), ...]``.
    """
    decay = np.exp(-H / tau)
    times = np.round(first_ms + H * np.arange(n_spikes), 6)
    train = nest.Create("spike_generator", params={"spike_times": times})
    onset = nest.Create("spike_generator", params={"spike_times": [times[0]]})
    return [(train, w), (onset, w * decay / (1.0 - decay))]


def _drive_network(nest, spec, cell_type, current):
    """Per sign of the drive: one neuron for the DC (bias role, set later) and one for the PSC train.

    Plus a control and a neuron for a one-step pulse of ``current`` (its
    response gives 1/C for the tolerance).
    """
    params = _params(spec, cell_type)
    neurons = {label: nest.Create(spec.nest_model, params=params)
               for label in ("control", "pulse", "dc_exc", "train_exc", "dc_inh", "train_inh")}
    ports = _ports(spec, neurons["control"])
    w = current * H / TAU_PD14  # w tau nu = I with nu = 1/h
    n_spikes = round(DRIVE_MS / H)
    # a spike sent at t - h (delay h) reaches V in the step after t, as I_e set at t does
    for port, sign in (("exc", 1.0), ("inh", -1.0)):
        for gen, weight in _regular_train(nest, sign * w, TAU_PD14, SETTLE_MS - H, n_spikes):
            nest.Connect(gen, neurons[f"train_{port}"],
                         syn_spec={"weight": weight, "delay": H, "receptor_type": ports[port]})
    pulse = nest.Create("step_current_generator", params={
        "amplitude_times": [SETTLE_MS - H, SETTLE_MS], "amplitude_values": [current, 0.0]})
    nest.Connect(pulse, neurons["pulse"], syn_spec={"delay": H})
    return neurons


@pytest.mark.parametrize(("name", "cell_type"), CASES)
def test_dc_and_psc_train_of_equal_charge_match(nest_kernel, name, cell_type):
    """1 s of DC I (bias role) and of one PSC per step (w tau / h = I) give the same V, subthreshold.

    I = half the catalogue rheobase, both signs (exc port against +I, inh port
    against -I). Tolerance, derived: a model whose V sees the step average
    (:data:`STEP_AVERAGE`) gets exactly I in every step, so only rounding
    (ROUNDING_MV) is allowed. A continuous-time model sees the PSC's shape
    within the step; sampled on the grid, the deviation from the DC
    trajectory is -(I h^2 / (12 tau)) (g(0) - g(t)) (same series as the
    charge test, g the impulse response per charge), and |g(t)| <= g(0) = 1/C
    bounds it by |I| h^2 / (6 tau C): 2.5e-3 mV for the LIF at 187 pA.
    Catches the Izhikevich charge error (PSC-driven V 0.28-0.66 mV away from
    the DC-driven V here, 10 % more charge amplified by the quadratic V
    dynamics) and any model whose bias current and synaptic current enter V
    differently.
    """
    spec, nest = CATALOGUE[name], nest_kernel
    assert spec.rheobase_pA, f"{name}: the catalogue needs a rheobase to choose a subthreshold drive"
    # rheobase in LIF pA, the drive in the model's
    current = DRIVE_FRACTION.get(name, 0.5) * spec.rheobase_pA * spec.scale_for(cell_type)
    neurons = _drive_network(nest, spec, cell_type, current)
    mm, sr = _record(nest, spec, neurons, SETTLE_MS - 2 * H)
    nest.Simulate(SETTLE_MS)
    bias = spec.role("bias_current")
    base = spec.bias_current(0.0, cell_type)
    neurons["dc_exc"].set({bias: base + current})
    neurons["dc_inh"].set({bias: base - current})
    nest.Simulate(DRIVE_MS)
    dev = _deviations(spec, neurons, mm, sr)
    g0, _ = _initial_slope(dev["pulse"], current)
    ripple = 0.0 if name in STEP_AVERAGE else current * H**2 * g0 / (6.0 * TAU_PD14)
    tolerance = ripple + ROUNDING_MV
    for port in ("exc", "inh"):
        train, dc = dev[f"train_{port}"], dev[f"dc_{port}"]
        if name in SPIKES_IN_ARRIVAL_STEP:  # the train's step k is the DC's step k + 1
            train, dc = train[:-1], dc[1:]
        diff = np.max(np.abs(train - dc))
        swing = np.max(np.abs(dev[f"dc_{port}"]))
        assert swing > 0.5, f"{name} ({cell_type}): the DC moved V by only {swing:.3f} mV"
        assert diff <= tolerance, (f"{name} ({cell_type}), {port}: PSC train and DC differ by up to {diff:.3e} mV "
                                   f"(tolerance {tolerance:.3e} mV, DC moved V by {swing:.2f} mV)")
