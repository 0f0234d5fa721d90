"""Generate the demo data set into an upgraded, empty schema; reset it.

The simulation streams orders day by day in chunks of ``chunk_orders``: each chunk's orders,
lines, shipments and historical exceptions are written and dropped, so memory stays flat whatever
the volume. What must outlive a chunk is small and keyed: allocations per (SKU, warehouse), the
recurrence windows of the history, the injection budget. Inventory is written last, from the
summed allocations. Everything runs in one transaction: a failed seed leaves nothing behind.

Same (seed, as_of, orders) → byte-identical rows: every random draw comes from a
``random.Random`` seeded per part, nothing iterates a set or depends on the clock, and the chunk
size changes only when rows are written, never what they are.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from dataclasses import dataclass, field

from sqlalchemy import Engine, inspect, text

from tools.dataset import occupied_tables
from tools.demo.history import History
from tools.demo.openbook import OpenBook
from tools.demo.ordering import LINES_PER_ORDER, Sim
from tools.demo.plan import build_plan
from tools.demo.purchasing import purchase_orders
from tools.demo.world import COLUMNS, build_world, stream
from tools.demo.writer import Writer, open_writer
from tools.models import ERP_TABLES, PRESERVED_ON_RESET, Base, DatasetMeta, ExceptionRecord

__all__ = ["GENERATOR_VERSION", "DemoDataError", "SeedReport", "generate", "reset"]

GENERATOR_VERSION = "1"
_CHECKED_MODELS: tuple[type[Base], ...] = (*ERP_TABLES, ExceptionRecord, DatasetMeta)
CHECKED_TABLES = tuple(m.__tablename__ for m in _CHECKED_MODELS)
MEAN_LINES = sum((i + 1) * w for i, w in enumerate(LINES_PER_ORDER)) / sum(LINES_PER_ORDER)


class DemoDataError(RuntimeError):
    """The database cannot take the demo data (no schema, or records already there)."""


@dataclass(frozen=True)
class SeedReport:
    seed: int
    as_of: dt.date
    orders: int
    open_orders: int
    rows: dict[str, int] = field(default_factory=dict)  # rows written per table
    elapsed: float = 0.0  # seconds
    scenarios: dict[str, int] = field(default_factory=dict)  # open orders per injected scenario

    @property
    def order_lines(self) -> int:
        return self.rows.get("order_lines", 0)


def _require_empty(engine: Engine) -> None:
    existing = set(inspect(engine).get_table_names())
    missing = [t for t in CHECKED_TABLES if t not in existing]
    if missing:
        raise DemoDataError(
            f"the schema is missing tables ({', '.join(missing)}): "
            "run `copilot db upgrade` (tools.db.upgrade) first"
        )
    with engine.connect() as conn:
        full = occupied_tables(conn, CHECKED_TABLES)
    if full:
        raise DemoDataError(
            f"the database already holds records ({', '.join(full)}): reset it first "
            "(`copilot seed --reset`, or tools.demo.reset(engine))"
        )


def _show_progress(progress: bool | None) -> bool:
    if progress is None:
        return sys.stderr.isatty() and not os.environ.get("CI")
    return progress


def generate(
    engine: Engine,
    *,
    orders: int = 10_000,
    seed: int = 7,
    as_of: dt.date | None = None,
    progress: bool | None = None,
    chunk_orders: int = 2_000,
    method: str = "bulk",
) -> SeedReport:
    """Write a regional MRO distributor's ERP/WMS/TMS snapshot into an upgraded, empty schema.

    ``orders`` counts every order: 90 days of history plus the open book of the last two weeks.
    ``as_of`` is the data set's today (default: today). ``progress``: a tqdm bar of order lines on
    stderr; None shows it on a terminal unless ``CI`` is set. ``method``: ``bulk`` (executemany on
    SQLite, COPY on PostgreSQL) or ``orm`` (the slow baseline, for benchmarks). Raises
    :class:`DemoDataError` when the schema is missing or already holds records.
    """
    if orders < 1 or chunk_orders < 1:
        raise ValueError("orders and chunk_orders must be at least 1")
    as_of = as_of or dt.date.today()
    _require_empty(engine)
    started = time.perf_counter()
    world = build_world(seed, as_of, orders)
    plan = build_plan(world, stream(seed, "plan"))
    sim = Sim(world, plan)
    history, book = History(sim, stream(seed, "history")), OpenBook(sim, stream(seed, "open"))
    writer = open_writer(engine, method)
    from tqdm import tqdm

    bar = tqdm(
        total=round(orders * MEAN_LINES),
        unit=" lines",
        unit_scale=True,
        desc="seeding",
        disable=not _show_progress(progress),
        file=sys.stderr,
        dynamic_ncols=True,
    )
    ok = False
    try:
        for table, rows in world.master_rows():
            writer.write(table, COLUMNS[table], rows)
        writer.write(
            "purchase_orders",
            COLUMNS["purchase_orders"],
            purchase_orders(world, plan, stream(seed, "purchasing")),
        )
        _stream_orders(plan, history, book, writer, chunk_orders, bar, stream(seed, "calendar"))
        writer.write("inventory", COLUMNS["inventory"], book.inventory(stream(seed, "inventory")))
        open_orders = plan.calendar.open_total
        meta = {
            "generator": "tools.demo",
            "generator_version": GENERATOR_VERSION,
            "seed": str(seed),
            "as_of": as_of.isoformat(),
            "orders": str(orders),
            "open_orders": str(open_orders),
            **{f"rows.{t}": str(n) for t, n in sorted(writer.counts.items())},
        }
        writer.write("dataset_meta", COLUMNS["dataset_meta"], sorted(meta.items()))
        writer.commit()
        ok = True
    finally:
        writer.close(ok)
        bar.total = bar.n
        bar.close()
    return SeedReport(
        seed=seed,
        as_of=as_of,
        orders=orders,
        open_orders=open_orders,
        rows=dict(writer.counts),
        elapsed=time.perf_counter() - started,
        scenarios=dict(sorted(book.scenarios.items())),
    )


def _stream_orders(
    plan, history: History, book: OpenBook, writer: Writer, chunk_orders: int, bar, rng
) -> None:
    tables = ("orders", "order_lines", "shipments", "exceptions")
    buffers: dict[str, list] = {t: [] for t in tables}

    def flush() -> None:
        for t in tables:
            if buffers[t]:
                writer.write(t, COLUMNS[t], buffers[t])
        bar.update(len(buffers["order_lines"]))
        writer.end_chunk()
        for t in tables:
            buffers[t] = []

    cal, number, open_index, pending = plan.calendar, 100001, 0, 0
    for day, count, open_count in zip(cal.days, cal.counts, cal.open_counts, strict=False):
        still_open = set(rng.sample(range(count), open_count))  # membership only
        for j in range(count):
            order_id = f"SO-{number}"
            number += 1
            if j in still_open:
                order, lines, shipments = book.order(order_id, day, plan.slots[open_index])
                open_index += 1
            else:
                order, lines, shipments, exceptions = history.order(order_id, day)
                buffers["exceptions"].extend(exceptions)
            buffers["orders"].append(order)
            buffers["order_lines"].extend(lines)
            buffers["shipments"].extend(shipments)
            pending += 1
            if pending >= chunk_orders:
                flush()
                pending = 0
    flush()


def reset(engine: Engine) -> None:
    """Delete every row of the ERP and operational tables; the schema (and its version) stays.

    The users and the audit log (``PRESERVED_ON_RESET``) stay too: people are not demo data, and
    the hash chain must remain verifiable across a reset.

    PostgreSQL: one ``TRUNCATE ... RESTART IDENTITY CASCADE``. SQLite: ``DELETE`` child tables
    first, with foreign-key checks off for the duration (faster on millions of rows).
    """
    present = set(inspect(engine).get_table_names())
    tables = [
        t.name
        for t in reversed(Base.metadata.sorted_tables)
        if t.name in present and t.name not in PRESERVED_ON_RESET
    ]
    if not tables:
        return
    if engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t}"' for t in tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE TABLE {names} RESTART IDENTITY CASCADE"))
        return
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            for t in tables:
                conn.execute(text(f'DELETE FROM "{t}"'))
        return
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA foreign_keys = OFF")  # effective outside a transaction only
        try:
            for t in tables:
                cursor.execute(f'DELETE FROM "{t}"')
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()
    finally:
        raw.close()
