"""The domain rules (../shared/domain.md §1-§3, §6) that more than one part of the product applies.

Detection (``agent.triage.detection``), recommendation (``agent.triage.plan``), the guard
(``agent.governance.guard``) and the executor (``tools.writes``) all read an order's statuses, its
ship-to fields, where a line ships from, export control, the effective price, the credit position
and order priority from here, so that "detected", "recommended" and "allowed to execute" cannot
disagree about the same records. The functions are pure and take plain values: each caller brings
its own records (frozen rows in triage, ORM objects in the executor). The executor needs them, so
they live in ``tools`` (which never imports ``agent``).

Readings where domain.md leaves room (one reading for every caller):

- "Empty" is missing, None or only whitespace; a line with an empty warehouse_id ships from the
  order's warehouse.
- Countries compare normalised (trimmed, upper case: `` ca`` is ``CA``). Export control needs both
  countries: with an empty ship_to_country (``MASTER_DATA_INCOMPLETE`` holds instead) or a
  warehouse whose country is unknown, the border cannot be judged and no ``COMPLIANCE_HOLD`` holds;
  an order without a customer record is not judged either (its customer's licence is unknown).
- The effective price of a line is priced on its original_sku when it was substituted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypeVar

__all__ = [
    "ACTIVE_LINE_STATUSES",
    "CLOSED_STATUSES",
    "CREDIT_HOLD_STATUSES",
    "IN_CHUNK",
    "OPEN_ORDER_STATUSES",
    "SHIP_TO_FIELDS",
    "TIER_RANK",
    "UNDELIVERED_SHIPMENT_STATUSES",
    "CreditPosition",
    "contract_in_force",
    "correct_price_risk_facts",
    "country",
    "credit_hold_applies",
    "crosses_border",
    "days_from",
    "effective_price",
    "empty_ship_to",
    "export_hold",
    "in_chunks",
    "in_force",
    "is_closed",
    "is_empty",
    "order_priority_key",
    "order_value",
    "priced_sku",
    "ship_from",
    "substitution_risk_facts",
]

# -- statuses (domain.md §1, §2) ------------------------------------------------------------------

OPEN_ORDER_STATUSES = ("open", "held", "released")  # the open book: actions may change these orders
CREDIT_HOLD_STATUSES = ("open", "held")  # not yet released: a credit hold can hold these
CLOSED_STATUSES = ("shipped", "cancelled")  # of an order or a line: no rule applies, nothing changes
# a line neither shipped nor cancelled (the CHECK on order_lines allows these and the closed two):
# as an ``IN`` list the index on (sku, status) reads only these ranges, where ``NOT IN`` (closed)
# reads every line of the SKU — shipped history is most of a book's lines
ACTIVE_LINE_STATUSES = ("open", "allocated", "backordered")
# a shipment not yet delivered (the CHECK on shipments allows these and "delivered"): the index on
# (carrier_id, status) reads only these ranges of a carrier's shipments, most of which are delivered
UNDELIVERED_SHIPMENT_STATUSES = ("planned", "booked", "in_transit", "delayed")

SHIP_TO_FIELDS = ("ship_to_street", "ship_to_city", "ship_to_postal_code", "ship_to_country")

IN_CHUNK = 500  # the most values one SQL ``IN`` list carries


def is_empty(value: Any) -> bool:
    """domain.md §1: "empty" means missing, null or blank."""
    return value is None or (isinstance(value, str) and not value.strip())


def is_closed(status: str | None) -> bool:
    """A shipped or cancelled order or line: no rule applies to it, no action changes it."""
    return status in CLOSED_STATUSES


def empty_ship_to(record: Any) -> list[str]:
    """The ship-to fields of an order (any object with the four attributes) that are empty."""
    return [name for name in SHIP_TO_FIELDS if is_empty(getattr(record, name))]


def ship_from(line_warehouse_id: str | None, order_warehouse_id: str | None) -> str | None:
    """The warehouse a line ships from: its own, else the order's; None when neither is set."""
    # the first not empty (is_empty written out: triage and the event reach call this for every
    # line they read, hundreds of thousands of times a minute on a 1M-line book)
    if line_warehouse_id is not None and (
        not isinstance(line_warehouse_id, str) or line_warehouse_id.strip()
    ):
        return line_warehouse_id
    if order_warehouse_id is not None and (
        not isinstance(order_warehouse_id, str) or order_warehouse_id.strip()
    ):
        return order_warehouse_id
    return None


