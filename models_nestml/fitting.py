"""The numerics of the calibration fit: loss, rheobase, search grids (no NEST).

Everything here works on arrays a measurement returned (:mod:`cortexzoo.models.measure`),
so it can be tested and reused without a simulator. A fitted parameter is
described by its recipe bounds, the tuple ``(low, high, n_coarse, unit, log_grid)``
of :attr:`cortexzoo.models.calibrate.ModelCalibration.free`. The method is
explained in ``docs/calibration.md``.
"""

from __future__ import annotations

import numpy as np

#: The PD14 LIF's rheobase g (V_th - E_L) = 25 nS x 15 mV (pA): the fit's target.
TARGET_RHEOBASE_PA = 375.0
#: Weight of the rheobase error in the loss (Hz of RMS rate per pA).
LAMBDA_HZ_PER_PA = 2.0
#: Rheobase error (pA) charged for a model that never fires.
SILENT_RHEOBASE_ERROR_PA = 1000.0
# Points of a refined grid per parameter: one parameter gets 17 (the two neighbouring
# coarse steps resolved 8x); with more, 5 each keeps the product grid small (AdEx: 25).
REFINE_POINTS_1D = 17
REFINE_POINTS_ND = 5


def rheobase(currents, rates) -> float:
    """Rheobase (pA) from a sampled f-I curve.

    The midpoint between the first firing current and the silent current
    below it (the first current if that already fires; NaN if none fires).

    Parameters
    ----------
    currents, rates : array_like
        Any order; sorted here.

    Returns
    -------
    float
    """
    currents, rates = np.asarray(currents, dtype=float), np.asarray(rates, dtype=float)
    order = np.argsort(currents)
    currents, rates = currents[order], rates[order]
    firing = np.nonzero(rates > 0)[0]
    if not len(firing):
        return float("nan")
    j = firing[0]
    return float(currents[j]) if j == 0 else 0.5 * float(currents[j] + currents[j - 1])


def loss(rms_Hz: float, rheobase_pA: float, target_pA: float = TARGET_RHEOBASE_PA,
         lambda_Hz_per_pA: float = LAMBDA_HZ_PER_PA) -> float:
    """The calibration loss: RMS rate error plus the weighted rheobase error.

    Parameters
    ----------
    rms_Hz : float
    rheobase_pA : float
        NaN (never fires) counts as :data:`SILENT_RHEOBASE_ERROR_PA` away.
    target_pA : float
        The rheobase to match.
    lambda_Hz_per_pA : float
        Weight of the rheobase error.

    Returns
    -------
    float
    """
    err = abs(rheobase_pA - target_pA) if np.isfinite(rheobase_pA) else SILENT_RHEOBASE_ERROR_PA
    return float(rms_Hz + lambda_Hz_per_pA * err)


def rms_residual(rates, target_rates):
    """RMS difference (Hz) between f-I curves sampled at the same currents.

    Parameters
    ----------
    rates : array_like
        Shape ``(n_currents,)`` or ``(n_candidates, n_currents)``.
    target_rates : array_like
        Shape ``(n_currents,)``.

    Returns
    -------
    float or numpy.ndarray
        One value per curve (a float for one curve).
    """
    rms = np.sqrt(np.mean((np.asarray(rates) - np.asarray(target_rates)) ** 2, axis=-1))
    return float(rms) if np.ndim(rms) == 0 else rms


def candidate_losses(currents, rates, target_rates) -> np.ndarray:
    """The loss of every candidate of one search stage.

    Parameters
    ----------
    currents : array_like
        DC amplitudes (pA): first the ``len(target_rates)`` currents of the
        RMS term, then the rheobase ladder.
    rates : numpy.ndarray
        Shape ``(n_candidates, len(currents))``.
    target_rates : array_like
        The reference rates at the RMS currents.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_candidates,)``.
    """
    rms = rms_residual(rates[:, : len(target_rates)], target_rates)
    return np.array([loss(r, rheobase(currents, curve)) for r, curve in zip(rms, rates)])


def grid(low: float, high: float, n: int, log: bool) -> np.ndarray:
    """``n`` values from ``low`` to ``high``, evenly spaced in value or in log.

    Parameters
    ----------
    low, high : float
    n : int
    log : bool

    Returns
    -------
    numpy.ndarray
    """
    return np.geomspace(low, high, n) if log else np.linspace(low, high, n)


def coarse_grids(bounds) -> list:
    """The first search stage: one grid per fitted parameter over its bounds.

    Parameters
    ----------
    bounds : iterable of tuple
        ``(low, high, n_coarse, unit, log_grid)`` per parameter.

    Returns
    -------
    list of numpy.ndarray
    """
    return [grid(low, high, n, log) for low, high, n, _unit, log in bounds]


def refine_grids(grids: list, bounds, best) -> list:
    """The next search stage: per parameter a finer grid around the best point.

    Each new grid spans the best point's neighbours on the old grid (clipped
    at the grid's ends), so it never leaves the bounds.

    Parameters
    ----------
    grids : list of numpy.ndarray
        This stage's grids, one per parameter.
    bounds : iterable of tuple
        ``(low, high, n_coarse, unit, log_grid)`` per parameter (for ``log_grid``).
    best : iterable of float
        The best value of each parameter, a point of the grids.

    Returns
    -------
    list of numpy.ndarray
    """
    n = REFINE_POINTS_1D if len(grids) == 1 else REFINE_POINTS_ND
    refined = []
    for g, bound, value in zip(grids, bounds, best):
        j = int(np.argmin(np.abs(g - value)))
        refined.append(grid(g[max(j - 1, 0)], g[min(j + 1, len(g) - 1)], n, bound[4]))
    return refined


def at_edge(best: dict, bounds: dict) -> list:
    """The parameters whose best value lies on a bound (the optimum may lie beyond it).

    Parameters
    ----------
    best : dict
        Parameter -> best value.
    bounds : dict
        Parameter -> ``(low, high, ...)``.

    Returns
    -------
    list of str
    """
    return [n for n, value in best.items() if np.isclose(value, bounds[n][0]) or np.isclose(value, bounds[n][1])]
