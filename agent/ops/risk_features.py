"""The risk model's inputs, each computable when the order is created (no outcome of it enters).

One function builds them for every order, so training (closed orders) and scoring (the open book)
cannot drift apart. Per order, from the records as they stood when it was placed:

- the ordered SKU of each line is ``original_sku`` when the line was substituted later (the
  substitution is an outcome), else ``sku``;
- demand spike: lines of that SKU per day in the 7 days before the order_date over its rate in the
  28 days before those (+0.1 line/day smoothing; 1 when no earlier days exist);
- the warehouse's late-delivery rate: shipments of its orders delivered in the 14 days before the
  order_date later than their eta, shrunk with the weight of 5 shipments towards the late share of
  all deliveries before that day (0.1 before the first);
- the customer's credit position and the supplier record are the snapshot's (the records carry no
  history of them): in the demo data they do not change over the 90 days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tools.models import Customer, ExceptionRecord, Item, Order, OrderLine, Shipment, Supplier, Warehouse

__all__ = ["FEATURES", "LABELS", "MONOTONIC", "Frames", "build_features", "labels", "load_frames"]

LABELS: dict[str, str] = {
    "n_lines": "lines on the order",
    "credit_utilisation": "(open balance + order value) / credit limit",
    "overdue": "customer has an overdue balance",
    "credit_hold_flag": "customer is on credit hold",
    "tier": "customer tier (0 standard, 1 gold, 2 platinum)",
    "min_supplier_on_time": "lowest supplier on-time rate among its lines",
    "supplier_miss_sum": "expected late-supplier lines, Σ (1 − supplier on-time rate)",
    "max_supplier_slip_days": "longest expected supplier slip, lead time × (1 − on-time), days",
    "demand_spike": "highest demand of its SKUs in the last 7 days vs their 4-week rate",
    "discontinued_lines": "lines on a discontinued item",
    "promise_slack_days": "days from order to promised date",
    "cross_border": "ships across a border",
    "wh_late_rate_14d": "share of the warehouse's deliveries late in the last 14 days",
}
FEATURES: tuple[str, ...] = tuple(LABELS)
# The direction each feature may move the risk (+1 up, -1 down, 0 free): the booster is held to it,
# so that a driver reads the way a planner expects ("a lower late rate" never raises the risk).
MONOTONIC: dict[str, int] = {
    "n_lines": 1,
    "credit_utilisation": 1,
    "overdue": 1,
    "credit_hold_flag": 1,
    "tier": 0,
    "min_supplier_on_time": -1,
    "supplier_miss_sum": 1,
    "max_supplier_slip_days": 1,
    "demand_spike": 1,
    "discontinued_lines": 1,
    "promise_slack_days": -1,
    "cross_border": 0,
    "wh_late_rate_14d": 1,
}
TIERS = {"standard": 0, "gold": 1, "platinum": 2}
SPIKE_RECENT, SPIKE_BASE, SPIKE_SMOOTH = 7, 28, 0.1
LATE_WINDOW, LATE_PRIOR_WEIGHT, LATE_PRIOR_DEFAULT = 14, 5.0, 0.1


@dataclass
class Frames:
    """The records the features read, as DataFrames; days are proleptic ordinals (date.toordinal)."""

    orders: pd.DataFrame
    lines: pd.DataFrame
    customers: pd.DataFrame
    shipments: pd.DataFrame
    exceptions: pd.DataFrame
    wh_country: dict[str, str | None]
    cache: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def day_to_date(day: int) -> str:
        return dt.date.fromordinal(int(day)).isoformat()

    def focus_lines(self, order_ids: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
        """Per order, the line behind each line-level driver: 'spike', 'supplier' (lowest on-time),
        'slip' (longest expected slip)."""
        per_line = self.cache.get("lines")
        if per_line is None:
            build_features(self)
            per_line = self.cache["lines"]
        sub = per_line.loc[per_line["order_id"].isin(order_ids)]
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for key, col, asc in (
            ("spike", "spike", False),
            ("supplier", "on_time", True),
            ("slip", "slip", False),
        ):
            best = sub.sort_values([col, "line_no"], ascending=[asc, True], kind="stable").drop_duplicates(
                "order_id"
            )
            for r in best.itertuples(index=False):
                out.setdefault(r.order_id, {})[key] = {
                    "line_no": int(r.line_no),
                    "sku": r.sku,
                    "warehouse_id": r.warehouse_id,
                    "qty": int(r.qty),
                }
        return out


def _ordinal(values) -> np.ndarray:
    return np.array([v.toordinal() if v is not None else -1 for v in values], dtype=np.int64)


def _frame(session: Session, query, columns: list[str]) -> pd.DataFrame:
    """A query's rows as a DataFrame, built column-wise (pandas is slow on a list of Row objects)."""
    rows = session.connection().execute(query).fetchall()
    data = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    return pd.DataFrame(
        {name: pd.Series(list(values), dtype=object) for name, values in zip(columns, data, strict=True)}
    )


