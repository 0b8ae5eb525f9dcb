"""Single-neuron measurements in NEST for the calibration and its report.

Every function builds one small NEST network of unconnected neurons (many
parameter sets or currents at once) in a freshly reset kernel and returns
plain NumPy numbers:

* :func:`simulate_fi` -- steady-state f-I curves (DC through ``I_e``);
  :class:`LifTarget` caches them for the reference LIF.
* :func:`measure_psp_trace` / :func:`measure_psp` -- the response to one
  excitatory PSC at rest: its peak and its time integral.
* :func:`solve_input_scale` -- the input scale that gives a target PSP.
* :func:`passive_properties` -- input resistance and effective membrane
  time constant from a small DC step below threshold.

All currents are in pA (every cortexzoo model takes ``I_e`` in pA), voltages
in mV, times in ms. The method is explained in ``docs/calibration.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cortexzoo.errors import CortexzooError

RESOLUTION_MS = 0.1
#: f-I curves: spikes are counted for MEASURE_MS after WARMUP_MS (adaptation settles).
WARMUP_MS = 1000.0
MEASURE_MS = 1000.0
#: PSP protocol: the neuron rests until the input spike at PSP_SPIKE_MS, which arrives
#: PSP_DELAY_MS later; the response is read until PSP_SPIKE_MS + PSP_WINDOW_MS.
PSP_SPIKE_MS = 600.0
PSP_DELAY_MS = 1.0
PSP_WINDOW_MS = 100.0
#: Passive properties: the step response counts as settled when its last tenth
#: changes by less than this fraction of its final value.
SETTLED_REL = 1e-3


def fresh_kernel(seed: int = 1):
    """A reset NEST kernel (one thread, :data:`RESOLUTION_MS`) with the cortexzoo module.

    Parameters
    ----------
    seed : int

    Returns
    -------
    module
        The ``nest`` package.
    """
    from cortexzoo.models import ready_kernel

    return ready_kernel(threads=1, resolution_ms=RESOLUTION_MS, seed=seed)


def simulate_fi(nest, model: str, param_sets: list, currents) -> np.ndarray:
    """Steady-state rates of many unconnected neurons in one NEST network.

    Parameters
    ----------
    nest : module
        NEST, already reset with the cortexzoo module installed.
    model : str
        NEST model name.
    param_sets : list of dict
        One parameter set per candidate.
    currents : array_like
        DC amplitudes (pA), given through ``I_e``.

    Returns
    -------
    numpy.ndarray
        Rates in Hz (spikes in the measurement window after :data:`WARMUP_MS`),
        shape ``(len(param_sets), len(currents))``.
    """
    currents = np.asarray(currents, dtype=float)
    allpop = None
    for params in param_sets:
        pop = nest.Create(model, len(currents), params=params)
        pop.set({"I_e": currents.tolist()})
        allpop = pop if allpop is None else allpop + pop
    sr = nest.Create("spike_recorder", params={"start": WARMUP_MS, "stop": WARMUP_MS + MEASURE_MS})
    nest.Connect(allpop, sr)
    nest.Simulate(WARMUP_MS + MEASURE_MS)
    senders = np.asarray(sr.events["senders"], dtype=int) - allpop.global_id[0] if sr.n_events else []
    counts = np.bincount(senders, minlength=len(allpop))[: len(allpop)]
    return counts.reshape(len(param_sets), len(currents)) / (MEASURE_MS / 1000.0)


class LifTarget:
    """Rates of the reference LIF at any currents, simulated once per new current and cached.

    Parameters
    ----------
    params : dict
        NEST parameters of the reference neuron.
    model : str
        Its NEST model.
    """

    def __init__(self, params: dict, model: str = "iaf_psc_exp"):
        self.params, self.model = params, model
        self._cache = {}

    def __call__(self, currents) -> np.ndarray:
        """Rates (Hz) at ``currents`` (pA), see :func:`simulate_fi`."""
        currents = np.asarray(currents, dtype=float)
        missing = sorted(set(currents.round(6)) - set(self._cache))
        if missing:
            rates = simulate_fi(fresh_kernel(), self.model, [self.params], missing)[0]
            self._cache.update(zip(missing, rates))
        return np.array([self._cache[c] for c in currents.round(6)])


@dataclass(frozen=True)
class PspTrace:
    """Membrane responses to one excitatory PSC at rest.

    Attributes
    ----------
    t_ms : numpy.ndarray
        Sample times after the spike's arrival, shape ``(n_samples,)``: every
        :data:`RESOLUTION_MS` up to :data:`PSP_WINDOW_MS` after the spike was
        sent, less the recorder's latency of one delay (NEST hands over the
        last delay's samples only in a later slice): 0 ... 98 ms.
    dv_mV : numpy.ndarray
        ``V - V_rest`` per parameter set, shape ``(n_sets, n_samples)``;
        ``V_rest`` is V when the spike is sent (one delay before it arrives).
    """

    t_ms: np.ndarray
    dv_mV: np.ndarray

    @property
    def peak_mV(self) -> np.ndarray:
        """The PSP: the largest depolarisation in the window, per parameter set."""
        return self.dv_mV.max(axis=1)

    @property
    def integral_mV_ms(self) -> np.ndarray:
        """Time integral of ``V - V_rest`` over the window (mV ms), per parameter set.

        The sum of the samples times the step: ``dv`` is 0 at the arrival and
        has decayed at the window's end, where this equals the trapezoidal rule.
        """
        return self.dv_mV.sum(axis=1) * RESOLUTION_MS


def measure_psp_trace(model: str, param_sets: list, weight_pA: float) -> PspTrace:
    """The response of each parameter set to one excitatory spike of ``weight_pA`` at rest.

    Each neuron rests for :data:`PSP_SPIKE_MS` (slow recovery variables
    settle), then gets one spike through its excitatory port.

    Parameters
    ----------
    model : str
        NEST model name (cortexzoo interface: port ``exc_spikes``; NEST
        built-ins: the default port).
    param_sets : list of dict
        Neuron parameters, one neuron each (``I_e`` is set to 0).
    weight_pA : float
        Synaptic weight.

    Returns
    -------
    PspTrace
    """
    nest = fresh_kernel()
    neurons = nest.Create(model, len(param_sets))
    for n, params in zip(neurons, param_sets):
        n.set(dict(params, I_e=0.0))
    receptor = neurons[0].get("receptor_types").get("EXC_SPIKES", 0) if model.endswith("_nestml") else 0
    sg = nest.Create("spike_generator", params={"spike_times": [PSP_SPIKE_MS]})
    nest.Connect(sg, neurons, syn_spec={"weight": float(weight_pA), "delay": PSP_DELAY_MS, "receptor_type": receptor})
    mm = _voltmeter(nest, neurons, start_ms=PSP_SPIKE_MS - 10.0)
    nest.Simulate(PSP_SPIKE_MS + PSP_WINDOW_MS)
    t, v = _voltage_traces(mm, neurons)
    arrival = PSP_SPIKE_MS + PSP_DELAY_MS
    # Rest is read when the spike is sent, not at its arrival: models that add a step's spikes
    # before propagating V (NEST's gif_psc_exp and its twin) have moved already at the arrival
    # sample, which therefore belongs to the PSP (for the others it is still rest: dv = 0).
    rest = v[:, t <= PSP_SPIKE_MS][:, -1]
    after = t >= arrival
    return PspTrace(t_ms=t[after] - arrival, dv_mV=v[:, after] - rest[:, None])


def measure_psp(model: str, param_sets: list, weight_pA: float) -> np.ndarray:
    """Peak PSP (mV) of one excitatory spike of ``weight_pA`` at rest, per parameter set.

    The peak of :func:`measure_psp_trace`: the largest depolarisation above
    the pre-spike value within :data:`PSP_WINDOW_MS` of the spike.

    Parameters
    ----------
    model : str
    param_sets : list of dict
    weight_pA : float

    Returns
    -------
    numpy.ndarray
    """
    return measure_psp_trace(model, param_sets, weight_pA).peak_mV


def solve_input_scale(model: str, param_sets: list, scale_keys, s0: float, target_psp: float,
                      weight_pA: float, iterations: int = 4) -> tuple:
    """Solve the input scale ``s`` of each parameter set from the PSP criterion.

    Multiplying the current-like parameters by ``s`` divides the input by
    ``s``; the PSP is nearly proportional to 1/s, so the fixed-point
    iteration ``s <- s * PSP(s) / target`` converges in a few steps.

    Parameters
    ----------
    model : str
        NEST model name.
    param_sets : list of dict
        Unscaled parameter sets (current-like parameters at their published values).
    scale_keys : iterable of str
        The current-like parameters multiplied by ``s``.
    s0 : float
        Initial scale.
    target_psp : float
        PSP (mV) of the reference PSC in the LIF.
    weight_pA : float
        The reference PSC.
    iterations : int

    Returns
    -------
    (list of dict, numpy.ndarray)
        Scaled parameter sets and the scales.
    """
    s = np.full(len(param_sets), float(s0))

    def scaled(i):
        return dict(param_sets[i], **{k: param_sets[i][k] * s[i] for k in scale_keys})

    for _ in range(iterations):
        psp = measure_psp(model, [scaled(i) for i in range(len(s))], weight_pA)
        s = s * psp / target_psp
    return [scaled(i) for i in range(len(s))], s


@dataclass(frozen=True)
class PassiveProperties:
    """Subthreshold properties of a neuron at rest.

    Attributes
    ----------
    R_in_MOhm : float
        Input resistance: steady V shift per injected current.
    tau_m_ms : float
        Effective membrane time constant: time to 63 % (1 - 1/e) of the
        steady shift.
    V_rest_mV : float
        V before the step.
    """

    R_in_MOhm: float
    tau_m_ms: float
    V_rest_mV: float


def passive_properties(model: str, params: dict, delta_pA: float = 10.0, settle_ms: float = 600.0,
                       step_ms: float = 1000.0) -> PassiveProperties:
    """Input resistance and effective membrane time constant from a small DC step.

    Two identical neurons rest for ``settle_ms``; then one gets ``+delta_pA``
    and the other ``-delta_pA`` on top of the ``I_e`` in ``params``. Their
    half difference is the step response with the even-order terms of a
    nonlinear membrane (AdEx's exponential, Izhikevich's quadratic) cancelled,
    i.e. the slope at rest. ``R_in`` is its final value per pA; ``tau_m`` the
    first time it reaches 63 % of that value (linear interpolation between
    samples; for a one-compartment LIF exactly tau_m = C_m / g_L). Slow
    subthreshold currents (AdEx's ``a``) are included: both are *effective*
    values of the model as it is.

    Parameters
    ----------
    model : str
        NEST model name.
    params : dict
        Its parameters.
    delta_pA : float
        Step size; small enough to stay below threshold and in the linear range.
    settle_ms : float
        Rest before the step.
    step_ms : float
        Step duration; several times the slowest subthreshold time constant.

    Returns
    -------
    PassiveProperties

    Raises
    ------
    CortexzooError
        When a neuron fires, or the response has not settled by the step's end.
    """
    t, response, v_rest = _step_response(model, params, delta_pA, settle_ms, step_ms)
    steady = response[-1]
    _check_settled(model, t, response, delta_pA, step_ms)
    return PassiveProperties(R_in_MOhm=float(steady / delta_pA * 1000.0),  # mV/pA = GOhm
                             tau_m_ms=_rise_time(t, response, (1.0 - math.exp(-1.0)) * steady),
                             V_rest_mV=v_rest)


def _step_response(model: str, params: dict, delta_pA: float, settle_ms: float, step_ms: float) -> tuple:
    """(t after the step onset, half difference of the +-delta_pA responses, V at the onset)."""
    nest = fresh_kernel()
    base = float(params.get("I_e", 0.0))
    neurons = nest.Create(model, 2, params=dict(params, I_e=base))
    sr = nest.Create("spike_recorder")
    nest.Connect(neurons, sr)
    mm = _voltmeter(nest, neurons, start_ms=settle_ms - 1.0)
    nest.Simulate(settle_ms)
    neurons.set({"I_e": [base + delta_pA, base - delta_pA]})
    nest.Simulate(step_ms)
    if sr.n_events:
        raise CortexzooError(f"{model} fired during the +-{delta_pA:g} pA step of its passive measurement.",
                             "Pass a smaller delta_pA, or parameters whose rest lies further below threshold.")
    t, v = _voltage_traces(mm, neurons)
    onset = np.nonzero(t <= settle_ms)[0][-1]  # both neurons still identical here: response 0
    return t[onset:] - settle_ms, 0.5 * (v[0, onset:] - v[1, onset:]), float(v[0, onset])


def _check_settled(model: str, t: np.ndarray, response: np.ndarray, delta_pA: float, step_ms: float) -> None:
    steady = response[-1]
    if not steady > 0:
        raise CortexzooError(f"{model} does not depolarise for a +{delta_pA:g} pA step (steady {steady:g} mV).",
                             "Check that the model takes I_e in pA and that params describe a neuron at rest.")
    change = np.ptp(response[t >= 0.9 * t[-1]]) / steady
    if change > SETTLED_REL:
        raise CortexzooError(
            f"{model}'s response to a {delta_pA:g} pA step still changes by {change:.1e} of its size in the "
            f"last tenth of {step_ms:g} ms.",
            "Pass a longer step_ms (several times the model's slowest subthreshold time constant).")


def _rise_time(t: np.ndarray, response: np.ndarray, level: float) -> float:
    """First time a response starting below ``level`` reaches it, interpolated between samples."""
    k = int(np.argmax(response >= level))
    return float(np.interp(level, response[k - 1 : k + 1], t[k - 1 : k + 1]))


def _voltmeter(nest, neurons, start_ms: float):
    mm = nest.Create("multimeter", params={"record_from": ["V_m"], "interval": RESOLUTION_MS, "start": start_ms})
    nest.Connect(mm, neurons)
    return mm


def _voltage_traces(mm, neurons) -> tuple:
    """(times, V per neuron): shape ``(n_samples,)`` and ``(len(neurons), n_samples)``."""
    ev = mm.events
    senders, t, v = np.asarray(ev["senders"]), np.asarray(ev["times"]), np.asarray(ev["V_m"])
    gids = neurons.tolist()
    return t[senders == gids[0]], np.array([v[senders == gid] for gid in gids])
