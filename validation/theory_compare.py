"""Mean-field theory next to the simulated LIF reference (issue 13).

For an experiment whose reference is the PD14 LIF that
:mod:`cortexzoo.network.theory` describes, this stage puts NNMT's stationary
rates and linear-response population-rate spectra (Bos et al. 2016, Eq. 18)
at the simulated scale next to the reference seeds, and writes
``<experiment>/theory/``:

* ``rates.csv``: ``population, theory_rate_hz, sim_mean_hz, sim_sd_hz`` (over
  reference seeds, ddof 1), ``n_seeds, deviation_hz`` (theory - simulation),
  ``relative_deviation`` (deviation / simulation) and ``indegree_spread_hz``,
  the first-order effect of the in-degree spread the theory neglects
  (:func:`cortexzoo.network.theory.indegree_heterogeneity`, its known error);
* ``spectra.csv``: ``frequency_hz, population, theory_psd, sim_psd_mean,
  sim_psd_sd, n_seeds, log10_ratio`` and ``nnmt_two_sided_psd`` (NNMT's own
  number), theory and simulation in the same units (below);
* ``theory.png``: rates per population and the spectra overlaid (log-log);
* ``theory.json``: method, NNMT version, scale, deviation summary, limits and
  the cache key. For another reference only ``theory.json`` and ``note.txt``
  ("not applicable: <reason>") are written; the same ("not computed:
  <reason>") when NNMT finds no stationary state.

Normalisation of the spectra
----------------------------
The simulated PSD is the validation's (:func:`population_rate_psd`): the
population rate ``r_n = c_n / (N dt)`` in Hz from spike counts ``c_n`` in bins
of ``dt = psd_bin_ms``, Welch's one-sided density (Hann window, constant
detrending), Hz^2/Hz. NNMT's ``power_spectra`` is
``C(f) = Q diag(nu / N) Q^H`` of the same population-averaged rate, but
two-sided (``S(-f) = S(f)``, integral over all f = variance) and of the
continuous signal: it tends to ``nu / N`` at high f, the spectrum of N
independent Poisson trains. Binning is a boxcar filter followed by sampling
at ``fs = 1 / dt``, so the sampled rate has the aliased spectrum
``sum_k S(f + k fs) sinc^2((f + k fs) / fs)`` (the weights sum to 1), and the
one-sided density doubles it. The theory is therefore reported as::

    theory_psd(f) = 2 [w0 S(f) + w1 S(fs - f) + (1 - w0 - w1) nu / N]
    w0 = sinc^2(f / fs),  w1 = sinc^2((fs - f) / fs)

with NNMT evaluated at ``f`` and at its mirror ``fs - f``, and the remaining
aliases (|f + k fs| >= fs, weights below 0.05) at NNMT's high-frequency
limit ``nu / N``. For Poisson spikes this gives ``2 nu / N`` at every
frequency, which ``tests/test_theory_compare.py`` checks against the
validation's estimator. Not modelled: Welch's Hann-window smoothing (main
lobe +-2 frequency bins) and the per-segment mean removal, which lowers the
lowest bins (1-2 Hz) of the simulated PSD.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cortexzoo.atomic import staged_folder
from cortexzoo.errors import CortexzooError

FOLDER = "theory"
N_FREQUENCIES = 40  # log-spaced theory frequencies; NNMT costs ~0.12 s per frequency, twice (mirror)
STAGE_VERSION = 1  # bump when the files' meaning changes
METHOD = ("NNMT (Layer et al. 2022) for the PD14 LIF as simulated (cortexzoo.network.theory): stationary rates "
          "by the self-consistent Fourcaud-Brunel 'shift' working point, power spectra in linear response "
          "(Bos et al. 2016, Eq. 18) around the 'taylor' working point, as Bos et al. computed them.")
NORMALISATION = ("Both spectra are the Welch one-sided PSD of the population rate r = spikes / (N dt) in Hz^2/Hz "
                 "(validation settings). NNMT's two-sided spectrum S(f) of the continuous rate (high-f limit nu/N) "
                 "is converted as 2 [sinc^2(f/fs) S(f) + sinc^2((fs-f)/fs) S(fs-f) + rest x nu/N]: one-sided "
                 "density and the binning filter with its aliasing, fs = 1/psd_bin.")
LIMITS = (
    ("Diffusion approximation: PSPs of 0.15-0.6 mV against 6-12 mV distance to threshold, uncorrelated Poisson "
     "input (network/theory.py)."),
    "Synaptic filtering to first order in sqrt(tau_syn / tau_m) = 0.22.",
    ("One neuron with the mean in-degree stands for its population: PD14's binomial in-degrees spread the mean "
     "input by about 1-1.6 mV; the first-order effect on the rates is the column indegree_spread_hz "
     "(0.19-0.63 Hz at full scale with Poisson background)."),
    ("Full scale, Poisson background: theory against INM-6's published rates -17 % to +5 % (worst L2/3E: "
     "0.754 vs 0.903 Hz), every population within its in-degree-spread tolerance (tests/test_theory.py)."),
    ("Full scale, DC background (known failures, strict xfail in tests/test_theory.py): L2/3E theory 0.687 Hz vs "
     "simulated 0.943 Hz (in-degree spread explains 0.19 Hz), L5E 7.27 vs 8.07 Hz (explains 0.68 Hz); the linear "
     "theory puts the DC network near its ~325 Hz instability (stability margin 0.006-0.013 against 0.05-0.06 "
     "with Poisson input), i.e. collective fluctuations the stationary theory leaves out."),
    ("Spectra are linear response around a stable stationary state; near an instability (small stability "
     "margin) peak heights scale like 1/margin^2 and lose accuracy. NNMT puts the low-gamma peak at ~80 Hz at "
     "full scale (margin 0.02) and at 50-70 Hz at N = 0.1, K = 0.25."),
    ("Measured at N = 0.1, K = 0.25 (experiments/quick.toml's reference, 3 seeds x 3 s): rates within 10 %, "
     "gamma peak at 51-59 Hz in theory against 59-67 Hz simulated, but linear response has 1.5-5x less power "
     "than the simulation in 20-100 Hz (inhibitory populations and L2/3E most)."),
    ("With K-scaling compensation 'self_consistent' the theory's DC comes from its own rates, the simulation's "
     "from its measured rates (cortexzoo.network.compensation): the two DCs differ as the two rates do."),
)


# --------------------------------------------------------------------------- the stage


def theory_stage(experiment, exp_dir, say=None, n_frequencies: int = N_FREQUENCIES, cache_dir=None) -> dict:
    """Write ``<exp_dir>/theory/``: the mean-field theory next to the reference, or why it does not apply.

    Parameters
    ----------
    experiment : cortexzoo.experiments.config.Experiment
    exp_dir : pathlib.Path
        The experiment directory; its reference runs must be finished.
    say : callable, optional
        Progress printer.
    n_frequencies : int
        Log-spaced frequencies at which NNMT's spectrum is evaluated.
    cache_dir : pathlib.Path, optional
        Where NNMT results are cached across experiments; default
        ``<cortexzoo cache>/theory``.

    Returns
    -------
    dict
        The contents of ``theory.json``.
    """
    say = say or (lambda message: None)
    out = Path(exp_dir) / FOLDER
    reason = not_applicable_reason(experiment)
    if reason:
        say(f"mean-field theory: not applicable: {reason}")
        return _write_note(out, {"status": "not applicable", "reason": reason})
    refs = [Path(exp_dir) / "runs" / r.name for r in experiment.reference_runs]
    from cortexzoo.validation.settings import load_settings

    settings = load_settings(experiment.tables["validation"]["settings"])
    # The reference's resolved network table: what its runs record in their metadata.
    network = experiment.reference_runs[0].config.network
    return compare_theory(network, refs, settings, out, say, n_frequencies, cache_dir)


def not_applicable_reason(experiment) -> str | None:
    """Why the theory does not describe this experiment's reference, or None when it does.

    The theory is the catalogue's ``iaf_psc_exp`` with its PD14 parameters in
    the network :func:`cortexzoo.network.params.derive` builds (``pd14``
    overrides included), with a Poisson or DC background and no thalamic
    pulse. Decided from the config alone (no run needed).

    Parameters
    ----------
    experiment : cortexzoo.experiments.config.Experiment

    Returns
    -------
    str or None
    """
    from cortexzoo.network import theory

    config = experiment.reference_runs[0].config
    network, neuron = config.network, config.neuron
    if neuron["model"] != theory.REFERENCE_MODEL:
        return f"the reference model is {neuron['model']}, the theory describes {theory.REFERENCE_MODEL}"
    if neuron["params"] or neuron["by_population"]:
        return "the reference has parameter overrides; the theory has the catalogue's PD14 LIF"
    if network.get("thalamic_input"):
        return "thalamic input is on; its pulse is a transient the stationary theory leaves out"
    if network["background"] not in ("poisson", "dc"):
        return f"background {network['background']!r}; the theory takes 'poisson' or 'dc'"
    return _parameter_mismatch(config)


def _parameter_mismatch(config) -> str | None:
    """The resolved neuron parameters differ from the theory's neuron (e.g. a calibration rule changed them)."""
    from cortexzoo.network import theory
    from cortexzoo.network.params import derive
    from cortexzoo.network.pd14 import resolved_neuron_parameters

    net = derive(config.network)
    lif = {**theory.reference_lif(), "tau_syn_ex": net.pd14["reference_neuron"]["tau_syn_ms"],
           "tau_syn_in": net.pd14["reference_neuron"]["tau_syn_ms"]}
    for i, (pop, params) in enumerate(resolved_neuron_parameters(config).items()):
        expected = {**lif, "I_e": float(net.dc_pA[i])}
        wrong = [k for k, v in expected.items() if not np.isclose(float(params.get(k, np.nan)), v, atol=1e-9)]
        if wrong:
            return (f"{pop}'s resolved parameters differ from the theory's LIF in {', '.join(wrong)} "
                    "(calibration rule or catalogue)")
    return None