def load_frames(session: Session) -> Frames:
    """Read what the features need: orders, lines with their item and supplier, customers, shipments."""
    orders = _frame(
        session,
        select(
            Order.order_id,
            Order.customer_id,
            Order.status,
            Order.order_date,
            Order.promised_date,
            Order.warehouse_id,
            Order.ship_to_country,
        ),
        [
            "order_id",
            "customer_id",
            "status",
            "order_date",
            "promised_date",
            "warehouse_id",
            "ship_to_country",
        ],
    )
    orders = orders.loc[orders["order_date"].notna()].reset_index(drop=True)
    orders["day"] = _ordinal(orders["order_date"])
    orders["promised_day"] = _ordinal(orders["promised_date"].where(orders["promised_date"].notna(), None))
    orders["promised_date"] = [d.isoformat() if d is not None else None for d in orders["promised_date"]]
    orders = orders.drop(columns=["order_date"])
    lines = _frame(
        session,
        select(
            OrderLine.order_id,
            OrderLine.line_no,
            func.coalesce(OrderLine.original_sku, OrderLine.sku),
            OrderLine.qty,
            OrderLine.unit_price,
            OrderLine.warehouse_id,
            Item.status,
            Supplier.on_time_rate,
            Supplier.lead_time_days,
        )
        .outerjoin(Item, Item.sku == func.coalesce(OrderLine.original_sku, OrderLine.sku))
        .outerjoin(Supplier, Supplier.supplier_id == Item.supplier_id),
        [
            "order_id",
            "line_no",
            "sku",
            "qty",
            "unit_price",
            "warehouse_id",
            "item_status",
            "on_time",
            "lead_time",
        ],
    )
    for col in ("line_no", "qty"):
        lines[col] = lines[col].astype(np.int64)
    for col in ("on_time", "lead_time"):
        lines[col] = lines[col].astype(float)
    lines["unit_price"] = lines["unit_price"].astype(float)
    customers = _frame(
        session,
        select(
            Customer.customer_id,
            Customer.tier,
            Customer.credit_limit,
            Customer.open_balance,
            Customer.overdue_balance,
            Customer.credit_hold,
        ),
        ["customer_id", "tier", "credit_limit", "open_balance", "overdue", "credit_hold"],
    )
    for col in ("credit_limit", "open_balance", "overdue"):
        customers[col] = customers[col].astype(float)
    shipments = _frame(
        session,
        select(Shipment.order_id, Shipment.eta, Shipment.delivered_date).where(
            Shipment.delivered_date.is_not(None), Shipment.eta.is_not(None)
        ),
        ["order_id", "eta", "delivered"],
    )
    shipments["late"] = [d > e for e, d in zip(shipments["eta"], shipments["delivered"], strict=True)]
    shipments["delivered_day"] = _ordinal(shipments["delivered"])
    shipments = shipments.drop(columns=["eta", "delivered"])
    exceptions = _frame(
        session, select(ExceptionRecord.order_id, ExceptionRecord.type).distinct(), ["order_id", "type"]
    )
    wh_country = dict(session.execute(select(Warehouse.warehouse_id, Warehouse.country)).all())
    return Frames(orders, lines, customers, shipments, exceptions, wh_country)


