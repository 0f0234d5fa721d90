"""Expected business failures. They go back to a person or a model as a plain message; bugs propagate."""

from __future__ import annotations

__all__ = ["ToolError", "NotFound"]


class ToolError(Exception):
    """A request that cannot be answered from the records, with a message a person can act on."""


class NotFound(ToolError):
    """A record that does not exist, e.g. ``order SO-9 not found``."""

    def __init__(self, kind: str, key: str) -> None:
        self.kind, self.key = kind, key
        super().__init__(f"{kind} {key} not found")
