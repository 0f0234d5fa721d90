"""Risk of exception before release: a calibrated classifier over the order history.

The label of a closed (shipped or cancelled) order is 1 when it hit an exception of
``LABEL_TYPES`` — inventory shortfall, procurement delay, carrier disruption, credit hold. Every
feature is known when the order is created (see :mod:`agent.ops.risk_features`): the ordered SKUs (the
original ones, before any substitution), their suppliers' record, the demand of those SKUs in the
seven days before, the customer's credit position, the promise slack, the warehouse's late
deliveries in the fortnight before. No outcome of the order itself enters.

``train`` splits by time — the earlier ``1 - test_fraction`` of the closed orders (by order_date,
whole days) train, the later ones test — fits a HistGradientBoosting classifier calibrated by
``CalibratedClassifierCV`` (sigmoid, 3 folds) with a fixed seed, reports ROC AUC, PR AUC, Brier
score and a reliability table on the held-out later period, and writes
``<COPILOT_VAR_DIR>/risk/model.pkl`` with ``report.json`` (which records the model's SHA-256).
``load_model`` refuses a model whose hash differs from the report's, or that other users may write.

``score_open_orders`` scores the open, unreleased orders (status open or held). Each score comes
with its drivers — the features whose replacement by the training median lowers the score most
(an occlusion attribution, in probability points) — and a preventive action from the catalog.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import pickle
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.ops.risk_features import FEATURES, LABELS, MONOTONIC, Frames, build_features, labels, load_frames
from agent.settings import get_settings
from tools.errors import ToolError
from tools.models import Inventory, OrderLine, PurchaseOrder
from tools.rules import CLOSED_STATUSES, CREDIT_HOLD_STATUSES, in_chunks

__all__ = [
    "FEATURES",
    "LABEL_TYPES",
    "UNRELEASED",
    "RiskModelError",
    "explain",
    "load_model",
    "model_dir",
    "save_model",
    "score_open_orders",
    "train",
]

LABEL_TYPES = ("INVENTORY_SHORTFALL", "PROCUREMENT_DELAY", "CARRIER_DISRUPTION", "CREDIT_HOLD")
UNRELEASED = CREDIT_HOLD_STATUSES  # open or held: not yet released
MODEL_FILE, REPORT_FILE = "model.pkl", "report.json"
MIN_TRAIN_ORDERS, MIN_POSITIVES = 200, 20
MIN_CONTRIBUTION = 0.005  # drivers below half a probability point are not listed


class RiskModelError(ToolError):
    """No usable risk model: not trained yet, too little history, or an artifact that fails its check."""


def model_dir(var_dir: str | Path | None = None) -> Path:
    if var_dir is None:
        var_dir = get_settings().var_dir
    return Path(var_dir) / "risk"


# -- the model ---------------------------------------------------------------------------------------


def _classifier(seed: int):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier

    booster = HistGradientBoostingClassifier(
        max_iter=100,
        learning_rate=0.08,
        max_leaf_nodes=15,
        min_samples_leaf=40,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=seed,
        monotonic_cst=[MONOTONIC[name] for name in FEATURES],
    )
    return CalibratedClassifierCV(booster, method="sigmoid", cv=3)


def _reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> tuple[list[dict[str, Any]], float]:
    """Calibration table on equal-width bins, and the expected calibration error (ECE)."""
    table, ece = [], 0.0
    idx = np.minimum((p * bins).astype(int), bins - 1)
    for b in range(bins):
        mask = idx == b
        if not mask.any():
            continue
        mean_p, rate = float(p[mask].mean()), float(y[mask].mean())
        ece += mask.sum() / len(p) * abs(mean_p - rate)
        table.append(
            {
                "bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}",
                "orders": int(mask.sum()),
                "mean_predicted": round(mean_p, 4),
                "observed_rate": round(rate, 4),
            }
        )
    return table, round(ece, 4)


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    both = len(np.unique(y)) == 2
    table, ece = _reliability(y, p)
    base = float(y.mean()) if len(y) else 0.0
    return {
        "orders": len(y),
        "positives": int(y.sum()),
        "positive_rate": round(base, 4),
        "roc_auc": round(float(roc_auc_score(y, p)), 4) if both else None,
        "pr_auc": round(float(average_precision_score(y, p)), 4) if both else None,
        "brier": round(float(brier_score_loss(y, p)), 4) if len(y) else None,
        "brier_base_rate": round(base * (1 - base), 4),  # Brier score of always predicting the rate
        "ece": ece,
        "reliability": table,
    }


def _psi_bins(x: pd.DataFrame) -> dict[str, dict[str, list[float]]]:
    """Per feature: interior bin edges (training deciles) and the training share of each bin."""
    out = {}
    for name in FEATURES:
        values = x[name].to_numpy(dtype=float)
        edges = np.unique(np.quantile(values, np.linspace(0.1, 0.9, 9)))
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        out[name] = {"edges": edges.tolist(), "expected": (counts / counts.sum()).tolist()}
    return out


def train(
    session: Session,
    *,
    var_dir: str | Path | None = None,
    seed: int = 0,
    test_fraction: float = 0.3,
    save: bool = True,
    frames: Frames | None = None,
) -> dict[str, Any]:
    """Train, evaluate on the later period, save (unless ``save`` is False); return the report.

    The report holds the periods, the held-out metrics (ROC AUC, PR AUC, Brier, ECE, reliability
    table), the training metrics, the mean absolute driver contribution per feature on the test
    period, and — when saved — the artifact's path and SHA-256.
    """
    if not 0.05 <= test_fraction <= 0.5:
        raise ValueError("test_fraction must lie between 0.05 and 0.5")
    frames = frames or load_frames(session)
    feats = build_features(frames)
    y_all = labels(frames, LABEL_TYPES)
    closed = frames.orders.loc[frames.orders["status"].isin(CLOSED_STATUSES), ["order_id", "day"]]
    closed = closed.sort_values(["day", "order_id"])
    if len(closed) < MIN_TRAIN_ORDERS:
        raise RiskModelError(
            f"too little history to train: {len(closed)} closed orders, need {MIN_TRAIN_ORDERS}"
        )
    # Whole days: the cut is the first day at which the cumulative share of orders passes 1 - test_fraction.
    days = closed["day"].to_numpy()
    cut_day = days[min(len(days) - 1, int(len(days) * (1 - test_fraction)))]
    train_ids = closed.loc[closed["day"] < cut_day, "order_id"]
    test_ids = closed.loc[closed["day"] >= cut_day, "order_id"]
    x_train, x_test = feats.loc[train_ids, list(FEATURES)], feats.loc[test_ids, list(FEATURES)]
    y_train, y_test = y_all.loc[train_ids].to_numpy(), y_all.loc[test_ids].to_numpy()
    if y_train.sum() < MIN_POSITIVES or (len(y_train) - y_train.sum()) < MIN_POSITIVES:
        raise RiskModelError(
            f"too few orders of one outcome in the training period ({int(y_train.sum())} "
            f"with an exception of {len(y_train)}): need {MIN_POSITIVES} of each"
        )
    model = _classifier(seed)
    model.fit(x_train.to_numpy(dtype=float), y_train)
    p_test = model.predict_proba(x_test.to_numpy(dtype=float))[:, 1]
    p_train = model.predict_proba(x_train.to_numpy(dtype=float))[:, 1]
    medians = x_train.median().to_dict()
    artifact = {
        "model": model,
        "features": list(FEATURES),
        "medians": medians,
        "psi": _psi_bins(x_train),
        "label_types": list(LABEL_TYPES),
        "seed": seed,
    }
    sample = x_test.iloc[:2000]
    contrib = _contributions(artifact, sample.to_numpy(dtype=float))
    first = lambda d: frames.day_to_date(int(d))  # noqa: E731
    report: dict[str, Any] = {
        "model": "HistGradientBoostingClassifier + CalibratedClassifierCV(sigmoid, cv=3)",
        "label": f"the order hit one of {', '.join(LABEL_TYPES)}",
        "features": {name: LABELS[name] for name in FEATURES},
        "seed": seed,
        "split": {
            "train": {
                "from": first(closed["day"].iloc[0]),
                "to": first(cut_day - 1),
                "orders": len(train_ids),
            },
            "test": {"from": first(cut_day), "to": first(closed["day"].iloc[-1]), "orders": len(test_ids)},
        },
        "test": _metrics(y_test, p_test),
        "train": {k: v for k, v in _metrics(y_train, p_train).items() if k != "reliability"},
        "mean_abs_contribution": {
            n: round(float(v), 4)
            for n, v in sorted(
                zip(
                    FEATURES,
                    np.abs(contrib).mean(axis=0) if len(sample) else np.zeros(len(FEATURES)),
                    strict=True,
                ),
                key=lambda kv: -kv[1],
            )
        },
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sklearn": _sklearn_version(),
    }
    if save:
        report.update(save_model(artifact, report, var_dir))
    return report


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


def save_model(
    artifact: dict[str, Any], report: dict[str, Any], var_dir: str | Path | None = None
) -> dict[str, str]:
    """Write model.pkl (owner-only permissions) and report.json with the model's SHA-256."""
    folder = model_dir(var_dir)
    folder.mkdir(parents=True, exist_ok=True)
    blob = pickle.dumps(artifact, protocol=pickle.HIGHEST_PROTOCOL)
    digest = hashlib.sha256(blob).hexdigest()
    path = folder / MODEL_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(blob)
    os.replace(tmp, path)
    saved = {"artifact": str(path), "sha256": digest}
    (folder / REPORT_FILE).write_text(json.dumps({**report, **saved}, indent=2, default=str) + "\n")
    return saved


