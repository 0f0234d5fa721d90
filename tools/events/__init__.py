"""Events from source systems (domain.md §8): validation, the inbox, applying records, and which
open orders a change can affect. Nothing here triages: the worker in ``agent.flow`` does."""

from tools.events.affected import Reach, affected_by_event, affected_orders, reach_of_events, redated_orders
from tools.events.apply import Change, apply_event, captured_changes, preload
from tools.events.inbox import (
    claim_batch,
    claim_next,
    inbox_counts,
    list_events,
    mark_failed,
    receive,
    store_events,
    stored_event,
)
from tools.events.validate import (
    Event,
    EventError,
    check_references,
    dangling_before,
    parse_event,
    parse_events,
)

__all__ = [
    "Change",
    "Event",
    "EventError",
    "Reach",
    "affected_by_event",
    "affected_orders",
    "apply_event",
    "captured_changes",
    "check_references",
    "claim_batch",
    "claim_next",
    "dangling_before",
    "inbox_counts",
    "list_events",
    "mark_failed",
    "parse_event",
    "parse_events",
    "preload",
    "reach_of_events",
    "receive",
    "redated_orders",
    "store_events",
    "stored_event",
]
