"""The event worker's shortcuts record what the path before them recorded: a batch applied in one
savepoint, the orders only a carrier's status reached and the recurrence followers triaged in part
from their rows, exceptions rows read and written with Core, the batch audited with one append —
against each event in its own savepoint, every reached order triaged whole on ORM rows. The same
book and events (refused ones, carriers, redated orders, composite keys among them) go through both;
every exceptions row (status, evidence and its hash, whether first_seen_at moved, resolved or not,
claimed / assigned / escalated columns, the denormalised columns) and the audit trail must agree."""

from __future__ import annotations

import datetime as dt
import os
import random
from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

import agent.flow.worker as worker
import agent.triage.retriage as retriage_mod
import agent.triage.service as service
import tools.events.inbox as inbox
from agent.flow import drain
from agent.governance.audit import verify_chain
from agent.policy import load_policy
from agent.triage.service import triage_open_book
from tests.conftest import PG_URL
from tools.db import make_engine, scratch_schema, session_factory, upgrade
from tools.demo import generate
from tools.events import Reach, parse_events, receive
from tools.events.simulate import Simulator
from tools.models import (
    AuditEvent,
    Carrier,
    Customer,
    ExceptionRecord,
    Item,
    Order,
    OrderLine,
    PriceContract,
    Shipment,
    Warehouse,
)

