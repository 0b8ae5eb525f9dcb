"""Synapse arithmetic shared by the model zoo and the network.

Both :mod:`cortexzoo.models` (calibration: the PD14 reference PSC) and
:mod:`cortexzoo.network` (weights from PSPs) need the same PSC <-> PSP
conversion; it lives here so that neither stage imports the other.
"""

from __future__ import annotations


def psc_over_psp(C_m_pF, tau_m_ms, tau_syn_ms):
    """PSC amplitude (pA) per PSP amplitude (mV) for a LIF with exp-PSCs.

    The PSP is the maximum of the membrane response to one exponential
    current (Hanuschkin et al. 2010, Eq. 5; INM-6 helpers.py).

    Parameters
    ----------
    C_m_pF, tau_m_ms, tau_syn_ms : float

    Returns
    -------
    float
    """
    sub = 1.0 / (tau_syn_ms - tau_m_ms)
    pre = tau_m_ms * tau_syn_ms / C_m_pF * sub
    frac = (tau_m_ms / tau_syn_ms) ** sub
    return 1.0 / (pre * (frac**tau_m_ms - frac**tau_syn_ms))
