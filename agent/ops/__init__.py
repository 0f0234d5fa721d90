"""Operations analytics: the numbers an operations manager runs the exception desk by.

- ``kpis``: time to resolution, request outcomes, notices within policy (``compute_kpis``;
  ``notice_kpis`` for the communications figures; the workflow's touchless rate and queue sizes
  are ``agent.flow.workflow_kpis``; ``agent.flow.all_kpis`` gives both, for ``copilot kpis`` and the API);
- ``anomalies``: exceptions that recur by customer, SKU, warehouse or carrier, with a suggestion;
- ``risk`` and ``risk_features``: the late-shipment risk model (train, score the open book,
  explain a score);
- ``monitoring``: drift and quality warnings for that model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.surface import lazy_surface

if TYPE_CHECKING:
    from agent.ops.anomalies import recurring_anomalies
    from agent.ops.kpis import compute_kpis, request_outcomes
    from agent.ops.monitoring import monitoring
    from agent.ops.risk import RiskModelError, load_model, score_open_orders, train

__all__ = [
    "RiskModelError",
    "compute_kpis",
    "load_model",
    "monitoring",
    "recurring_anomalies",
    "request_outcomes",
    "score_open_orders",
    "train",
]
__getattr__, __dir__ = lazy_surface(
    __name__,
    {
        "RiskModelError": "risk",
        "compute_kpis": "kpis",
        "load_model": "risk",
        "monitoring": "monitoring",
        "recurring_anomalies": "anomalies",
        "request_outcomes": "kpis",
        "score_open_orders": "risk",
        "train": "risk",
    },
)
