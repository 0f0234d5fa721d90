"""Stored explanations (``agent.copilot.stored``): a grounded explanation is written once and read
again while its facts, passages, model and prompts stay the same; a fallback is never stored; a
broken store never breaks an explanation; retention drops the rows of orders with no open exception.
On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text, update

from agent.copilot import stored
from agent.copilot.nodes import explain_one, plain
from agent.governance.retention import purge, retention_plan
from agent.llm import FakeLLM, LLMTimeout
from agent.llm.priority import LLMPreempted, background
from agent.policy import load_policy
from agent.triage.service import triage_order
from knowledge.retrieve import Passage
from prompts import Prompt
from tests.copilot_world import grounded_explainer, load_world, make_copilot, script, sop_collection
from tools.db import session_factory
from tools.models import AuditEvent, Customer, ExceptionRecord, StoredExplanation

HELD = "SO-100002"  # credit hold
SHORT = "SO-100003"  # stock shortfall


@pytest.fixture
def factory(engine):
    load_world(engine)
    return session_factory(engine)


@pytest.fixture
def sops(tmp_path):
    return sop_collection(tmp_path)


def _explainer() -> FakeLLM:
    return FakeLLM(script(explain=grounded_explainer))


def _rows(factory) -> list[StoredExplanation]:
    with factory() as s:
        return list(s.scalars(select(StoredExplanation).order_by(StoredExplanation.order_id)))


def _fallback_events(factory) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).where(AuditEvent.event_type == "llm_fallback")) or 0


def test_a_grounded_explanation_is_stored_and_read_back_without_a_model_call(factory, sops):
    llm = _explainer()
    copilot = make_copilot(factory, llm, sops)
    first = copilot.triage([HELD])[0]["explanation"]
    assert not first["fallback"] and "stored" not in first and len(llm.calls) == 1
    [row] = _rows(factory)
    assert (row.order_id, row.model, row.text) == (HELD, "fake:fake", first["text"])
    assert row.citations == first["citations"] and row.usage["calls"] == 1

    second = copilot.triage([HELD])[0]["explanation"]
    assert len(llm.calls) == 1  # no model call
    assert second["stored"] is True and second["usage"]["calls"] == 0
    assert {k: second[k] for k in ("text", "citations", "cited_by", "model", "fallback", "warning")} == {
        k: first[k] for k in ("text", "citations", "cited_by", "model", "fallback", "warning")
    }


def test_a_stored_explanation_reaches_the_stream_at_once(factory, sops):
    copilot = make_copilot(factory, _explainer(), sops)
    written = copilot.triage([HELD])[0]["explanation"]["text"]
    with factory() as s:
        result = plain(triage_order(s, HELD, load_policy(), record=False))
    pieces: list[str] = []
    ctx = copilot._context()
    again = explain_one(ctx, result, on_token=pieces.append)
    assert again["stored"] and pieces == [written]


def test_a_changed_fact_is_a_new_key_and_the_stale_text_is_not_served(factory, sops):
    llm = _explainer()
    copilot = make_copilot(factory, llm, sops)
    copilot.triage([HELD])
    with factory() as s:  # the customer's credit changes: the facts the model reads change
        s.execute(update(Customer).where(Customer.customer_id == "C2").values(overdue_balance=1234.5))
        s.commit()
    again = copilot.triage([HELD])[0]["explanation"]
    assert "stored" not in again and len(llm.calls) == 2
    rows = _rows(factory)
    assert len(rows) == 1 and rows[0].text == again["text"]  # one row per order and model


def _passage(citation: str, body: str) -> Passage:
    return Passage(citation, body, 1.0, citation.split()[0], "t", "1", "h", "s", ("CREDIT_HOLD",))


def test_the_key_covers_order_facts_passages_model_and_prompts(factory, monkeypatch):
    with factory() as s:
        result = plain(triage_order(s, HELD, load_policy(), record=False))
    llm = FakeLLM(name="a")
    passages = [_passage("SOP-CREDIT-001 §3.2", "A credit analyst releases a hold.")]
    key = stored.explanation_key(result, passages, llm)
    assert key == stored.explanation_key(dict(result), list(passages), FakeLLM(name="a"))
    changed_fact = {**result, "exceptions": [{**result["exceptions"][0], "evidence": ["other"]}]}
    variants = [
        stored.explanation_key({**result, "order_id": "SO-9"}, passages, llm),
        stored.explanation_key(changed_fact, passages, llm),
        stored.explanation_key(result, [_passage("SOP-CREDIT-001 §3.2", "Another text.")], llm),
        stored.explanation_key(result, [_passage("SOP-CREDIT-001 §3.3", passages[0].text)], llm),
        stored.explanation_key(result, [], llm),
        stored.explanation_key(result, passages, FakeLLM(name="b")),
    ]
    real_load = stored.load
    monkeypatch.setattr(
        stored,
        "load",
        lambda name: Prompt(name, real_load(name).text + " ") if name == "explain_retry" else real_load(name),
    )
    variants.append(stored.explanation_key(result, passages, llm))
    assert key not in variants and len(set(variants)) == len(variants)


def test_a_fallback_is_never_stored(factory, sops):
    llm = FakeLLM([LLMTimeout("slow")])
    copilot = make_copilot(factory, llm, sops)
    explanation = copilot.triage([HELD])[0]["explanation"]
    assert explanation["fallback"] and _rows(factory) == []
    assert _fallback_events(factory) == 1
    assert not stored.keep(factory, "k" * 64, HELD, explanation)


def test_a_broken_store_never_breaks_an_explanation(factory, sops, caplog):
    llm = _explainer()
    copilot = make_copilot(factory, llm, sops)
    with factory() as s:
        s.execute(text("DROP TABLE stored_explanations"))
        s.commit()
    first = copilot.triage([HELD])[0]["explanation"]
    second = copilot.triage([HELD])[0]["explanation"]
    assert not first["fallback"] and not second["fallback"] and "stored" not in second
    assert len(llm.calls) == 2  # explained live each time
    assert "stored explanations unreadable" in caplog.text and "not stored" in caplog.text


def test_background_fallback_and_preemption_write_no_audit_event_and_store_nothing(factory, sops):
    copilot = make_copilot(factory, FakeLLM([LLMTimeout("slow"), LLMPreempted("a person")]), sops)
    ctx = copilot._context()
    with factory() as s:
        result = plain(triage_order(s, HELD, load_policy(), record=False))
    with background():
        assert explain_one(ctx, result)["fallback"]  # nobody saw it: logged, not audited
        with pytest.raises(LLMPreempted):  # not a model failure: no fallback text at all
            explain_one(ctx, result)
    assert _fallback_events(factory) == 0 and _rows(factory) == []


def test_retention_purges_the_explanations_of_orders_with_no_open_exception(factory, sops):
    policy = load_policy()
    copilot = make_copilot(factory, _explainer(), sops)
    copilot.triage([HELD, SHORT])  # records both orders' exceptions, stores both explanations
    assert {r.order_id for r in _rows(factory)} == {HELD, SHORT}
    with factory() as s:
        s.execute(update(ExceptionRecord).where(ExceptionRecord.order_id == SHORT).values(status="resolved"))
        s.commit()
    assert retention_plan(factory, policy)["stored_explanations"] == 1
    report = purge(factory, policy)
    assert report["stored_explanations"] == 1
    assert [r.order_id for r in _rows(factory)] == [HELD]


def test_an_answer_cut_at_the_token_budget_is_shown_but_not_stored(factory, sops):
    """Review finding: a grounded text the model stopped at max_tokens (or a server cut short) was
    stored and served to everyone until the facts changed."""
    from agent.copilot.explain import explain_order, passages_for

    with factory() as s:
        result = triage_order(s, HELD, load_policy(), record=False)
    passages = passages_for(result, sops)
    llm = _explainer()
    whole = explain_order(result, passages, llm)
    assert whole["truncated"] is False
    cut = explain_order(result, passages, _explainer(), max_tokens=whole["usage"]["completion_tokens"])
    assert cut["fallback"] is False and cut["truncated"] is True
    llm = _explainer()
    copilot = make_copilot(factory, llm, sops)
    import agent.copilot.nodes as nodes

    real = nodes.explain_order
    nodes.explain_order = lambda *a, **k: {**real(*a, **k), "truncated": True}
    try:
        shown = copilot.triage([HELD])[0]["explanation"]
    finally:
        nodes.explain_order = real
    assert shown["text"] and not shown["fallback"] and _rows(factory) == []


def test_a_stored_text_today_s_check_refuses_is_written_again(factory, sops):
    """Review finding: a text stored under a laxer grounding check was served after an upgrade."""
    llm = _explainer()
    copilot = make_copilot(factory, llm, sops)
    first = copilot.triage([HELD])[0]["explanation"]
    with factory() as s:
        s.execute(update(StoredExplanation).values(text="SO-100002 owes 999999.99 [SOP-CREDIT-001 §3.2]"))
        s.commit()
    again = copilot.triage([HELD])[0]["explanation"]
    assert "stored" not in again and again["text"] == first["text"] and len(llm.calls) == 2
    [row] = _rows(factory)
    assert row.text == first["text"]
