"""The batch detector over the open book agrees with per-order detection, recurrence included."""

from __future__ import annotations

import copy

from agent.policy import load_policy
from agent.triage.detection import detect_open_book, detect_order
from tests.test_recommend import BASE
from tools.db import session_factory
from tools.fixtures import load_fixture

POLICY = load_policy()


def _book_fixture():
    f = copy.deepcopy(BASE)
    f["customers"].append(
        {"customer_id": "C2", "credit_limit": 100000, "overdue_balance": 5, "country": "US"}
    )
    f["inventory"] = [{"sku": "A", "warehouse_id": "WH1", "on_hand": 30}]
    template = f["orders"].pop()
    days = ["2026-10-01", "2026-10-20", "2026-10-25", "2026-11-01", "2026-11-10", "2026-11-20", "2026-12-15"]
    for n, day in enumerate(days):
        o = copy.deepcopy(template)
        o.update(order_id=f"SO{n}", order_date=day, customer_id="C2" if n % 2 else "C1")
        o["status"] = "shipped" if n == 3 else ("held" if n == 4 else "open")
        if n == 5:
            o["ship_to_city"] = ""
        f["orders"].append(o)
    return f


def test_batch_equals_per_order(sqlite_engine):
    with session_factory(sqlite_engine)() as s:
        load_fixture(s, _book_fixture(), case_id="book")
        book = detect_open_book(s, POLICY, chunk=2)  # several batches
        assert set(book) == {"SO0", "SO1", "SO2", "SO4", "SO5", "SO6"}  # SO3 shipped
        assert any(d.type == "RECURRING_ANOMALY" for hits in book.values() for d in hits)
        for order_id, hits in book.items():
            assert hits == detect_order(s, order_id, POLICY), order_id
