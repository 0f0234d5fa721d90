"""A sub-package's public surface, loaded on first use.

Each ``agent`` sub-package names its public functions in ``__all__`` and maps each to the module
that defines it. Importing one module of a package (``agent.governance.origin`` from the CLI's
start-up) must not load the whole package (the approval graph, LangGraph, pandas), so the names are
resolved on first access (PEP 562), and type checkers read the same imports under
``TYPE_CHECKING``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_surface"]


def lazy_surface(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` whose public ``name`` lives in ``package.module``."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
