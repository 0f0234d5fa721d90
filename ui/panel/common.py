"""What every tab of the panel shares: how an expected failure reads, the guards that show it in a
status output instead of failing the event, and the small Markdown renderings of actions, evidence
and citations."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from tools.db import DatabaseError
from tools.errors import Conflict, Forbidden, GuardBlocked, ToolError
from ui.api.auth import AuthError
from ui.api.service import LimitExceeded

__all__ = [
    "EXPECTED",
    "action_line",
    "citation_text",
    "evidence_md",
    "failure_md",
    "fmt_params",
    "guarded",
    "guarded_stream",
]

# The failures a person can act on (shown in the panel); anything else is a bug and propagates.
EXPECTED: tuple[type[BaseException], ...] = (ToolError, AuthError, DatabaseError)


def failure_md(exc: Exception) -> str:
    """The panel's one-line rendering of an expected failure, named like the API's status codes."""
    if isinstance(exc, AuthError):
        return f"**Not signed in:** {exc}"
    if isinstance(exc, Forbidden):
        return f"**Not allowed for your role (403):** {exc}"
    if isinstance(exc, Conflict):
        return f"**Already decided (409):** {exc}"
    if isinstance(exc, GuardBlocked):
        return (
            "**Blocked by the guard:**\n" + "\n".join(f"- {r}" for r in exc.reasons)
            if exc.reasons
            else f"**Blocked:** {exc}"
        )
    if isinstance(exc, LimitExceeded):
        return f"**Too large:** {exc}"
    return f"**Error:** {exc}"


def guarded_stream(fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    """:func:`guarded` for a generator with one output."""

    def run(*args):
        try:
            yield from fn(*args)
        except EXPECTED as exc:
            yield failure_md(exc)

    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


def guarded(fn: Callable[..., Any], n_outputs: int, status_index: int) -> Callable[..., Any]:
    """Run ``fn``; on an expected failure put its message in the status output, leave the rest."""

    def run(*args):
        try:
            return fn(*args)
        except EXPECTED as exc:
            out = [gr.skip()] * n_outputs
            out[status_index] = failure_md(exc)
            return tuple(out) if n_outputs > 1 else out[0]

    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


def fmt_params(params: dict[str, Any] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in (params or {}).items())


def action_line(a: dict[str, Any] | None) -> str:
    if not a:
        return "—"
    return f"{a['action']}({fmt_params(a.get('params'))})"


def evidence_md(evidence: list[Any]) -> str:
    return (
        "\n".join(f"  - {e if isinstance(e, str) else json.dumps(e, default=str)}" for e in evidence or [])
        or "  - —"
    )


def citation_text(c: Any) -> str:
    if isinstance(c, dict):
        return str(c.get("citation") or c.get("id") or json.dumps(c, default=str))
    return str(c)
