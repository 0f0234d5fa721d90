"""KPI computation time and risk-scoring throughput on about 1M order lines.

Seeds the demo data set (about 1M order lines by default) into a scratch database, then measures
in one run:

- ``compute_kpis`` (SQL aggregation, every KPI), and the same five KPIs it computes — exception
  frequency, cycle time, fill rate, OTIF, expedited incidence — against the baseline of loading the
  tables into pandas and computing those five there (their values are checked equal);
- the risk features for every order (``load_frames`` + ``build_features``) and a training run;
- scoring: vectorised ``predict_proba`` over every order against the baseline of scoring one order
  per call (row at a time, on a sample), and the occlusion explanation per order.

    .venv/bin/python benchmarks/kpis_risk.py                       # SQLite and PostgreSQL, 1M lines
    .venv/bin/python benchmarks/kpis_risk.py --backends sqlite --lines 100000
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

from _harness import ROOT, launch, scratch_database

AS_OF = "2026-03-02"
SEED = 7
ROW_SAMPLE = 1000


def _pandas_kpis(engine) -> dict:
    """The baseline: whole tables into pandas, then the five KPIs in pandas."""
    import pandas as pd

    with engine.connect() as conn:
        orders = pd.read_sql(
            "SELECT order_id, order_date, promised_date, shipped_date, status FROM orders", conn
        )
        lines = pd.read_sql("SELECT order_id, qty, shipped_qty, status FROM order_lines", conn)
        ships = pd.read_sql("SELECT order_id, service_level, delivered_date FROM shipments", conn)
        exc = pd.read_sql("SELECT order_id, type FROM exceptions", conn)
    for col in ("order_date", "promised_date", "shipped_date"):
        orders[col] = pd.to_datetime(orders[col])
    ships["delivered_date"] = pd.to_datetime(ships["delivered_date"])
    shipped = orders.loc[(orders["status"] == "shipped") & orders["shipped_date"].notna()]
    cycle = (shipped["shipped_date"] - shipped["order_date"]).dt.days
    fl = lines.loc[
        (lines["status"] != "cancelled")
        & lines["order_id"].isin(orders.loc[orders["status"] == "shipped", "order_id"])
    ]
    per_ship = (
        ships.assign(pending=ships["delivered_date"].isna())
        .groupby("order_id")
        .agg(delivered=("delivered_date", "max"), pending=("pending", "sum"))
    )
    short = fl.assign(short=fl["shipped_qty"] < fl["qty"]).groupby("order_id")["short"].sum()
    judged = orders.loc[orders["status"] == "shipped"].set_index("order_id").join(per_ship, how="inner")
    judged = judged.loc[(judged["pending"] == 0) & judged["promised_date"].notna()]
    on_time = judged["delivered"] <= judged["promised_date"]
    in_full = short.reindex(judged.index).fillna(0) == 0
    with_ships = ships["order_id"].nunique()
    express = ships.loc[ships["service_level"] == "express", "order_id"].nunique()
    return {
        "exceptions_by_type": exc["type"].value_counts().to_dict(),
        "cycle_p50": float(cycle.quantile(0.5)),
        "cycle_p90": float(cycle.quantile(0.9)),
        "fill_rate": round(fl["shipped_qty"].sum() / fl["qty"].sum(), 4),
        "otif": round(float((on_time & in_full).sum() / len(judged)), 4),
        "expedited": round(express / with_ships, 4),
    }


def _sql_five(session) -> None:
    """The same five KPIs as the pandas baseline, the way compute_kpis computes them."""
    from agent.ops import kpis as k

    scope = k._Scope(None)
    k._exception_frequency(session, scope, 0)
    k._cycle_time(session, scope)
    k._fill_rate(session, scope)
    k._otif(session, scope)
    k._expedited(session, scope)


def _run(backend: str, lines: int) -> dict:
    import datetime as dt
    import tempfile

    from agent.ops.kpis import compute_kpis
    from agent.ops.risk import FEATURES, _contributions, load_model, train
    from agent.ops.risk_features import build_features, load_frames
    from agent.policy import load_policy
    from tools.db import make_engine, session_factory, upgrade
    from tools.demo import generate
    from tools.demo.generator import MEAN_LINES

    policy = load_policy()
    tmp = tempfile.TemporaryDirectory(prefix="kpibench-model-")
    folder = tmp.name
    out: dict = {"backend": backend}
    with scratch_database(backend, "kpibench") as url:
        engine = make_engine(url, variable="TEST_POSTGRES_URL")
        try:
            upgrade(engine)
            report = generate(
                engine,
                orders=round(lines / MEAN_LINES),
                seed=SEED,
                as_of=dt.date.fromisoformat(AS_OF),
                progress=False,
            )
            out.update(orders=report.orders, lines=report.order_lines, seed_seconds=round(report.elapsed, 1))
            factory = session_factory(engine)
            with factory() as session:
                t = time.perf_counter()
                kpis = compute_kpis(session, policy=policy)
                out["kpis_sql_s"] = time.perf_counter() - t
                t = time.perf_counter()
                _sql_five(session)
                out["kpis_sql5_s"] = time.perf_counter() - t
            t = time.perf_counter()
            base = _pandas_kpis(engine)
            out["kpis_pandas_s"] = time.perf_counter() - t
            same = (
                base["exceptions_by_type"] == kpis["exception_frequency"]["by_type"]
                and base["cycle_p50"] == kpis["order_cycle_time"]["p50_days"]
                and round(base["cycle_p90"], 4) == kpis["order_cycle_time"]["p90_days"]
                and base["fill_rate"] == kpis["fill_rate"]["value"]
                and base["otif"] == kpis["on_time_in_full"]["value"]
                and base["expedited"] == kpis["expedited_freight_incidence"]["value"]
            )
            out["kpis_agree"] = bool(same)
            with factory() as session:
                t = time.perf_counter()
                frames = load_frames(session)
                feats = build_features(frames)
                out["features_s"] = time.perf_counter() - t
                out["feature_orders"] = len(feats)
                t = time.perf_counter()
                rep = train(session, seed=0, var_dir=folder, frames=frames)
                out["train_s"] = time.perf_counter() - t
                out["train_orders"] = rep["split"]["train"]["orders"]
                out["test_roc_auc"] = rep["test"]["roc_auc"]
        finally:
            engine.dispose()
    # Scoring: the model trained above, every order's features.
    model, _report = load_model(folder)
    tmp.cleanup()
    x = feats[list(FEATURES)].to_numpy(dtype=float)
    t = time.perf_counter()
    model["model"].predict_proba(x)
    vec = time.perf_counter() - t
    sample = x[:ROW_SAMPLE]
    t = time.perf_counter()
    for row in sample:
        model["model"].predict_proba(row[None, :])
    row_s = time.perf_counter() - t
    t = time.perf_counter()
    _contributions(model, x[:20_000])
    explain_s = time.perf_counter() - t
    out.update(
        score_orders=len(x),
        score_vectorised_s=vec,
        score_vectorised_per_s=len(x) / vec,
        score_row_sample=len(sample),
        score_row_per_s=len(sample) / row_s,
        explain_orders=min(20_000, len(x)),
        explain_per_s=min(20_000, len(x)) / explain_s,
    )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backends", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"]
    )
    parser.add_argument("--lines", type=int, default=1_000_000, help="order lines of the data set")
    args = parser.parse_args(argv)
    print(f"python {platform.python_version()}, {platform.machine()}, cwd {ROOT}", file=sys.stderr)
    print(
        "| backend | orders | order lines | all 11 KPIs, SQL s | 5 KPIs, SQL s | 5 KPIs, pandas s | pandas / SQL "
        "| values agree | features s | train s | AUC | scoring vectorised orders/s | row-at-a-time orders/s "
        "| vectorised / row | explained orders/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for backend in args.backends:
        r = launch(__file__, "_run", backend, str(args.lines))
        print(
            f"| {r['backend']} | {r['orders']:,} | {r['lines']:,} | {r['kpis_sql_s']:.2f} | {r['kpis_sql5_s']:.2f} | "
            f"{r['kpis_pandas_s']:.2f} | {r['kpis_pandas_s'] / r['kpis_sql5_s']:.1f}× | {'yes' if r['kpis_agree'] else 'NO'} | "
            f"{r['features_s']:.1f} | {r['train_s']:.1f} | {r['test_roc_auc']} | {r['score_vectorised_per_s']:,.0f} | "
            f"{r['score_row_per_s']:,.0f} | {r['score_vectorised_per_s'] / r['score_row_per_s']:,.0f}× | "
            f"{r['explain_per_s']:,.0f} |",
            flush=True,
        )
        print(json.dumps(r), file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_run":
        print(json.dumps(_run(sys.argv[2], int(sys.argv[3]))))
    else:
        main()
