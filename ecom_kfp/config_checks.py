"""Fail-fast checks of stage configs: a failed check names the CLI flag and the value (DESIGN.md rule 7).

Stage configs list their checks as data and hand them to :func:`require`, so every stage words a
bad flag the same way: ``--image-size=4: must be at least 8``.
"""

from __future__ import annotations

from collections.abc import Iterable

#: ``(passed, flag, value, rule)``, e.g. ``(size >= 8, "--image-size", size, "must be at least 8")``.
Check = tuple[bool, str, object, str]


def require(checks: Iterable[Check], error: type[ValueError] = ValueError) -> None:
    """Raise ``error("<flag>=<value>: <rule>")`` for the first check that did not pass.

    Args:
        checks: The config's checks, in the order they should be reported.
        error: The exception class (a stage may raise its own ``ValueError`` subclass).
    """
    for passed, flag, value, rule in checks:
        if not passed:
            raise error(f"{flag}={value!r}: {rule}")


def require_given(flags: Iterable[tuple[str, object]]) -> None:
    """Raise ``ValueError("<flag> is required")`` for the first ``(flag, value)`` whose value is empty."""
    for flag, value in flags:
        if not value:
            raise ValueError(f"{flag} is required")
