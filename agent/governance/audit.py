"""The audit log: append-only, hash-chained, verifiable.

Every event is a row of ``audit_events`` whose ``hash = sha256(prev_hash + canonical JSON of the
event)``; ``prev_hash`` is the hash of the event before it (64 zeros for the first). The canonical
JSON holds every stored field but the hashes: seq, event_id, ts (UTC, microseconds), event_type,
actor, role, order_id, request_id and payload, with sorted keys and no spaces. Editing, deleting,
inserting or reordering any row breaks the chain at that row or the next, and :func:`verify_chain`
names the first bad ``seq``; the one-row ``audit_anchor`` (seq and hash of the last event) makes a
deletion at the tail visible too.

Appends are serialised by updating the anchor row first, inside the caller's transaction: on
PostgreSQL the row lock makes concurrent appenders queue (READ COMMITTED re-reads the new head),
on SQLite the update takes the database write lock. ``seq`` is therefore gap-free and the chain
linear however many processes append. An event commits or rolls back with the caller's work.

Keyed chain: with an audit key (``agent.governance.audit_key``) every event's hash is
``HMAC-SHA256(key, prev_hash + canonical JSON)`` instead, so whoever can write the database but does
not hold the key cannot forge one. An existing plain chain is switched over by the first append
made with a key: an ``audit_keyed`` event (itself keyed, naming the last plain seq and hash) comes
first, and every event after it must be keyed; the plain events before it stay verifiable and are
sealed by the keyed event that chains onto them. The anchor records where keying began, and a
process without the key may not append to a keyed chain. A missing anchor row breaks the chain.

Payloads are stored exactly as they are hashed, on every backend: before hashing they are reduced
(``agent.governance.audit_json``) to a form that PostgreSQL's JSONB gives back unchanged (integral
floats as integers, NUL and lone surrogates replaced), so verification recomputes the same text.

Event types used by the product are the ``EVENT_*`` constants (the payloads of those written from
several places are built by :mod:`agent.governance.events`); others may log their own names.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from agent.governance.audit_json import canonical_json, storable, utc_text
from agent.governance.audit_key import AuditKeyError, current_key, keyed_hash
from agent.governance.origin import current_origin
from agent.policy import OrderNumbers
from agent.triage.order_numbers import filter_id
from tools.models import AuditAnchor, AuditEvent
from tools.sites import order_condition

__all__ = [
    "EVENT_APPROVAL_REQUESTED",
    "EVENT_AUDIT_KEYED",
    "EVENT_AUTOPILOT_SHADOW",
    "EVENT_CHAT_PROPOSAL",
    "EVENT_CHAT_REQUEST",
    "EVENT_CHECKPOINT",
    "EVENT_DECISION",
    "EVENT_DECISION_REFUSED",
    "EVENT_ESCALATION",
    "EVENT_EXECUTION",
    "EVENT_GUARD",
    "EVENT_LLM_FALLBACK",
    "EVENT_OVERRIDE",
    "EVENT_QUEUE_CLAIMED",
    "EVENT_QUEUE_REASSIGNED",
    "EVENT_QUEUE_RELEASED",
    "EVENT_RECOMMENDATION",
    "EVENT_REQUESTED",
    "EVENT_REQUEST_REPEATED",
    "EVENT_RETENTION_PURGE",
    "EVENT_SLA_ESCALATED",
    "EVENT_SOURCE_APPLIED",
    "EVENT_SOURCE_FAILED",
    "EVENT_TRIAGE",
    "EVENT_TRIAGE_BOOK",
    "EVENT_USER_ADDED",
    "EVENT_USER_SCOPED",
    "GENESIS",
    "AuditChainBroken",
    "AuditEntry",
    "append_event",
    "append_events",
    "canonical_json",
    "event_hash",
    "export_events",
    "list_events",
    "storable",
    "verify_chain",
]

GENESIS = "0" * 64

EVENT_TRIAGE = "triage"  # an order was triaged: its exception types and recommendation
EVENT_TRIAGE_BOOK = "triage_book"  # the open book was triaged: how many orders, how many with exceptions
EVENT_RECOMMENDATION = "recommendation"  # the next-best action the copilot proposed
EVENT_REQUESTED = "action_requested"  # an action request was persisted
EVENT_REQUEST_REPEATED = "action_request_repeated"  # the same action asked again while one waits: none filed
EVENT_GUARD = "guard_result"  # the guard's verdict on a request (or an edit), with reasons
EVENT_APPROVAL_REQUESTED = "approval_requested"  # the request waits for a person with a role
EVENT_DECISION = "decision"  # approve / reject / edit: who, with which role, why
EVENT_DECISION_REFUSED = "decision_refused"  # a decision that was not allowed, and why
EVENT_EXECUTION = "execution"  # the write ran (executed) or failed safely, with the reason
EVENT_OVERRIDE = "override"  # a person chose other than the copilot's recommendation
EVENT_LLM_FALLBACK = "llm_fallback"  # the model failed; the fact-only text was used
EVENT_ESCALATION = "escalation"  # an exception was routed to a role (ESCALATE)
EVENT_USER_ADDED = "user_added"
EVENT_USER_SCOPED = "user_scoped"  # a user's sites (regions, warehouses) were set or cleared
EVENT_RETENTION_PURGE = "retention_purge"  # chat threads and closed exceptions past the policy's limit purged
EVENT_SOURCE_APPLIED = "source_event_applied"  # an ERP/WMS/TMS event applied: records, orders triaged
EVENT_SOURCE_FAILED = "source_event_failed"  # an event refused at apply time, with the reason
EVENT_CHAT_REQUEST = "chat_request"  # chat filed an approval request on a person's words
EVENT_AUDIT_KEYED = "audit_keyed"  # from here on the chain is keyed (HMAC); names the last plain event
EVENT_CHECKPOINT = "audit_checkpoint"  # a signed head was handed out (copilot audit checkpoint)
EVENT_CHAT_PROPOSAL = "chat_proposal"  # chat showed an approval request to confirm (nothing filed yet)
EVENT_QUEUE_CLAIMED = "queue_claimed"  # a person took an open exception from a work queue
EVENT_QUEUE_RELEASED = "queue_released"  # a person gave a claimed exception back to the queue
EVENT_QUEUE_REASSIGNED = "queue_reassigned"  # an exception moved to another role's queue, and why
EVENT_SLA_ESCALATED = "sla_escalated"  # an exception's SLA was breached; escalated by policy
EVENT_AUTOPILOT_SHADOW = "autopilot_shadow"  # a rule in shadow mode would have auto-approved this request
EVENT_RESUMED = "request_resumed"  # a process carried on a request another one left half-way (crashed)


class AuditChainBroken(RuntimeError):
    """The chain cannot be appended to safely (its anchor row is gone); nothing is written."""


_FIELDS = ("seq", "event_id", "ts", "event_type", "actor", "role", "order_id", "request_id", "payload")
_CSV_FIELDS = (*_FIELDS, "prev_hash", "hash")


def _content(row: Any) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "event_id": row.event_id,
        "ts": utc_text(row.ts),
        "event_type": row.event_type,
        "actor": row.actor,
        "role": row.role,
        "order_id": row.order_id,
        "request_id": row.request_id,
        "payload": row.payload,
    }


def event_hash(prev_hash: str, content: dict[str, Any]) -> str:
    """``sha256(prev_hash + canonical_json(content))`` as hex."""
    return hashlib.sha256((prev_hash + canonical_json(content)).encode("utf-8")).hexdigest()


_EVENTS = AuditEvent.__table__
_ANCHOR = AuditAnchor.__table__
# Built once: appends are hot (one per step of every request) and Core statements skip the ORM.
_BUMP = (
    update(_ANCHOR)
    .where(_ANCHOR.c.id == 1)
    .values(seq=_ANCHOR.c.seq + 1)
    .returning(_ANCHOR.c.seq, _ANCHOR.c.hash, _ANCHOR.c.keyed_from)
)
_SET_HEAD = (
    update(_ANCHOR)
    .where(_ANCHOR.c.id == 1)
    .values(seq=bindparam("head_seq"), hash=bindparam("head"), keyed_from=bindparam("head_keyed_from"))
)
_INSERT = insert(_EVENTS)


def _hash(key: bytes | None, prev: str, content: dict[str, Any]) -> str:
    return event_hash(prev, content) if key is None else keyed_hash(key, prev, canonical_json(content))


def _row(key: bytes | None, seq: int, prev: str, event_type: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The row of one event, its hash chained to ``prev``."""
    row: dict[str, Any] = {
        "seq": seq,
        "event_id": str(uuid.uuid4()),
        "ts": dt.datetime.now(dt.UTC),
        "event_type": event_type,
        "actor": fields.get("actor"),
        "role": fields.get("role"),
        "order_id": fields.get("order_id"),
        "request_id": fields.get("request_id"),
        "payload": fields.get("payload") or {},
        "prev_hash": prev,
    }
    row["hash"] = _hash(key, prev, _content_of(row))
    return row


