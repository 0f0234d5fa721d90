"""A realistic feed of source-system events over the records in the database (demo, benchmarks, tests).

What a distributor's systems report all day: the WMS adjusts stock (cycle counts, receipts, picks),
the TMS reports a carrier disruption or a delayed shipment, the ERP moves a purchase order's date,
takes new orders and changes a customer's balance. Every event names records that exist (or that it
creates), so it passes validation; the same seed gives the same feed.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tools.dataset import OPEN_ORDER_STATUSES
from tools.events.inbox import receive
from tools.events.validate import parse_event
from tools.models import Carrier, Customer, Inventory, Order, OrderLine, PurchaseOrder, Shipment

__all__ = ["Simulator", "run_feed"]

_KINDS = (
    ("stock", 45),
    ("shipment_delay", 12),
    ("late_po", 10),
    ("new_order", 15),
    ("balance", 10),
    ("promise", 5),
    ("carrier", 3),
)


class Simulator:
    """Events drawn from the records loaded at construction (a sample of the open book)."""

    def __init__(
        self,
        session: Session,
        *,
        seed: int = 7,
        prefix: str = "sim",
        sample: int = 5_000,
        weights: dict[str, float] | None = None,
    ) -> None:
        """``weights``: the relative weight of some kinds of event instead of the default mix's
        (``_KINDS``: 45 stock adjustments, 15 new orders, … 3 carrier status changes in 100)."""
        unknown = set(weights or {}) - {k for k, _ in _KINDS}
        if unknown:
            raise ValueError(f"unknown kinds of event: {', '.join(sorted(unknown))}")
        bad = {k: w for k, w in (weights or {}).items() if not 0 <= w < float("inf")}  # nan: not 0 <= nan
        if bad:
            raise ValueError(f"a weight is a finite number, 0 or more: {bad}")
        self.kinds = [k for k, _ in _KINDS]
        self.weights = [(weights or {}).get(k, w) for k, w in _KINDS]
        self.rng, self.prefix, self.n = random.Random(seed), prefix, 0
        # new orders are numbered SO-<5 digits of this feed><7 digits of its counter>: the shape the
        # policy's order_numbers read (chat, pasted text), unlike the event ids ("SIM7-…" was not)
        self.order_base = zlib.crc32(prefix.encode()) % 100_000
        self.stock = session.execute(
            select(Inventory.sku, Inventory.warehouse_id, Inventory.on_hand, Inventory.allocated).limit(
                sample
            )
        ).all()
        self.carriers = session.scalars(select(Carrier.carrier_id)).all()
        self.customers = session.execute(
            select(Customer.customer_id, Customer.open_balance).limit(sample)
        ).all()
        self.pos = session.execute(
            select(PurchaseOrder.po_id, PurchaseOrder.expected_date)
            .where(PurchaseOrder.status == "open")
            .limit(sample)
        ).all()
        self.shipments = session.execute(
            select(Shipment.shipment_id, Shipment.eta).where(Shipment.status != "delivered").limit(sample)
        ).all()
        self.orders = session.execute(
            select(Order.order_id, Order.promised_date, Order.customer_id, Order.warehouse_id)
            .where(Order.status.in_(OPEN_ORDER_STATUSES))
            .limit(sample)
        ).all()
        self.prices = dict(session.execute(select(OrderLine.sku, OrderLine.unit_price).limit(sample)).all())
        if not self.stock or not self.customers or not self.orders:
            raise ValueError("the database holds no open book to simulate events on: seed it first")

    def _event(self, source: str, kind: str, at: dt.datetime, records: dict[str, Any]) -> dict[str, Any]:
        self.n += 1
        return {
            "event_id": f"{self.prefix}-{self.n:07d}",
            "source": source,
            "type": kind,
            "occurred_at": at.isoformat(),
            "records": records,
        }

    def event(self, at: dt.datetime | None = None) -> dict[str, Any]:
        """One event, occurring at ``at`` (default now)."""
        at = at or dt.datetime.now(dt.UTC)
        r = self.rng
        kind = r.choices(self.kinds, weights=self.weights)[0]
        if kind == "shipment_delay" and self.shipments:
            sid, eta = r.choice(self.shipments)
            eta = (eta or at.date()) + dt.timedelta(days=r.randint(1, 6))
            return self._event(
                "tms",
                "shipment.delayed",
                at,
                {"shipments": [{"shipment_id": sid, "status": "delayed", "eta": eta.isoformat()}]},
            )
        if kind == "carrier" and self.carriers:
            status = r.choice(["disrupted", "constrained", "ok", "ok"])
            return self._event(
                "tms",
                f"carrier.{status}",
                at,
                {"carriers": [{"carrier_id": r.choice(self.carriers), "status": status}]},
            )
        if kind == "late_po" and self.pos:
            po, expected = r.choice(self.pos)
            late = (expected or at.date()) + dt.timedelta(days=r.randint(3, 21))
            return self._event(
                "erp",
                "purchase_order.delayed",
                at,
                {"purchase_orders": [{"po_id": po, "expected_date": late.isoformat()}]},
            )
        if kind == "balance":
            cid, balance = r.choice(self.customers)
            new = max(0, float(balance or 0) + r.choice([-1, 1]) * r.randint(500, 20_000))
            return self._event(
                "erp",
                "customer.balance_changed",
                at,
                {"customers": [{"customer_id": cid, "open_balance": round(new, 2)}]},
            )
        if kind == "promise":
            oid, promised, _, _ = r.choice(self.orders)
            day = (promised or at.date()) + dt.timedelta(days=r.randint(-3, 5))
            return self._event(
                "erp",
                "order.promise_changed",
                at,
                {"orders": [{"order_id": oid, "promised_date": day.isoformat()}]},
            )
        if kind == "new_order":
            _, _, buyer, order_wh = r.choice(self.orders)
            lines = []
            for no in range(1, r.randint(1, 3) + 1):
                sku, line_wh, _, _ = r.choice(self.stock)
                price = self.prices.get(sku, 100)
                lines.append(
                    {
                        "line_no": no,
                        "sku": sku,
                        "qty": r.randint(1, 40),
                        "unit_price": float(price),
                        "warehouse_id": line_wh,
                    }
                )
            order = {
                "order_id": f"SO-{self.order_base:05d}{self.n + 1:07d}",
                "customer_id": buyer,
                "channel": "edi",
                "order_date": at.date().isoformat(),
                "requested_date": (at.date() + dt.timedelta(days=7)).isoformat(),
                "promised_date": (at.date() + dt.timedelta(days=r.randint(3, 14))).isoformat(),
                "status": "open",
                "warehouse_id": order_wh or lines[0]["warehouse_id"],
                "ship_to_street": "1 Demo Way",
                "ship_to_city": "Springfield",
                "ship_to_postal_code": "01101",
                "ship_to_country": "US",
                "lines": lines,
            }
            return self._event("erp", "order.created", at, {"orders": [order]})
        sku, wh, on_hand, _ = r.choice(self.stock)
        new = max(0, on_hand + r.randint(-max(1, on_hand // 2), max(5, on_hand // 3)))
        return self._event(
            "wms", "inventory.adjusted", at, {"inventory": [{"sku": sku, "warehouse_id": wh, "on_hand": new}]}
        )

    def stream(
        self, count: int, *, start: dt.datetime | None = None, step_s: float = 1.0
    ) -> Iterator[dict[str, Any]]:
        """``count`` events ``step_s`` seconds apart from ``start``."""
        start = start or dt.datetime.now(dt.UTC)
        for i in range(count):
            yield self.event(start + dt.timedelta(seconds=i * step_s))


def run_feed(
    factory: sessionmaker[Session],
    *,
    rate: float,
    count: int,
    stop: threading.Event,
    seed: int = 7,
    on_event: Callable[[], None] | None = None,
) -> int:
    """Store ``count`` simulated events in the inbox at ``rate`` a second (until ``stop``); return how many."""
    with factory() as session:
        sim = Simulator(session, seed=seed, prefix=f"sim{seed}-{int(time.time())}")
    sent, started = 0, time.monotonic()
    while sent < count and not stop.is_set():
        event = parse_event(sim.event(dt.datetime.now(dt.UTC)))
        with factory() as session:
            receive(session, [event], channel="simulate")
            session.commit()
        sent += 1
        if on_event is not None:
            on_event()
        stop.wait(max(0.0, started + sent / rate - time.monotonic()))  # hold the rate
    return sent
