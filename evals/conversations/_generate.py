"""Write ``threads.yaml``: the conversation suite's threads from templates and the facts of ``world.yaml``.

The facts below are read off ``world.yaml`` by hand with the rules of domain.md §2-§4 (what holds on
each order, what the policy recommends), never from a run of the copilot. Run
``python -m evals.conversations._generate`` after editing; or edit ``threads.yaml`` by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
KINDS = ["CREDIT_HOLD", "INVENTORY_SHORTFALL", "PROCUREMENT_DELAY", "CARRIER_DISRUPTION"]

# order: customer id, customer name, exceptions, recommended action, the sku of its (short) line
ORDERS: dict[str, dict[str, Any]] = {
    "SO-200001": {"customer": "C-101", "name": "Acme", "holds": [], "rec": None, "sku": "BRK-2001"},
    "SO-200002": {
        "customer": "C-102",
        "name": "Bolt",
        "holds": ["CREDIT_HOLD"],
        "rec": "RELEASE_CREDIT_HOLD",
        "sku": "BRK-2001",
    },
    "SO-200003": {
        "customer": "C-101",
        "name": "Acme",
        "holds": ["INVENTORY_SHORTFALL"],
        "rec": "REALLOCATE_WAREHOUSE",
        "sku": "FAS-1001",
    },
    "SO-200004": {
        "customer": "C-101",
        "name": "Acme",
        "holds": ["INVENTORY_SHORTFALL", "PROCUREMENT_DELAY"],
        "rec": "UPDATE_PROMISE_DATE",
        "sku": "VLV-3001",
    },
    "SO-200005": {
        "customer": "C-103",
        "name": "Cobalt",
        "holds": ["INVENTORY_SHORTFALL"],
        "rec": "UPDATE_PROMISE_DATE",
        "sku": "VLV-3001",
    },
    "SO-200006": {
        "customer": "C-103",
        "name": "Cobalt",
        "holds": ["CARRIER_DISRUPTION"],
        "rec": "REBOOK_CARRIER",
        "sku": "BRK-2001",
    },
    "SO-200007": {
        "customer": "C-102",
        "name": "Bolt",
        "holds": ["CREDIT_HOLD"],
        "rec": "RELEASE_CREDIT_HOLD",
        "sku": "BRK-2001",
    },
}
# sku: the warehouses holding it (world.yaml inventory)
STOCK = {
    "FAS-1001": ["WH-CENTRAL", "WH-EAST", "WH-WEST"],
    "BRK-2001": ["WH-EAST"],
    "VLV-3001": ["WH-EAST"],
}


def _blocking(oid: str, question: str | None = None) -> dict[str, Any]:
    o = ORDERS[oid]
    turn: dict[str, Any] = {
        "say": question or f"what is blocking {oid}?",
        "tools": ["triage_order"],
        "args": {"order_id": oid},
        "must": [oid, *o["holds"]] + ([o["rec"]] if o["rec"] else ["nothing blocks it"]),
        "must_not": [k for k in KINDS if k not in o["holds"]],
    }
    return turn


def _others(oid: str) -> tuple[list[str], list[str]]:
    cust = ORDERS[oid]["customer"]
    mine = [k for k, v in ORDERS.items() if v["customer"] == cust and k != oid]
    theirs = [k for k, v in ORDERS.items() if v["customer"] != cust]
    return mine, theirs


def threads() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(tid: str, *turns: dict[str, Any]) -> None:
        out.append({"id": tid, "turns": list(turns)})

    phrasings = ["what's wrong with {oid}?", "why is {oid} stuck?", "is {oid} on hold?"]
    for n, (oid, o) in enumerate(ORDERS.items()):
        mine, theirs = _others(oid)
        add(
            f"{oid}-other-orders",
            _blocking(oid),
            {
                "say": "which other orders of this customer are at risk?",
                "tools": ["find_customer_orders"],
                "args": {"customer_id": o["customer"], "exclude_order_id": oid},
                "must": mine,
                "must_not": theirs,
            },
        )
        add(
            f"{oid}-their-orders",
            _blocking(oid, phrasings[n % 3].format(oid=oid)),
            {
                "say": "what about the customer's other orders?",
                "tools": ["find_customer_orders"],
                "args": {"customer_id": o["customer"]},
                "must": mine,
                "must_not": theirs,
            },
        )
        add(
            f"{oid}-why-not-split",
            _blocking(oid),
            {
                "say": "why not split the shipment?",
                "tools": ["why_not"],
                "args": {"order_id": oid, "action": "SPLIT_SHIPMENT"},
                "must": [oid, "SPLIT_SHIPMENT"],
            },
        )
        add(
            f"{oid}-why-not-move",
            _blocking(oid),
            {
                "say": "why not move it to another warehouse?",
                "tools": ["why_not"],
                "args": {"order_id": oid, "action": "REALLOCATE_WAREHOUSE"},
                "must": [oid, "REALLOCATE_WAREHOUSE"],
            },
        )
        add(
            f"{oid}-customer-credit",
            _blocking(oid),
            {
                "say": "what is the credit position of this customer?",
                "tools": ["get_customer_credit"],
                "args": {"customer_id": o["customer"]},
                "must": [o["customer"], o["name"]],
            },
        )
        add(
            f"{oid}-sku-stock",
            _blocking(oid),
            {
                "say": "how much stock of that SKU is there by warehouse?",
                "tools": ["get_stock"],
                "args": {"sku": o["sku"]},
                "must": [o["sku"], *STOCK[o["sku"]]],
            },
        )
        add(
            f"{oid}-shipments",
            {
                "say": f"where are the shipments of {oid}?",
                "tools": ["get_order_shipments"],
                "args": {"order_id": oid},
                "must": ["SH-601", "Slowline"] if oid == "SO-200006" else [oid, "no shipment"],
            },
        )
        add(
            f"{oid}-it-follow-up",
            {
                "say": f"tell me the shipments of {oid}",
                "tools": ["get_order_shipments"],
                "args": {"order_id": oid},
            },
            _blocking(oid, "and what is blocking it?"),
        )
    # Across orders, customers, skus and purchase orders.
    add(
        "new-thread-why-not-split",
        {"say": "why not split the shipment?", "tools": [], "must": ["Which order"]},
    )
    add(
        "new-thread-what-is-blocking-it",
        {"say": "what is blocking it?", "tools": [], "must": ["Which order"]},
        _blocking("SO-200003", "SO-200003"),
    )
    add(
        "po-waiting",
        {
            "say": "which orders are waiting on PO-501?",
            "tools": ["get_orders_waiting_on_po"],
            "args": {"po_id": "PO-501"},
            "must": ["SO-200004", "SO-200005", "2026-12-15"],
            "must_not": ["SO-200003", "SO-200001"],
        },
    )
    add(
        "sku-po-then-waiting",
        _blocking("SO-200004"),
        {
            "say": "when will that SKU be replenished?",
            "tools": ["get_open_purchase_orders"],
            "args": {"sku": "VLV-3001"},
            "must": ["PO-501", "2026-12-15"],
        },
        {
            "say": "which orders are waiting on that PO?",
            "tools": ["get_orders_waiting_on_po"],
            "args": {"po_id": "PO-501"},
            "must": ["SO-200004", "SO-200005"],
            "must_not": ["SO-200002"],
        },
    )
    add(
        "sku-by-id",
        {
            "say": "what stock of FAS-1001 do we have?",
            "tools": ["get_stock"],
            "args": {"sku": "FAS-1001"},
            "must": ["WH-CENTRAL", "WH-EAST", "WH-WEST"],
        },
        {
            "say": "any substitutes for that item?",
            "tools": ["get_substitutes"],
            "args": {"sku": "FAS-1001"},
            "must": ["FAS-1001"],
        },
    )
    add(
        "late-orders-by-name",
        {
            "say": "which of Acme's orders will ship late?",
            "tools": ["find_late_orders"],
            "args": {"customer_name": "Acme"},
            "must": ["SO-200003", "SO-200004"],
            "must_not": ["SO-200002", "SO-200006"],
        },
        {
            "say": "and how is this customer's credit?",
            "tools": ["get_customer_credit"],
            "args": {"customer_id": "C-101"},
            "must": ["C-101"],
        },
    )
    add(
        "unknown-order",
        {
            "say": "what is blocking SO-999999?",
            "tools": ["triage_order"],
            "must": ["not found"],
            "must_not": ["CREDIT_HOLD", "INVENTORY_SHORTFALL"],
        },
    )
    add(
        "warehouse-follow-up",
        _blocking("SO-200003"),
        {
            "say": "how much stock does the warehouse have?",
            "tools": ["get_stock"],
            "args": {"sku": "FAS-1001"},
            "must": ["WH-EAST"],
        },
    )
    add(
        "approval-then-no",
        _blocking("SO-200002"),
        {
            "say": "request approval for that",
            "tools": ["request_approval"],
            "must": ["RELEASE_CREDIT_HOLD", "SO-200002"],
        },
        {"say": "no, leave it", "must": ["Not filed"]},
    )
    add(
        "switch-orders",
        _blocking("SO-200002"),
        _blocking("SO-200006"),
        {
            "say": "which other orders of this customer are at risk?",
            "tools": ["find_customer_orders"],
            "args": {"customer_id": "C-103", "exclude_order_id": "SO-200006"},
            "must": ["SO-200005"],
            "must_not": ["SO-200002", "SO-200007"],
        },
    )
    return out


def main() -> None:
    text = yaml.safe_dump(
        {"suite": "conversation", "threads": threads()}, sort_keys=False, allow_unicode=True, width=110
    )
    header = (
        "# Generated by evals/conversations/_generate.py from the facts of world.yaml (written out by hand);\n"
        "# edit the generator and re-run `python -m evals.conversations._generate`, or edit by hand.\n"
    )
    (HERE / "threads.yaml").write_text(header + text, encoding="utf-8")


if __name__ == "__main__":
    main()
