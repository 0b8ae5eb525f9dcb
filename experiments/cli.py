"""The ``cortexzoo`` command line.

Every user-fixable problem is raised as :class:`cortexzoo.errors.CortexzooError`
and printed here as one paragraph with a non-zero exit; nothing else prints a
traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from cortexzoo import __version__
from cortexzoo.errors import CortexzooError


class Reporter:
    """Progress lines on stderr, silenced by ``--quiet``.

    Parameters
    ----------
    quiet : bool
        Print nothing but errors and final results.
    """

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        """Print one progress line with the elapsed time."""
        if not self.quiet:
            print(f"[{time.perf_counter() - self.t0:7.1f} s] {message}", file=sys.stderr, flush=True)


def _cmd_build(args, say) -> int:
    from cortexzoo.models.build import build_module

    result = build_module(source_dir=args.source_dir, force=args.force, verbose=args.verbose, progress=say)
    state = "cache hit, nothing rebuilt" if result.cache_hit else "compiled"
    print(f"{state}: {result.module_path} ({', '.join(result.models)}) in {result.seconds:.2f} s")
    return 0


def _cmd_models(args, say) -> int:
    from cortexzoo.models.catalogue import load_catalogue

    for name, spec in sorted(load_catalogue().items()):
        print(f"{name:24s} {spec.kind:8s} {spec.description}")
    return 0


def _cmd_simulate(args, say) -> int:
    from cortexzoo.network.output import load_run
    from cortexzoo.network.params import load_run_config
    from cortexzoo.network.run import run_network

    config = load_run_config(args.config)
    if args.threads is not None:
        config.simulation["threads"] = args.threads
    path = run_network(config, args.out, overwrite=args.overwrite, progress=say)
    run = load_run(path)
    print(f"run written to {path}")
    for pop in run.populations:
        ids, _ = run.window(pop)
        rate = len(ids) / run.sizes[pop] / (run.duration_ms / 1000.0)
        print(f"  {pop:5s} {run.sizes[pop]:6d} neurons  {rate:7.3f} spikes/s")
    return 0


def _cmd_validate(args, say) -> int:
    if args.config:
        return _validate_experiment(args, say)
    missing = [flag for flag, value in (("--reference", args.reference), ("--candidate", args.candidate),
                                        ("--out", args.out)) if not value]
    if missing:
        raise CortexzooError(f"validate needs an experiment CONFIG or {', '.join(missing)}.",
                             "Run `cortexzoo validate CONFIG`, or give --reference, --candidate and --out.")
    from cortexzoo.validation.pipeline import validate

    overrides = args.settings
    if args.populations:
        from cortexzoo.validation.settings import load_settings

        overrides = load_settings(args.settings)
        overrides["scores"]["populations"] = args.populations
    result = validate(args.reference, args.candidate, args.out, settings=overrides, progress=say,
                      make_figures=not args.no_figures)
    print(result.summary.to_string(index=False))
    print(f"scores: {result.files['scores.csv']}")
    return 0


def _validate_experiment(args, say) -> int:
    # The validate step of `compare`, on its own (the Snakemake workflow's validation job).
    given = [flag for flag, value in (("--reference", args.reference), ("--candidate", args.candidate),
                                      ("--settings", args.settings), ("--populations", args.populations),
                                      ("--no-figures", args.no_figures)) if value]
    if given:
        raise CortexzooError(f"validate CONFIG takes the runs and settings from the config; {', '.join(given)} "
                             "cannot be combined with it.",
                             "Put validation settings in the config's [validation.settings], or drop CONFIG.")
    from cortexzoo.experiments.orchestrate import validate_experiment

    with _experiment_session(args, say, "validate") as (experiment, exp_dir):
        result = validate_experiment(experiment, exp_dir, say)
    print(result.summary.to_string(index=False))
    print(f"scores: {result.files['scores.csv']}")
    return 0


@contextmanager
def _experiment_session(args, say, command: str):
    """Load the config, take the experiment's lock, check or record its config; yield (experiment, dir)."""
    from cortexzoo.experiments.config import load_experiment
    from cortexzoo.experiments import orchestrate
    from cortexzoo.locking import ExperimentLock

    experiment = load_experiment(args.config)
    only, replace = getattr(args, "only", None), getattr(args, "replace", False)
    # Every check that can fail runs before anything is written, not even a lock file.
    orchestrate.select_runs(experiment, only)
    exp_dir = experiment.out_dir(args.out)
    orchestrate.refuse_foreign_dir(exp_dir)
    if not replace:
        orchestrate.refuse_other_config(experiment, exp_dir)
    if command != "validate":
        orchestrate.check_planned_parameters(experiment, only)
    with ExperimentLock(exp_dir, f"cortexzoo {command} {experiment.path}", say):
        exp_dir = orchestrate.prepare_experiment_dir(experiment, args.out, replace=replace)
        say(f"experiment {experiment.name}: {len(experiment.reference_runs)} reference seed(s), "
            f"{len(experiment.variants)} variant(s), {len(experiment.runs)} runs")
        yield experiment, exp_dir


