"""Bulk writers: rows of plain Python values in, database rows out, all in one transaction.

The generator yields rows in the column order of :data:`tools.demo.world.COLUMNS`, with money as
integer cents, dates as ``date``, timestamps as aware ``datetime``, JSON as Python lists. Each
writer converts per column type (read from the SQLAlchemy table) to what its path stores, exactly
what the ORM would store: :class:`SqliteWriter` (``executemany`` on the raw DBAPI connection),
:class:`PostgresWriter` (psycopg 3 ``COPY ... FROM STDIN`` with ``write_row``) and
:class:`OrmWriter` (``session.add_all`` of ORM objects, flushed per table of each chunk: the naive baseline
the benchmark compares against). Tables are written parents first, so foreign keys hold throughout.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, Date, DateTime, Engine, Numeric
from sqlalchemy.orm import Session

from tools.models import Base

__all__ = ["OrmWriter", "PostgresWriter", "SqliteWriter", "Writer", "open_writer"]

Convert = Callable[[Any], Any] | None


def _kind(table: str, column: str) -> str:
    col_type = Base.metadata.tables[table].c[column].type
    for cls, name in (
        (Numeric, "money"),
        (DateTime, "datetime"),
        (Date, "date"),
        (Boolean, "bool"),
        (JSON, "json"),
    ):
        if isinstance(col_type, cls):
            return name
    return "plain"


def _cents_float(cents: int | None) -> float | None:
    return None if cents is None else cents / 100


def _cents_text(cents: int | None) -> str | None:
    return None if cents is None else f"{'-' if cents < 0 else ''}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _cents_decimal(cents: int | None) -> Decimal | None:
    return None if cents is None else Decimal(cents).scaleb(-2)


def _sqlite_datetime(value) -> str | None:  # SQLAlchemy's SQLite storage format (no zone)
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _iso(value) -> str | None:
    return None if value is None else value.isoformat()


def _json(value) -> str:
    return json.dumps(value)


class Writer:
    """Base: per-table converters, row counts, transaction control."""

    converters: ClassVar[dict[str, Convert]] = {}

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._plans: dict[tuple[str, tuple[str, ...]], list[tuple[int, Callable]]] = {}

    def _plan(self, table: str, columns: tuple[str, ...]) -> list[tuple[int, Callable]]:
        key = (table, columns)
        if key not in self._plans:
            self._plans[key] = [
                (i, convert)
                for i, c in enumerate(columns)
                if (convert := self.converters.get(_kind(table, c)))
            ]
        return self._plans[key]

    def convert(self, table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> Iterable[tuple]:
        plan = self._plan(table, columns)
        if not plan:
            return rows

        def one(row: tuple) -> tuple:
            out = list(row)
            for i, fn in plan:
                out[i] = fn(out[i])
            return tuple(out)

        return map(one, rows)

    def write(self, table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> int:
        n = self._write(table, columns, self.convert(table, columns, rows))
        self.counts[table] = self.counts.get(table, 0) + n
        return n

    def _write(self, table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> int:
        raise NotImplementedError

    def end_chunk(self) -> None:
        """Called after each chunk of orders."""

    def commit(self) -> None:
        raise NotImplementedError

    def close(self, ok: bool) -> None:
        raise NotImplementedError


class SqliteWriter(Writer):
    converters: ClassVar[dict[str, Convert]] = {
        "money": _cents_float,
        "datetime": _sqlite_datetime,
        "date": _iso,
        "bool": int,
        "json": _json,
    }

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.raw = engine.raw_connection()
        self.cursor = self.raw.cursor()

    def _write(self, table, columns, rows) -> int:
        rows = list(rows)
        sql = f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})'
        self.cursor.executemany(sql, rows)
        return len(rows)

    def commit(self) -> None:
        self.raw.commit()

    def close(self, ok: bool) -> None:
        if not ok:
            self.raw.rollback()
        self.cursor.close()
        self.raw.close()


class PostgresWriter(Writer):
    converters: ClassVar[dict[str, Convert]] = {"money": _cents_text, "json": _json}

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.raw = engine.raw_connection()
        self.conn: Any = self.raw.driver_connection  # a psycopg 3 Connection, in a transaction

    def _write(self, table, columns, rows) -> int:
        n = 0
        with self.conn.cursor() as cur, cur.copy(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
        return n

    def commit(self) -> None:
        self.raw.commit()

    def close(self, ok: bool) -> None:
        if not ok:
            self.raw.rollback()
        self.raw.close()


class OrmWriter(Writer):
    """The naive way: ORM objects, ``add_all`` and a flush per table of each chunk. The baseline."""

    converters: ClassVar[dict[str, Convert]] = {"money": _cents_decimal}

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.session = Session(engine)
        self.models = {m.class_.__tablename__: m.class_ for m in Base.registry.mappers}

    def _write(self, table, columns, rows) -> int:
        model = self.models[table]
        objects = [model(**dict(zip(columns, row, strict=False))) for row in rows]
        self.session.add_all(objects)
        # The unit of work orders inserts along relationships only (exceptions and shipments have
        # none to orders): flush each table of a chunk before its children are added.
        self.session.flush()
        return len(objects)

    def end_chunk(self) -> None:
        self.session.expunge_all()  # keep the identity map to one chunk

    def commit(self) -> None:
        self.session.commit()

    def close(self, ok: bool) -> None:
        if not ok:
            self.session.rollback()
        self.session.close()


def open_writer(engine: Engine, method: str = "bulk") -> Writer:
    if method == "orm":
        return OrmWriter(engine)
    if method != "bulk":
        raise ValueError(f"unknown write method {method!r}: 'bulk' or 'orm'")
    if engine.dialect.name == "sqlite":
        return SqliteWriter(engine)
    if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg":
        return PostgresWriter(engine)
    raise ValueError(f"no bulk writer for {engine.dialect.name}+{engine.dialect.driver}: use method='orm'")
