"""Figures of ``cortexzoo calibrate`` (see ``docs/calibration.md``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cortexzoo.models.fitting import TARGET_RHEOBASE_PA


def plot_fi_curves(path: Path, currents, reference: dict, results: dict,
                   target_rheobase_pA: float = TARGET_RHEOBASE_PA) -> None:
    """The calibrated f-I curves against the reference LIF: all currents and near rheobase.

    Parameters
    ----------
    path : pathlib.Path
        The PNG to write.
    currents : array_like
        DC amplitudes (pA) at which all rates were measured.
    reference : dict
        ``rates`` of the reference LIF at ``currents``.
    results : dict
        As returned by :func:`cortexzoo.models.calibrate.run_calibration`: per
        model and cell type, ``rates`` at ``currents``, ``residual_Hz`` and
        ``rheobase_pA``.
    target_rheobase_pA : float
        Marked by a dotted line.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    currents = np.asarray(currents)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, xlim, ylim in ((axes[0], (0, 1000), None), (axes[1], (300, 600), (0, 80))):
        ax.plot(currents, reference["rates"], "k-", lw=3, label="PD14 LIF (iaf_psc_exp)")
        for name, entry in results.items():
            for cell_type, fit in entry["types"].items():
                label = name.replace("_nestml", "") + (f" {cell_type}" if cell_type else "")
                ax.plot(currents, fit["rates"], lw=1.2,
                        label=f"{label} (RMS {fit['residual_Hz']:.1f} Hz, rheobase {fit['rheobase_pA']:.0f} pA)")
        ax.axvline(target_rheobase_pA, color="0.6", ls=":", lw=1)
        ax.set_xlim(*xlim)
        if ylim:
            ax.set_ylim(*ylim)
        ax.set_xlabel("DC input (pA, LIF-equivalent: x psc_per_reference_psc)")
        ax.set_ylabel("steady-state rate (Hz), after 1 s")
    axes[0].set_title("f-I curves calibrated to the PD14 LIF")
    axes[1].set_title(f"near rheobase ({target_rheobase_pA:.0f} pA)")
    axes[0].legend(fontsize=6.5)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_rate_response(path: Path, model: str, entry: dict, lif_curves: dict, offsets_mV) -> None:
    """Rate response nu(mu) of one calibrated model against the PD14 LIF at each working point.

    One panel per population: the LIF's rate and the model's (as measured
    for the fit, shifted by the fitted bias) against the mean-input offset
    from the working point; the fit's neighbourhood is shaded.

    Parameters
    ----------
    path : pathlib.Path
        The PNG to write.
    model : str
    entry : dict
        The model's ``operating_point`` result (``types`` -> cell type ->
        ``curves``, ``fit``, ``gain``).
    lif_curves : dict
        Population -> LIF rates at ``offsets_mV`` (the fine grid).
    offsets_mV : array_like
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    offsets = np.asarray(offsets_mV, dtype=float)
    pops = [(t, p) for t, fit in entry["types"].items() for p in fit["curves"]]
    fig, axes = plt.subplots(2, 4, figsize=(14, 6), sharex=True)
    for ax, (cell_type, pop) in zip(axes.ravel(), pops):
        fit = entry["types"][cell_type]
        b = fit["fit"].bias_mV
        ax.axvspan(-2, 2, color="0.92")
        ax.plot(offsets, lif_curves[pop], "k-", lw=2, label="PD14 LIF")
        ax.plot(np.asarray(fit["offsets_mV"]) - b, fit["curves"][pop], "C3-", lw=1.2,
                label=f"{model} (bias {b:+.2f} mV)")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_title(f"{pop} ({cell_type})", fontsize=9)
        ax.set_xlim(-6, 6)
    for ax in axes[1]:
        ax.set_xlabel("mean input - working point (mV)")
    for ax in axes[:, 0]:
        ax.set_ylabel("rate (Hz)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"{model}: stationary rate under PD14 working-point shot noise (operating_point rule)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