def labels(frames: Frames, types: tuple[str, ...]) -> pd.Series:
    """1 for the orders with an exception of ``types``, else 0, indexed by order_id."""
    hit = set(frames.exceptions.loc[frames.exceptions["type"].isin(types), "order_id"])
    return pd.Series(
        [int(o in hit) for o in frames.orders["order_id"]], index=frames.orders["order_id"], name="label"
    )


def _window_counts(
    codes: np.ndarray, days: np.ndarray, n_codes: int, n_days: int, weights=None
) -> np.ndarray:
    """cum[c, t] = Σ weights of events of code c on day indexes < t (shape n_codes × n_days+1)."""
    counts = np.zeros((max(n_codes, 1), n_days), dtype=float)
    np.add.at(counts, (codes, days), 1.0 if weights is None else weights)
    cum = np.zeros((counts.shape[0], n_days + 1))
    np.cumsum(counts, axis=1, out=cum[:, 1:])
    return cum


def build_features(frames: Frames) -> pd.DataFrame:
    """The FEATURES of every order, indexed by order_id (cached on ``frames``)."""
    if "features" in frames.cache:
        return frames.cache["features"]
    orders, lines = frames.orders, frames.lines
    d0 = int(orders["day"].min()) if len(orders) else 0
    n_days = (int(orders["day"].max()) - d0 + 2) if len(orders) else 1
    day_of = dict(zip(orders["order_id"], orders["day"] - d0, strict=True))
    wh_of = dict(zip(orders["order_id"], orders["warehouse_id"], strict=True))

    lines = lines.loc[lines["order_id"].isin(day_of.keys())].copy()
    lines["t"] = lines["order_id"].map(day_of).astype(np.int64)
    lines["warehouse_id"] = lines["warehouse_id"].fillna(lines["order_id"].map(wh_of))
    lines["value"] = lines["qty"] * lines["unit_price"]
    # Supplier record: an item without a supplier takes the average supplier.
    mean_on_time = float(lines["on_time"].mean()) if lines["on_time"].notna().any() else 1.0
    mean_lead = float(lines["lead_time"].mean()) if lines["lead_time"].notna().any() else 0.0
    lines["on_time"] = lines["on_time"].astype(float).fillna(mean_on_time)
    lines["miss"] = 1 - lines["on_time"]
    lines["slip"] = lines["lead_time"].astype(float).fillna(mean_lead) * (1 - lines["on_time"])
    lines["discontinued"] = (lines["item_status"] == "discontinued").astype(int)
    # Demand spike of the ordered SKU, from the lines of the days before.
    codes, _uniques = pd.factorize(lines["sku"].fillna(""))
    t = lines["t"].to_numpy()
    cum = _window_counts(codes, t, int(codes.max()) + 1 if len(codes) else 1, n_days)
    r0 = np.maximum(t - SPIKE_RECENT, 0)
    b0 = np.maximum(r0 - SPIKE_BASE, 0)
    recent = (cum[codes, t] - cum[codes, r0]) / np.maximum(t - r0, 1)
    base = (cum[codes, r0] - cum[codes, b0]) / np.maximum(r0 - b0, 1)
    lines["spike"] = np.where(r0 - b0 > 0, (recent + SPIKE_SMOOTH) / (base + SPIKE_SMOOTH), 1.0)
    frames.cache["lines"] = lines[
        ["order_id", "line_no", "sku", "warehouse_id", "qty", "spike", "on_time", "slip"]
    ]

    agg = lines.groupby("order_id", sort=False).agg(
        n_lines=("line_no", "size"),
        value=("value", "sum"),
        min_supplier_on_time=("on_time", "min"),
        supplier_miss_sum=("miss", "sum"),
        max_supplier_slip_days=("slip", "max"),
        demand_spike=("spike", "max"),
        discontinued_lines=("discontinued", "sum"),
    )
    x = orders.set_index("order_id")[
        ["customer_id", "day", "promised_day", "warehouse_id", "ship_to_country"]
    ].join(agg)
    zero = ["n_lines", "value", "discontinued_lines", "supplier_miss_sum"]
    x[zero] = x[zero].fillna(0)
    x["min_supplier_on_time"] = x["min_supplier_on_time"].fillna(mean_on_time)
    x["max_supplier_slip_days"] = x["max_supplier_slip_days"].fillna(0.0)
    x["demand_spike"] = x["demand_spike"].fillna(1.0)
    cust = frames.customers.set_index("customer_id")
    c = cust.reindex(x["customer_id"])
    limit = c["credit_limit"].to_numpy(dtype=float)
    exposure = c["open_balance"].fillna(0).to_numpy(dtype=float) + x["value"].to_numpy(dtype=float)
    x["credit_utilisation"] = np.where(
        limit > 0, np.minimum(exposure / np.where(limit > 0, limit, 1), 5.0), 5.0
    )
    x["overdue"] = (c["overdue"].fillna(0).to_numpy(dtype=float) > 0).astype(int)
    x["credit_hold_flag"] = c["credit_hold"].fillna(False).astype(bool).to_numpy().astype(int)
    x["tier"] = c["tier"].map(TIERS).fillna(0).to_numpy(dtype=float)
    slack = x["promised_day"] - x["day"]
    x["promise_slack_days"] = np.where(x["promised_day"] > 0, slack, 0).astype(float)
    wh_country = x["warehouse_id"].map(frames.wh_country)
    x["cross_border"] = (
        (wh_country.notna()) & (x["ship_to_country"].notna()) & (wh_country != x["ship_to_country"])
    ).astype(int)
    x["wh_late_rate_14d"] = _late_rate(frames, x, d0, n_days)
    features = x[list(FEATURES)].astype(float)
    frames.cache["features"] = features
    return features


