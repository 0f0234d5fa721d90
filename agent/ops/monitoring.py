"""Model monitoring: input drift of the risk model and the override rate of recommendations.

Drift is the population stability index (PSI) of each risk feature between the training period
and now (the open, unreleased orders the model scores), over the training deciles:
``PSI = Σ_bins (now − train) × ln(now / train)``, bin shares floored at 1e-4. Override rate per
recommended action type comes from :func:`agent.ops.kpis.request_outcomes`.

Thresholds are documented constants (the policy loader is strict and the shipped policy does not
carry them): a feature drifts at PSI > ``PSI_WARN`` (0.2, the usual "significant shift"; 0.1–0.2
is reported as moderate); an action type is overridden too often at a rate > ``OVERRIDE_WARN``
(30 %) once it has at least ``OVERRIDE_MIN_DECIDED`` (10) decisions. Drift needs at least
``DRIFT_MIN_ORDERS`` (30) orders now.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from agent.ops.kpis import ratio, request_outcomes
from agent.ops.risk import UNRELEASED, RiskModelError, load_model
from agent.ops.risk_features import build_features, load_frames

__all__ = [
    "DRIFT_MIN_ORDERS",
    "OVERRIDE_MIN_DECIDED",
    "OVERRIDE_WARN",
    "PSI_MODERATE",
    "PSI_WARN",
    "monitoring",
    "psi",
]

PSI_WARN, PSI_MODERATE = 0.2, 0.1
OVERRIDE_WARN, OVERRIDE_MIN_DECIDED = 0.3, 10
DRIFT_MIN_ORDERS = 30
_FLOOR = 1e-4


def psi(expected: list[float] | np.ndarray, actual: list[float] | np.ndarray) -> float:
    """Population stability index of two bin-share vectors of the same length."""
    e = np.maximum(np.asarray(expected, dtype=float), _FLOOR)
    a = np.maximum(np.asarray(actual, dtype=float), _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def _drift(session: Session, var_dir: str | Path | None) -> dict[str, Any]:
    try:
        artifact, report = load_model(var_dir)
    except RiskModelError as exc:
        return {"status": "no_model", "reason": str(exc), "features": {}, "warnings": []}
    frames = load_frames(session)
    feats = build_features(frames)
    now_ids = frames.orders.loc[frames.orders["status"].isin(UNRELEASED), "order_id"]
    x = feats.loc[now_ids]
    if len(x) < DRIFT_MIN_ORDERS:
        return {
            "status": "too_few_orders",
            "orders_now": len(x),
            "features": {},
            "warnings": [],
            "reason": f"{len(x)} open, unreleased orders: drift needs {DRIFT_MIN_ORDERS}",
        }
    features: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    for name, spec in artifact["psi"].items():
        edges = np.asarray(spec["edges"], dtype=float)
        counts = np.bincount(
            np.searchsorted(edges, x[name].to_numpy(dtype=float), side="right"), minlength=len(edges) + 1
        )
        value = round(psi(spec["expected"], counts / counts.sum()), 4)
        level = "drift" if value > PSI_WARN else "moderate" if value > PSI_MODERATE else "stable"
        features[name] = {"psi": value, "level": level}
        if level == "drift":
            warnings.append(
                f"risk input {name} drifted: PSI {value} > {PSI_WARN} (training {report['split']['train']['from']}"
                f"..{report['split']['train']['to']} vs {len(x)} open orders now)"
            )
    features = dict(sorted(features.items(), key=lambda kv: -kv[1]["psi"]))
    return {
        "status": "ok",
        "orders_now": len(x),
        "trained_at": report.get("trained_at"),
        "train_period": report["split"]["train"],
        "max_psi": max(f["psi"] for f in features.values()),
        "features": features,
        "warnings": warnings,
    }


def _overrides(session: Session) -> dict[str, Any]:
    by_action: dict[str, dict[str, Any]] = {}
    for o in request_outcomes(session):
        entry = by_action.setdefault(o["recommended"], {"decided": 0, "overridden": 0})
        entry["decided"] += 1
        entry["overridden"] += o["overridden"]
    warnings = []
    for action, entry in sorted(by_action.items()):
        entry["override_rate"] = ratio(entry["overridden"], entry["decided"])
        entry["warning"] = entry["decided"] >= OVERRIDE_MIN_DECIDED and entry["override_rate"] > OVERRIDE_WARN
        if entry["warning"]:
            warnings.append(
                f"recommendations of {action} overridden {entry['overridden']} of {entry['decided']} "
                f"times ({entry['override_rate']:.0%} > {OVERRIDE_WARN:.0%})"
            )
    return {"by_action": dict(sorted(by_action.items())), "warnings": warnings}


def monitoring(session: Session, policy=None, *, var_dir: str | Path | None = None) -> dict[str, Any]:
    """{"drift": {...}, "override_rate": {...}, "warnings": [...], "thresholds": {...}}.

    ``policy`` is accepted for the contract (thresholds may move there); the thresholds are this
    module's constants today.
    """
    drift = _drift(session, var_dir)
    overrides = _overrides(session)
    return {
        "drift": drift,
        "override_rate": overrides,
        "warnings": drift["warnings"] + overrides["warnings"],
        "thresholds": {
            "psi_warn": PSI_WARN,
            "psi_moderate": PSI_MODERATE,
            "override_warn": OVERRIDE_WARN,
            "override_min_decided": OVERRIDE_MIN_DECIDED,
            "drift_min_orders": DRIFT_MIN_ORDERS,
        },
    }