def compare_theory(network_table: dict, reference_dirs, settings: dict, out, say=None,
                   n_frequencies: int = N_FREQUENCIES, cache_dir=None) -> dict:
    """Theory and simulated reference side by side, written atomically into ``out``; cached.

    Nothing is recomputed when ``out/theory.json`` carries the key of the
    current inputs (network table, the reference runs' hashes and files,
    Welch settings, frequencies, NNMT and code versions) and its files exist.

    Parameters
    ----------
    network_table : dict
        The experiment's ``[network]`` table (validated); every reference run
        must have been simulated with it.
    reference_dirs : sequence of pathlib.Path
        Finished reference runs.
    settings : dict
        Full validation settings (Welch parameters, band).
    out : pathlib.Path
        The ``theory/`` folder.
    say : callable, optional
    n_frequencies : int
    cache_dir : pathlib.Path, optional
        See :func:`theory_stage`.

    Returns
    -------
    dict
        The contents of ``theory.json``.

    Raises
    ------
    CortexzooError
        When a reference run was simulated with another network table.
    """
    say = say or (lambda message: None)
    out = Path(out)
    metas = [_run_metadata(d, network_table) for d in reference_dirs]
    stats = settings["statistics"]
    freqs = theory_frequencies(stats, n_frequencies)
    key = _digest({"stage": STAGE_VERSION, "code": _code_digest(), "nnmt": nnmt_key(network_table, freqs, stats),
                   "runs": [[Path(d).name, m["config_hash"], m.get("files")] for d, m in zip(reference_dirs, metas)],
                   "welch": {k: stats[k] for k in ("psd_bin_ms", "welch_segment_ms", "welch_overlap", "band_hz")}})
    previous = _read_json(out / "theory.json")
    if previous.get("key") == key and all((out / f).is_file() for f in ("rates.csv", "spectra.csv", "theory.png")):
        say("mean-field theory: unchanged inputs, kept theory/ (cached)")
        return previous
    t0 = time.perf_counter()
    say(f"mean-field theory (NNMT) at N_scaling {network_table['N_scaling']}, K_scaling {network_table['K_scaling']}")
    try:
        nnmt = nnmt_theory(network_table, freqs, stats, cache_dir, say)
    except CortexzooError as err:
        # No stationary state (e.g. NNMT finds no finite rates) is a finding for the report, not a crash.
        say(f"mean-field theory: not computed: {err.problem}")
        return _write_note(out, {"status": "not computed", "reason": err.problem})
    sim = simulated_reference(reference_dirs, settings, nnmt["populations"])
    rates = rates_table(nnmt, sim)
    spectra = spectra_table(nnmt, sim, stats)
    summary = _summary(network_table, reference_dirs, stats, nnmt, sim, rates, spectra, key)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    with staged_folder(out, whole=True) as stage:
        rates.to_csv(stage / "rates.csv", index=False)
        spectra.to_csv(stage / "spectra.csv", index=False)
        theory_figure(rates, spectra, sim, stage / "theory.png")
        (stage / "theory.json").write_text(json.dumps(summary, indent=1, default=_jsonable))
    dev = summary["deviation"]["rates"]
    say(f"mean-field theory: rates within the in-degree spread in {dev['within_indegree_spread']} populations, "
        f"largest deviation {dev['max_abs_relative']:.0%}; spectra rms log10 ratio "
        f"{summary['deviation']['spectra']['median_rms_log10']:.2f}")
    return summary


