"""Expected business failures. They go back to a person or a model as a plain message; bugs propagate.

Each maps to one HTTP status in the API (ui/api/errors.py): NotFound 404, Forbidden 403, Conflict 409,
GuardBlocked 422; any other ToolError 400.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "Forbidden",
    "GuardBlocked",
    "NotFound",
    "OrderNotFound",
    "PreconditionFailed",
    "ToolError",
]


class ToolError(Exception):
    """A request that cannot be answered from the records, with a message a person can act on."""


class NotFound(ToolError):
    """A record that does not exist, e.g. ``order SO-9 not found``."""

    def __init__(self, kind: str, key: str, did_you_mean: list[str] | tuple[str, ...] = ()) -> None:
        self.kind, self.key, self.did_you_mean = kind, key, list(did_you_mean)
        hint = f"; did you mean {' or '.join(self.did_you_mean)}?" if self.did_you_mean else ""
        super().__init__(f"{kind} {key} not found{hint}")


class OrderNotFound(NotFound):
    """No order with this id: ``order SO-9 not found``, the one message every caller gives."""

    def __init__(self, order_id: str, did_you_mean: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__("order", order_id, did_you_mean)


class Forbidden(ToolError):
    """The person may not do this (wrong role, own request, unknown or inactive user)."""


class Conflict(ToolError):
    """The record is not in a state that allows this (already decided, already executed)."""


class GuardBlocked(ToolError):
    """The guard refused an action: ``reasons`` are sentences a person can read."""

    def __init__(self, reasons: list[str], message: str | None = None) -> None:
        self.reasons = list(reasons)
        super().__init__(message or "blocked by the guard: " + "; ".join(self.reasons))


class PreconditionFailed(ToolError):
    """A write whose precondition no longer holds at execution time (e.g. the stock is gone)."""
