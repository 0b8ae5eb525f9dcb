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