# --------------------------------------------------------------------------- theory


def theory_frequencies(statistics: dict, n: int) -> np.ndarray:
    """Log-spaced frequencies on the Welch grid inside the band, below Nyquist.

    Parameters
    ----------
    statistics : dict
        The ``statistics`` table of the validation settings.
    n : int
        Wanted number (fewer when the grid is coarse).

    Returns
    -------
    numpy.ndarray
        Hz; each is a frequency of the simulated PSD.
    """
    fs, df = _sampling(statistics)
    low = max(statistics["band_hz"][0], df)
    high = min(statistics["band_hz"][1], fs / 2 - df)  # the Nyquist bin is not doubled by Welch
    if high < low:
        raise CortexzooError(f"Mean-field spectra: the band {statistics['band_hz']} Hz holds no Welch frequency.",
                             "Widen statistics.band_hz or lengthen statistics.welch_segment_ms.")
    return np.unique(np.round(np.geomspace(low, high, int(n)) / df)) * df


def _sampling(statistics):
    """Sampling rate of the binned rate and Welch frequency resolution, in Hz."""
    fs = 1000.0 / statistics["psd_bin_ms"]
    n_segment = round(statistics["welch_segment_ms"] / statistics["psd_bin_ms"])
    return fs, fs / n_segment


def nnmt_key(network_table: dict, freqs, statistics: dict) -> str:
    """Cache key of the NNMT results: everything the theory's numbers depend on.

    Parameters
    ----------
    network_table : dict
    freqs : numpy.ndarray
    statistics : dict
        Only ``psd_bin_ms`` enters (the mirror frequencies).

    Returns
    -------
    str
    """
    import cortexzoo.network
    from cortexzoo import __version__
    from cortexzoo.network import theory
    from cortexzoo.network.identity import dist_version
    from cortexzoo.network.params import load_pd14

    folder = Path(cortexzoo.network.__file__).parent
    return _digest({
        "network": network_table, "neuron": theory.reference_lif(), "pd14": load_pd14(),
        "methods": [theory.RATE_METHOD, theory.SPECTRA_METHOD], "freqs": np.asarray(freqs).tolist(),
        "fs": _sampling(statistics)[0], "nnmt": dist_version("nnmt"), "cortexzoo": __version__,
        "code": hashlib.sha256(b"".join((folder / f).read_bytes() for f in ("theory.py", "params.py"))).hexdigest(),
    })


