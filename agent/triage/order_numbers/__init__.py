"""Order numbers as customers and colleagues write them: read from text by shape (linear time),
confirmed against the orders table, near misses suggested."""

from agent.policy import DEFAULT_ORDER_NUMBERS, OrderNumbers, Shape, compile_shape
from agent.triage.order_numbers.lookup import (
    Resolution,
    filter_id,
    order_id_of,
    params_ids,
    resolve,
    resolve_one,
    typed,
)
from agent.triage.order_numbers.reader import MAX_MENTIONS, Mention, find_order_ids, order_mentions, spellings

__all__ = [
    "DEFAULT_ORDER_NUMBERS",
    "MAX_MENTIONS",
    "Mention",
    "OrderNumbers",
    "Resolution",
    "Shape",
    "compile_shape",
    "filter_id",
    "find_order_ids",
    "order_id_of",
    "order_mentions",
    "params_ids",
    "resolve",
    "resolve_one",
    "spellings",
    "typed",
]
