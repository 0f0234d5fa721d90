"""The workflow around the flow: events applied by a worker, the open orders they affect triaged
again, exceptions routed to role work queues."""

from agent.flow.queue import all_kpis, load_queue, queue_sizes, recommendation_for, workflow_kpis
from agent.flow.work import claim, escalate_breached, reassign, release
from agent.flow.worker import (
    BATCH_EVENTS,
    Applied,
    BackgroundWorker,
    Batches,
    apply_batch,
    apply_next,
    drain,
    run_worker,
    sweep,
)

__all__ = [
    "BATCH_EVENTS",
    "Applied",
    "BackgroundWorker",
    "Batches",
    "all_kpis",
    "apply_batch",
    "apply_next",
    "claim",
    "drain",
    "escalate_breached",
    "load_queue",
    "queue_sizes",
    "reassign",
    "recommendation_for",
    "release",
    "run_worker",
    "sweep",
    "workflow_kpis",
]
