"""``ecom-kfp compile | validate | run-local | submit``: the pipeline verbs.

Each prints a human summary at the end; ``run-local`` writes ``report.json`` into ``--out`` and
the others into ``--report-dir`` when given (they have no output directory of their own).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ecom_kfp.console import progress
from ecom_kfp.pipelines.local_run import LocalRunConfig
from ecom_kfp.report import write_report
from ecom_kfp.settings import add_arguments, from_args


def _add_report_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report-dir", default="",
                        help="directory or gs:// prefix to write this verb's report.json to")


def _maybe_report(args: argparse.Namespace, report: dict) -> None:
    if args.report_dir:
        write_report(report, args.report_dir)


def _compile(args: argparse.Namespace) -> int:
    from ecom_kfp.pipelines.compile import compile_all, drift

    root = Path(args.root).resolve()
    start = time.perf_counter()
    if args.check:
        problems = drift(root)
        for problem in problems:
            print(f"drift: {problem}", file=sys.stderr)
        seconds = time.perf_counter() - start
        _maybe_report(args, {"verb": "compile", "check": True, "seconds": seconds,
                             "drift": [str(p) for p in problems]})
        if problems:
            print(f"{len(problems)} generated file(s) differ from a fresh compile; "
                  f"run 'ecom-kfp compile' and commit the result.", file=sys.stderr)
            return 1
        print(f"compile --check: every generated file under {root} is up to date "
              f"({seconds:.1f}s)")
        return 0
    written = compile_all(root)
    seconds = time.perf_counter() - start
    for path in written:
        print(f"  wrote {path}")
    print(f"compiled {len(written)} files under {root} in {seconds:.1f}s")
    _maybe_report(args, {"verb": "compile", "check": False, "seconds": seconds,
                         "files": [str(p) for p in written]})
    return 0


def _validate(args: argparse.Namespace) -> int:
    from ecom_kfp.pipelines.compile import generated_files
    from ecom_kfp.pipelines.validate import validate_file

    root = Path(args.root).resolve()
    files = [Path(f) for f in args.files] or [root / p for p in generated_files(root)
                                              if p.suffix == ".yaml"]
    if not files:
        print(f"validate: no YAML files given and none generated under {root}", file=sys.stderr)
        return 2
    problems = [p for f in files for p in validate_file(f)]
    for problem in problems:
        print(problem, file=sys.stderr)
    _maybe_report(args, {"verb": "validate", "files": [str(f) for f in files],
                         "problems": [str(p) for p in problems]})
    bad = len({p.file for p in problems})
    print(f"validated {len(files)} file(s): {len(files) - bad} ok, {bad} with "
          f"{len(problems)} problem(s)")
    return 1 if problems else 0


def _run_local(args: argparse.Namespace) -> int:
    from ecom_kfp.pipelines.local_run import format_summary, run_local

    config = from_args(LocalRunConfig, args)
    progress(f"ecom-kfp run-local: training_pipeline on the demo catalog under kfp.local -> {config.out}")
    summary = run_local(config)
    progress(format_summary(summary))
    return 0


def _submit(args: argparse.Namespace) -> int:
    from ecom_kfp.pipelines.submit import ParameterError, parse_params, submit

    try:
        params = parse_params(args.param, args.params_file)
        result = submit(args.host, args.pipeline, params, experiment=args.experiment,
                        run_name=args.run_name, namespace=args.namespace,
                        enable_caching=False if args.no_cache else None,
                        service_account=args.service_account)
    except ParameterError as exc:
        print(f"ecom-kfp submit: {exc}", file=sys.stderr)
        return 2
    _maybe_report(args, {"verb": "submit", **result.__dict__})
    print(f"submitted {args.pipeline} to {result.host}: run {result.run_id} in experiment "
          f"{result.experiment!r} with {len(result.parameters)} parameter(s)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``compile``, ``validate``, ``run-local`` and ``submit`` verbs."""
    p = subparsers.add_parser("compile", help="compile pipelines and components to YAML",
                              description="Write components/<name>/component.yaml + README.md "
                                          "and pipelines/<name>.yaml under --root.")
    p.add_argument("--root", default=".", help="repository root to write under (default: .)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; fail listing every file that differs from a fresh compile")
    _add_report_dir(p)
    p.set_defaults(func=_compile)

    p = subparsers.add_parser("validate", help="strictly validate compiled pipeline/component YAML",
                              description="Proto-parse, resolve every reference and check image "
                                          "pins of compiled YAML files.")
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="YAML files (default: every generated YAML under --root)")
    p.add_argument("--root", default=".", help="repository root for the default file list")
    _add_report_dir(p)
    p.set_defaults(func=_validate)

    p = subparsers.add_parser("run-local", help="run the training pipeline locally with kfp.local",
                              description="Generate the demo catalog, serve its images on "
                                          "127.0.0.1 and run training_pipeline under "
                                          "kfp.local.SubprocessRunner.")
    add_arguments(p, LocalRunConfig)
    p.set_defaults(func=_run_local)

    p = subparsers.add_parser("submit", help="submit a compiled pipeline to a KFP host",
                              description="Create a run of a compiled pipeline on a Kubeflow "
                                          "Pipelines endpoint with kfp.Client.")
    p.add_argument("--host", required=True, help="KFP API endpoint URL")
    p.add_argument("--pipeline", required=True, help="compiled pipeline YAML")
    p.add_argument("--experiment", default="ecom-kfp", help="experiment name (default: ecom-kfp)")
    p.add_argument("--run-name", default=None, help="run display name")
    p.add_argument("--namespace", default=None, help="Kubernetes namespace (multi-user KFP)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="run parameter (repeatable; VALUE is read as YAML)")
    p.add_argument("--params-file", default=None,
                   help="YAML mapping of run parameters (--param wins)")
    p.add_argument("--service-account", default=None,
                   help="Kubernetes service account for the run's pods (e.g. ecom-kfp-runner, which "
                        "may create MPIJobs for launcher=mpijob; default: the namespace's default)")
    p.add_argument("--no-cache", action="store_true",
                   help="disable caching for this run (re-read a catalog URI whose content changed)")
    _add_report_dir(p)
    p.set_defaults(func=_submit)
