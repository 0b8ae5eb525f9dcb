"""The Snakemake workflow runs a tiny comparison locally, in the CLI's layout, and shares its cache."""

import re
import subprocess
import sys

import pandas as pd
import pytest
from experiment_helpers import ENV, REPO, SNAKEFILE, cli, metadata_stamps, write_tiny_config

from cortexzoo.experiments.config import load_experiment
from cortexzoo.network.output import is_complete
from cortexzoo.network.run import run_hash

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
SLURM_PROFILE = REPO / "experiments" / "profiles" / "slurm"


def snakemake(config, cwd, *extra, timeout=900):
    """Run the workflow on ``config`` with 2 cores; return the CompletedProcess (output merged)."""
    cmd = [*SNAKEMAKE, "--cores", "2", "-s", str(SNAKEFILE), "--config", f"experiment={config}", *extra]
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                          env=ENV)


def jobs(output, rule):
    """Run names (wildcards) of the jobs of ``rule`` in Snakemake's job listing."""
    blocks = re.split(r"\n(?=(?:local)?rule \w+:)", output)
    return sorted(m.group(1) for b in blocks if re.match(rf"(?:local)?rule {rule}:", b)
                  for m in [re.search(r"wildcards: run=(\S+)", b)] if m)


def rules(output):
    """Names of the rules Snakemake lists jobs for."""
    return sorted(set(re.findall(r"^(?:local)?rule (\w+):", output, re.M)))


