"""``ecom-kfp ensemble``: average trained models into one model directory."""

from __future__ import annotations

import argparse
import sys

from ecom_kfp.cli_support import add_stage_verb, bad_input
from ecom_kfp.ensemble.config import EnsembleConfig
from ecom_kfp.settings import from_args

DESCRIPTION = """Average models trained on the same dataset (different seeds, backbones or inputs) into one
model directory: its serving signature returns, per level, the weighted mean of the members'
probabilities. Evaluate, push and predict take it like a train output.

Every member's files are checked against its digests.json before it is loaded; members trained
on another dataset are refused."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ensemble`` verb; its flags come from :class:`EnsembleConfig`."""
    add_stage_verb(subparsers, "ensemble", "average trained models into one served model",
                   DESCRIPTION, EnsembleConfig, main)


def main(args: argparse.Namespace) -> int:
    """Run the stage and print a human summary."""
    from ecom_kfp.ensemble.stage import run
    from ecom_kfp.push.serving import VerificationError

    try:
        report = run(from_args(EnsembleConfig, args))
    except (FileNotFoundError, ValueError) as err:
        return bad_input("ensemble", err)
    except VerificationError as err:
        print(f"ecom-kfp ensemble: the averaged model does not serve: {err}", file=sys.stderr)
        return 1
    print(f"ensemble of {len(report.members)} models -> {report.out} (content {report.content_sha256[:12]}, "
          f"classes per level {report.classes})")
    for member, sha, weight in zip(report.members, report.member_sha256, report.weights, strict=True):
        print(f"  {weight:.3f}  {member}  (content {sha[:12]})")
    print(f"  serving signature answered on {report.signature_examples} inputs; next: ecom-kfp evaluate --model {report.out}")
    return 0
