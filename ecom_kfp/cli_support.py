"""What every stage verb's ``cli.py`` shares: the common flags and the bad-input exit.

docs/design.md's CLI contract: a verb exits non-zero only when the stage itself could not run (bad flag,
missing input), never because some products were rejected.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping

from ecom_kfp.settings import add_arguments

#: Exit status of a verb whose flags or inputs are unusable (argparse uses it for usage errors too).
EXIT_BAD_INPUT = 2


def add_stage_verb(subparsers: argparse._SubParsersAction, verb: str, help: str, description: str,  # noqa: A002
                   config_cls: type, main: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """Add a stage's ``verb``: the flags of ``config_cls``, ``description`` shown as written, ``main`` run.

    Returns:
        The verb's parser, for flags that are not settings of the config.
    """
    parser = subparsers.add_parser(verb, help=help, description=description,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, config_cls)
    parser.set_defaults(func=main)
    return parser


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
