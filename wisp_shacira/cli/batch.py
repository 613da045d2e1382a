"""``wisp-shacira batch --config FILE --inputs PATH ... [--point SPEC ...] [--ray [ADDRESS]]``:
compress every input at every rate point, one job each, resumable.

Inputs are files or folders, expanded for the config's task (a folder of images, of
videos, of scenes). Each ``--point [LABEL:]KEY=VALUE,...`` is one rate point (config
overrides; none = the config as it is); every job writes ``OUT/LABEL/STEM/`` like
``encode`` and, last, a ``batch.json`` record, so a rerun skips jobs whose outputs still
hold and recomputes the rest. ``--ray`` runs the jobs as Ray tasks on a local instance,
``--ray ADDRESS`` on a running cluster; without it they run one after another here.
Further ``--section.key VALUE`` options override the config for every job.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from wisp_shacira.batch.jobs import Point, parse_point, plan_jobs
from wisp_shacira.batch.runner import Sequential, run_batch, summary
from wisp_shacira.cli.encode import load_run_data
from wisp_shacira.errors import ConfigError
from wisp_shacira.tasks.common import default_output_dir

LOCAL = "local"


def _base_config(config: str, rest: list[str]) -> dict:
    """The config with the command line's overrides, checked like ``encode`` checks it."""
    if any(arg.split("=")[0] in ("--output", "--dataset.path") for arg in rest):
        raise ConfigError("batch sets output and dataset.path per job: give --out and --inputs")
    return load_run_data(config, rest)[1]


def _executor(args: argparse.Namespace):
    if args.ray is None:
        return Sequential(args.threads, args.retries)
    from wisp_shacira.batch.ray_pool import RayOptions, RayPool
    options = RayOptions(address=None if args.ray == LOCAL else args.ray, cpus=args.cpus,
                         cpus_per_job=args.cpus_per_job, gpus_per_job=args.gpus_per_job,
                         retries=args.retries, connect_timeout=args.connect_timeout)
    return RayPool(options)


def cmd_batch(args: argparse.Namespace, rest: list[str]) -> None:
    """Plan every job (all configs checked), then run the missing ones and report."""
    if args.config is None or not args.inputs:
        raise ConfigError("batch needs --config FILE.yaml and --inputs PATH [PATH ...]")
    if args.ray is None and (args.cpus is not None or args.gpus_per_job):
        raise ConfigError("--cpus and --gpus-per-job size Ray jobs: add --ray [ADDRESS]")
    if args.retries < 0 or (args.threads is not None and args.threads < 1):
        raise ConfigError(f"--retries must be >= 0 and --threads >= 1, got {args.retries} and "
                          f"{args.threads}")
    base = _base_config(args.config, rest)
    points = [parse_point(p) for p in args.point] or [Point("default", {})]
    out = Path(args.out) if args.out else default_output_dir("batch")
    jobs = plan_jobs(base, [Path(p) for p in args.inputs], points, out)
    executor = _executor(args)
    if args.ray is None:
        report = run_batch(jobs, out, executor)
    else:
        with executor:
            report = run_batch(jobs, out, executor)
    print(summary(report))
    print(f"outputs in {out} (metrics.json)")
    if report["counts"]["failed"]:
        raise ConfigError(f"{report['counts']['failed']} of {len(jobs)} jobs failed "
                          f"(see the table; rerun to retry only those)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "batch", help="compress many inputs at many rate points (resumable; Ray optional)",
        description=__doc__.split("\n\n")[0].replace("\n", " "),
        usage="wisp-shacira batch --config FILE --inputs PATH [PATH ...] [--point SPEC ...] "
              "[--out DIR] [--ray [ADDRESS]] [options] [--section.key VALUE ...]",
        epilog="example: wisp-shacira batch --config shacira_kodak --inputs kodak/ "
               "--point T12:grid.log2_table_size=12 --point T14:grid.log2_table_size=14 "
               "--ray --out runs/kodak")
    parser.add_argument("--config", help="YAML config file or bundled config name")
    parser.add_argument("--inputs", nargs="+", default=[], metavar="PATH",
                        help="input files or folders (expanded for the config's task)")
    parser.add_argument("--point", action="append", default=[], metavar="[LABEL:]KEY=V,...",
                        help="a rate point: config overrides, e.g. T12:grid.log2_table_size=12,"
                             "trainer.lambda_end=1e-4 (repeatable; none = the config as is)")
    parser.add_argument("--out", default=None, help="output folder (default runs/batch-<time>)")
    parser.add_argument("--ray", nargs="?", const=LOCAL, default=None, metavar="ADDRESS",
                        help="run jobs as Ray tasks: a local instance, or the cluster at "
                             "ADDRESS (host:port, ray://host:port, auto); extra 'ray'")
    parser.add_argument("--cpus", type=int, default=None,
                        help="CPUs of the local Ray instance (default: every core)")
    parser.add_argument("--cpus-per-job", type=float, default=1.0,
                        help="CPUs each Ray job asks for (its torch threads)")
    parser.add_argument("--gpus-per-job", type=float, default=0.0,
                        help="GPUs each Ray job asks for (fractions share a GPU)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of each job without --ray (default: torch's)")
    parser.add_argument("--retries", type=int, default=1,
                        help="retries of a job whose worker died or that crashed")
    parser.add_argument("--connect-timeout", type=float, default=15.0,
                        help="seconds a Ray cluster at ADDRESS has to answer")
    parser.set_defaults(func=cmd_batch, takes_overrides=True)