AS_OF = dt.date(2026, 11, 20)
START = dt.datetime(2026, 11, 20, 8, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_urls(request: pytest.FixtureRequest, tmp_path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'new.db'}", f"sqlite:///{tmp_path / 'old.db'}"
        return
    if os.environ.get("COPILOT_SKIP_POSTGRES") == "1":
        pytest.skip("COPILOT_SKIP_POSTGRES=1")
    with (
        scratch_schema(PG_URL, "t", variable="TEST_POSTGRES_URL") as new,
        scratch_schema(PG_URL, "t", variable="TEST_POSTGRES_URL") as old,
    ):
        yield new, old


def _edges(s, rng: random.Random, n: int) -> list[dict]:
    """Events the simulator does not make: refused ones (a dangling SKU, a line left over-allocated),
    composite keys (lines, contracts, stock), new items used by a later event, new disrupted carriers,
    closed, reopened, redated and re-customered orders."""
    lines = s.execute(
        select(OrderLine.order_id, OrderLine.line_no, OrderLine.qty, OrderLine.allocated_qty)
    ).all()
    deals = s.execute(select(PriceContract.customer_id, PriceContract.sku, PriceContract.valid_from)).all()
    ships = list(s.scalars(select(Shipment.shipment_id)))
    orders = list(s.scalars(select(Order.order_id)))
    skus = list(s.scalars(select(Item.sku)))
    customers = list(s.scalars(select(Customer.customer_id)))
    warehouses = list(s.scalars(select(Warehouse.warehouse_id)))
    out = []
    for i in range(n):
        at = (START + dt.timedelta(seconds=rng.randint(0, 1200))).isoformat()
        kind = rng.randrange(11)
        oid, no, qty, allocated = rng.choice(lines)
        if kind == 0:
            row = {"order_id": oid, "line_no": no, "allocated_qty": rng.randint(0, qty)}
            records = {
                "order_lines": [
                    row
                    if rng.random() < 0.7
                    else {"order_id": oid, "line_no": no, "qty": max(0, allocated - 1)}
                ]
            }
        elif kind == 1:
            records = {"order_lines": [{"order_id": oid, "line_no": no, "sku": f"NOPE-{i}"}]}
        elif kind == 2 and deals:
            customer, sku, valid_from = rng.choice(deals)
            records = {
                "price_contracts": [
                    {
                        "customer_id": customer,
                        "sku": sku,
                        "valid_from": valid_from.isoformat(),
                        "contract_price": rng.choice([1, 50, 500]),
                    }
                ]
            }
        elif kind == 3:
            # the item before its use, or after it (the use then dangles, applied in its turn)
            made = (dt.datetime.fromisoformat(at) + dt.timedelta(seconds=rng.choice([-1, 1]))).isoformat()
            out.append(
                {
                    "event_id": f"e{i}",
                    "source": "erp",
                    "type": "item.created",
                    "occurred_at": made,
                    "records": {"items": [{"sku": f"NEW-{i}", "list_price": 10}]},
                }
            )
            records = {
                "order_lines": [{"order_id": oid, "line_no": no, "sku": f"NEW-{i}", "allocated_qty": 0}]
            }
        elif kind == 4:
            records = {
                "carriers": [{"carrier_id": f"CN{i}", "status": "disrupted"}],
                "shipments": [{"shipment_id": rng.choice(ships), "carrier_id": f"CN{i}"}],
            }
        elif kind == 5:
            records = {
                "orders": [
                    {
                        "order_id": rng.choice(orders),
                        "status": rng.choice(["shipped", "cancelled", "open", "held"]),
                    }
                ]
            }
        elif kind == 6:
            records = {
                "customers": [{"customer_id": rng.choice(customers), "credit_hold": rng.random() < 0.5}]
            }
        elif kind == 7:
            records = {
                "price_contracts": [
                    {
                        "customer_id": rng.choice(customers),
                        "sku": rng.choice(skus),
                        "valid_from": f"2026-01-0{rng.randint(1, 9)}",
                        "contract_price": 1,
                    }
                ]
            }
        elif kind == 8:
            records = {
                "orders": [
                    {
                        "order_id": rng.choice(orders),
                        "order_date": (AS_OF - dt.timedelta(days=rng.randint(0, 40))).isoformat(),
                    }
                ]
            }
        elif kind == 9:
            records = {"orders": [{"order_id": rng.choice(orders), "customer_id": rng.choice(customers)}]}
        else:
            records = {
                "inventory": [
                    {
                        "sku": rng.choice(skus),
                        "warehouse_id": rng.choice(warehouses),
                        "on_hand": rng.randint(0, 50),
                    }
                ]
            }
        out.append(
            {
                "event_id": f"e{i}b",
                "source": "erp",
                "type": f"edge.{kind}",
                "occurred_at": at,
                "records": records,
            }
        )
    return out


def _book(url: str, policy, monkeypatch) -> None:
    """A recorded 400-order book with some rows claimed, and 500 events waiting (the same for a seed)."""
    engine = make_engine(url, variable="TEST_POSTGRES_URL")
    upgrade(engine)
    generate(engine, orders=400, seed=21, as_of=AS_OF, progress=False)
    factory = session_factory(engine)
    with factory() as s:
        for _ in triage_open_book(s, policy):
            pass
        ids = list(s.scalars(select(ExceptionRecord.id).order_by(ExceptionRecord.id)))
        for i in random.Random(3).sample(ids, min(40, len(ids))):
            s.execute(
                update(ExceptionRecord)
                .where(ExceptionRecord.id == i)
                .values(claimed_by="ann", claimed_at=START, assigned_role="planner", escalated_to="manager")
            )
        sim = Simulator(s, seed=21, prefix="old")
        carriers = sorted(s.scalars(select(Carrier.carrier_id)))
        edges = _edges(s, random.Random(4), 120)
        s.commit()
    rng = random.Random(5)
    events = list(sim.stream(360, start=START, step_s=2)) + edges
    events += [
        {
            "event_id": f"c{n}",
            "source": "tms",
            "type": f"carrier.{status}",
            "occurred_at": (START + dt.timedelta(seconds=rng.randint(0, 720))).isoformat(),
            "records": {"carriers": [{"carrier_id": rng.choice(carriers), "status": status}]},
        }
        for n, status in enumerate(rng.choice(["disrupted", "ok", "constrained"]) for _ in range(40))
    ]
    with factory() as s, monkeypatch.context() as m:
        m.setattr(inbox, "check_references", lambda *a, **k: None)  # dangling at apply time
        receive(s, parse_events(events), channel="replay")
        s.commit()
    engine.dispose()


def _outcome(url: str) -> tuple[dict, list]:
    engine = make_engine(url, variable="TEST_POSTGRES_URL")
    with session_factory(engine)() as s:
        rows = {
            (r.order_id, r.type, r.instance_key): (
                r.status,
                tuple(r.evidence),
                r.evidence_hash,
                r.first_seen_at == r.detected_at,
                r.resolved_at is None,
                r.claimed_by,
                r.claimed_at is None,
                r.assigned_role,
                r.escalated_to,
                r.line_no,
                r.shipment_id,
                r.sku,
                r.customer_id,
                r.warehouse_id,
            )
            for r in s.scalars(select(ExceptionRecord))
        }
        audit = [
            (e.seq, e.event_type, e.actor, e.order_id, {k: v for k, v in e.payload.items() if k != "origin"})
            for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        ]
        assert verify_chain(s)["ok"]
    engine.dispose()
    return rows, audit


def test_the_worker_records_what_the_old_path_records(two_urls, monkeypatch):
    policy = load_policy()
    new, old = two_urls
    for url in (new, old):
        _book(url, policy, monkeypatch)

    def run(url: str) -> list[tuple]:
        engine = make_engine(url, variable="TEST_POSTGRES_URL")
        done = drain(session_factory(engine), policy, batch=60)
        engine.dispose()
        return [(o.label, o.status, o.error, o.orders, o.opened, o.changed, o.resolved) for o in done]

    outcomes_new = run(new)
    with monkeypatch.context() as m:  # the path before the shortcuts
        m.setattr(worker, "_apply_together", lambda session, rows: None)
        reach = worker.reach_of_events
        m.setattr(worker, "reach_of_events", lambda s, changes: Reach(reach(s, changes).orders, {}))
        whole = retriage_mod.record_batch
        m.setattr(retriage_mod, "record_batch", lambda s, ids, p, scoped=None: whole(s, ids, p))
        m.setattr(service, "_batch_rows", service._exception_rows)
        m.setattr(service, "_write_rows", lambda session, rows: None)  # the ORM's unit of work writes
        outcomes_old = run(old)
    assert {o[1] for o in outcomes_new} == {"applied", "failed"}  # refused events in the batches
    assert sum(o[3] for o in outcomes_new) > 100
    assert outcomes_new == outcomes_old
    rows_new, audit_new = _outcome(new)
    rows_old, audit_old = _outcome(old)
    assert rows_new == rows_old
    assert audit_new == audit_old
