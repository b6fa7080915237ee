"""``ecom-kfp push``: register a blessed model in MLflow and copy it for serving."""

from __future__ import annotations

import argparse
import sys

from ecom_kfp.cli_support import bad_input
from ecom_kfp.contracts import registry
from ecom_kfp.push.config import PushConfig

#: Exit status when the model is not blessed (distinct from bad input, :data:`~ecom_kfp.cli_support.EXIT_BAD_INPUT`,
#: and from a failed copy, 1).
EXIT_NOT_BLESSED = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``push`` verb."""
    p = subparsers.add_parser("push", help="register a blessed model in MLflow and copy it for serving",
                              description="Register a blessed model in the MLflow model registry, copy it to "
                                          "<serving-uri>/<name>/<version>/, verify the copy, then move 'latest' "
                                          "and the aliases. Re-running with the same model is a no-op.")
    p.add_argument("--model", required=True, help="model directory URI (a train output)")
    p.add_argument("--evaluation", required=True, help="evaluate output URI (blessing.json, metrics.json)")
    p.add_argument("--registry-uri", required=True, help="MLflow tracking/registry server URI")
    p.add_argument("--serving-uri", default="",
                   help="serving root (local or gs://); the model goes to <serving-uri>/<name>/<version>/ "
                        "(default: register only)")
    p.add_argument("--out", required=True, help="output directory URI for report.json")
    p.add_argument("--registered-model-name", default="ecom-product-category",
                   help="registered model name (also the serving sub-directory)")
    p.add_argument("--alias", default=registry.CHAMPION,
                   help="alias a blessed model gets (every pushed version is also 'challenger')")
    p.add_argument("--experiment-name", default="ecom-kfp", help="MLflow experiment of the registration run")
    p.add_argument("--force", action="store_true",
                   help="push an unblessed model anyway (registered and copied as challenger; never champion "
                        "or latest)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run the stage and print a human summary."""
    from ecom_kfp.push.serving import ServingConflictError, VerificationError
    from ecom_kfp.push.stage import NotBlessedError, run

    config = PushConfig(model_uri=args.model, evaluation_uri=args.evaluation, registry_uri=args.registry_uri,
                        out_uri=args.out, serving_uri=args.serving_uri,
                        registered_model_name=args.registered_model_name, alias=args.alias,
                        experiment_name=args.experiment_name, force=args.force)
    try:
        report = run(config)
    except NotBlessedError as err:
        print(f"ecom-kfp push: refused: {err}", file=sys.stderr)
        return EXIT_NOT_BLESSED
    except (FileNotFoundError, ValueError) as err:
        return bad_input("push", err)
    except (ServingConflictError, VerificationError) as err:
        print(f"ecom-kfp push: copy failed, 'latest' unchanged: {err}", file=sys.stderr)
        return 1
    state = "registered new" if report.created_version else "already registered as"
    print(f"{state} {report.registered_model_name} version {report.version} "
          f"(content {report.content_sha256[:12]}, {report.files} files, {report.bytes} bytes)")
    print(f"  aliases: {', '.join(report.aliases)}" + ("  [forced: not blessed]" if report.forced else ""))
    if report.serving_uri:
        print(f"  serving copy verified at {report.serving_uri} "
              f"({report.files_copied} copied, {report.files_already_present} already there)")
        print(f"  latest -> version {report.version}" if report.latest_pointer else "  latest unchanged (not blessed)")
    return 0
