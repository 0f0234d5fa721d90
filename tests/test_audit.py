"""The audit chain: append, verify, detect every kind of tampering, export — on both backends."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import threading

import pytest
from sqlalchemy import text

from agent.governance.audit import (
    GENESIS,
    append_event,
    canonical_json,
    export_events,
    list_events,
    verify_chain,
)
from tools.db import session_factory


@contextlib.contextmanager
def write_session(factory):
    with factory() as s:
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise


def _append(factory, n: int, **fields) -> None:
    with write_session(factory) as s:
        for i in range(n):
            append_event(
                s,
                "test_event",
                actor="planner",
                role="planner",
                order_id=f"SO{i % 3}",
                request_id=i,
                payload={"i": i, "amount": "12.50", "note": "ünïcode ✓", "nested": {"b": [1, 2], "a": None}},
                **fields,
            )


def _exec(engine, sql: str, **params) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def _verify(engine) -> dict:
    with session_factory(engine)() as s:
        return verify_chain(s)


def test_a_fresh_database_has_an_intact_empty_chain(engine):
    result = _verify(engine)
    assert {k: result[k] for k in ("ok", "events", "first_bad_seq", "reason", "keyed_from_seq")} == {
        "ok": True,
        "events": 0,
        "first_bad_seq": None,
        "reason": None,
        "keyed_from_seq": None,
    }


def test_events_chain_by_sha256_over_prev_hash_and_canonical_json(engine):
    factory = session_factory(engine)
    _append(factory, 5)
    with factory() as s:
        events = list_events(s)
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    prev = GENESIS
    for e in events:
        content = {
            k: e[k]
            for k in (
                "seq",
                "event_id",
                "ts",
                "event_type",
                "actor",
                "role",
                "order_id",
                "request_id",
                "payload",
            )
        }
        assert e["prev_hash"] == prev
        assert e["hash"] == hashlib.sha256((prev + canonical_json(content)).encode()).hexdigest()
        prev = e["hash"]
    assert events[0]["payload"]["note"] == "ünïcode ✓"
    assert _verify(engine)["ok"] and _verify(engine)["events"] == 5
    with factory() as s:
        assert [e["seq"] for e in list_events(s, order_id="SO1")] == [2, 5]
        assert [e["seq"] for e in list_events(s, request_id=3)] == [4]
        assert len(list_events(s, event_type="test_event", limit=2, offset=4)) == 1


def test_an_event_rolls_back_with_its_transaction(engine):
    factory = session_factory(engine)
    _append(factory, 2)
    with pytest.raises(RuntimeError):
        with write_session(factory) as s:
            append_event(s, "doomed")
            raise RuntimeError("the caller's work failed")
    _append(factory, 1)
    result = _verify(engine)
    assert result["ok"] and result["events"] == 3


@pytest.mark.parametrize(
    "tamper, first_bad",
    [
        # an edited field
        ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 4", 4),
        # an edited payload whose own hash was recomputed by the forger: the next link breaks
        ("UPDATE audit_events SET hash = :forged WHERE seq = 4", 4),
        # a deleted event
        ("DELETE FROM audit_events WHERE seq = 4", 5),
        # the first event deleted
        ("DELETE FROM audit_events WHERE seq = 1", 2),
        # deleted at the tail: the anchor still records the last seq
        ("DELETE FROM audit_events WHERE seq = 8", 8),
    ],
)
def test_tampering_is_detected_and_the_first_bad_event_named(engine, tamper, first_bad):
    _append(session_factory(engine), 8)
    _exec(engine, tamper, forged="f" * 64)
    result = _verify(engine)
    assert result["ok"] is False
    assert result["first_bad_seq"] == first_bad, result
    assert f"seq {first_bad}" in result["reason"]


def test_reordered_events_are_detected(engine):
    _append(session_factory(engine), 6)
    # swap the positions of events 3 and 4 (their seq values)
    _exec(engine, "UPDATE audit_events SET seq = 1000 WHERE seq = 3")
    _exec(engine, "UPDATE audit_events SET seq = 3 WHERE seq = 4")
    _exec(engine, "UPDATE audit_events SET seq = 4 WHERE seq = 1000")
    assert _verify(engine)["first_bad_seq"] == 3


def test_an_inserted_event_is_detected(engine):
    factory = session_factory(engine)
    _append(factory, 4)
    # a forged event between 2 and 3: renumber 3..4 up by one and slip a row in at 3
    _exec(engine, "UPDATE audit_events SET seq = seq + 10 WHERE seq >= 3")
    _exec(engine, "UPDATE audit_events SET seq = seq - 9 WHERE seq >= 13")
    with factory() as s:
        second = list_events(s, limit=2)[1]
    _exec(
        engine,
        "INSERT INTO audit_events (seq, event_id, ts, event_type, actor, role, order_id, request_id, payload, "
        "prev_hash, hash) SELECT 3, 'forged', ts, 'decision', 'mallory', 'admin', NULL, NULL, payload, "
        ":prev, :h FROM audit_events WHERE seq = 1",
        prev=second["hash"],
        h="e" * 64,
    )
    result = _verify(engine)
    assert result["ok"] is False and result["first_bad_seq"] == 3


def test_a_well_forged_tail_event_is_caught_by_the_anchor(engine):
    factory = session_factory(engine)
    _append(factory, 3)
    with factory() as s:
        last = list_events(s)[-1]
    forged = {
        "seq": 4,
        "event_id": "forged",
        "ts": last["ts"],
        "event_type": "decision",
        "actor": "mallory",
        "role": "admin",
        "order_id": None,
        "request_id": None,
        "payload": last["payload"],
    }
    digest = hashlib.sha256((last["hash"] + canonical_json(forged)).encode()).hexdigest()
    _exec(
        engine,
        "INSERT INTO audit_events (seq, event_id, ts, event_type, actor, role, payload, prev_hash, hash) "
        "SELECT 4, 'forged', ts, 'decision', 'mallory', 'admin', payload, :prev, :h FROM audit_events "
        "WHERE seq = 3",
        prev=last["hash"],
        h=digest,
    )
    result = _verify(engine)
    assert result["ok"] is False and result["first_bad_seq"] == 3
    assert "anchor" in result["reason"]


def test_concurrent_appends_keep_one_linear_chain(engine):
    factory = session_factory(engine)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            for _ in range(15):
                _append(factory, 1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = _verify(engine)
    assert (result["ok"], result["events"], result["first_bad_seq"], result["head_seq"]) == (
        True,
        120,
        None,
        120,
    )


def test_export_jsonl_and_csv_carry_everything_needed_to_reverify(engine):
    factory = session_factory(engine)
    _append(factory, 3)
    with factory() as s:
        out = io.StringIO()
        assert export_events(s, "jsonl", out) == 3
        rows = [json.loads(line) for line in out.getvalue().splitlines()]
        buf = io.StringIO()
        assert export_events(s, "csv", buf) == 3
        with pytest.raises(ValueError, match="jsonl or csv"):
            export_events(s, "xml", io.StringIO())
    prev = GENESIS
    for row in rows:
        content = {k: v for k, v in row.items() if k not in ("prev_hash", "hash")}
        assert hashlib.sha256((prev + canonical_json(content)).encode()).hexdigest() == row["hash"]
        prev = row["hash"]
    table = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert [r["seq"] for r in table] == ["1", "2", "3"]
    assert json.loads(table[0]["payload"])["amount"] == "12.50"


def test_cli_audit_verify_and_export(monkeypatch, capsys, tmp_path):
    from agent.settings import get_settings
    from tests.cli_run import run
    from tools.db import make_engine

    assert run(monkeypatch, capsys, "db", "upgrade")[0] == 0
    engine = make_engine(get_settings().effective_database_url)
    _append(session_factory(engine), 4)
    code, out, _ = run(monkeypatch, capsys, "audit", "verify")
    assert code == 0 and "intact: 4 events" in out
    code, out, _ = run(
        monkeypatch, capsys, "audit", "export", "--format", "csv", "--output", str(tmp_path / "a.csv")
    )
    assert code == 0 and "wrote 4 events" in out
    assert (tmp_path / "a.csv").read_text().startswith("seq,event_id,ts")
    code, out, _ = run(monkeypatch, capsys, "audit", "export", "--format", "jsonl")
    assert code == 0 and len(out.splitlines()) == 4
    assert run(monkeypatch, capsys, "audit", "export", "--format", "xml")[0] == 2
    _exec(
        engine,
        "UPDATE audit_events SET payload = (SELECT payload FROM audit_events WHERE seq = 1) WHERE seq = 2",
    )
    code, out, err = run(monkeypatch, capsys, "audit", "verify")
    assert code == 1 and "seq 2" in err
    code, out, _ = run(monkeypatch, capsys, "audit", "verify", "--json")
    assert code == 1 and json.loads(out)["first_bad_seq"] == 2
    engine.dispose()


def test_events_appended_together_chain_as_if_appended_one_by_one(engine):
    # The event worker audits a whole batch with one append: the same chain, one head move.
    from agent.governance.audit import AuditEntry, append_events

    factory = session_factory(engine)
    _append(factory, 2)
    with write_session(factory) as s:
        append_events(
            s,
            [AuditEntry("batch_event", actor="source:wms", payload={"n": n}) for n in range(4)]
            + [AuditEntry("batch_event", actor="source:erp", order_id="SO1", request_id=9)],
        )
        append_events(s, [])  # nothing to append: nothing written
    result = _verify(engine)
    assert result["ok"] and result["events"] == 7 and result["head_seq"] == 7
    with factory() as s:
        events = list_events(s, event_type="batch_event")
    assert [e["seq"] for e in events] == [3, 4, 5, 6, 7]
    assert [e["payload"].get("n") for e in events] == [0, 1, 2, 3, None]
    assert events[-1]["order_id"] == "SO1" and events[-1]["request_id"] == 9
    _append(factory, 1)  # and the chain goes on from the batch's last event
    assert _verify(engine)["ok"] and _verify(engine)["events"] == 8
    with pytest.raises(ValueError, match="event_type"), write_session(factory) as s:
        append_events(s, [AuditEntry("fine"), AuditEntry("")])  # one bad entry: none written
    assert _verify(engine)["events"] == 8