def nnmt_theory(network_table: dict, freqs, statistics: dict, cache_dir=None, say=None) -> dict:
    """NNMT's rates, in-degree-spread estimate and spectra (at ``freqs`` and their mirrors), cached by key.

    Parameters
    ----------
    network_table : dict
    freqs : numpy.ndarray
        From :func:`theory_frequencies`.
    statistics : dict
        Validation ``statistics`` settings (``psd_bin_ms`` sets the mirror ``fs - f``).
    cache_dir : pathlib.Path, optional
    say : callable, optional

    Returns
    -------
    dict
        ``populations, N, rate_hz`` (shift), ``indegree_spread_hz``,
        ``rate_spectra_hz`` (taylor), ``freqs, power, power_mirror`` (NNMT's
        two-sided spectra, frequencies x populations), ``stability_margin``,
        ``key``.
    """
    from cortexzoo.models.build import cache_root

    key = nnmt_key(network_table, freqs, statistics)
    folder = Path(cache_dir) if cache_dir else cache_root() / "theory"
    path = folder / f"{key}.json"
    cached = _read_json(path)
    if cached.get("key") == key:
        if say:
            say(f"mean-field theory: NNMT results from the cache ({path})")
        return {k: np.asarray(v) if isinstance(v, list) and k != "populations" else v for k, v in cached.items()}
    result = _compute_nnmt(network_table, np.asarray(freqs, dtype=float), _sampling(statistics)[0])
    result["key"] = key
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(result, default=_jsonable))
        tmp.replace(path)  # atomic: parallel experiments of one scale may both compute it
    except OSError as exc:  # the cache only saves time; an unwritable one must not stop the stage
        if say:
            say(f"mean-field theory: NNMT cache not written ({exc.strerror or exc})")
    return result


