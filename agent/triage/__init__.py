"""Triage: what keeps an order from flowing (domain.md §2) and the next-best actions (§4).

- ``detection``: reads an order with its lines, customer, stock, shipments and purchase orders
  (``load_context(s)``) and detects every exception with its evidence (``detect``);
- ``allocation``: the allocation conflicts of §6 — which other orders hold the units and which one
  may give them up;
- ``plan``: ranks the policy's candidate actions, checks each one's feasibility on the records,
  orders the plan (``plan_order``);
- ``service``: the one triage entry (``triage_orders``, ``triage_order``, ``triage_open_book``),
  which also records the exceptions in the ops store;
- ``retriage``: triage again the open orders a change reaches (the event worker, the executor);
- ``extract`` and ``order_numbers``: order numbers as customers write them, and what a customer's
  free text asks for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.surface import lazy_surface

if TYPE_CHECKING:
    from agent.triage.detection import (
        Detected,
        OrderContext,
        detect,
        load_context,
        load_contexts,
    )
    from agent.triage.extract import CustomerRequest
    from agent.triage.order_numbers import find_order_ids, order_mentions
    from agent.triage.plan import Plan, plan_order
    from agent.triage.retriage import Retriage, retriage
    from agent.triage.service import triage_open_book, triage_order, triage_orders

__all__ = [
    "CustomerRequest",
    "Detected",
    "OrderContext",
    "Plan",
    "Retriage",
    "detect",
    "find_order_ids",
    "load_context",
    "load_contexts",
    "order_mentions",
    "plan_order",
    "retriage",
    "triage_open_book",
    "triage_order",
    "triage_orders",
]
__getattr__, __dir__ = lazy_surface(
    __name__,
    {
        "CustomerRequest": "extract",
        "Detected": "detection",
        "OrderContext": "detection",
        "Plan": "plan",
        "detect": "detection",
        "find_order_ids": "order_numbers",
        "load_context": "detection",
        "load_contexts": "detection",
        "order_mentions": "order_numbers",
        "plan_order": "plan",
        "Retriage": "retriage",
        "retriage": "retriage",
        "triage_open_book": "service",
        "triage_order": "service",
        "triage_orders": "service",
    },
)
