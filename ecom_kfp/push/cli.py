"""``ecom-kfp push``: register a blessed model in MLflow and copy it for serving."""

from __future__ import annotations

import argparse
import sys

from ecom_kfp.cli_support import add_stage_verb, bad_input
from ecom_kfp.push.config import PushConfig
from ecom_kfp.settings import from_args

#: Exit status when the model is not blessed, or not the model evaluated (distinct from bad input,
#: :data:`~ecom_kfp.cli_support.EXIT_BAD_INPUT`, and from a failed copy, 1).
EXIT_NOT_BLESSED = 3

DESCRIPTION = """Register a blessed model in the MLflow model registry, copy it to <serving-uri>/<name>/<version>/,
verify the copy, run its serving signature, then move 'latest' and the aliases.

Refuses a model whose content digest differs from the one its evaluation recorded in
blessing.json. Re-running with the same model is a no-op; re-running after an interrupted push
completes it."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``push`` verb; its flags come from :class:`PushConfig`."""
    add_stage_verb(subparsers, "push", "register a blessed model in MLflow and copy it for serving",
                   DESCRIPTION, PushConfig, main)


def main(args: argparse.Namespace) -> int:
    """Run the stage and print a human summary."""
    from ecom_kfp.push.serving import ServingConflictError, VerificationError
    from ecom_kfp.push.stage import NotBlessedError, run

    try:
        report = run(from_args(PushConfig, args))
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
    print(f"  serving signature answered on {report.signature_examples} inputs "
          f"({'serving copy' if report.serving_uri else 'model directory'})")
    if report.serving_uri:
        print(f"  serving copy verified at {report.serving_uri} ({report.files_copied} copied, "
              f"{report.files_already_present} already there, {report.files_replaced} partial replaced)")
        print(f"  latest -> version {report.version}" if report.latest_pointer else "  latest unchanged (not blessed)")
    return 0
