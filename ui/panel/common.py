"""What every tab of the panel shares: how an expected failure reads, the guards that show it in a
status output instead of failing the event, and the small Markdown renderings of actions, evidence
and citations.

Text a person or the model wrote (a requester's parameters and reasons, a customer note quoted in
evidence, an explanation or chat answer that quotes one, a guard reason that repeats a parameter)
is shown through :func:`md_text` (or :func:`code_text` inside a code span): exactly the characters
typed, never live Markdown or HTML."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
from sqlalchemy.exc import OperationalError

from agent.governance.origin import Origin, set_origin
from tools.db import DatabaseError
from tools.errors import Conflict, Forbidden, GuardBlocked, NotFound, ToolError
from ui.api.auth import AuthError, Principal, TokenConfigError
from ui.api.limits import RateLimited
from ui.api.service import LimitExceeded, Services

__all__ = [
    "EXPECTED",
    "NO_TOKEN",
    "action_line",
    "citation_text",
    "code_text",
    "evidence_md",
    "failure_md",
    "fmt_params",
    "guarded",
    "guarded_stream",
    "md_text",
    "pick_id",
    "plain_text",
    "signed_in",
]

# The failures a person can act on (shown in the panel); anything else is a bug and propagates.
# OperationalError: the database went away or refused a write mid-request (nothing was changed)
EXPECTED: tuple[type[BaseException], ...] = (
    ToolError,
    AuthError,
    TokenConfigError,
    DatabaseError,
    OperationalError,
    RateLimited,
)

# Markdown's punctuation that marks up text anywhere (emphasis, links, images, code, tables,
# strike-through, headings), and what marks up a line where it starts (lists, setext headings).
_MD_INLINE = re.compile(r"([\\`*_{}\[\]#!|~])")
_MD_LINE_START = re.compile(r"^(\s*(?:\d+)?)([-+=.)])", re.MULTILINE)


def md_text(value: Any) -> str:
    """Text from a requester, a customer note or the model, made inert for Markdown: HTML escaped,
    markup punctuation backslash-escaped, so ``**x** <img src=…>`` shows as typed and loads nothing."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = _MD_INLINE.sub(r"\\\1", html.escape(text, quote=False))
    return _MD_LINE_START.sub(r"\1\\\2", text)


def plain_text(value: Any) -> str:
    """A result record as a reader's line (``changes: order_lines=SO-1/2, allocated=5``), not a JSON
    dump; made inert like :func:`md_text`."""

    def flat(v: Any) -> str:
        if isinstance(v, dict):
            return ", ".join(f"{k}={flat(x)}" for k, x in v.items() if x not in (None, "", [], {}))
        if isinstance(v, list | tuple):
            return "; ".join(f"({flat(x)})" if isinstance(x, dict) else flat(x) for x in v)
        return "" if v is None else str(v)

    if isinstance(value, dict):
        text = "; ".join(
            f"{k}: {flat(x)}" if isinstance(x, dict | list | tuple) else f"{k}={flat(x)}"
            for k, x in value.items()
            if x not in (None, "", [], {})
        )
    else:
        text = flat(value)
    return md_text(text)


def code_text(value: Any) -> str:
    """Text for inside a Markdown code span (rendered literally): no backtick to break out, one line."""
    return str(value).replace("`", "'").replace("\r", " ").replace("\n", " ")


# What a panel user is told without a token (the API's "send 'Authorization: Bearer <token>'" is
# for API clients: nobody in the panel sends a header).
NO_TOKEN = "paste your API token at the top and press Sign in"


def signed_in(services: Services, token: str | None) -> Principal:
    """The user of ``token``: counted against their rate limit, and the origin of the audit events
    the handler appends (a streaming handler's later steps name them as actor instead)."""
    if not (token or "").strip():
        raise AuthError(NO_TOKEN)
    who = services.authenticate(token)
    services.limits.take(who.username)
    set_origin(Origin(door="panel", user=who.username))
    return who


def pick_id(pick: Any, what: str) -> int | None:
    """The number a dropdown picked (it takes typed values too): None when nothing is picked; a
    typed value that is not a number is refused in one line instead of failing the event."""
    text = str(pick if pick is not None else "").strip().lstrip("#")
    if not text:
        return None
    if not text.isdigit():
        raise ToolError(f"{code_text(text)[:40]!r} is not {what} number: pick one from the list")
    return int(text)


def repeated_md(req: dict[str, Any]) -> str | None:
    """The line for a request the approval step gave back instead of filing a twin (the same action
    and parameters already waiting on the order, ``repeated``); None for a request filed now."""
    if not req.get("repeated"):
        return None
    return (
        f"Request **#{req['id']}** `{action_line(req)}` is already **{req['status']}** "
        f"(filed by {md_text(str(req.get('requested_by')))}; approver role "
        f"**{req.get('approver_role') or '—'}**): not filed again."
    )


def failure_md(exc: BaseException) -> str:
    """The panel's one-line rendering of an expected failure, named like the API's status codes."""
    if isinstance(exc, AuthError):
        return f"**Not signed in:** {md_text(str(exc))}"
    if isinstance(exc, Forbidden):
        return f"**Not allowed for your role (403):** {md_text(str(exc))}"
    if isinstance(exc, NotFound):
        return f"**Not found (404):** {md_text(str(exc))}"
    if isinstance(exc, Conflict):
        return f"**Conflict (409):** {md_text(str(exc))}"
    if isinstance(exc, GuardBlocked):
        return (
            "**Blocked by the guard:**\n" + "\n".join(f"- {md_text(str(r))}" for r in exc.reasons)
            if exc.reasons
            else f"**Blocked:** {md_text(str(exc))}"
        )
    if isinstance(exc, RateLimited):
        return f"**Too many requests (429):** {md_text(str(exc))}"
    if isinstance(exc, LimitExceeded):
        return f"**Too large:** {md_text(str(exc))}"
    if isinstance(exc, OperationalError):  # never the SQL: it may carry the records' values
        return "**Unavailable (503):** the database cannot be reached right now: nothing was changed; retry"
    if isinstance(exc, TokenConfigError):
        return "**Unavailable (503):** the service's API tokens cannot be read right now; retry"
    return f"**Error:** {md_text(str(exc))}"


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
    return code_text(f"{a['action']}({fmt_params(a.get('params'))})")


def evidence_md(evidence: list[Any]) -> str:
    return "\n".join(f"  - {md_text(e)}" for e in evidence or []) or "  - —"


def citation_text(c: Any) -> str:
    if isinstance(c, dict):
        return md_text(str(c.get("citation") or c.get("id") or json.dumps(c, default=str)))
    return md_text(str(c))