def _compute_nnmt(network_table, freqs, fs) -> dict:
    from cortexzoo.network import theory
    from cortexzoo.network.params import derive

    spread = theory.indegree_heterogeneity(network_table, method=theory.RATE_METHOD)
    taylor = theory.working_points(network_table, method=theory.SPECTRA_METHOD)
    spectra = theory.power_spectra(network_table, np.concatenate([freqs, fs - freqs]), method=theory.SPECTRA_METHOD)
    power = spectra.pivot(index="freq_Hz", columns="population", values="power_Hz")[list(spread.population)]
    return {
        "populations": list(spread.population), "N": derive(network_table).num_neurons.astype(float),
        "rate_hz": spread.rate_Hz.to_numpy(),
        "indegree_spread_hz": (spread.rate_heterogeneous_Hz - spread.rate_Hz).abs().to_numpy(),
        "rate_spectra_hz": taylor.rate_Hz.to_numpy(), "freqs": freqs,
        "power": power.loc[freqs].to_numpy(), "power_mirror": power.loc[fs - freqs].to_numpy(),
        "stability_margin": float(spectra.stability_margin.min()),
    }


def welch_units(power, power_mirror, floor, freqs, fs) -> np.ndarray:
    """NNMT's two-sided spectrum of the continuous rate as the Welch PSD of the binned rate sees it.

    Parameters
    ----------
    power, power_mirror : numpy.ndarray
        NNMT's spectrum at ``freqs`` and at ``fs - freqs`` (frequencies x populations).
    floor : numpy.ndarray
        High-frequency limit ``nu / N`` per population (used for the farther aliases).
    freqs : numpy.ndarray
        Hz, ``0 < f < fs / 2``.
    fs : float
        Sampling rate of the binned rate (1 / psd_bin), Hz.

    Returns
    -------
    numpy.ndarray
        One-sided density in Hz^2/Hz, as :func:`cortexzoo.validation.statistics.population_rate_psd`.
    """
    freqs = np.asarray(freqs, dtype=float)[:, None]
    w0 = np.sinc(freqs / fs) ** 2  # numpy's sinc is sin(pi x) / (pi x)
    w1 = np.sinc((fs - freqs) / fs) ** 2
    aliased = w0 * power + w1 * power_mirror + (1.0 - w0 - w1) * np.asarray(floor)[None, :]
    return 2.0 * aliased  # one-sided: the negative frequencies folded onto the positive ones


# --------------------------------------------------------------------------- simulation