def _head(conn) -> tuple[int, str, int | None]:
    """Lock the anchor and return (the next seq, the head hash, where keying began)."""
    head = conn.execute(_BUMP).first()
    if head is not None:
        return head.seq, head.hash, head.keyed_from
    tail = conn.execute(select(_EVENTS.c.seq).order_by(_EVENTS.c.seq.desc()).limit(1)).first()
    if tail is not None:  # the anchor row was deleted: appending would hide a cut-off tail
        raise AuditChainBroken(
            "the audit anchor row is missing while events exist: the chain was tampered with "
            "(run `copilot audit verify`); nothing was written"
        )
    conn.execute(insert(_ANCHOR).values(id=1, seq=1, hash=GENESIS, keyed_from=None))
    return 1, GENESIS, None


@dataclass(frozen=True)
class AuditEntry:
    """One event for :func:`append_events`: the arguments :func:`append_event` takes."""

    event_type: str
    actor: str | None = None
    role: str | None = None
    order_id: str | None = None
    request_id: int | None = None
    payload: dict[str, Any] | None = None


def append_event(
    session: Session,
    event_type: str,
    *,
    actor: str | None = None,
    role: str | None = None,
    order_id: str | None = None,
    request_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    """Append one event to the chain inside the caller's transaction (the caller commits).

    ``payload`` must be JSON-able; it is reduced by :func:`storable` and stored exactly as it is
    hashed. The door's origin (``agent.governance.origin``), when one is set, is added as ``origin``. With an audit key the event is keyed (a plain chain gets its ``audit_keyed`` event
    first); without one, appending to a keyed chain raises :class:`AuditKeyError`.
    """
    append_events(session, [AuditEntry(event_type, actor, role, order_id, request_id, payload)])


def append_events(session: Session, entries: Iterable[AuditEntry]) -> None:
    """Append events to the chain one after the other, as :func:`append_event` each, with one
    lock of the anchor, one insert and one move of the head for all of them (the event worker
    audits every event of a batch). Nothing is written when one of them is refused."""
    entries = list(entries)
    for e in entries:
        if not e.event_type or len(e.event_type) > 48:
            raise ValueError(f"event_type must be 1-48 characters, got {e.event_type!r}")
    if not entries:
        return
    origin = current_origin()
    bodies = []
    for e in entries:
        body = dict(e.payload or {})
        if origin is not None and "origin" not in body:  # who asked, through which door
            body["origin"] = origin.as_payload()
        bodies.append(storable(body))
    key = current_key()
    conn = session.connection()
    seq, prev, keyed_from = _head(conn)
    if keyed_from is not None and key is None:
        raise AuditKeyError(
            f"the audit chain is keyed from seq {keyed_from}: set COPILOT_AUDIT_KEY (or restore "
            "<COPILOT_VAR_DIR>/audit_key) to append to it; nothing was written"
        )
    rows = []
    if key is not None and keyed_from is None:
        switch = {"plain_until_seq": seq - 1, "plain_head": prev}
        rows.append(_row(key, seq, prev, EVENT_AUDIT_KEYED, {"actor": "copilot", "payload": switch}))
        keyed_from, seq, prev = seq, seq + 1, rows[-1]["hash"]
    for e, body in zip(entries, bodies, strict=True):
        fields = {
            "actor": e.actor,
            "role": e.role,
            "order_id": e.order_id,
            "request_id": e.request_id,
            "payload": body,
        }
        rows.append(_row(key, seq, prev, e.event_type, fields))
        seq, prev = seq + 1, rows[-1]["hash"]
    conn.execute(_INSERT, rows)
    conn.execute(_SET_HEAD, {"head_seq": seq - 1, "head": prev, "head_keyed_from": keyed_from})


def _content_of(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "seq": row["seq"],
        "event_id": row["event_id"],
        "ts": utc_text(row["ts"]),
        "event_type": row["event_type"],
        "actor": row["actor"],
        "role": row["role"],
        "order_id": row["order_id"],
        "request_id": row["request_id"],
        "payload": row["payload"],
    }


_UNSET: Any = object()


def verify_chain(session: Session, *, key: bytes | None = _UNSET, batch: int = 5_000) -> dict[str, Any]:
    """Recompute the chain from the first event.

    Returns ``{"ok", "events", "first_bad_seq", "reason", "keyed_from_seq", "head_seq", "head_hash"}``.
    Checks, per row in seq order: seq is the previous one plus one (starting at 1), prev_hash is
    the previous row's hash, hash is the recomputed one (HMAC from the ``audit_keyed`` event on);
    at the end, the anchor exists and holds the last seq and hash. With a key (``key``, default
    this process's), a non-empty chain with no keyed event is not intact either: it proves nothing
    against whoever can write the database. Streams the table in key ranges (flat memory).
    """
    key = current_key() if key is _UNSET else key
    prev, expected, count, last, keyed_from = GENESIS, 1, 0, 0, None
    for row in _rows(session, batch):
        if row.seq != expected:
            what = "an event is missing before it" if row.seq > expected else "seq out of order"
            return _bad(count, row.seq, f"expected seq {expected}: {what} (deleted or reordered)")
        if row.prev_hash != prev:
            return _bad(
                count,
                row.seq,
                "prev_hash does not match the previous event's hash "
                "(the previous event was changed, deleted, inserted or moved)",
            )
        if keyed_from is None and row.event_type == EVENT_AUDIT_KEYED:
            if key is None:
                return _bad(
                    count, row.seq, "the chain is keyed from here on: set COPILOT_AUDIT_KEY to verify it"
                )
            keyed_from = row.seq
        if _hash(key if keyed_from else None, prev, _content(row)) != row.hash:
            what = "the event was edited" + (", or the audit key is not this chain's" if keyed_from else "")
            return _bad(count, row.seq, f"hash does not match the event's content ({what})")
        prev, last, expected, count = row.hash, row.seq, expected + 1, count + 1
    anchor = session.get(AuditAnchor, 1)
    if anchor is None and count:
        return _bad(
            count, last, "the anchor row is missing: events at the tail may have been deleted with it"
        )
    if anchor is not None and (anchor.seq, anchor.hash) != (last, prev):
        if anchor.seq > last:
            return _bad(
                count,
                last + 1,
                f"the chain ends at seq {last} but the anchor records seq {anchor.seq}: "
                "events were deleted at the tail",
            )
        return _bad(count, anchor.seq or 1, "the anchor does not match the chain's last event")
    if anchor is not None and anchor.keyed_from is not None and keyed_from is None:
        return _bad(count, anchor.keyed_from, "the anchor records a keyed chain but this keyed event is gone")
    if key is not None and count and keyed_from is None:
        return _bad(
            count,
            last,
            "no event is keyed: whoever can write the database could have rewritten this chain "
            "(`copilot audit checkpoint` keys it from now on)",
        )
    return {
        "ok": True,
        "events": count,
        "first_bad_seq": None,
        "reason": None,
        "keyed_from_seq": keyed_from,
        "head_seq": last,
        "head_hash": prev,
    }


def _bad(count: int, seq: int, reason: str) -> dict[str, Any]:
    return {"ok": False, "events": count, "first_bad_seq": seq, "reason": f"seq {seq}: {reason}"}


def _as_dict(row: Any) -> dict[str, Any]:
    return {**_content(row), "prev_hash": row.prev_hash, "hash": row.hash}


def list_events(
    session: Session,
    *,
    order_id: str | None = None,
    request_id: int | None = None,
    event_type: str | None = None,
    limit: int = 100,
    offset: int = 0,
    order_numbers: OrderNumbers | None = None,
) -> list[dict[str, Any]]:
    """Events in seq order, filtered; each a dict of the stored fields (ts as UTC ISO text).
    ``order_id`` is read as typed (``so-100042``, with the policy's ``order_numbers``).

    A session limited to some sites (``tools.sites``) lists only events of their orders."""
    query = select(AuditEvent).order_by(AuditEvent.seq).where(order_condition(session, AuditEvent.order_id))
    if order_id is not None:
        query = query.where(AuditEvent.order_id == filter_id(session, order_id, order_numbers))
    if request_id is not None:
        query = query.where(AuditEvent.request_id == request_id)
    if event_type is not None:
        query = query.where(AuditEvent.event_type == event_type)
    return [_as_dict(r) for r in session.scalars(query.limit(max(0, limit)).offset(max(0, offset)))]


def _rows(session: Session, batch: int = 5_000) -> Iterator[Any]:
    """Every event row (content, prev_hash, hash) in seq order, read in key ranges of ``batch``
    rows so that memory stays flat on millions of events."""
    cols = [_EVENTS.c[f] for f in (*_FIELDS, "prev_hash", "hash")]
    last = None
    while True:
        query = select(*cols).order_by(AuditEvent.seq).limit(batch)
        if last is not None:
            query = query.where(AuditEvent.seq > last)
        rows = session.connection().execute(query).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def _iter_all(session: Session, batch: int = 5_000) -> Iterator[dict[str, Any]]:
    return map(_as_dict, _rows(session, batch))


def export_events(session: Session, fmt: str, out: IO[str]) -> int:
    """Write every event in seq order to ``out`` as ``jsonl`` or ``csv``; returns the count.

    JSONL lines are canonical JSON (so a reader can recompute each hash); in CSV the payload
    column holds canonical JSON.
    """
    if fmt not in ("jsonl", "csv"):
        raise ValueError(f"export format must be jsonl or csv, not {fmt!r}")
    n = 0
    if fmt == "jsonl":
        for event in _iter_all(session):
            out.write(canonical_json(event) + "\n")
            n += 1
        return n
    writer = csv.DictWriter(out, fieldnames=_CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for event in _iter_all(session):
        writer.writerow({**event, "payload": canonical_json(event["payload"])})
        n += 1
    return n
