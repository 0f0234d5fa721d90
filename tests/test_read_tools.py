"""The read tools: the registry the model sees, each reader on a small fixture, the tool boundary."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ValidationError
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import OperationalError

from tools.db import read_only, session_factory
from tools.errors import NotFound, ToolError
from tools.fixtures import load_fixture
from tools.models import ExceptionRecord, Warehouse
from tools.read.base import Args, reader
from tools.read.readers import (
    READERS,
    get_customer_credit,
    get_effective_price,
    get_line_price,
    get_open_purchase_orders,
    get_order,
    get_order_shipments,
    get_stock,
    get_substitutes,
    list_open_exceptions,
    schema_of,
    search_orders,
)
from tools.read.registry import READ, READ_TOOLS, build_read_tools, kind_of, read_tool

ROOT = Path(__file__).resolve().parents[1]
NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)

FIXTURE = {
    "customers": [
        {
            "customer_id": "C1",
            "name": "Acme Corp",
            "tier": "gold",
            "credit_limit": 50000,
            "open_balance": 30000,
            "allow_substitutions": True,
            "country": "US",
        },
        {
            "customer_id": "C2",
            "name": "Beta Ltd",
            "credit_limit": 0,
            "overdue_balance": 500,
            "credit_hold": True,
        },
    ],
    "suppliers": [
        {"supplier_id": "S1", "name": "Fastco", "on_time_rate": 0.9, "lead_time_days": 10},
        {"supplier_id": "S2", "name": "Slowco", "on_time_rate": 0.6123, "lead_time_days": 30},
    ],
    "items": [
        {"sku": "A", "description": "Widget", "list_price": 100},
        {"sku": "B", "description": "Widget plus", "list_price": 95},
        {"sku": "C", "description": "Widget lite", "list_price": 80},
        {"sku": "D", "description": "Old widget", "list_price": 50, "status": "discontinued"},
    ],
    "substitutes": [
        {"sku": "A", "substitute_sku": "B", "approved": True},
        {"sku": "A", "substitute_sku": "C", "approved": False},
    ],
    "warehouses": [
        {"warehouse_id": "WH1", "region": "east", "country": "US"},
        {"warehouse_id": "WH2", "region": "west", "country": "US"},
        {"warehouse_id": "WH3", "region": "eu", "country": "DE"},
    ],
    "inventory": [
        {"sku": "A", "warehouse_id": "WH1", "on_hand": 10, "allocated": 8},
        {"sku": "A", "warehouse_id": "WH2", "on_hand": 50},
        {"sku": "A", "warehouse_id": "WH3", "on_hand": 5, "allocated": 10},
        {"sku": "B", "warehouse_id": "WH1", "on_hand": 30, "allocated": 5},
        {"sku": "B", "warehouse_id": "WH2", "on_hand": 7},
        {"sku": "C", "warehouse_id": "WH1", "on_hand": 100},
    ],
    "price_contracts": [
        # Overlapping on A: from 2026-06-01 to 2026-12-31 both are valid; the later valid_from wins.
        {"customer_id": "C1", "sku": "A", "valid_from": "2026-01-01", "contract_price": 90},
        {
            "customer_id": "C1",
            "sku": "A",
            "valid_from": "2026-06-01",
            "valid_to": "2026-12-31",
            "contract_price": 85,
        },
        # Expired on B.
        {
            "customer_id": "C1",
            "sku": "B",
            "valid_from": "2025-01-01",
            "valid_to": "2025-12-31",
            "contract_price": 70,
        },
    ],
    "carriers": [
        {"carrier_id": "K1", "name": "FastFreight", "status": "ok", "on_time_rate": 0.95},
        {"carrier_id": "K2", "name": "SlowShip", "status": "disrupted", "on_time_rate": 0.7},
    ],
    "purchase_orders": [
        {"po_id": "P3", "supplier_id": "S2", "sku": "A", "warehouse_id": "WH1", "qty": 5},
        {
            "po_id": "P2",
            "supplier_id": "S1",
            "sku": "A",
            "warehouse_id": "WH1",
            "qty": 20,
            "expected_date": "2026-12-10",
        },
        {
            "po_id": "P1",
            "supplier_id": "S1",
            "sku": "A",
            "warehouse_id": "WH2",
            "qty": 40,
            "expected_date": "2026-12-01",
        },
        {
            "po_id": "P0",
            "supplier_id": "S1",
            "sku": "A",
            "warehouse_id": "WH1",
            "qty": 9,
            "expected_date": "2026-11-01",
            "status": "received",
        },
    ],
    "orders": [
        {
            "order_id": "SO-1",
            "customer_id": "C1",
            "order_date": "2026-11-20",
            "promised_date": "2026-11-28",
            "warehouse_id": "WH1",
            "lines": [
                {"sku": "A", "qty": 10, "unit_price": 85, "allocated_qty": 8},
                {
                    "sku": "B",
                    "original_sku": "A",
                    "qty": 5,
                    "unit_price": 88,
                    "status": "allocated",
                    "allocated_qty": 5,
                },
                {"sku": "A", "qty": 2, "unit_price": 85, "status": "shipped"},
            ],
        },
        {
            "order_id": "SO-2",
            "customer_id": "C1",
            "order_date": "2026-11-21",
            "status": "held",
            "lines": [{"sku": "A", "qty": 1, "unit_price": 100}],
        },
        {
            "order_id": "SO-3",
            "customer_id": "C2",
            "order_date": "2026-10-01",
            "status": "shipped",
            "lines": [{"sku": "D", "qty": 3, "unit_price": 50, "status": "shipped"}],
        },
    ],
    "shipments": [
        {
            "shipment_id": "SH-1",
            "order_id": "SO-1",
            "carrier_id": "K2",
            "status": "in_transit",
            "eta": "2026-11-30",
            "freight_cost": 120.5,
        },
        {
            "shipment_id": "SH-2",
            "order_id": "SO-1",
            "carrier_id": "K1",
            "status": "delivered",
            "eta": "2026-11-22",
            "delivered_date": "2026-11-22",
        },
    ],
}


def _exception(order_id: str, kind: str, minutes: int, **fields) -> ExceptionRecord:
    seen = NOW + dt.timedelta(minutes=minutes)
    return ExceptionRecord(order_id=order_id, type=kind, first_seen_at=seen, detected_at=seen, **fields)


def load(session) -> None:
    load_fixture(session, FIXTURE, case_id="read-tools")
    session.add_all(
        [
            _exception("SO-2", "CREDIT_HOLD", 2, customer_id="C1", evidence=[f"fact {i}" for i in range(8)]),
            _exception(
                "SO-1",
                "INVENTORY_SHORTFALL",
                1,
                instance_key="line:1",
                line_no=1,
                sku="A",
                customer_id="C1",
                warehouse_id="WH1",
                evidence=["open 2 > available 2"],
            ),
            _exception(
                "SO-1",
                "CARRIER_DISRUPTION",
                3,
                instance_key="shipment:SH-1",
                shipment_id="SH-1",
                customer_id="C1",
            ),
            _exception("SO-3", "CREDIT_HOLD", 0, customer_id="C2", status="resolved"),
        ]
    )
    session.commit()


@pytest.fixture
def db(session):
    load(session)
    return session


@pytest.fixture
def tools(db, sqlite_engine):
    return {t.name: t for t in build_read_tools(session_factory(sqlite_engine))}


# ---------------------------------------------------------------------------------------------
# The registry: what the model sees
# ---------------------------------------------------------------------------------------------


def test_every_tool_is_read_and_documented_for_the_model():
    built = build_read_tools(session_factory(create_engine("sqlite://")))
    assert [t.name for t in built] == READ_TOOLS == [r.__name__ for r in READERS]
    assert len(set(READ_TOOLS)) == len(READ_TOOLS)
    for tool in built:
        assert kind_of(tool) == READ and tool.metadata == {"kind": "READ"}, tool.name
        first, *rest = tool.description.splitlines()
        verb = first.split()[0]
        # Imperative: "Get ...", "List ...", not "Gets ..." / "Returns ..." / "This tool ...".
        assert re.fullmatch(r"[A-Z][a-z]+", verb) and not re.search(r"(s|ed|ing)$", verb), first
        assert first.endswith(".") and len(first) <= 100, first
        body = " ".join(rest)
        assert "Use it" in body and ("Do not use" in body or "instead" in body), tool.name
        assert "Returns" in body and "such as" in body, tool.name
        parameters = convert_to_openai_tool(tool)["function"]["parameters"]
        assert parameters["properties"], tool.name
        for name, prop in parameters["properties"].items():
            assert len(prop.get("description", "")) >= 10, f"{tool.name}.{name} is not described"
        for name, field in schema_of(
            next(r for r in READERS if r.__name__ == tool.name)
        ).model_fields.items():
            assert field.examples, f"{tool.name}.{name} has no example"


def test_readers_import_no_langchain():
    code = "import sys, tools.read.readers; m = sorted(n for n in sys.modules if n.startswith('langchain')); sys.exit(str(m) if m else 0)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_exception_types_are_the_policy_s():
    from agent.policy import EXCEPTION_TYPES as POLICY_TYPES
    from tools.read.readers import EXCEPTION_TYPES

    assert EXCEPTION_TYPES == POLICY_TYPES


# ---------------------------------------------------------------------------------------------
# Each reader
# ---------------------------------------------------------------------------------------------


def test_get_order_reuses_the_order_view(db):
    order = get_order(db, "SO-1")
    assert order["order_id"] == "SO-1" and order["order_value"] == "1290.00"
    assert [ln["line_no"] for ln in order["lines"]] == [1, 2, 3]
    assert order["lines"][1]["original_sku"] == "A"
    assert order["line_count"] == 3 and order["shipment_count"] == 2 and order["truncated"] is False
    with pytest.raises(NotFound, match=r"^order SO-9 not found$"):
        get_order(db, order_id="SO-9")


def test_customer_credit_position(db):
    credit = get_customer_credit(db, "C1")
    assert credit == {
        "customer_id": "C1",
        "name": "Acme Corp",
        "tier": "gold",
        "credit_limit": "50000.00",
        "open_balance": "30000.00",
        "overdue_balance": "0.00",
        "credit_hold": False,
        "available_credit": "20000.00",
        "utilisation_pct": 60.0,
        # SO-1: 10 x 85 + 5 x 88 (the shipped line does not count); SO-2: 1 x 100.
        "open_orders": {"count": 2, "by_status": {"open": 1, "held": 1}, "value": "1390.00"},
        "headroom_after_open_orders": "18610.00",
        "utilisation_with_open_orders_pct": 62.8,
    }
    beta = get_customer_credit(db, "C2")
    assert beta["credit_hold"] is True and beta["utilisation_pct"] is None  # no limit: no ratio
    assert beta["open_orders"] == {"count": 0, "by_status": {}, "value": "0.00"}
    with pytest.raises(NotFound, match="customer C9 not found"):
        get_customer_credit(db, "C9")


def test_stock_across_warehouses(db):
    stock = get_stock(db, "A")
    assert [(w["warehouse_id"], w["region"], w["country"], w["available"]) for w in stock["warehouses"]] == [
        ("WH2", "west", "US", 50),
        ("WH1", "east", "US", 2),
        ("WH3", "eu", "DE", -5),
    ]
    # Over-allocation at WH3 gives nothing, it takes nothing away.
    assert stock["totals"] == {"on_hand": 65, "allocated": 18, "available": 52}
    assert get_stock(db, "D")["warehouses"] == [] and get_stock(db, "D")["status"] == "discontinued"
    with pytest.raises(NotFound, match="sku X not found"):
        get_stock(db, "X")


def test_substitutes_approved_only_unless_asked(db):
    subs = get_substitutes(db, "A")
    assert [s["sku"] for s in subs["substitutes"]] == ["B"] and subs["unapproved_skus"] == ["C"]
    b = subs["substitutes"][0]
    assert b["approved"] is True and b["list_price"] == "95.00" and b["available_total"] == 32
    assert [w["warehouse_id"] for w in b["stock"]] == ["WH1", "WH2"]
    every = get_substitutes(db, "A", include_unapproved=True)
    assert [(s["sku"], s["approved"]) for s in every["substitutes"]] == [("B", True), ("C", False)]
    at_wh2 = get_substitutes(db, "A", warehouse_id="WH2")["substitutes"][0]
    assert [w["warehouse_id"] for w in at_wh2["stock"]] == ["WH2"] and at_wh2["available_total"] == 7
    assert get_substitutes(db, "B")["substitutes"] == []
    with pytest.raises(NotFound, match="warehouse WH9 not found"):
        get_substitutes(db, "A", warehouse_id="WH9")


def test_shipments_with_carrier_status_and_on_time_rate(db):
    result = get_order_shipments(db, "SO-1")
    sh1, sh2 = result["shipments"]
    assert result["promised_date"] == "2026-11-28" and result["shipment_count"] == 2
    assert (sh1["carrier_status"], sh1["carrier_on_time_rate"], sh1["eta_after_promised"]) == (
        "disrupted",
        0.7,
        True,
    )
    assert sh1["freight_cost"] == "120.50"
    assert (sh2["status"], sh2["eta_after_promised"], sh2["delivered_date"]) == (
        "delivered",
        False,
        "2026-11-22",
    )
    assert get_order_shipments(db, "SO-2")["shipments"] == []


def test_open_purchase_orders_earliest_first(db):
    result = get_open_purchase_orders(db, "A")
    # The received P0 is not listed; an unconfirmed date (P3) comes last.
    assert [p["po_id"] for p in result["purchase_orders"]] == ["P1", "P2", "P3"]
    assert result["total_open_qty"] == 65
    p1 = result["purchase_orders"][0]
    assert (p1["supplier_name"], p1["supplier_on_time_rate"], p1["expected_date"]) == (
        "Fastco",
        0.9,
        "2026-12-01",
    )
    at_wh1 = get_open_purchase_orders(db, "A", warehouse_id="WH1")["purchase_orders"]
    assert [(p["po_id"], p["supplier_on_time_rate"]) for p in at_wh1] == [("P2", 0.9), ("P3", 0.612)]
    assert get_open_purchase_orders(db, "B")["purchase_orders"] == []


@pytest.mark.parametrize(
    ("on_date", "price", "valid_from"),
    [
        ("2026-11-20", "85.00", "2026-06-01"),  # both valid: the latest valid_from wins
        ("2026-12-31", "85.00", "2026-06-01"),  # valid_to is inclusive
        ("2026-05-31", "90.00", "2026-01-01"),  # before the newer one starts
        ("2027-01-01", "90.00", "2026-01-01"),  # the newer one expired; the open-ended one holds
    ],
)
def test_effective_price_with_overlapping_contracts(db, on_date, price, valid_from):
    result = get_effective_price(db, customer_id="C1", sku="A", on_date=on_date)
    assert (result["effective_price"], result["source"]) == (price, "contract")
    assert result["contract"]["valid_from"] == valid_from and result["list_price"] == "100.00"
    assert [c["applied"] for c in result["contracts"]] == [
        c["valid_from"] == valid_from for c in result["contracts"]
    ]


def test_expired_contract_falls_back_to_list_price(db):
    result = get_effective_price(db, "C1", "B", dt.date(2026, 11, 20))
    assert (result["effective_price"], result["source"], result["contract"]) == ("95.00", "list_price", None)
    assert result["contracts"] == [
        {
            "valid_from": "2025-01-01",
            "valid_to": "2025-12-31",
            "contract_price": "70.00",
            "valid_on_date": False,
            "applied": False,
        },
    ]
    assert get_effective_price(db, "C2", "A", "2026-11-20")["source"] == "list_price"  # no contract at all


def test_substituted_line_is_priced_as_its_original_sku(db):
    line = get_line_price(db, "SO-1", 2)
    assert (line["sku"], line["original_sku"], line["priced_sku"]) == ("B", "A", "A")
    # A's contract on the order date (85), not B's list price (95).
    assert (line["unit_price"], line["effective_price"], line["source"]) == ("88.00", "85.00", "contract")
    assert (line["difference"], line["deviation_pct"]) == ("3.00", 3.53)
    assert get_line_price(db, "SO-2", 1)["source"] == "contract"
    with pytest.raises(NotFound, match="order line SO-1/9 not found"):
        get_line_price(db, "SO-1", 9)


def test_a_line_without_an_order_date_has_no_effective_price(session):
    load_fixture(
        session,
        {
            "customers": [{"customer_id": "C1"}],
            "items": [{"sku": "A"}],
            "orders": [{"order_id": "SO-1", "customer_id": "C1", "lines": [{"sku": "A", "qty": 1}]}],
        },
        case_id="no-date",
    )
    with pytest.raises(ToolError, match="order line SO-1/1 has no order_date: its effective price cannot be"):
        get_line_price(session, "SO-1", 1)


def test_search_orders_filters(db):
    def ids(**filters):
        return [o["order_id"] for o in search_orders(db, **filters)["orders"]]

    assert ids() == ["SO-2", "SO-1", "SO-3"]  # newest order_date first
    assert ids(customer_name="acme") == ids(customer_id="C1") == ["SO-2", "SO-1"]
    assert ids(customer_name="nobody") == []
    assert ids(status="shipped") == ["SO-3"]
    assert ids(date_from="2026-11-01", date_to="2026-11-20") == ["SO-1"]
    assert ids(sku="B") == ["SO-1"] and ids(sku="A") == ["SO-2", "SO-1"]
    assert ids(exception_type="CREDIT_HOLD") == ["SO-2"]  # SO-3's is resolved
    first = search_orders(db, customer_id="C1")["orders"][1]
    assert first == {
        "order_id": "SO-1",
        "customer_id": "C1",
        "customer_name": "Acme Corp",
        "status": "open",
        "order_date": "2026-11-20",
        "promised_date": "2026-11-28",
        "warehouse_id": "WH1",
        "lines": 3,
        "order_value": "1290.00",
        "currency": "USD",
        "open_exceptions": ["CARRIER_DISRUPTION", "INVENTORY_SHORTFALL"],
    }
    with pytest.raises(ToolError, match="date_from 2026-12-01 is after date_to 2026-11-01"):
        search_orders(db, date_from="2026-12-01", date_to="2026-11-01")
    with pytest.raises(NotFound, match="customer C9 not found"):
        search_orders(db, customer_id="C9")


def test_search_orders_paginates(session):
    fixture = {
        "customers": [{"customer_id": "C1", "name": "Acme"}],
        "orders": [
            {
                "order_id": f"SO-{i:03d}",
                "customer_id": "C1",
                "order_date": (dt.date(2026, 9, 1) + dt.timedelta(days=i // 3)).isoformat(),
            }
            for i in reversed(range(60))  # inserted out of id order: ties must still sort by id
        ],
    }
    load_fixture(session, fixture, case_id="many-orders")
    pages, offset = [], 0
    while offset is not None:
        result = search_orders(session, customer_id="C1", limit=25, offset=offset)
        pages.append(result)
        offset = result["next_offset"]
    assert [(p["total"], p["offset"], p["count"], p["next_offset"], p["truncated"]) for p in pages] == [
        (60, 0, 25, 25, True),
        (60, 25, 25, 50, True),
        (60, 50, 10, None, False),
    ]
    seen = [o["order_id"] for p in pages for o in p["orders"]]
    assert len(seen) == len(set(seen)) == 60  # a total order: no row twice, none lost
    # Newest first, ties by order id.
    assert [(o["order_id"], o["order_date"]) for o in pages[0]["orders"][:4]] == [
        ("SO-057", "2026-09-20"),
        ("SO-058", "2026-09-20"),
        ("SO-059", "2026-09-20"),
        ("SO-054", "2026-09-19"),
    ]
    beyond = search_orders(session, customer_id="C1", offset=100)
    assert (beyond["count"], beyond["next_offset"]) == (0, None)
    with pytest.raises(ToolError, match=r"limit: must be at most 50 \(got 51\); use offset"):
        search_orders(session, limit=51)
    with pytest.raises(ToolError, match="offset: must be at least 0"):
        search_orders(session, offset=-1)


def test_list_open_exceptions(db):
    result = list_open_exceptions(db)
    assert result["total"] == 3  # the resolved one is not open
    assert [(e["order_id"], e["type"]) for e in result["exceptions"]] == [
        ("SO-1", "INVENTORY_SHORTFALL"),
        ("SO-2", "CREDIT_HOLD"),
        ("SO-1", "CARRIER_DISRUPTION"),
    ]  # oldest first
    credit = list_open_exceptions(db, exception_type="CREDIT_HOLD")["exceptions"]
    assert len(credit) == 1 and credit[0]["evidence"] == [f"fact {i}" for i in range(5)]
    assert credit[0]["evidence_count"] == 8 and credit[0]["first_seen_at"].startswith("2026-11-25T09:02")
    assert [e["type"] for e in list_open_exceptions(db, warehouse_id="WH1")["exceptions"]] == [
        "INVENTORY_SHORTFALL"
    ]
    assert list_open_exceptions(db, sku="A", customer_id="C1")["total"] == 1
    assert list_open_exceptions(db, order_id="SO-1", limit=1) | {"exceptions": None} == {
        "total": 2,
        "offset": 0,
        "count": 1,
        "next_offset": 1,
        "truncated": True,
        "exceptions": None,
    }
    assert list_open_exceptions(db, customer_id="C2")["total"] == 0
    with pytest.raises(NotFound, match="warehouse WH9 not found"):
        list_open_exceptions(db, warehouse_id="WH9")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda s: get_effective_price(s, "C1", "A", "25/11/2026"),
            "on_date: expected a date as YYYY-MM-DD such as 2026-11-25 (got '25/11/2026')",
        ),
        (lambda s: search_orders(s, status="lost"), "status: expected one of"),
        (
            lambda s: search_orders(s, colour="red"),
            "colour: is not an argument of this tool; its arguments are",
        ),
        (lambda s: get_order(s), "order_id: is required"),
        (lambda s: get_order(s, "  "), "order_id: must not be empty"),
        (
            lambda s: search_orders(s, customer_name="a"),
            "customer_name: must be at least 2 characters (got 'a')",
        ),
        (lambda s: get_line_price(s, "SO-1", "two"), "line_no: expected a whole number"),
    ],
)
def test_invalid_arguments_are_tool_errors(db, call, message):
    with pytest.raises(ToolError) as info:
        call(db)
    assert str(info.value).startswith("invalid arguments: ") and message in str(info.value)


# ---------------------------------------------------------------------------------------------
# Through LangChain: expected failures become the tool's message, bugs propagate
# ---------------------------------------------------------------------------------------------

CALLS = {
    "get_order": {"order_id": "SO-1"},
    "search_orders": {"customer_name": "Acme", "limit": 1},
    "list_open_exceptions": {"exception_type": "CREDIT_HOLD"},
    "get_customer_credit": {"customer_id": "C1"},
    "get_stock": {"sku": "A"},
    "get_substitutes": {"sku": "A", "include_unapproved": True},
    "get_open_purchase_orders": {"sku": "A", "warehouse_id": "WH1"},
    "get_orders_waiting_on_po": {"po_id": "P2"},
    "get_order_shipments": {"order_id": "SO-1"},
    "get_effective_price": {"customer_id": "C1", "sku": "A", "on_date": "2026-11-20"},
    "get_line_price": {"order_id": "SO-1", "line_no": 2},
}


def test_every_tool_returns_plain_json(tools):
    assert set(CALLS) == set(READ_TOOLS)
    for name, args in CALLS.items():
        result = tools[name].invoke(args)
        assert isinstance(result, dict) and json.loads(json.dumps(result)) == result, name


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("get_order", {"order_id": "SO-9"}, "order SO-9 not found"),
        ("get_stock", {"sku": "X"}, "sku X not found"),
        ("get_customer_credit", {"customer_id": "C9"}, "customer C9 not found"),
        ("get_line_price", {"order_id": "SO-1", "line_no": 7}, "order line SO-1/7 not found"),
        (
            "search_orders",
            {"limit": 80},
            "invalid arguments: limit: must be at most 50 (got 80); use offset to page through more",
        ),
        (
            "get_effective_price",
            {"customer_id": "C1", "sku": "A", "on_date": "tomorrow"},
            "invalid arguments: on_date: expected a date as YYYY-MM-DD such as 2026-11-25 (got 'tomorrow')",
        ),
        (
            "get_order",
            {"order": "SO-1"},
            "invalid arguments: order_id: is required; order: is not an argument of this tool; "
            "its arguments are order_id",
        ),
    ],
)
def test_expected_failures_come_back_as_the_tool_message(tools, name, args, message):
    assert tools[name].invoke(args) == message
    reply = tools[name].invoke({"type": "tool_call", "id": "call-1", "name": name, "args": args})
    assert isinstance(reply, ToolMessage) and reply.status == "error" and reply.content == message


def test_a_tool_call_gets_json_content(tools):
    reply = tools["get_stock"].invoke(
        {"type": "tool_call", "id": "call-2", "name": "get_stock", "args": {"sku": "A"}}
    )
    assert reply.status == "success" and json.loads(reply.content)["totals"]["available"] == 52


class _NoArgs(Args):
    pass


@reader(_NoArgs)
def _sneaky_write(session) -> dict:
    """Add a warehouse (a reader that tries to write)."""
    session.add(Warehouse(warehouse_id="WH-NEW"))
    session.flush()
    return {}


def test_a_tool_runs_in_a_transaction_that_refuses_writes(db, sqlite_engine):
    tool = read_tool(_sneaky_write, session_factory(sqlite_engine))
    with pytest.raises(OperationalError, match="readonly"):
        tool.invoke({})
    assert db.scalar(select(func.count()).select_from(Warehouse)) == 3


class _Other(Args):
    n: int


@reader(_NoArgs)
def _buggy(session) -> dict:
    """Validate something else (a reader with a bug)."""
    return {"n": _Other.model_validate({"surprise": 1})}


def test_a_validation_error_inside_a_reader_is_a_bug_not_a_message(sqlite_engine):
    with pytest.raises(ValidationError, match="surprise"):
        read_tool(_buggy, session_factory(sqlite_engine)).invoke(
            {"type": "tool_call", "id": "c", "name": "_buggy", "args": {}}
        )


def test_other_failures_propagate(tmp_path):
    # A database without the schema is not a business failure: it must not reach the model as one.
    [tool] = [
        t
        for t in build_read_tools(session_factory(create_engine(f"sqlite:///{tmp_path}/empty.db")))
        if t.name == "get_order"
    ]
    with pytest.raises(OperationalError, match="no such table"):
        tool.invoke({"order_id": "SO-1"})


# ---------------------------------------------------------------------------------------------
# Both backends: the tools work, and their transaction refuses writes
# ---------------------------------------------------------------------------------------------


def test_tools_on_both_backends(engine):
    factory = session_factory(engine)
    with factory() as s:
        load(s)
    tools = {t.name: t for t in build_read_tools(factory)}
    assert (
        tools["search_orders"].invoke({"customer_name": "ACME"})["total"] == 2
    )  # any case on PostgreSQL too
    assert tools["get_customer_credit"].invoke({"customer_id": "C1"})["open_orders"]["value"] == "1390.00"
    assert [
        p["po_id"] for p in tools["get_open_purchase_orders"].invoke({"sku": "A"})["purchase_orders"]
    ] == [
        "P1",
        "P2",
        "P3",
    ]
    assert tools["get_line_price"].invoke({"order_id": "SO-1", "line_no": 2})["effective_price"] == "85.00"
    assert tools["list_open_exceptions"].invoke({"order_id": "SO-1"})["total"] == 2
    assert tools["get_order"].invoke({"order_id": "SO-9"}) == "order SO-9 not found"


def test_a_write_inside_read_only_is_refused(engine):
    factory = session_factory(engine)
    with factory() as s:
        load(s)
    with pytest.raises(Exception) as info:
        with read_only(factory) as s:
            assert get_order(s, "SO-1")["order_id"] == "SO-1"
            s.add(Warehouse(warehouse_id="WH-NEW"))
            s.flush()
    assert "read" in str(info.value).lower()
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Warehouse)) == 3
