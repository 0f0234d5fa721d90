"""What a proposal or a decision may carry before anything of it is stored or logged.

A request the guard blocks is still kept (with its reasons) so people can see what was tried; that
must not let one client store megabytes per call (each request is copied into several audit
events) or crash the service with a value JSON cannot hold. So, before a request or an edit is
persisted, and before a refusal is logged:

- parameters are a flat object of plain values (text, numbers, booleans, null), at most
  :data:`MAX_PARAMS_CHARS` characters of canonical JSON, every number finite (``NaN`` and
  ``Infinity`` have no JSON form and no meaning as a quantity or a price), no text with a NUL
  character (no PostgreSQL text or JSONB column holds one);
- free text (a decision's reason) has at most :data:`MAX_REASON_CHARS` characters, none NUL;
- identifiers a caller typed (order id, user name) are logged only up to their column's length
  (:func:`clip`), so a refusal of an absurd id is logged instead of failing to be.

A refusal is a :class:`tools.errors.GuardBlocked` (HTTP 422, exit code 2 in the CLI) and stores
nothing but the refusal's audit event, which names the size instead of repeating the value.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from agent.governance.audit import canonical_json
from tools.errors import GuardBlocked, ToolError

__all__ = [
    "MAX_PARAMS_CHARS",
    "MAX_REASON_CHARS",
    "clip",
    "loggable_params",
    "refuse_params_without_action",
    "screen_params",
    "screen_reason",
]

MAX_PARAMS_CHARS = 4_000
MAX_REASON_CHARS = 2_000


def _non_finite(value: Any, path: str) -> list[str]:
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{path} is {value!r}: numbers must be finite"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite(v, f"{path}.{k}")]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in _non_finite(v, f"{path}[{i}]")]
    return []


def _nul(value: Any, path: str) -> list[str]:
    """A NUL character has no place in a value and no PostgreSQL text or JSONB column can hold one."""
    if isinstance(value, str):
        return [f"{path} contains a NUL character"] if "\x00" in value else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in (_nul(k, f"{path} name") + _nul(v, f"{path}.{k}"))]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in _nul(v, f"{path}[{i}]")]
    return []


def screen_params(params: Any) -> None:
    """Raise :class:`GuardBlocked` for parameters no request may carry (see the module text)."""
    if params is None:
        return
    if not isinstance(params, dict):
        raise GuardBlocked([f"parameters must be an object of names to values, got {type(params).__name__}"])
    problems = _non_finite(params, "params") + _nul(params, "params")
    problems += [
        f"params.{k}: {type(v).__name__} values are not parameters (text, numbers, true/false)"
        for k, v in params.items()
        if isinstance(v, dict | list | tuple)
    ]
    if problems:
        raise GuardBlocked(problems)
    size = len(canonical_json(params))
    if size > MAX_PARAMS_CHARS:
        raise GuardBlocked(
            [f"the parameters are {size:,} characters of JSON; the limit is {MAX_PARAMS_CHARS:,}"]
        )


def refuse_params_without_action(action: str | None, params: Any, what: str) -> None:
    """Raise :class:`ToolError` for parameters given with no action: the order's recommendation
    comes with its own parameters, so these would be dropped unread. ``what``: what giving neither
    does ("request", "simulate")."""
    if action is None and params:
        raise ToolError(
            "parameters were given without an action: name the action they are for, or give "
            f"neither to {what} the order's recommendation"
        )


def screen_reason(reason: str | None) -> None:
    if reason is not None and len(reason) > MAX_REASON_CHARS:
        raise GuardBlocked([f"the reason has {len(reason):,} characters; the limit is {MAX_REASON_CHARS:,}"])
    if reason is not None and "\x00" in reason:
        raise GuardBlocked(["the reason contains a NUL character"])


def clip(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters (marked with an ellipsis) for a column that holds no more."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def loggable_params(params: Any) -> Any:
    """``params`` as a refusal's audit event may hold them: as they are when small and plain, else
    their size and digest (the refusal is traceable without storing the oversize value)."""
    try:
        body = canonical_json(params)
    except (TypeError, ValueError):  # NaN, Infinity, or a value JSON cannot hold
        body = repr(params)
        return {
            "omitted": "not JSON",
            "chars": len(body),
            "sha256": hashlib.sha256(body.encode()).hexdigest(),
        }
    if len(body) > MAX_PARAMS_CHARS or not isinstance(params, dict) or _nul(params, "params"):
        why = "not an object" if not isinstance(params, dict) else "NUL characters"
        return {
            "omitted": "oversize" if len(body) > MAX_PARAMS_CHARS else why,
            "chars": len(body),
            "sha256": hashlib.sha256(body.encode()).hexdigest(),
        }
    return params