def _cmd_run(args, say) -> int:
    from cortexzoo.experiments.orchestrate import run_all

    with _experiment_session(args, say, "run") as (experiment, exp_dir):
        result = run_all(experiment, exp_dir, say, only=args.only, replace=args.replace)
    redone = f" ({len(result['redone'])} redone: their inputs changed)" if result["redone"] else ""
    print(f"{len(result['simulated'])} run(s) simulated{redone}, {len(result['cached'])} cached; "
          f"results in {exp_dir / 'runs'}")
    return 0


def _cmd_compare(args, say) -> int:
    from cortexzoo.experiments.orchestrate import compare

    t0 = time.perf_counter()
    with _experiment_session(args, say, "compare") as (experiment, exp_dir):
        report = compare(experiment, exp_dir, say, replace=args.replace)
        if args.publish:
            from cortexzoo.experiments.publish import publish_experiment

            publish_experiment(exp_dir, args.publish, {"compare_elapsed_s": round(time.perf_counter() - t0, 1)})
            say(f"published to {args.publish}")
    print(report["summary_text"])
    print(f"\nreport: {report['html'].resolve()}\nsummary: {report['markdown'].resolve()}")
    return 0


def _cmd_controls(args, say) -> int:
    from cortexzoo.experiments.controls import run_controls

    with _experiment_session(args, say, "controls") as (experiment, exp_dir):
        result = run_controls(experiment, exp_dir, say, publish=args.publish)
    print((result["folder"] / "summary.md").read_text())
    print(f"controls: {result['folder'].resolve()}")
    return 0


def _cmd_report(args, say) -> int:
    from cortexzoo.locking import ExperimentLock
    from cortexzoo.validation.report import write_report

    if not (Path(args.experiment_dir) / "experiment.toml").is_file():
        raise CortexzooError(f"{args.experiment_dir} is not a cortexzoo experiment directory (no experiment.toml).",
                             "Give the directory `cortexzoo compare` wrote, e.g. results/quick.")
    with ExperimentLock(args.experiment_dir, f"cortexzoo report {args.experiment_dir}", say):
        report = write_report(args.experiment_dir)
    print(report["summary_text"])
    print(f"\nreport: {report['html'].resolve()}")
    return 0


def _cmd_export(args, say) -> int:
    from cortexzoo.network.export import export_run

    path = export_run(args.run_dir, args.format, args.out, overwrite=args.overwrite, progress=say)
    print(f"{args.format} file written to {path}")
    return 0


def _cmd_pack(args, say) -> int:
    from cortexzoo.experiments.package import pack_experiment

    result = pack_experiment(args.experiment_dir, args.out, runs=args.runs, overwrite=args.overwrite, progress=say)
    print(f"{len(result['runs'])} run(s) packed into {result['path']} ({result['bytes'] / 1e6:.2f} MB): "
          f"{_listing(result['runs'])}")
    return 0


def _cmd_unpack(args, say) -> int:
    from cortexzoo.experiments.package import unpack_package

    result = unpack_package(args.archive, args.into, progress=say)
    print(f"{len(result['added'])} run(s) added to {Path(args.into) / 'runs'}"
          f"{': ' + _listing(result['added']) if result['added'] else ''}; {len(result['skipped'])} already there "
          f"with the same identity (skipped); the package's crate, config and models are in {result['imports']}")
    return 0


def _listing(names, most: int = 8) -> str:
    return ", ".join(names[:most]) + (f", ... ({len(names) - most} more)" if len(names) > most else "")


