"""The keyed audit chain: a missing anchor breaks it, an HMAC key outside the database makes a
recomputed chain fail, a plain chain is switched over by one keyed event, signed checkpoints prove
no rewrite since, and payloads read back from PostgreSQL's JSONB hash as they were stored."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import text

from agent.governance.audit import (
    EVENT_AUDIT_KEYED,
    AuditChainBroken,
    append_event,
    canonical_json,
    list_events,
    storable,
    verify_chain,
)
from agent.governance.audit_checkpoint import take_checkpoint, verify_against
from agent.governance.audit_key import AuditKeyError, write_demo_key
from agent.settings import get_settings
from tests.test_audit import _append, _exec, _verify, write_session
from tools.db import session_factory

KEY = "k" * 40


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv("COPILOT_AUDIT_KEY", KEY)
    get_settings.cache_clear()
    yield KEY.encode()
    get_settings.cache_clear()


def _recompute_plain(engine) -> None:
    """What a forger with write access but no key does: recompute every hash as plain SHA-256."""
    with session_factory(engine)() as s:
        events = list_events(s, limit=10_000)
    prev = "0" * 64
    with engine.begin() as conn:
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
            digest = hashlib.sha256((prev + canonical_json(content)).encode()).hexdigest()
            conn.execute(
                text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE seq = :s"),
                {"p": prev, "h": digest, "s": e["seq"]},
            )
            prev = digest
        conn.execute(text("UPDATE audit_anchor SET hash = :h, keyed_from = NULL"), {"h": prev})


def test_deleting_the_tail_with_its_anchor_is_a_broken_chain(engine):
    factory = session_factory(engine)
    _append(factory, 5)
    _exec(engine, "DELETE FROM audit_events WHERE seq >= 4")
    _exec(engine, "DELETE FROM audit_anchor")
    result = _verify(engine)
    assert result["ok"] is False and "anchor row is missing" in result["reason"]
    # and the product does not paper over it by re-creating the anchor on the next append
    with pytest.raises(AuditChainBroken):
        with write_session(factory) as s:
            append_event(s, "after_the_cut")
    assert _verify(engine)["ok"] is False


def test_an_empty_chain_without_anchor_starts_cleanly(engine):
    _exec(engine, "DELETE FROM audit_anchor")
    assert _verify(engine)["ok"] is True
    _append(session_factory(engine), 2)
    assert _verify(engine)["ok"] is True


def test_a_keyed_chain_cannot_be_recomputed_without_the_key(engine, keyed):
    factory = session_factory(engine)
    _append(factory, 4)
    ok = _verify(engine)
    assert ok["ok"] and ok["keyed_from_seq"] == 1 and ok["events"] == 5  # the switch-over + 4
    _exec(engine, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")
    _recompute_plain(engine)
    result = _verify(engine)
    assert result["ok"] is False and result["first_bad_seq"] == 1, result
    # a chain verified with another key fails too
    with factory() as s:
        assert verify_chain(s, key=b"z" * 40)["ok"] is False


def test_deleting_every_keyed_event_does_not_pass_as_a_plain_chain(engine, keyed, monkeypatch):
    factory = session_factory(engine)
    _append(factory, 3)
    _exec(engine, "DELETE FROM audit_events")
    _exec(engine, "UPDATE audit_anchor SET seq = 0, hash = :h, keyed_from = NULL", h="0" * 64)
    assert _verify(engine)["ok"] is True  # nothing left to prove: an empty chain
    # the forger writes a plain chain of their own (the product's code, without the key)
    monkeypatch.delenv("COPILOT_AUDIT_KEY")
    get_settings.cache_clear()
    _append(factory, 2)
    assert _verify(engine)["ok"] is True  # without the key nothing can tell
    monkeypatch.setenv("COPILOT_AUDIT_KEY", KEY)
    get_settings.cache_clear()
    result = _verify(engine)
    assert result["ok"] is False and "no event is keyed" in result["reason"]


def test_an_existing_plain_chain_is_switched_over_by_the_first_keyed_append(engine, monkeypatch):
    factory = session_factory(engine)
    _append(factory, 3)  # no key yet: plain SHA-256
    assert _verify(engine)["keyed_from_seq"] is None
    monkeypatch.setenv("COPILOT_AUDIT_KEY", KEY)
    get_settings.cache_clear()
    assert _verify(engine)["ok"] is False  # a key is set but nothing is keyed yet: proves nothing
    _append(factory, 2)
    result = _verify(engine)
    assert result["ok"] and result["keyed_from_seq"] == 4 and result["events"] == 6
    with factory() as s:
        switch = list_events(s, event_type=EVENT_AUDIT_KEYED)
    assert switch[0]["payload"]["plain_until_seq"] == 3
    # the plain events before the switch-over are sealed by it: edit one and the chain breaks
    _exec(engine, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
    assert _verify(engine)["first_bad_seq"] == 2
    # without the key a process may neither append to the keyed chain nor verify its keyed part
    monkeypatch.delenv("COPILOT_AUDIT_KEY")
    get_settings.cache_clear()
    with pytest.raises(AuditKeyError):
        with write_session(factory) as s:
            append_event(s, "no_key")


def test_a_signed_checkpoint_proves_no_rewrite_or_cut_since(engine, keyed):
    factory = session_factory(engine)
    _append(factory, 3)
    with write_session(factory) as s:
        checkpoint = take_checkpoint(s, actor="auditor")
    _append(factory, 2)
    with factory() as s:
        assert verify_against(s, checkpoint)["ok"] is True
    # a tampered file is refused
    forged = {**checkpoint, "seq": checkpoint["seq"] - 1}
    with factory() as s, pytest.raises(AuditKeyError, match="signature"):
        verify_against(s, forged)
    # cut back below the checkpoint, anchor fixed up to the new tail: verify alone passes ...
    _exec(engine, "DELETE FROM audit_events WHERE seq >= :s", s=checkpoint["seq"])
    with factory() as s:
        tail = list_events(s, limit=10_000)[-1]
    _exec(engine, "UPDATE audit_anchor SET seq = :s, hash = :h", s=tail["seq"], h=tail["hash"])
    assert _verify(engine)["ok"] is True
    # ... but not against the checkpoint
    with factory() as s:
        result = verify_against(s, checkpoint)
    assert result["ok"] is False and "deleted since" in result["reason"]


def test_checkpoint_needs_the_key(engine):
    with write_session(session_factory(engine)) as s, pytest.raises(AuditKeyError, match="COPILOT_AUDIT_KEY"):
        take_checkpoint(s)


def test_the_demo_key_file_is_private_and_kept(tmp_path, monkeypatch, engine):
    path = write_demo_key(tmp_path / "var")
    assert path.stat().st_mode & 0o777 == 0o600
    first = path.read_text()
    assert write_demo_key(tmp_path / "var").read_text() == first  # never rotated behind one's back
    get_settings.cache_clear()
    _append(session_factory(engine), 1)  # COPILOT_VAR_DIR is tmp_path/var: the file keys the chain
    assert _verify(engine)["keyed_from_seq"] == 1


# Payload values that Python's JSON and PostgreSQL's JSONB spell differently.
AWKWARD = {
    "ship_qty": 1e20,
    "tiny": 1e-7,
    "one": 1.0,
    "neg_zero": -0.0,
    "third": 0.1 + 0.2,
    "huge": 1.5e300,
    "big_int": 2**70,
    "text": "ünïcode ✓ \u2028 emoji 🚚 nul\x00 lone\ud800",
    "nested": {"z": [1, {"b": 2.50, "a": [True, None]}], "a": {"é": "x", "ab": 1, "b": 2}},
    "keys": {"10": 1, "9": 2, "": 3},
}


@pytest.mark.postgres
def test_awkward_payloads_verify_after_a_jsonb_round_trip(pg_engine, keyed):
    factory = session_factory(pg_engine)
    with write_session(factory) as s:
        append_event(s, "awkward", payload=AWKWARD)
        append_event(s, "after", payload={"x": 1e21})
    result = _verify(pg_engine)
    assert result["ok"] is True, result
    with factory() as s:
        stored = list_events(s, event_type="awkward")[0]["payload"]
    assert stored == storable(AWKWARD)
    assert stored["ship_qty"] == 10**20 and stored["text"].count("\ufffd") == 2


def test_storable_is_a_fixed_point():
    once = storable(AWKWARD)
    assert storable(once) == once
    assert json.loads(canonical_json(once)) == once
    with pytest.raises(ValueError):
        storable({"bad": float("nan")})


def test_a_batch_appended_to_a_plain_chain_is_switched_over_first(engine, monkeypatch):
    from agent.governance.audit import AuditEntry, append_events

    factory = session_factory(engine)
    _append(factory, 2)
    monkeypatch.setenv("COPILOT_AUDIT_KEY", KEY)
    get_settings.cache_clear()
    with write_session(factory) as s:
        append_events(s, [AuditEntry("batch_event", payload={"n": n}) for n in range(3)])
    result = _verify(engine)
    assert result["ok"] and result["keyed_from_seq"] == 3 and result["events"] == 6
    with session_factory(engine)() as s:
        kinds = [e["event_type"] for e in list_events(s, limit=10)]
    assert kinds == [
        "test_event",
        "test_event",
        EVENT_AUDIT_KEYED,
        "batch_event",
        "batch_event",
        "batch_event",
    ]
    get_settings.cache_clear()
