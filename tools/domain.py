"""Names the data contract fixes (../shared/domain.md): shared by tools and agent, never renamed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Literal, Protocol, TypeVar, get_args

__all__ = ["EXCEPTION_TYPES", "ExceptionType", "contract_in_force", "in_force"]

# domain.md §2, in the order the document lists them.
ExceptionType = Literal[
    "CREDIT_HOLD",
    "PRICING_DISCREPANCY",
    "INVENTORY_SHORTFALL",
    "SUBSTITUTION_REQUEST",
    "CARRIER_DISRUPTION",
    "PROCUREMENT_DELAY",
    "MASTER_DATA_INCOMPLETE",
    "COMPLIANCE_HOLD",
    "RECURRING_ANOMALY",
]
EXCEPTION_TYPES: tuple[str, ...] = get_args(ExceptionType)


class _Contract(Protocol):
    valid_from: dt.date
    valid_to: dt.date | None


C = TypeVar("C", bound=_Contract)


def in_force(contract: _Contract, day: dt.date) -> bool:
    """domain.md §2: valid_from ≤ day ≤ valid_to, an empty valid_to being open-ended."""
    return contract.valid_from <= day and (contract.valid_to is None or day <= contract.valid_to)


def contract_in_force(contracts: Iterable[C], day: dt.date) -> C | None:
    """The price contract that applies on ``day``: of those in force, the latest valid_from wins."""
    return max((c for c in contracts if in_force(c, day)), key=lambda c: c.valid_from, default=None)