def load_model(var_dir: str | Path | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(artifact, report) of the trained model, after checking the artifact before unpickling it.

    Checks: both files exist; the model file is owned by this user and not writable by others;
    its SHA-256 equals the one recorded in report.json; it was trained on this version's features
    with this scikit-learn.
    """
    folder = model_dir(var_dir)
    path, report_path = folder / MODEL_FILE, folder / REPORT_FILE
    if not path.exists() or not report_path.exists():
        raise RiskModelError(f"no risk model in {folder}: run `copilot risk train`")
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError) as exc:
        raise RiskModelError(f"unreadable risk report {report_path}: {exc}") from exc
    info = path.stat()
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise RiskModelError(f"refusing {path}: owned by another user")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise RiskModelError(f"refusing {path}: writable by other users")
    blob = path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != report.get("sha256"):
        raise RiskModelError(
            f"refusing {path}: its SHA-256 differs from the one in {report_path.name} "
            "(retrain with `copilot risk train`)"
        )
    if list(report.get("features") or ()) != list(FEATURES):
        raise RiskModelError(
            "the risk model was trained on other features than this copilot computes: "
            "retrain with `copilot risk train`"
        )
    if report.get("sklearn") != _sklearn_version():
        raise RiskModelError(
            f"the risk model was trained with scikit-learn {report.get('sklearn')}, this is "
            f"{_sklearn_version()}: retrain with `copilot risk train`"
        )
    return pickle.loads(blob), report


# -- explanation -------------------------------------------------------------------------------------


def _contributions(artifact: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Occlusion attribution: p(x) − p(x with feature j set to its training median), per order and j."""
    if len(x) == 0:
        return np.zeros((0, len(FEATURES)))
    model, medians = artifact["model"], artifact["medians"]
    n, f = x.shape
    stacked = np.repeat(x[None, :, :], f + 1, axis=0)  # [f+1, n, f]: the original, then one per feature
    for j, name in enumerate(artifact["features"]):
        stacked[j + 1, :, j] = medians[name]
    p = model.predict_proba(stacked.reshape(-1, f))[:, 1].reshape(f + 1, n)
    return (p[0][None, :] - p[1:]).T


def explain(
    artifact: dict[str, Any], x: pd.DataFrame, *, top: int = 3
) -> tuple[np.ndarray, list[list[dict[str, Any]]]]:
    """(probabilities, drivers per order): drivers are the features raising the score most."""
    values = x[list(FEATURES)].to_numpy(dtype=float)
    if len(values) == 0:
        return np.zeros(0), []
    proba = artifact["model"].predict_proba(values)[:, 1]
    contrib = _contributions(artifact, values)
    drivers = []
    for i in range(len(values)):
        order = np.argsort(-contrib[i], kind="stable")
        drivers.append(
            [
                {
                    "feature": FEATURES[j],
                    "label": LABELS[FEATURES[j]],
                    "value": round(float(values[i, j]), 4),
                    "typical": round(float(artifact["medians"][FEATURES[j]]), 4),
                    "contribution": round(float(contrib[i, j]), 4),
                }
                for j in order[:top]
                if contrib[i, j] >= MIN_CONTRIBUTION
            ]
        )
    return proba, drivers


# -- preventive actions ------------------------------------------------------------------------------

_STOCK = ("demand_spike", "min_supplier_on_time", "supplier_miss_sum", "discontinued_lines")
_SUPPLY = ("max_supplier_slip_days",)
_CREDIT = ("credit_utilisation", "overdue", "credit_hold_flag")
_TIMING = ("promise_slack_days", "wh_late_rate_14d", "cross_border")


def _available(session: Session, skus: list[str]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for part in in_chunks(skus):
        for sku, wh, on_hand, allocated in session.execute(
            select(Inventory.sku, Inventory.warehouse_id, Inventory.on_hand, Inventory.allocated).where(
                Inventory.sku.in_(part)
            )
        ):
            out[(sku, wh)] = int(on_hand) - int(allocated)
    return out


def _open_pos(
    session: Session, skus: list[str]
) -> dict[tuple[str | None, str | None], tuple[str, dt.date | None]]:
    out: dict[tuple[str | None, str | None], tuple[str, dt.date | None]] = {}
    for part in in_chunks(skus):
        rows = session.execute(
            select(
                PurchaseOrder.po_id,
                PurchaseOrder.sku,
                PurchaseOrder.warehouse_id,
                PurchaseOrder.expected_date,
            )
            .where(PurchaseOrder.status == "open", PurchaseOrder.sku.in_(part))
            .order_by(PurchaseOrder.expected_date, PurchaseOrder.po_id)
        )
        for po_id, sku, wh, expected in rows:
            out.setdefault((sku, wh), (po_id, expected))
    return out


def _allocated(session: Session, focus: dict[str, dict[str, dict[str, Any]]]) -> None:
    """Add each focus line's allocated quantity (what is already reserved needs no prevention)."""
    for part in in_chunks(focus):
        for oid, line_no, allocated in session.execute(
            select(OrderLine.order_id, OrderLine.line_no, OrderLine.allocated_qty).where(
                OrderLine.order_id.in_(part)
            )
        ):
            for line in focus[oid].values():
                if line["line_no"] == line_no:
                    line["allocated"] = int(allocated or 0)


def _preventive(
    order: dict[str, Any],
    drivers: list[dict[str, Any]],
    lines: dict[str, dict[str, Any]],
    stock: dict[tuple[str, str], int],
    pos: dict[tuple[str | None, str | None], tuple[str, dt.date | None]],
) -> dict[str, Any]:
    """The catalog action that would most likely prevent the exception the top driver points at."""
    oid = order["order_id"]
    covered: list[str] = []
    for d in drivers:
        name = d["feature"]
        if name in _CREDIT:
            return {
                "action": "ESCALATE",
                "params": {
                    "role": "credit_analyst",
                    "reason": f"review credit of {order['customer_id']} before release",
                },
                "why": "review credit early: decide RELEASE_CREDIT_HOLD before the order is held",
            }
        if name in _STOCK or name in _SUPPLY:
            line = lines.get("slip" if name in _SUPPLY else "spike" if name == "demand_spike" else "supplier")
            if line is None:
                continue
            sku, wh, qty = line["sku"], line["warehouse_id"], line["qty"] - line.get("allocated", 0)
            if qty <= 0 or stock.get((sku, wh), 0) >= qty:
                covered.append(f"line {line['line_no']} {sku}")  # allocated, or its warehouse has the stock
                continue
            if name in _STOCK:
                others = sorted(
                    ((a, w) for (s, w), a in stock.items() if s == sku and w != wh and a >= qty),
                    key=lambda aw: (-aw[0], aw[1]),
                )
                if others:
                    return {
                        "action": "REALLOCATE_WAREHOUSE",
                        "params": {
                            "order_id": oid,
                            "line_no": line["line_no"],
                            "to_warehouse_id": others[0][1],
                        },
                        "why": f"rebalance stock: {sku} has {stock.get((sku, wh), 0)} available at {wh} for "
                        f"{qty} ordered, {others[0][0]} at {others[0][1]}",
                    }
            po = pos.get((sku, wh))
            if po is not None:
                return {
                    "action": "EXPEDITE_PO",
                    "params": {"po_id": po[0]},
                    "why": f"expedite the earliest open PO for {sku} at {wh} (expected {po[1]})",
                }
            return {
                "action": "UPDATE_PROMISE_DATE",
                "params": {"order_id": oid},
                "why": f"no open PO for {sku} at {wh}: set a promise date the supply can meet",
            }
        if name in _TIMING:
            return {
                "action": "UPDATE_PROMISE_DATE",
                "params": {"order_id": oid},
                "why": f"adjust the promise date: {d['label']} is {d['value']} (typical {d['typical']})",
            }
    if covered:
        return {
            "action": None,
            "params": {},
            "why": f"nothing to prevent yet: stock covers {', '.join(dict.fromkeys(covered))} "
            "(allocated or available at its warehouse); watch the order",
        }
    return {"action": None, "params": {}, "why": "no preventive action: no driver points at one"}


# -- scoring -----------------------------------------------------------------------------------------


def score_open_orders(
    session: Session,
    *,
    top: int | None = None,
    var_dir: str | Path | None = None,
    model: tuple[dict[str, Any], dict[str, Any]] | None = None,
    frames: Frames | None = None,
) -> list[dict[str, Any]]:
    """Score every open, unreleased order (status open or held), riskiest first.

    Each entry: order_id, customer_id, order_date, promised_date, status, ``risk`` (calibrated
    probability of an exception of LABEL_TYPES before shipping), ``drivers`` and ``suggested_action``.
    Raises :class:`RiskModelError` when no model was trained.
    """
    artifact, _report = model or load_model(var_dir)
    frames = frames or load_frames(session)
    feats = build_features(frames)
    orders = frames.orders.loc[frames.orders["status"].isin(UNRELEASED)].set_index("order_id")
    if orders.empty:
        return []
    x = feats.loc[orders.index]
    proba = artifact["model"].predict_proba(x[list(FEATURES)].to_numpy(dtype=float))[:, 1]
    ranked = np.lexsort((orders.index.to_numpy(), -proba))
    if top is not None:
        ranked = ranked[:top]
    chosen = orders.index.to_numpy()[ranked]
    _, drivers = explain(artifact, x.loc[chosen])
    focus = frames.focus_lines(list(chosen))
    _allocated(session, focus)
    skus = sorted({ln["sku"] for per in focus.values() for ln in per.values()})
    stock, pos = _available(session, skus), _open_pos(session, skus)
    out = []
    for k, oid in enumerate(chosen):
        row = orders.loc[oid]
        entry = {
            "order_id": oid,
            "customer_id": row["customer_id"],
            "status": row["status"],
            "order_date": frames.day_to_date(int(row["day"])),
            "promised_date": row["promised_date"],
            "risk": round(float(proba[ranked[k]]), 4),
            "drivers": drivers[k],
        }
        entry["suggested_action"] = _preventive(entry, drivers[k], focus.get(oid, {}), stock, pos)
        out.append(entry)
    return out