def simulated_reference(reference_dirs, settings: dict, populations) -> dict:
    """Population rates and Welch PSDs of every reference run, as the validation computes them.

    Parameters
    ----------
    reference_dirs : sequence of pathlib.Path
    settings : dict
        Full validation settings.
    populations : list of str
        Order of the result's columns.

    Returns
    -------
    dict
        ``rates`` (seeds x populations, Hz), ``freqs`` (band, Hz), ``psd``
        (seeds x frequencies x populations, Hz^2/Hz), ``n_neurons``.
    """
    from cortexzoo.network.output import load_run
    from cortexzoo.validation.statistics import band_mask, population_rate_psd, welch_parameters

    s = settings["statistics"]
    rates, psds = [], []
    for path in reference_dirs:
        run = load_run(path)
        missing = sorted(set(populations) - set(run.populations))
        if missing:
            raise CortexzooError(f"Reference run {path} has no population(s) {missing}.",
                                 "Re-run the reference; the theory needs every PD14 population.")
        seed_rates, seed_psd = [], []
        for pop in populations:
            ids, times = run.window(pop)
            seed_rates.append(len(ids) / run.sizes[pop] / (run.duration_ms / 1000.0))
            freqs, psd = population_rate_psd(times, run.sizes[pop], run.t_start_ms, run.t_stop_ms, s["psd_bin_ms"],
                                             **welch_parameters(s))
            seed_psd.append(psd)
        rates.append(seed_rates)
        psds.append(np.stack(seed_psd, axis=1))
    band = band_mask(freqs, s["band_hz"])
    return {"rates": np.array(rates), "freqs": freqs[band], "psd": np.array(psds)[:, band, :],
            "n_neurons": [run.sizes[p] for p in populations]}


def rates_table(nnmt: dict, sim: dict) -> pd.DataFrame:
    """``rates.csv``: theory and simulated rates per population, with their deviation.

    Parameters
    ----------
    nnmt : dict
        From :func:`nnmt_theory`.
    sim : dict
        From :func:`simulated_reference`, same population order.

    Returns
    -------
    pandas.DataFrame
    """
    n_seeds = len(sim["rates"])
    mean = sim["rates"].mean(axis=0)
    sd = sim["rates"].std(axis=0, ddof=1) if n_seeds > 1 else np.full_like(mean, np.nan)
    deviation = nnmt["rate_hz"] - mean
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = deviation / mean
    return pd.DataFrame({
        "population": nnmt["populations"], "theory_rate_hz": nnmt["rate_hz"], "sim_mean_hz": mean, "sim_sd_hz": sd,
        "n_seeds": n_seeds, "deviation_hz": deviation, "relative_deviation": relative,
        "indegree_spread_hz": nnmt["indegree_spread_hz"],
        "within_indegree_spread": np.abs(deviation) <= nnmt["indegree_spread_hz"],
    })


def spectra_table(nnmt: dict, sim: dict, statistics: dict) -> pd.DataFrame:
    """``spectra.csv``: theory (in Welch units) and simulated mean PSD at the theory's frequencies.

    Parameters
    ----------
    nnmt : dict
    sim : dict
    statistics : dict
        Validation ``statistics`` settings.

    Returns
    -------
    pandas.DataFrame
        Long format, one row per (frequency, population).
    """
    fs = _sampling(statistics)[0]
    floor = nnmt["rate_spectra_hz"] / nnmt["N"]  # NNMT's own high-frequency limit, nu / N
    theory_psd = welch_units(nnmt["power"], nnmt["power_mirror"], floor, nnmt["freqs"], fs)
    psd = sim["psd"][:, _sim_index(sim, nnmt, statistics), :]
    n_seeds, n_freqs, n_pops = psd.shape
    sd = psd.std(axis=0, ddof=1) if n_seeds > 1 else np.full(psd.shape[1:], np.nan)
    mean = psd.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log10(theory_psd / mean)
    return pd.DataFrame({
        "frequency_hz": np.repeat(nnmt["freqs"], n_pops), "population": np.tile(nnmt["populations"], n_freqs),
        "theory_psd": theory_psd.ravel(), "sim_psd_mean": mean.ravel(), "sim_psd_sd": sd.ravel(),
        "n_seeds": n_seeds, "log10_ratio": ratio.ravel(), "nnmt_two_sided_psd": np.asarray(nnmt["power"]).ravel(),
    })


