"""Package exports imported on first use (PEP 562), for stage packages whose ``stage`` is heavy."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, modules: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports each exported name from its module when first asked for.

    Args:
        package: The package's ``__name__`` (for the error message).
        modules: Exported name -> the module that defines it.
    """
    def __getattr__(name: str) -> Any:
        if name in modules:
            return getattr(importlib.import_module(modules[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return __getattr__