def _cmd_calibrate(args, say) -> int:
    from cortexzoo.models.build import SOURCE_DIR
    from cortexzoo.models.calibrate import run_calibration

    args.out = args.out or SOURCE_DIR / "calibration"
    working_points = None
    if args.rule == "operating_point":
        from cortexzoo.network.theory import working_point_inputs_by_type

        working_points = working_point_inputs_by_type()
    results = run_calibration(Path(args.out), models=args.models or None, write=not args.dry_run, progress=say,
                              rule=args.rule, working_points=working_points)
    print(f"{'model':28s} {'type':4s} {'scale':>9s} {'rheobase_pA':>11s}  result")
    for name, entry in results.items():
        for cell_type, fit in entry["types"].items():
            print(f"{name:28s} {cell_type:4s} {fit['scale']:9.4g} {_fit_rheobase(fit):11.1f}  {_fit_summary(fit)}")
    print(f"tables and figures: {Path(args.out)}")
    return 0


def _fit_rheobase(fit: dict) -> float:
    return fit["report"]["rheobase_pA"] if "report" in fit else fit["rheobase_pA"]


def _fit_summary(fit: dict) -> str:
    if "check" in fit:
        ok = int(fit["check"].within_tolerance.sum())
        return f"bias {fit['bias_pA']:+.1f} pA, {ok}/{len(fit['check'])} working points within tolerance"
    if "residual_Hz" in fit:
        return f"f-I residual {fit['residual_Hz']:.2f} Hz"
    return f"PSP integral {fit['report']['psp_integral_mV_ms']:.3f} mV ms"


