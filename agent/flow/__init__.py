"""The workflow around the flow: events applied by a worker, the open orders they affect triaged
again, exceptions routed to role work queues."""

from agent.flow.retriage import Retriage, retriage
from agent.flow.worker import Applied, BackgroundWorker, apply_next, drain, run_worker

__all__ = ["Applied", "BackgroundWorker", "Retriage", "apply_next", "drain", "retriage", "run_worker"]
