"""Next-best action: for each detected exception, the candidate actions of the policy's decision
order (domain.md §4), each evaluated on the current records — feasible or not, with concrete
parameters and the reason — and the order's plan: one recommended action per exception instance,
in the policy's priority, identical actions listed once. The first is the order's recommendation.

Deterministic and LLM-free. Feasibility is judged on the records as loaded: a recommended
reallocation names a warehouse that has the stock, a recommended substitute is approved and in
stock at the line's warehouse.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.policy import Policy
from agent.triage.allocation import reallocation_choice, substitute_choice
from agent.triage.detection import Detected, LineRec, OrderContext, credit_position
from tools import rules, writes
from tools.models import Carrier

__all__ = [
    "InstancePlan",
    "Option",
    "Plan",
    "PlanningFacts",
    "load_planning_facts",
    "load_planning_facts_many",
    "plan_order",
]


@dataclass(frozen=True, slots=True)
class Option:
    """One candidate action for one exception instance."""

    action: str
    params: Mapping[str, Any]
    feasible: bool
    reason: str
    risk: str | None = None
    approver_role: str | None = None
    inputs_required: tuple[str, ...] = ()  # values the approver must supply (FIX_MASTER_DATA)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action,
            "params": dict(self.params),
            "risk": self.risk,
            "approver_role": self.approver_role,
            "reason": self.reason,
        }
        if self.inputs_required:
            out["inputs_required"] = list(self.inputs_required)
        return out

    def identity(self) -> tuple[str, tuple]:
        return self.action, tuple(sorted((k, str(v)) for k, v in self.params.items()))


@dataclass(frozen=True, slots=True)
class InstancePlan:
    exception: Detected
    options: tuple[Option, ...]

    @property
    def recommended(self) -> Option | None:
        return next((o for o in self.options if o.feasible), None)


@dataclass(frozen=True, slots=True)
class Plan:
    order_id: str
    instances: tuple[InstancePlan, ...]
    actions: tuple[Option, ...]  # the plan: recommended actions, priority order, deduplicated

    @property
    def recommendation(self) -> Option | None:
        return self.actions[0] if self.actions else None

    @property
    def alternatives(self) -> tuple[Option, ...]:
        """Every other feasible option not already in the plan, in plan order: the other paths."""
        seen = {o.identity() for o in self.actions}
        out = []
        for inst in self.instances:
            for option in inst.options:
                if option.feasible and option.identity() not in seen:
                    seen.add(option.identity())
                    out.append(option)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class PlanningFacts:
    """What ranking reads beyond detection: stock everywhere, substitutes, carriers, customer flags."""

    available: Mapping[tuple[str, str], int]
    warehouses: Mapping[str, tuple[str | None, str | None]]  # id -> (region, country)
    substitutes: Mapping[str, tuple[tuple[str, bool, Decimal], ...]]  # sku -> (sub, approved, list price)
    export_controlled: Mapping[str, bool]
    carriers: tuple[tuple[str, str, float], ...]  # (carrier_id, status, on_time_rate)
    tier: str | None = None
    allow_substitutions: bool = False
    allow_partial_shipments: bool = False
    export_license: bool = False
    # (sku, warehouse) -> (po_id, expected_date, expedite_requested), earliest first
    open_pos: Mapping[tuple[str, str], tuple[tuple[str, dt.date | None, bool], ...]] = field(
        default_factory=dict
    )
    review_request: int | None = None  # the executed COMPLIANCE_REVIEW that holds the order (held)


def load_planning_facts(session: Session, ctx: OrderContext) -> PlanningFacts:
    """What ranking reads for one order: the one-order case of :func:`load_planning_facts_many`."""
    return load_planning_facts_many(session, [ctx])[ctx.order.order_id]


def load_planning_facts_many(session: Session, contexts: Iterable[OrderContext]) -> dict[str, PlanningFacts]:
    """Planning facts of many orders, by order id, in one query (the carriers).

    The rest is in the contexts (agent.triage.detection loads stock of their SKUs and of those
    SKUs' substitutes at every warehouse, the items with their list price and export flag, every
    warehouse with its region, the open purchase orders at the lines' warehouses, the substitutes
    and the customers' flags). The maps are shared by all the orders: they hold more keys than one
    order reads, never other values.
    """
    contexts = list(contexts)
    available: dict[tuple[str, str], int] = {}
    warehouses: dict[str, tuple[str | None, str | None]] = {}
    controlled: dict[str, bool] = {}
    pos: dict[tuple[str, str], tuple[tuple[str, dt.date | None, bool], ...]] = {}
    subs: dict[str, tuple[tuple[str, bool, Decimal], ...]] = {}
    seen: set[int] = set()
    for ctx in contexts:
        if id(ctx.stock) in seen:  # contexts of one batch share their maps
            continue
        seen.add(id(ctx.stock))
        available.update(((s.sku, s.warehouse_id), s.on_hand - s.allocated) for s in ctx.stock.values())
        warehouses.update((w.warehouse_id, (w.region, w.country)) for w in ctx.warehouses.values())
        controlled.update((i.sku, i.export_controlled) for i in ctx.items.values())
        pos.update(
            (key, tuple((p.po_id, p.expected_date, p.expedite_requested) for p in group))
            for key, group in ctx.open_pos.items()
        )
        subs.update(
            (
                sku,
                tuple((x.substitute_sku, x.approved, ctx.items[x.substitute_sku].list_price) for x in group),
            )
            for sku, group in ctx.substitutes.items()
        )
    carriers = tuple(
        (carrier_id, status, on_time)
        for carrier_id, status, on_time in session.execute(
            select(Carrier.carrier_id, Carrier.status, Carrier.on_time_rate)
        )
    )
    reviews = writes.review_holds(session, (c.order.order_id for c in contexts if c.order.status == "held"))
    out = {}
    for ctx in contexts:
        c = ctx.customer
        out[ctx.order.order_id] = PlanningFacts(
            available=available,
            warehouses=warehouses,
            substitutes=subs,
            export_controlled=controlled,
            carriers=carriers,
            tier=c.tier if c else None,
            allow_substitutions=bool(c and c.allow_substitutions),
            allow_partial_shipments=bool(c and c.allow_partial_shipments),
            export_license=bool(c and c.export_license),
            open_pos=pos,
            review_request=reviews.get(ctx.order.order_id),
        )
    return out


# ------------------------------------------------------------------------------------------------
# Evaluating candidates
# ------------------------------------------------------------------------------------------------


class _Planner:
    def __init__(self, ctx: OrderContext, facts: PlanningFacts, policy: Policy, found: list[Detected]):
        self.ctx, self.facts, self.policy = ctx, facts, policy
        self.compliance_hold = any(d.type == "COMPLIANCE_HOLD" for d in found)

    def option(
        self, action: str, params: dict, reason: str, *, risk_facts: dict | None = None, **kw
    ) -> Option:
        if action == "ESCALATE":
            return Option(action, params, True, reason, "none", params["role"], **kw)
        risk = self.policy.risk_of(action, risk_facts or {})
        return Option(action, params, True, reason, risk, self.policy.approver_for(action, risk), **kw)

    @staticmethod
    def no(action: str, reason: str) -> Option:
        return Option(action, {}, False, reason)

    def line(self, d: Detected) -> LineRec:
        return next(ln for ln in self.ctx.lines if ln.line_no == d.line_no)

    def avail(self, sku: str, wh: str | None) -> int:
        return self.facts.available.get((sku, wh), 0) if wh else 0

    # -- the actions ---------------------------------------------------------------------------

    def reallocate(self, d: Detected) -> Option:
        ln, here = self.line(d), self.ctx.ship_from(self.line(d))
        # the whole line moves (domain.md §3): the target must hold its qty, not only the open part
        choice, blocked = reallocation_choice(
            sku=ln.sku,
            qty=ln.qty,
            here=here,
            warehouses=self.facts.warehouses,
            available=self.avail,
            export_controlled=self.facts.export_controlled.get(ln.sku or "", False),
            export_license=self.facts.export_license if self.ctx.customer is not None else None,
            ship_to_country=self.ctx.order.ship_to_country,
        )
        if choice is None:
            why = f"no other warehouse has {ln.qty} available of {ln.sku}"
            if blocked:
                why += f" without raising an export-control hold ({', '.join(blocked)} would)"
            return self.no("REALLOCATE_WAREHOUSE", why)
        wh, have, other_region = choice
        where = "another region" if other_region else "the same region"
        return self.option(
            "REALLOCATE_WAREHOUSE",
            {"order_id": self.ctx.order.order_id, "line_no": ln.line_no, "to_warehouse_id": wh},
            f"{wh} ({where}) has {have} {ln.sku} available ≥ qty {ln.qty} of line {ln.line_no}",
        )

    def substitute(self, d: Detected) -> Option:
        ln, here = self.line(d), self.ctx.ship_from(self.line(d))
        if not self.facts.allow_substitutions:
            return self.no("APPROVE_SUBSTITUTION", "the customer does not allow substitutions")
        if not rules.is_empty(ln.original_sku):  # the write keeps the ordered SKU: it refuses a second one
            return self.no(
                "APPROVE_SUBSTITUTION",
                f"line {ln.line_no} was already substituted ({ln.original_sku} -> {ln.sku})",
            )
        sku = ln.sku or ""
        need = ln.qty - ln.allocated_qty
        subs = self.facts.substitutes.get(sku, ())
        if not any(ok for _, ok, _ in subs):
            return self.no("APPROVE_SUBSTITUTION", f"{sku} has no approved substitute")
        choice = substitute_choice(
            substitutes=subs, need=need, unit_price=ln.unit_price, available=lambda s: self.avail(s, here)
        )
        if choice is None:
            return self.no(
                "APPROVE_SUBSTITUTION", f"no approved substitute of {sku} has {need} available at {here}"
            )
        sub, price, have = choice
        return self.option(
            "APPROVE_SUBSTITUTION",
            {"order_id": self.ctx.order.order_id, "line_no": ln.line_no, "substitute_sku": sub},
            f"approved substitute {sub} has {have} available at {here} ≥ open qty {need}; list price {price:.2f} "
            f"{'≤' if price <= ln.unit_price else '>'} unit price {ln.unit_price:.2f}",
            risk_facts=rules.substitution_risk_facts(
                approved=True, list_price=price, unit_price=ln.unit_price
            ),
        )

    def reassign(self, d: Detected) -> Option:
        """§6: from the lowest-priority donor line that detection found (its facts name it)."""
        take = d.facts.get("reassign")
        if not take:
            return self.no("REASSIGN_ALLOCATION", "no lower-priority order holds enough of the stock")
        donor = take["donor"]
        return self.option(
            "REASSIGN_ALLOCATION",
            {
                "order_id": self.ctx.order.order_id,
                "line_no": d.line_no,
                "from_order_id": donor["order_id"],
                "from_line_no": donor["line_no"],
                "qty": take["qty"],
            },
            f"take {take['qty']} {d.sku} at {d.warehouse_id} from line {donor['line_no']} of "
            f"{donor['order_id']} ({donor['tier'] or 'no tier'}, promised {donor['promised_date']}), "
            "the lowest-priority order holding it",
            risk_facts={"donor_customer_platinum_or_gold": donor["tier"] in ("platinum", "gold")},
        )

    def split(self, d: Detected) -> Option:
        ln, here = self.line(d), self.ctx.ship_from(self.line(d))
        if not self.facts.allow_partial_shipments:
            return self.no("SPLIT_SHIPMENT", "the customer does not allow partial shipments")
        have = self.avail(ln.sku or "", here)
        if have <= 0:
            return self.no("SPLIT_SHIPMENT", f"nothing of {ln.sku} is available at {here} to ship now")
        return self.option(
            "SPLIT_SHIPMENT",
            {"order_id": self.ctx.order.order_id, "line_no": ln.line_no, "ship_qty": have},
            f"ship the {have} available at {here} now, backorder the rest of line {ln.line_no}",
        )

    def promise_from_po(self, d: Detected) -> Option:
        ln, here = self.line(d), self.ctx.ship_from(self.line(d))
        pos = self.facts.open_pos.get((ln.sku or "", here or ""), ())
        if d.type == "PROCUREMENT_DELAY":
            # only once the earliest purchase order is already being expedited (domain.md §4)
            if not pos or not pos[0][2]:
                return self.no(
                    "UPDATE_PROMISE_DATE",
                    f"the earliest open purchase order for {ln.sku} at {here} is not yet expedited",
                )
            pos = pos[:1]
        dated = [(po, day, expedited) for po, day, expedited in pos if day is not None]
        if not dated:
            return self.no(
                "UPDATE_PROMISE_DATE", f"no open purchase order for {ln.sku} at {here} with a date"
            )
        po_id, expected, expedited = dated[0]
        promised = self.ctx.order.promised_date
        new = max(promised, expected) if promised else expected
        already = ", already expedited," if expedited else ""
        return self.option(
            "UPDATE_PROMISE_DATE",
            {"order_id": self.ctx.order.order_id, "new_promised_date": new.isoformat()},
            f"earliest open purchase order {po_id} for {ln.sku} at {here}{already} is expected "
            f"{expected.isoformat()}",
        )

    def promise_from_eta(self, d: Detected) -> Option:
        ship = next(s for s in self.ctx.shipments if s.shipment_id == d.shipment_id)
        promised = self.ctx.order.promised_date
        if ship.eta is None or promised is None or ship.eta <= promised:
            return self.no(
                "UPDATE_PROMISE_DATE", f"shipment {ship.shipment_id}'s eta is not after the promised date"
            )
        return self.option(
            "UPDATE_PROMISE_DATE",
            {"order_id": self.ctx.order.order_id, "new_promised_date": ship.eta.isoformat()},
            f"shipment {ship.shipment_id} eta {ship.eta.isoformat()} is after promised {promised.isoformat()}",
        )

    def rebook(self, d: Detected) -> Option:
        ship = next(s for s in self.ctx.shipments if s.shipment_id == d.shipment_id)
        ok = [(c, rate) for c, status, rate in self.facts.carriers if status == "ok" and c != ship.carrier_id]
        if not ok:
            return self.no("REBOOK_CARRIER", "no other carrier has status ok")
        carrier, rate = min(ok, key=lambda t: (-t[1], t[0]))
        return self.option(
            "REBOOK_CARRIER",
            {"shipment_id": ship.shipment_id, "carrier_id": carrier},
            f"{carrier} is ok with the best on-time rate ({rate:.0%}) of the other carriers",
        )

    def expedite_freight(self, d: Detected) -> Option:
        if self.facts.tier != "platinum":
            return self.no(
                "EXPEDITE_FREIGHT",
                f"express freight is for platinum customers (this one is {self.facts.tier})",
            )
        ship = next(s for s in self.ctx.shipments if s.shipment_id == d.shipment_id)
        if ship.service_level == "express":  # e.g. expedited already: the write would refuse it
            return self.no("EXPEDITE_FREIGHT", f"shipment {ship.shipment_id} already ships express")
        return self.option(
            "EXPEDITE_FREIGHT",
            {"shipment_id": d.shipment_id},
            "platinum customer and no ok carrier to rebook to",
        )

    def expedite_po(self, d: Detected) -> Option:
        ln, here = self.line(d), self.ctx.ship_from(self.line(d))
        pos = self.facts.open_pos.get((ln.sku or "", here or ""), ())
        if not pos:
            return self.no("EXPEDITE_PO", f"no open purchase order for {ln.sku} at {here}")
        po_id, expected, expedited = pos[0]
        if expedited:
            return self.no(
                "EXPEDITE_PO", f"the earliest open purchase order {po_id} for {ln.sku} is already expedited"
            )
        when = expected.isoformat() if expected else "no date"
        return self.option(
            "EXPEDITE_PO",
            {"po_id": po_id},
            f"earliest open purchase order {po_id} for {ln.sku} at {here} ({when})",
        )

    def release_credit(self, d: Detected) -> Option:
        if self.compliance_hold:
            return self.no(
                "RELEASE_CREDIT_HOLD",
                "not feasible while a COMPLIANCE_HOLD holds: the compliance review comes first",
            )
        if self.facts.review_request is not None:  # tools.writes.review_holds: the guard's reading
            return self.no(
                "RELEASE_CREDIT_HOLD",
                f"the order is held for a compliance review (request {self.facts.review_request}): "
                "a credit release does not conclude a review",
            )
        c, credit = self.ctx.customer, credit_position(self.ctx)
        if c is None or credit is None:
            return self.no("RELEASE_CREDIT_HOLD", "the customer record is missing")
        overage = credit.overage
        limit_pct = self.policy.thresholds.credit_release_medium_max_overage_pct
        if overage > 0:
            share = f" = {overage * 100 / c.credit_limit:.1f} % of the limit" if c.credit_limit else ""
            position = f"overage {overage:.2f}{share} (medium up to {limit_pct} %)"
        else:
            position = f"the order fits the credit limit {c.credit_limit:.2f} (headroom {-overage:.2f})"
        overdue = f"overdue balance {c.overdue_balance:.2f}" if c.overdue_balance > 0 else "nothing overdue"
        return self.option(
            "RELEASE_CREDIT_HOLD",
            {"order_id": self.ctx.order.order_id},
            f"{position}; {overdue}" + ("; account flagged credit_hold" if c.credit_hold else ""),
            risk_facts=credit.release_risk_facts(limit_pct),
        )

    def correct_price(self, d: Detected) -> Option:
        effective = Decimal(str(d.facts["effective_price"]))
        new = f"{effective:.2f}"
        return self.option(
            "CORRECT_PRICE",
            {"order_id": self.ctx.order.order_id, "line_no": d.line_no, "new_unit_price": new},
            f"restore the effective price {new} on line {d.line_no}",
            risk_facts=rules.correct_price_risk_facts(Decimal(new), effective),
        )

    def fix_master_data(self, d: Detected) -> Option:
        o = self.ctx.order
        missing = tuple(rules.empty_ship_to(o))
        return self.option(
            "FIX_MASTER_DATA",
            {"order_id": o.order_id},
            f"empty: {', '.join(missing)}",
            inputs_required=missing,
        )

    def compliance_review(self, d: Detected) -> Option:
        return self.option(
            "COMPLIANCE_REVIEW",
            {"order_id": self.ctx.order.order_id},
            "export-controlled item shipping across a border without a licence",
        )

    EVALUATORS: ClassVar[dict[str, Callable[..., Any]]] = {
        "REALLOCATE_WAREHOUSE": reallocate,
        "APPROVE_SUBSTITUTION": substitute,
        "SPLIT_SHIPMENT": split,
        "REBOOK_CARRIER": rebook,
        "EXPEDITE_FREIGHT": expedite_freight,
        "EXPEDITE_PO": expedite_po,
        "RELEASE_CREDIT_HOLD": release_credit,
        "CORRECT_PRICE": correct_price,
        "FIX_MASTER_DATA": fix_master_data,
        "COMPLIANCE_REVIEW": compliance_review,
        "REASSIGN_ALLOCATION": reassign,
    }

    def evaluate(self, d: Detected, action: str, role: str | None) -> Option:
        if action == "ESCALATE":
            reason = f"{d.type}: " + "; ".join(d.evidence)
            return self.option("ESCALATE", {"role": role, "reason": reason[:500]}, f"route to {role}")
        if action == "UPDATE_PROMISE_DATE":
            return self.promise_from_eta(d) if d.shipment_id else self.promise_from_po(d)
        return self.EVALUATORS[action](self, d)


def plan_order(ctx: OrderContext, found: list[Detected], facts: PlanningFacts, policy: Policy) -> Plan:
    """Rank every exception instance's candidates and assemble the order's plan."""
    planner = _Planner(ctx, facts, policy, found)
    order = policy.decision_order
    rank = order.rank()
    ordered = sorted(
        found,
        key=lambda d: (rank.get(d.type, len(rank)), d.line_no or 0, d.shipment_id or "", d.instance_key),
    )
    instances = tuple(
        InstancePlan(d, tuple(planner.evaluate(d, c.action, c.role) for c in order.candidates_for(d.type)))
        for d in ordered
    )
    actions, seen = [], set()
    for inst in instances:
        best = inst.recommended
        if best is not None and best.identity() not in seen:
            seen.add(best.identity())
            actions.append(best)
    return Plan(ctx.order.order_id, instances, tuple(actions))