def days_from(day: dt.date, days: int) -> dt.date:
    """``day`` moved by ``days``, held within the dates a date can be (0001-01-01 .. 9999-12-31): an
    order dated 9999-12-31 has a recurrence window that ends there, not an OverflowError."""
    try:
        return day + dt.timedelta(days=days)
    except OverflowError:
        return dt.date.max if days > 0 else dt.date.min


def in_chunks(values: Iterable[Any], size: int = IN_CHUNK) -> Iterator[list[Any]]:
    """The distinct values (None left out), sorted, in lists of at most ``size`` for one ``IN`` each."""
    ordered = sorted({v for v in values if v is not None})
    for i in range(0, len(ordered), size):
        yield ordered[i : i + size]


class _Line(Protocol):
    @property
    def qty(self) -> int: ...
    @property
    def unit_price(self) -> Decimal: ...
    @property
    def status(self) -> str: ...


def order_value(lines: Iterable[_Line]) -> Decimal:
    """domain.md §1: Σ qty × unit_price over the lines not shipped or cancelled."""
    return sum((ln.qty * ln.unit_price for ln in lines if not is_closed(ln.status)), Decimal("0"))


# -- export control (domain.md §2 COMPLIANCE_HOLD) ---------------------------------------------------


def country(value: str | None) -> str:
    """A country code as compared: trimmed and upper case; "" when empty."""
    return "" if is_empty(value) else str(value).strip().upper()


def crosses_border(ship_to_country: str | None, origin_country: str | None) -> bool:
    """Whether the destination differs from the shipping warehouse's country; False when either is empty."""
    dest, origin = country(ship_to_country), country(origin_country)
    return bool(dest and origin and dest != origin)


def export_hold(
    *,
    export_controlled: bool | None,
    export_license: bool | None,
    ship_to_country: str | None,
    origin_country: str | None,
) -> bool:
    """domain.md §2: an export-controlled item ships across a border to a customer without a licence.

    ``export_license`` None: there is no customer record, so the licence is unknown and no hold is judged.
    """
    if not export_controlled or export_license is None or export_license:
        return False
    return crosses_border(ship_to_country, origin_country)


# -- the effective price (domain.md §2 PRICING_DISCREPANCY, §3 CORRECT_PRICE) -------------------------


class _Contract(Protocol):
    @property
    def valid_from(self) -> dt.date: ...
    @property
    def valid_to(self) -> dt.date | None: ...
    @property
    def contract_price(self) -> Decimal: ...


C = TypeVar("C", bound=_Contract)


def in_force(contract: _Contract, day: dt.date) -> bool:
    """valid_from ≤ day ≤ valid_to, an empty valid_to being open-ended."""
    return contract.valid_from <= day and (contract.valid_to is None or day <= contract.valid_to)


def contract_in_force(contracts: Iterable[C], day: dt.date) -> C | None:
    """The price contract that applies on ``day``: of those in force, the latest valid_from wins."""
    return max((c for c in contracts if in_force(c, day)), key=lambda c: c.valid_from, default=None)


def priced_sku(sku: str | None, original_sku: str | None) -> str | None:
    """The sku a line is priced on: its original_sku when it was substituted; None when empty."""
    basis = original_sku if not is_empty(original_sku) else sku
    return None if is_empty(basis) else basis