def _late_rate(frames: Frames, x: pd.DataFrame, d0: int, n_days: int) -> np.ndarray:
    ships = frames.shipments.assign(
        warehouse_id=frames.shipments["order_id"].map(
            dict(zip(frames.orders["order_id"], frames.orders["warehouse_id"], strict=True))
        )
    )
    ships = ships.loc[ships["warehouse_id"].notna()]
    wh_codes, wh_names = pd.factorize(pd.concat([ships["warehouse_id"], x["warehouse_id"].fillna("")]))
    n_wh = len(wh_names)
    s_codes = wh_codes[: len(ships)]
    s_days = np.clip(ships["delivered_day"].to_numpy() - d0, 0, n_days - 1)
    late_flags = ships["late"].to_numpy(dtype=float)
    total = _window_counts(s_codes, s_days, n_wh, n_days)
    late = _window_counts(s_codes, s_days, n_wh, n_days, late_flags)
    o_codes = wh_codes[len(ships) :]
    t = np.clip(x["day"].to_numpy() - d0, 0, n_days)
    start = np.maximum(t - LATE_WINDOW, 0)
    n = total[o_codes, t] - total[o_codes, start]
    k = late[o_codes, t] - late[o_codes, start]
    # The prior: every warehouse's late share of the deliveries before the order (as of its day too).
    all_total = total.sum(axis=0)[t]
    all_late = late.sum(axis=0)[t]
    prior = np.where(all_total > 0, all_late / np.maximum(all_total, 1), LATE_PRIOR_DEFAULT)
    return (k + LATE_PRIOR_WEIGHT * prior) / (n + LATE_PRIOR_WEIGHT)
