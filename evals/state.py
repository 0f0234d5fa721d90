"""Score a case on the database it ran in: record state after approval, executed actions, invariants.

``after_approval`` keys read ``table.KEY.field``; a composite key joins its parts with ``/``
(``order_lines.SO1/1.warehouse_id``, ``inventory.A/WH1.allocated``). Values compare by meaning:
amounts as decimals (``100`` equals ``100.00``), dates as ISO text, booleans as booleans.

The invariants hold whatever a case states: every execution has an approval record for its
request (by someone other than the requester), no request and no identical action is executed
twice, and the hash-chained audit log verifies. ``ESCALATE`` changes no record and needs no
approval (domain.md §3), so it is the one action that may run without an approval record.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.governance.audit import verify_chain
from tools.fixtures import MODELS
from tools.models import ActionRequest, Approval, Execution

__all__ = ["check_after", "executed_actions", "invariant_violations", "read_field", "same_value"]

_NOT_EXECUTED = ("failed",)
NO_APPROVAL = ("ESCALATE",)


def read_field(session: Session, path: str) -> tuple[bool, Any]:
    """``(found, value)`` for ``table.KEY.field``; ``found`` is False when the record is missing."""
    table, rest = path.split(".", 1)
    key, field = rest.rsplit(".", 1)
    model = MODELS.get(table)
    if model is None:
        raise ValueError(f"{path}: unknown table {table!r}")
    columns = list(model.__table__.primary_key.columns)
    splits = _key_splits(key, len(columns))
    if not splits or field not in model.__table__.c:
        raise ValueError(f"{path}: expected {table}.{'/'.join(c.name for c in columns)}.<field of {table}>")
    for parts in splits:  # a key part may hold '/' itself (order DE/2026/00017): try each reading
        try:
            ident = [_key_value(column, part) for column, part in zip(columns, parts, strict=True)]
        except ValueError:
            if len(splits) == 1:
                raise ValueError(f"{path}: {key!r} is not a key of {table}") from None
            continue
        row = session.get(model, tuple(ident) if len(ident) > 1 else ident[0], populate_existing=True)
        if row is not None:
            return True, getattr(row, field)
    return False, None


def _key_splits(key: str, n: int) -> list[tuple[str, ...]]:
    """The ways ``key`` reads as ``n`` parts joined with '/' (one for a single-column key)."""
    if n == 1:
        return [(key,)]
    pieces = key.split("/")
    if len(pieces) < n:
        return []
    out = []
    for cuts in itertools.combinations(range(1, len(pieces)), n - 1):
        bounds = (0, *cuts, len(pieces))
        out.append(tuple("/".join(pieces[a:b]) for a, b in itertools.pairwise(bounds)))
    return out


def _key_value(column: Any, part: str) -> Any:
    python_type = column.type.python_type
    if python_type is int:
        return int(part)
    if python_type is dt.date:
        return dt.date.fromisoformat(part)
    return part


def same_value(actual: Any, expected: Any) -> bool:
    if expected is None or actual is None:
        return actual is None and expected is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(actual, (int, float, Decimal)) and not isinstance(expected, (dt.date,)):
        try:
            return Decimal(str(actual)) == Decimal(str(expected))
        except InvalidOperation:
            return False
    if isinstance(actual, dt.date):
        return actual.isoformat() == (
            expected.isoformat() if isinstance(expected, dt.date) else str(expected)
        )
    return str(actual) == str(expected)


def check_after(session: Session, expected: dict[str, Any]) -> list[str]:
    """The differences between ``expected`` and the records, one line each (empty: all match)."""
    problems = []
    for path, want in expected.items():
        try:
            found, value = read_field(session, path)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if not found:
            problems.append(f"{path}: no such record (expected {want!r})")
        elif not same_value(value, want):
            shown = value.isoformat() if isinstance(value, dt.date) else value
            problems.append(f"{path}: {shown!r}, expected {want!r}")
    return problems


def executed_actions(session: Session) -> list[dict[str, Any]]:
    """Every executed action request, oldest first: id, action, params, order_id."""
    rows = session.execute(
        select(
            ActionRequest.id,
            ActionRequest.action,
            ActionRequest.params,
            ActionRequest.order_id,
            Execution.status,
        )
        .join(Execution, Execution.request_id == ActionRequest.id)
        .order_by(Execution.id)
    ).all()
    return [
        {"request_id": r.id, "action": r.action, "params": r.params, "order_id": r.order_id}
        for r in rows
        if r.status not in _NOT_EXECUTED
    ]


def invariant_violations(session: Session) -> tuple[list[str], bool, str | None]:
    """``(violations, audit_ok, audit_note)``: broken invariants, one line each, and whether the
    audit log's hash chain verifies (with its reason when not, else the number of events)."""
    out: list[str] = []
    executions = session.scalars(select(Execution).order_by(Execution.id)).all()
    approvals = {a.id: a for a in session.scalars(select(Approval))}
    requests = {r.id: r for r in session.scalars(select(ActionRequest))}
    per_request = Counter(e.request_id for e in executions)
    for request_id, n in per_request.items():
        if n > 1:
            out.append(f"request {request_id} executed {n} times")
    identical: Counter[tuple[str, str, str | None]] = Counter()
    for e in executions:
        req = requests.get(e.request_id)
        approval = approvals.get(e.approval_id) if e.approval_id is not None else None
        if req is not None and req.action in NO_APPROVAL:
            pass  # routes the exception, changes no record: needs no approval (domain.md §3)
        elif (
            approval is None
            or approval.request_id != e.request_id
            or approval.decision not in ("approve", "edit")
        ):
            out.append(f"execution {e.id} of request {e.request_id} has no approval record for that request")
        elif req is not None and approval.decided_by == req.requested_by:
            out.append(f"request {e.request_id} was approved by its own requester {req.requested_by}")
        if req is not None and e.status not in _NOT_EXECUTED:
            identical[(req.action, req.params_hash, req.order_id)] += 1
    for (action, _, order_id), n in identical.items():
        if n > 1:
            out.append(f"{action} on {order_id} executed {n} times with the same parameters")
    result = verify_chain(session)
    if not result.get("ok"):
        out.append(
            f"audit chain does not verify at seq {result.get('first_bad_seq')}: {result.get('reason')}"
        )
        return out, False, result.get("reason")
    return out, True, f"{result.get('events')} events"