# --------------------------------------------------------------------------- outputs


def _summary(network_table, reference_dirs, stats, nnmt, sim, rates, spectra, key) -> dict:
    from cortexzoo.network.identity import dist_version

    rms = spectra.groupby("population", sort=False)["log10_ratio"].apply(lambda x: float(np.sqrt(np.mean(x**2))))
    # Seed-to-seed scatter of the simulated PSD at the same frequencies: the noise the rms above contains.
    per_seed = sim["psd"][:, _sim_index(sim, nnmt, stats), :]
    with np.errstate(divide="ignore", invalid="ignore"):
        scatter = np.sqrt(np.nanmean(np.log10(per_seed / per_seed.mean(axis=0)) ** 2, axis=(0, 1)))
    return {
        "status": "computed", "method": METHOD, "nnmt_version": dist_version("nnmt"),
        "scale": {k: network_table.get(k) for k in ("N_scaling", "K_scaling", "background", "k_compensation")},
        # derive() applies them for theory and simulation alike; tests/test_theory.py covers pd14.toml as it is.
        "pd14_overrides": network_table.get("pd14") or {},
        "reference_runs": [Path(d).name for d in reference_dirs], "n_seeds": len(sim["rates"]),
        "welch": {k: stats[k] for k in ("psd_bin_ms", "welch_segment_ms", "welch_overlap", "band_hz")},
        "normalisation": NORMALISATION, "frequencies_hz": np.asarray(nnmt["freqs"]).tolist(),
        "stability_margin_min": nnmt["stability_margin"],
        "deviation": {
            "rates": {"max_abs_hz": float(rates.deviation_hz.abs().max()),
                      "max_abs_relative": float(rates.relative_deviation.abs().max()),
                      "median_abs_relative": float(rates.relative_deviation.abs().median()),
                      "within_indegree_spread": f"{int(rates.within_indegree_spread.sum())}/{len(rates)}"},
            "spectra": {"rms_log10_by_population": rms.to_dict(), "median_rms_log10": float(rms.median()),
                        "seed_scatter_rms_log10": dict(zip(nnmt["populations"], scatter.tolist())),
                        "median_seed_scatter_rms_log10": float(np.median(scatter))},
        },
        "limits": list(LIMITS), "key": key,
    }


