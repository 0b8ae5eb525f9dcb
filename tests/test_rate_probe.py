"""The rate probe (experiments/rate_probe.py): per-chunk population rates of a planned run."""

import csv
import subprocess
import sys

import numpy as np
import pytest
from experiment_helpers import ENV, write_tiny_config

from cortexzoo.experiments.rate_probe import chunk_rates_Hz


def test_chunk_rates_count_each_population_by_its_id_range():
    """Rates are spikes per neuron per second of each contiguous id range.

    Catches an off-by-one at population borders (the last neuron of one
    population counted in the next) and a chunk length read in s instead of ms.
    """
    senders = [10, 10, 14, 15, 19, 20]  # population A: ids 10-14, B: 15-19, C: 20
    rates = chunk_rates_Hz(senders, first_ids=[10, 15, 20], sizes=[5, 5, 1], chunk_ms=100.0)
    assert rates.tolist() == pytest.approx([3 / 5 / 0.1, 2 / 5 / 0.1, 1 / 1 / 0.1])


def test_probe_reproduces_the_run_rates_chunk_by_chunk(tmp_path):
    """The probe's chunks of a tiny reference run add up to plausible PD14 rates and land in the CSV.

    Catches a recorder that starts after the warm-up (first chunks empty), an
    emptied recorder that keeps old events (rates growing chunk by chunk), and
    a CSV that is not written as chunks finish. Also: an unknown run name
    exits 2 and names the planned runs.
    """
    config = write_tiny_config(tmp_path / "tiny.toml", "tiny", tmp_path / "results")
    out = tmp_path / "probe.csv"
    run = subprocess.run([sys.executable, "-m", "cortexzoo.experiments.rate_probe", str(config), "reference-seed1",
                          "--until-ms", "300", "--chunk-ms", "100", "--out", str(out)],
                         capture_output=True, text=True, timeout=600, env=ENV)
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(out.open()))
    assert [float(r["t_start_ms"]) for r in rows] == [0.0, 100.0, 200.0]
    l4e = np.array([float(r["L4E"]) for r in rows])
    assert np.all((l4e > 0.5) & (l4e < 30.0)), l4e  # PD14's L4E fires ~4 Hz
    assert l4e.max() < 2 * l4e.min(), l4e  # counts kept from earlier chunks would grow 1:2:3
    assert not (tmp_path / "results").exists()  # a probe writes no run
    bad = subprocess.run([sys.executable, "-m", "cortexzoo.experiments.rate_probe", str(config), "nosuch-seed1"],
                         capture_output=True, text=True, timeout=120, env=ENV)
    assert bad.returncode == 2 and "reference-seed1" in bad.stderr
