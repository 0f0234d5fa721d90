"""Names the data contract fixes (../shared/domain.md): shared by tools and agent, never renamed."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["EXCEPTION_TYPES", "ExceptionType"]

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
    "ALLOCATION_CONFLICT",  # §6
]
EXCEPTION_TYPES: tuple[str, ...] = get_args(ExceptionType)