def _global_flags(parser, default) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", default=default, help="print no progress lines")
    parser.add_argument("--debug", action="store_true", default=default, help="show tracebacks for errors")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with all subcommands.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="cortexzoo",
        description="How much does the single-neuron model matter for the PD14 cortical microcircuit?",
    )
    parser.add_argument("--version", action="version", version=f"cortexzoo {__version__}")
    _global_flags(parser, argparse.SUPPRESS)
    parser.set_defaults(quiet=False, debug=False)
    # The same flags after the subcommand (`cortexzoo simulate ... --quiet`): SUPPRESS keeps an
    # absent flag from resetting one given before the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    _global_flags(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name, **kwargs):
        return sub.add_parser(name, parents=[common], **kwargs)


    p = add("build", help="compile models_nestml/*.nestml into one NEST module (cached)")
    p.add_argument("--force", action="store_true", help="rebuild even if the cache has this module")
    p.add_argument("--verbose", action="store_true", help="show NESTML and compiler output")
    p.add_argument("--source-dir", type=Path, default=None,
                   help="folder of .nestml files (default: the installed models_nestml/)")
    p.set_defaults(func=_cmd_build)

    for name, func, text in (
            ("run", _cmd_run, "simulate every run of an experiment config that is not cached yet"),
            ("compare", _cmd_compare, "build, run, validate and report an experiment config (the main job)")):
        p = add(name, help=text)
        p.add_argument("config", help="experiment TOML, or the name of a shipped one (quick, full_scale)")
        p.add_argument("--out", type=Path, default=None, help="experiment directory (default results/<name>)")
        p.add_argument("--replace", action="store_true",
                       help="adopt this config for an experiment directory made with another one, and delete "
                            "runs whose inputs changed (default: keep them in <exp>/superseded/)")
        if name == "run":
            p.add_argument("--only", nargs="+", metavar="RUN",
                           help="simulate only these runs, named <label>-seed<k> (one Snakemake job each)")
        else:
            p.add_argument("--publish", type=Path, default=None, metavar="DIR",
                           help="also copy the summary, tables, figures, config, versions and run costs to DIR "
                                "(replaced as a whole), e.g. docs/results/<name>")
        p.set_defaults(func=func)

    p = add("controls", help="run the negative and positive controls of an experiment config with a [controls] "
                             "table: false-positive rates and the smallest detectable changes")
    p.add_argument("config", help="experiment TOML with a [controls] table, or a shipped name (controls)")
    p.add_argument("--out", type=Path, default=None, help="experiment directory (default results/<name>)")
    p.add_argument("--publish", type=Path, default=None, metavar="DIR",
                   help="also copy the results to DIR (replaced as a whole), e.g. docs/results/controls")
    p.set_defaults(func=_cmd_controls)

    p = add("report", help="(re)write the HTML and Markdown report of an experiment directory")
    p.add_argument("experiment_dir", type=Path)
    p.set_defaults(func=_cmd_report)

    # No argparse choices: export_run checks the format, so the CLI and the API give the same message.
    p = add("export", help="write a run's spike times per population to a standard format (NWB or NIX)")
    p.add_argument("run_dir", type=Path, help="a finished run directory, e.g. results/quick/runs/reference-seed1")
    p.add_argument("--format", required=True, metavar="{nwb,nix}",
                   help="nwb: units table (pynwb); nix: one Neo SpikeTrain per neuron (nixio)")
    p.add_argument("--out", type=Path, required=True, help="file to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file at --out")
    p.set_defaults(func=_cmd_export)

    p = add("pack", help="write finished runs of an experiment, with their config, models, versions and "
                         "checksums, into one zip with RO-Crate metadata, to share with another lab")
    p.add_argument("experiment_dir", type=Path, help="experiment directory, e.g. results/quick")
    p.add_argument("--out", type=Path, required=True, help="zip file to write, e.g. quick_runs.zip")
    p.add_argument("--runs", nargs="+", metavar="RUN", help="only these runs, named <label>-seed<k> (default: all)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file at --out")
    p.set_defaults(func=_cmd_pack)

    p = add("unpack", help="verify a package from `cortexzoo pack` (checksums, run identities) and add its runs to "
                           "an experiment directory; nothing there is replaced")
    p.add_argument("archive", type=Path, help="the zip `cortexzoo pack` wrote")
    p.add_argument("--into", type=Path, required=True, help="experiment directory (created if missing)")
    p.set_defaults(func=_cmd_unpack)

    p = add("simulate", help="simulate one PD14 network from a run config and write its run directory")
    p.add_argument("config", type=Path, help="run config TOML with [simulation], [network], [neuron]")
    p.add_argument("--out", type=Path, required=True, help="run directory to create")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run at --out")
    p.add_argument("--threads", type=int, default=None, help="override [simulation] threads")
    p.set_defaults(func=_cmd_simulate)

    p = add("models", help="list the models in the catalogue")
    p.set_defaults(func=_cmd_models)

    p = add("calibrate", help="calibrate the model zoo to the PD14 LIF by one rule; update the catalogue")
    # No default: the rules differ in cost (23 s to ~45 min) and runs use the catalogue's default_rule,
    # so recalibrating "the" rule silently would refit one that runs may not use.
    # the choices are cortexzoo.models.catalogue.RULES, spelled out: the CLI starts without the model stack
    p.add_argument("--rule", required=True, choices=("published", "psp_rheobase", "operating_point"),
                   help="published: published cells, input scale from the PSP integral; psp_rheobase: f-I fit with "
                        "the rheobase pinned; operating_point (the models' default_rule): rate under PD14 shot noise "
                        "matched at the working points (docs/calibration.md)")
    p.add_argument("--out", default=None,
                   help="folder for the f-I plot and table (default: models_nestml/calibration, used by reports)")
    p.add_argument("--models", nargs="*", help="catalogue models to calibrate (default: all)")
    p.add_argument("--dry-run", action="store_true", help="do not write the catalogue")
    p.set_defaults(func=_cmd_calibrate)

    p = add("validate", help="score candidate runs against reference seeds (lower is better)",
                       description="Either `validate CONFIG`: the validate step of `compare` for an experiment "
                                   "(runs and settings from the config), or `validate --reference ... "
                                   "--candidate ... --out DIR` for any run directories.")
    p.add_argument("config", nargs="?", help="experiment TOML (or shipped name); its runs must be finished")
    p.add_argument("--reference", nargs="+", metavar="DIR", help="reference runs, one per seed")
    p.add_argument("--candidate", nargs="+", metavar="DIR", help="runs of the variants to score")
    p.add_argument("--out", metavar="DIR", type=Path,
                   help="where scores, statistics and figures go; with CONFIG: the experiment directory "
                        "(default results/<name>)")
    p.add_argument("--settings", metavar="TOML", help="overrides of validation/defaults.toml")
    p.add_argument("--populations", nargs="+", metavar="POP", help="analyse only these populations")
    p.add_argument("--no-figures", action="store_true", help="write tables only")
    p.set_defaults(func=_cmd_validate)
    return parser


def main(argv=None) -> int:
    """Run the ``cortexzoo`` command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    say = Reporter(args.quiet)
    try:
        return args.func(args, say)
    except CortexzooError as err:
        if args.debug:
            raise
        print(f"cortexzoo {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"cortexzoo {args.command}: interrupted; finished results on disk are kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