def effective_price(
    contracts: Iterable[C], list_price: Decimal | None, day: dt.date | None
) -> tuple[Decimal, C | None] | None:
    """(price, the contract applied or None for the list price) of one sku for one customer on
    ``day`` (the order_date); None when it cannot be known (no date, or no contract and no item)."""
    if day is None:
        return None
    best = contract_in_force(contracts, day)
    if best is not None:
        return best.contract_price, best
    return (list_price, None) if list_price is not None else None


# -- credit (domain.md §2 CREDIT_HOLD, §3 RELEASE_CREDIT_HOLD risk) -----------------------------------


def credit_hold_applies(status: str | None, credit_released: bool | None) -> bool:
    """A credit hold can hold the order at all: it is open or held and not credit-released."""
    return status in CREDIT_HOLD_STATUSES and not credit_released


@dataclass(frozen=True, slots=True)
class CreditPosition:
    """A customer's credit position with one order's value added."""

    credit_hold: bool
    credit_limit: Decimal
    open_balance: Decimal
    overdue_balance: Decimal
    order_value: Decimal

    @classmethod
    def of(cls, customer: Any, lines: Iterable[_Line]) -> CreditPosition:
        """From a customer record (its credit fields) and the order's lines."""
        return cls(
            credit_hold=bool(customer.credit_hold),
            credit_limit=customer.credit_limit,
            open_balance=customer.open_balance,
            overdue_balance=customer.overdue_balance,
            order_value=order_value(lines),
        )

    @property
    def exposure(self) -> Decimal:
        return self.open_balance + self.order_value

    @property
    def overage(self) -> Decimal:
        """domain.md §3: open_balance + order value − credit_limit (negative: headroom)."""
        return self.exposure - self.credit_limit

    @property
    def over_limit(self) -> bool:
        return self.exposure > self.credit_limit

    @property
    def overdue(self) -> bool:
        return self.overdue_balance > 0

    @property
    def holds(self) -> bool:
        """The credit condition of CREDIT_HOLD: the customer's flag, over the limit, or overdue."""
        return bool(self.credit_hold or self.over_limit or self.overdue)

    def release_risk_facts(self, medium_max_overage_pct: Decimal | float | str) -> dict[str, bool]:
        """The policy's risk conditions of RELEASE_CREDIT_HOLD (the flag alone does not raise it)."""
        pct = Decimal(str(medium_max_overage_pct))
        return {
            "overage_within_medium_limit": bool(self.overage <= self.credit_limit * pct / 100),
            "no_overdue_balance": self.overdue_balance <= 0,
        }


# -- risk facts of the other actions (domain.md §3) ----------------------------------------------------


def substitution_risk_facts(
    *, approved: bool, list_price: Decimal | None, unit_price: Decimal | None
) -> dict[str, bool]:
    """APPROVE_SUBSTITUTION is low when the substitute is approved and its list price ≤ the unit price."""
    return {
        "substitute_approved": bool(approved),
        "substitute_list_price_within_unit_price": bool(
            list_price is not None and unit_price is not None and list_price <= unit_price
        ),
    }


def correct_price_risk_facts(new_unit_price: Decimal, effective: Decimal | None) -> dict[str, bool]:
    """CORRECT_PRICE is low when it restores the effective price."""
    return {"restores_effective_price": effective is not None and Decimal(new_unit_price) == effective}


# -- order priority (domain.md §6) ---------------------------------------------------------------------

TIER_RANK = {"platinum": 0, "gold": 1, "standard": 2}


def order_priority_key(
    tier: str | None, promised_date: dt.date | None, order_date: dt.date | None, order_id: str
) -> tuple:
    """Sort key of who is served first when stock is short: tier (platinum, gold, standard, then
    unknown), the earlier promised_date, the earlier order_date (a missing date last), order_id."""
    return (
        TIER_RANK.get(tier or "", len(TIER_RANK)),
        promised_date is None,
        promised_date or dt.date.max,
        order_date is None,
        order_date or dt.date.max,
        order_id,
    )
