"""One-step V error of fixed-step AdEx schemes, the reason aeif_psc_exp_fast_nestml uses Lawson RK3.

Run: ``python tests/benchmarks/adex_step_error.py``. Not collected by pytest.

For the published AdEx E cell (C_m 281 pF, g_L 30 nS, E_L -70.6 mV, V_th -50.4 mV,
Delta_T 2 mV) and h = 0.1 ms, each scheme takes one step of

    C_m dV/dt = -g_L (V - E_L) + g_L Delta_T exp((V - V_th)/Delta_T) + I + I_s exp(-t/0.5 ms)

from V0 (w held fixed: it moves by < 0.01 pA in a step) with I ~ N(400, 800) pA
and I_s ~ N(0, 300) pA, the drive of tests/test_fast_adex.py, and compares it
with scipy's DOP853 at 1e-12. The linear part and the synaptic current are
propagated exactly in all schemes; they differ in how the exponential term
N(t) enters: ETD2RK (Cox & Matthews 2002, N linear in time between an
exponential-Euler predictor and the start) or Lawson's integrating-factor RK3
(Kutta) and RK4. Printed: median and 95th percentile of |error| in mV.

Measured (2026-11): at V0 = -50 mV ETD2RK 3e-5 / 2e-4 mV, RK3 2e-7 / 1.5e-6,
RK4 6e-9 / 1e-7; at -56 mV ETD2RK 1e-6 / 9e-6, RK3 7e-10 / 7e-9. Against NEST's
aeif_psc_exp over 10 s, ETD2RK moved 0.3-2.5 % of the spikes by more than a
step, RK3 and RK4 none (tests/test_fast_adex.py), and RK4 costs one more exp()
per step, so the model uses RK3.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

C, G_L, E_L, V_TH, DELTA_T = 281.0, 30.0, -70.6, -50.4, 2.0
H, TAU_S = 0.1, 0.5
LAM, MU = -G_L / C, -1.0 / TAU_S


def spike_current(v):
    """The exponential spike current (pA) at V (mV)."""
    return G_L * DELTA_T * np.exp((v - V_TH) / DELTA_T)


def linear_step(v0, i_c, i_s, h):
    """V after ``h`` of the linear part with both inputs, and the propagators E and F (scalar form)."""
    e = np.exp(LAM * h)
    f = (e - 1.0) / LAM / C
    g = (e - np.exp(MU * h)) / (LAM - MU) / C
    return E_L + e * (v0 - E_L) + f * i_c + g * i_s, e, f


def exact(v0, i_c, i_s):
    """Reference solution over one step."""
    def rhs(t, y):
        return [(-G_L * (y[0] - E_L) + spike_current(y[0]) + i_c + i_s * np.exp(-t / TAU_S)) / C]

    return solve_ivp(rhs, (0.0, H), [v0], rtol=1e-12, atol=1e-12, method="DOP853").y[0, -1]


def etd2(v0, i_c, i_s):
    """ETD2RK: exponential-Euler predictor, then N linear in time."""
    v_lin, _, f = linear_step(v0, i_c, i_s, H)
    n0 = spike_current(v0)
    v_pred = v_lin + f * n0
    ramp = (f - H / C) / (LAM * H)
    return v_pred + ramp * (spike_current(v_pred) - n0)


def lawson_rk3(v0, i_c, i_s):
    """Lawson RK3 (Kutta's tableau), as in aeif_psc_exp_fast_nestml."""
    v_lin, e, _ = linear_step(v0, i_c, i_s, H)
    v_half, e2, _ = linear_step(v0, i_c, i_s, H / 2)
    n0 = spike_current(v0)
    n2 = spike_current(v_half + H / 2 * e2 / C * n0)
    n3 = spike_current(v_lin + H * (2 * e2 * n2 - e * n0) / C)
    return v_lin + H / C * (e * n0 / 6 + 2 / 3 * e2 * n2 + n3 / 6)


def lawson_rk4(v0, i_c, i_s):
    """Lawson RK4 (classical tableau)."""
    v_lin, e, _ = linear_step(v0, i_c, i_s, H)
    v_half, e2, _ = linear_step(v0, i_c, i_s, H / 2)
    n0 = spike_current(v0)
    n2 = spike_current(v_half + H / 2 * e2 / C * n0)
    n3 = spike_current(v_half + H / 2 / C * n2)
    n4 = spike_current(v_lin + H * e2 / C * n3)
    return v_lin + H / (6 * C) * (e * n0 + 2 * e2 * (n2 + n3) + n4)


def main(samples: int = 200, seed: int = 1) -> None:
    """Print the error table.

    Parameters
    ----------
    samples : int
        Random drives per start potential.
    seed : int
        Seed of numpy's generator.
    """
    rng = np.random.default_rng(seed)
    schemes = {"ETD2RK": etd2, "Lawson RK3": lawson_rk3, "Lawson RK4": lawson_rk4}
    print(f"{'V0 (mV)':>8s}  " + "  ".join(f"{name:>21s}" for name in schemes))
    for v0 in (-60.0, -56.0, -52.0, -50.0, -48.0, -46.0):
        drives = [(rng.normal(400.0, 800.0), rng.normal(0.0, 300.0)) for _ in range(samples)]
        ref = np.array([exact(v0, *d) for d in drives])
        cells = []
        for scheme in schemes.values():
            err = np.abs(np.array([scheme(v0, *d) for d in drives]) - ref)
            cells.append(f"{np.median(err):9.1e} / {np.percentile(err, 95):9.1e}")
        print(f"{v0:8.1f}  " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
