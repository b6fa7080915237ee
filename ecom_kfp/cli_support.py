"""What every stage verb's ``cli.py`` shares: the common flags and the bad-input exit.

docs/design.md's CLI contract: a verb exits non-zero only when the stage itself could not run (bad flag,
missing input), never because some products were rejected.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

#: Exit status of a verb whose flags or inputs are unusable (argparse uses it for usage errors too).
EXIT_BAD_INPUT = 2


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``: sets ``args.progress`` to False (progress bars are on by default)."""
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")


def bad_input(verb: str, err: Exception | str) -> int:
    """Print ``ecom-kfp <verb>: error: <err>`` to stderr; returns :data:`EXIT_BAD_INPUT`."""
    print(f"ecom-kfp {verb}: error: {err}", file=sys.stderr)
    return EXIT_BAD_INPUT


def reject_lines(rejects_by_reason: Mapping[str, int]) -> list[str]:
    """Summary lines of a stage's rejects, most frequent reason first."""
    return [f"  rejected {reason}: {count}"
            for reason, count in sorted(rejects_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))]