def theory_figure(rates: pd.DataFrame, spectra: pd.DataFrame, sim: dict, path) -> None:
    """Rates (theory vs simulation per population) and spectra overlaid per population (log-log).

    Parameters
    ----------
    rates, spectra : pandas.DataFrame
        As written to ``rates.csv`` and ``spectra.csv``.
    sim : dict
        From :func:`simulated_reference` (the full simulated PSDs).
    path : pathlib.Path
    """
    from cortexzoo.validation.figures import plt

    pops = list(rates.population)
    fig = plt.figure(figsize=(13.6, 8.4))
    grid = fig.add_gridspec(3, 4)
    ax = fig.add_subplot(grid[0, :])
    x = np.arange(len(pops))
    ax.errorbar(x - 0.1, rates.sim_mean_hz, yerr=rates.sim_sd_hz, fmt="o", color="0.35",
                label=f"simulation (mean ± SD, {int(rates.n_seeds.iloc[0])} seeds)")
    ax.errorbar(x + 0.1, rates.theory_rate_hz, yerr=rates.indegree_spread_hz, fmt="s", color="C3",
                label="theory (NNMT; bar: in-degree-spread effect)")
    ax.set_xticks(x, pops)
    ax.set_ylabel("rate (Hz)")
    ax.legend(fontsize=8)
    for k, pop in enumerate(pops):
        ax = fig.add_subplot(grid[1 + k // 4, k % 4])
        ax.fill_between(sim["freqs"], sim["psd"][:, :, k].min(axis=0), sim["psd"][:, :, k].max(axis=0),
                        color="0.85", lw=0)
        ax.loglog(sim["freqs"], sim["psd"][:, :, k].mean(axis=0), color="0.35", lw=0.7, label="simulation")
        mine = spectra[spectra.population == pop]
        ax.loglog(mine.frequency_hz, mine.theory_psd, "-o", color="C3", ms=2, lw=1, label="theory")
        ax.set_title(pop, fontsize=9)
        ax.tick_params(labelsize=7)
        if k % 4 == 0:
            ax.set_ylabel("PSD (Hz²/Hz)", fontsize=8)
        if k >= 4:
            ax.set_xlabel("frequency (Hz)", fontsize=8)
    fig.axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _write_note(out: Path, summary: dict) -> dict:
    with staged_folder(out, whole=True) as stage:
        (stage / "note.txt").write_text(f"{summary['status']}: {summary['reason']}\n")
        (stage / "theory.json").write_text(json.dumps(summary, indent=1))
    return summary


# --------------------------------------------------------------------------- report


def report_context(exp_dir) -> dict | None:
    """What the report's "Mean-field theory" section shows, read from ``theory/``; None when absent.

    Parameters
    ----------
    exp_dir : pathlib.Path

    Returns
    -------
    dict or None
        ``status``, ``reason`` (not applicable), and when computed the
        summary plus ``rates_html``, ``rates_md`` and ``figure`` (base64 PNG).
    """
    folder = Path(exp_dir) / FOLDER
    summary = _read_json(folder / "theory.json")
    if not summary:
        return None
    if summary.get("status") != "computed":
        return {"status": summary.get("status", "unknown"), "reason": summary.get("reason", "")}
    rates = pd.read_csv(folder / "rates.csv")
    shown = rates[["population", "theory_rate_hz", "sim_mean_hz", "sim_sd_hz", "deviation_hz",
                   "relative_deviation", "indegree_spread_hz"]]
    figure = folder / "theory.png"
    return {**summary,
            "rates_html": shown.to_html(border=0, index=False, float_format=lambda v: f"{v:.3g}", classes="theory"),
            "rates_md": shown.to_markdown(index=False, floatfmt=".3g"),
            "figure": base64.b64encode(figure.read_bytes()).decode() if figure.is_file() else None}


# --------------------------------------------------------------------------- helpers


def _sim_index(sim, nnmt, statistics) -> np.ndarray:
    """Index of each theory frequency in the simulated PSD (both lie on the Welch grid)."""
    df = _sampling(statistics)[1]
    grid = np.round(sim["freqs"] / df).astype(int)
    wanted = np.round(np.asarray(nnmt["freqs"]) / df).astype(int)
    index = np.searchsorted(grid, wanted)
    if np.any(index >= len(grid)) or np.any(grid[np.minimum(index, len(grid) - 1)] != wanted):
        raise CortexzooError("Mean-field spectra: a theory frequency is not on the simulated PSD's grid.",
                             "Report this as a bug; theory_frequencies must follow the Welch settings.")
    return index


def _run_metadata(path, network_table) -> dict:
    """A reference run's metadata, refused when it was simulated with another network table."""
    path = Path(path)
    try:
        meta = json.loads((path / "metadata.json").read_text())
    except (OSError, ValueError) as exc:
        raise CortexzooError(f"Reference run {path} has no readable metadata.json ({type(exc).__name__}).",
                             "Run the experiment first (`cortexzoo run CONFIG`).") from None
    simulated = meta.get("config", {}).get("network")
    if simulated != dict(network_table):
        raise CortexzooError(f"Reference run {path} was simulated with [network] {simulated}, not {network_table}.",
                             "Run the experiment again (`cortexzoo run CONFIG`): the theory must be at the "
                             "simulated scale.")
    return meta


def _code_digest() -> str:
    from cortexzoo.validation import statistics

    files = (Path(__file__), Path(statistics.__file__))
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]


def _digest(value) -> str:
    blob = json.dumps(value, sort_keys=True, default=_jsonable)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _read_json(path) -> dict:
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
