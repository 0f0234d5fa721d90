"""Batch triage (of the open book, and of named orders as the event worker triages them) equals
per-order triage: the same results, the same exceptions rows."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from agent.policy import load_policy
from agent.triage.service import triage_batch, triage_open_book, triage_order
from tools.dataset import open_order_ids
from tools.db import session_factory
from tools.demo import generate
from tools.models import ExceptionRecord, Order

POLICY = load_policy()
AS_OF = dt.date(2026, 11, 25)


def _exceptions(session) -> list[tuple]:
    """The exceptions table without ids and timestamps (resolved or not is kept)."""
    e = ExceptionRecord
    rows = session.execute(
        select(
            e.order_id,
            e.type,
            e.instance_key,
            e.line_no,
            e.shipment_id,
            e.sku,
            e.customer_id,
            e.warehouse_id,
            e.evidence,
            e.evidence_hash,
            e.status,
            e.resolved_at.is_(None),
        )
    )
    return sorted(tuple(str(v) for v in r) for r in rows)


@pytest.fixture
def seeded(engine):
    generate(engine, orders=3000, seed=5, as_of=AS_OF, progress=False)
    return engine


def test_batch_triage_equals_per_order_triage(seeded):
    factory = session_factory(seeded)
    with factory() as s:
        ids = open_order_ids(s)
        assert len(ids) > 200  # recurrence patterns are forced from 150 open orders
        per_order = [triage_order(s, oid, POLICY) for oid in ids]
        s.flush()
        table_per_order = _exceptions(s)
        s.rollback()
    with factory() as s:
        before = _exceptions(s)
        batch = list(triage_open_book(s, POLICY, chunk=40))  # several batches, several days each
        s.flush()
        table_batch = _exceptions(s)
        s.rollback()
    assert any(r["exceptions"] for r in per_order)
    assert any(e["type"] == "RECURRING_ANOMALY" for r in per_order for e in r["exceptions"])
    assert sorted(batch, key=lambda r: r["order_id"]) == per_order
    assert table_batch == table_per_order != before


def test_batch_triage_with_limit_counts_the_whole_book(seeded):
    with session_factory(seeded)() as s:
        ids = open_order_ids(s, 60)
        batch = sorted(
            triage_open_book(s, POLICY, limit=60, record=False, chunk=25), key=lambda r: r["order_id"]
        )
        assert [r["order_id"] for r in batch] == ids
        assert batch == [triage_order(s, oid, POLICY, record=False) for oid in ids]


def test_batch_triage_twice_writes_nothing_new(seeded):
    factory = session_factory(seeded)
    with factory() as s:
        first = list(triage_open_book(s, POLICY))
        s.commit()
        table = _exceptions(s)
    with factory() as s:
        assert list(triage_open_book(s, POLICY)) == first
        s.flush()
        assert not s.dirty and _exceptions(s) == table


def test_triage_of_named_orders_in_one_batch_equals_triage_of_each(seeded):
    """Open orders with recurrence, closed orders (their exceptions resolved) and an unknown id,
    triaged together: each result and each exceptions row as the one triage entry leaves them."""
    factory = session_factory(seeded)
    with factory() as s:
        open_ids = open_order_ids(s)[::3]
        closed = sorted(s.scalars(select(Order.order_id).where(Order.order_id.not_in(open_order_ids(s)))))[
            :40
        ]
        assert closed  # shipped and cancelled orders are in the book
        ids = sorted(open_ids + closed)
        per_order = [triage_order(s, oid, POLICY) for oid in ids]
        s.flush()
        table_per_order = _exceptions(s)
        s.rollback()
    with factory() as s:
        before = _exceptions(s)
        batch = triage_batch(s, [*reversed(ids), "NO-SUCH-ORDER"], POLICY)
        s.flush()
        table_batch = _exceptions(s)
        s.rollback()
    assert any(e["type"] == "RECURRING_ANOMALY" for r in per_order for e in r["exceptions"])
    assert batch == per_order
    assert table_batch == table_per_order != before