def test_tiny_workflow_runs_locally_and_shares_the_cli_cache(tmp_path, nestml_module):
    results = tmp_path / "results"
    config = write_tiny_config(tmp_path / "flow.toml", "flow", results, variants=("lif_hot", "lif_nestml"),
                               threads=2)
    exp = results / "flow"

    # 1. The whole comparison: 5 simulations (one job each, 2 NEST threads), validation, report.
    result = snakemake(config, tmp_path)
    assert result.returncode == 0, result.stdout[-5000:]
    experiment = load_experiment(config)
    names = sorted(r.name for r in experiment.runs)
    assert jobs(result.stdout, "simulate") == names
    assert len(re.findall(r"rule simulate:(?:(?!\n\n).)*?threads: 2", result.stdout, re.S)) == 5
    for run in experiment.runs:
        path = exp / "runs" / run.name
        assert is_complete(path)
        meta = pd.read_json(path / "metadata.json", typ="series")
        assert meta["config_hash"] == run_hash(run.config) and meta["threads"] == 2
    scores = pd.read_csv(exp / "validation" / "scores.csv")
    assert sorted(scores["model"].unique()) == ["lif_hot", "lif_nestml"]
    assert scores.loc[scores["measure"] == "rate_hz", "p_value"].notna().all()  # 1 seed each: decided against 3
    page = (exp / "report" / "index.html").read_text()
    assert "<h2>Decisions</h2>" in page and "lif_nestml" in page
    assert (exp / "report" / "summary.md").is_file()
    assert f"report: {(exp / 'report' / 'index.html').resolve()}" in result.stdout  # the report job's output
    assert (exp / "workflow" / "logs" / "simulate" / "reference-seed1.log").is_file()

    # 2. The CLI finds every run cached; Snakemake has nothing left to do.
    stamps = metadata_stamps(exp / "runs")
    run = cli("run", config, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "0 run(s) simulated, 5 cached" in run.stdout
    again = snakemake(config, tmp_path, "-n")
    assert "Nothing to be done" in again.stdout, again.stdout[-3000:]

    # 3. A run the CLI adds (adopting the grown config with --replace) is adopted by Snakemake:
    # only validation and report run.
    write_tiny_config(config, "flow", results, variants=("lif_hot", "lif_nestml", "lif_cold"), threads=2)
    run = cli("run", config, "--replace", cwd=tmp_path)
    assert "1 run(s) simulated, 5 cached" in run.stdout, run.stderr
    result = snakemake(config, tmp_path)
    assert result.returncode == 0, result.stdout[-5000:]
    assert rules(result.stdout) == ["all", "report", "validate"]
    assert "lif_cold" in set(pd.read_csv(exp / "validation" / "scores.csv")["model"])
    stamps = metadata_stamps(exp / "runs")

    # 4. A changed variant: refused while the directory belongs to the old config; adopted with
    # replace=1, its run is stale for both tools and the workflow plans that run only.
    config.write_text(config.read_text().replace('V_th = "-48 mV"', 'V_th = "-47 mV"'))
    refused = snakemake(config, tmp_path, "-n")
    assert refused.returncode != 0 and "variants.lif_cold.params.V_th" in refused.stdout
    assert "replace=1" in refused.stdout
    dry = snakemake(config, tmp_path, "replace=1", "-n")
    assert dry.returncode == 0, dry.stdout[-3000:]
    assert "lif_cold-seed101 will be simulated again" in dry.stdout and "V_th" in dry.stdout
    assert jobs(dry.stdout, "simulate") == ["lif_cold-seed101"]
    assert rules(dry.stdout) == ["all", "report", "simulate", "validate"]
    assert metadata_stamps(exp / "runs") == stamps  # a dry run touches no run


@pytest.mark.parametrize("name", ["quick", "full_scale"])
def test_shipped_configs_plan_one_job_per_run(name, tmp_path):
    # Dry run into a scratch directory: the DAG of the shipped configs, with the config's threads.
    out = tmp_path / name
    result = subprocess.run([*SNAKEMAKE, "-n", "--cores", "64", "-s", str(SNAKEFILE), "--config",
                             f"experiment={name}", f"out={out}"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    experiment = load_experiment(name)
    assert jobs(result.stdout, "simulate") == sorted(r.name for r in experiment.runs)
    threads = experiment.tables["simulation"]["threads"]
    assert len(re.findall(rf"rule simulate:(?:(?!\n\n).)*?threads: {threads}\n", result.stdout, re.S)) \
        == len(experiment.runs)
    assert rules(result.stdout) == ["all", "report", "simulate", "validate"]
    assert not (out / "runs").exists() or not any((out / "runs").iterdir())


def test_workflow_without_experiment_says_how_to_give_one(tmp_path):
    result = subprocess.run([*SNAKEMAKE, "-n", "--cores", "1", "-s", str(SNAKEFILE)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert result.returncode != 0
    assert "--config experiment=experiments/quick.toml" in result.stdout


def test_workflow_reports_a_bad_config_like_the_cli(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[experiment]\nname = "bad"\n[simulation]\nt_sim_ms = "long"\n')
    result = subprocess.run([*SNAKEMAKE, "-n", "--cores", "1", "-s", str(SNAKEFILE), "--config",
                             f"experiment={bad}"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert f"{bad} [simulation] t_sim_ms = 'long' has the wrong type; expected number." in result.stdout
    assert "Traceback" not in result.stdout
    assert not (tmp_path / "results").exists()


def job_requests(output, rule):
    """(threads, resources) of every job of ``rule`` in a dry run's job listing; resources as written."""
    requests = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        if not re.match(rf"(?:local)?rule {rule}:", block):
            continue
        threads = re.search(r"^\s+threads: (\d+)$", block, re.M)
        line = re.search(r"^\s+resources: (.*)$", block, re.M)
        resources = dict(item.split("=", 1) for item in line.group(1).split(", ")) if line else {}
        requests.append((int(threads.group(1)) if threads else 1, resources))
    return requests


def test_slurm_profile_requests_threads_as_cpus_and_the_scaled_memory(tmp_path):
    """Snakemake accepts the SLURM profile, and its jobs would ask SLURM for what the README promises.

    A dry run with the profile: Snakemake and the slurm executor plugin parse and
    check it, ``-n`` submits nothing. Fails if the profile holds a key or value
    they reject (or the plugin is missing), if ``cpus_per_task`` is not the
    simulate rule's threads (the config's [simulation] threads), if simulations do
    not get the Snakefile's scale-derived memory (``simulation_mem_mb``, not the
    profile's 4000 MB default) or the profile's simulate runtime, or if the
    per-rule settings for validate do not reach its job.
    """
    config = write_tiny_config(tmp_path / "flow.toml", "flow", tmp_path / "results", threads=2)
    result = subprocess.run([*SNAKEMAKE, "-n", "--cores", "64", "-s", str(SNAKEFILE), "--profile", str(SLURM_PROFILE),
                             "--config", f"experiment={config}"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=300, env=ENV)
    assert result.returncode == 0, result.stdout[-3000:]
    experiment = load_experiment(config)
    network = experiment.tables["network"]
    mem_mb = int(1024 + 20000 * network["N_scaling"] * network["K_scaling"])  # the Snakefile's formula
    assert mem_mb != 4000
    simulations = job_requests(result.stdout, "simulate")
    assert len(simulations) == len(experiment.runs)
    for threads, resources in simulations:
        assert threads == 2 and resources["cpus_per_task"] == "2", resources
        assert resources["mem_mb"] == str(mem_mb) and resources["runtime"] == "240", resources
        assert resources["slurm_partition"] == "<your partition>"  # the placeholder the user must replace
    [(threads, resources)] = job_requests(result.stdout, "validate")
    assert threads == 1 and resources["cpus_per_task"] == "1"
    assert resources["mem_mb"] == "16000" and resources["runtime"] == "120", resources
    assert not (tmp_path / "results" / "flow" / "runs").exists() or \
        not any((tmp_path / "results" / "flow" / "runs").iterdir())  # a dry run simulates nothing
