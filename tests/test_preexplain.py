"""Pre-explaining the work queues (``agent.copilot.preexplain``, wired in ``ui.api.preexplain``):
the top of the queues is explained in the background and stored, a planner then reads it at once;
a preempted explanation is discarded and tried again; nothing is audited; serve and worker wiring."""

from __future__ import annotations

import logging
import signal

import pytest
from sqlalchemy import func, select

from agent.copilot import preexplain
from agent.copilot.preexplain import PreExplainer
from agent.llm import FakeLLM, LLMTimeout
from agent.llm.priority import LLMPreempted
from agent.policy import load_policy
from agent.triage.service import triage_orders
from tests import api_world
from tests.cli_run import run
from tests.copilot_world import grounded_explainer, is_explain, load_world, make_copilot, script
from tools.db import read_only, session_factory
from tools.models import AuditEvent, StoredExplanation
from ui.api.preexplain import loaded_once, make_preexplainer, queue_orders

POLICY = load_policy()


@pytest.fixture
def factory(sqlite_engine):
    """The copilot world with its exceptions recorded, so that they are in the work queues."""
    load_world(sqlite_engine)
    factory = session_factory(sqlite_engine)
    with factory() as s:
        triage_orders(s, ["SO-100001", "SO-100002", "SO-100003"], POLICY)
        s.commit()
    return factory


def _preexplainer(factory, llm, sops, *, limit=20) -> PreExplainer:
    return PreExplainer(
        factory,
        POLICY,
        orders=lambda session, n: queue_orders(session, POLICY, n),
        llm=lambda: llm,
        collection=lambda: sops,
        limit=limit,
    )


def _audit_events(factory) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent)) or 0


def _stored(factory) -> set[str]:
    with factory() as s:
        return set(s.scalars(select(StoredExplanation.order_id)))


def _explained(llm: FakeLLM) -> list[str]:
    """The orders the model was asked to explain, in order."""
    out = []
    for call in llm.calls:
        if is_explain(call["messages"]):
            user = next(m["content"] for m in call["messages"] if m["role"] == "user" and is_explain([m]))
            out.append(user.partition("FACTS")[2].split("Order ", 1)[1].split()[0])
    return out


def test_a_round_explains_the_top_of_the_queues_in_order_and_a_planner_reads_it(factory, world_sops):
    with read_only(factory) as s:
        queue = queue_orders(s, POLICY, 20)
    assert sorted(queue) == ["SO-100002", "SO-100003"]  # SO-100001 has no exception
    llm = FakeLLM(script(explain=grounded_explainer))
    before = _audit_events(factory)
    pre = _preexplainer(factory, llm, world_sops)

    done = pre.run_round()
    assert (done.orders, done.explained, done.stored, done.fallback) == (2, 2, 0, 0)
    assert _explained(llm) == queue  # queue priority order
    assert _stored(factory) == set(queue)
    assert _audit_events(factory) == before  # language, not decisions: nothing audited

    again = pre.run_round()
    assert (again.explained, again.stored) == (0, 2) and len(llm.calls) == 2

    planner = make_copilot(factory, llm, world_sops)
    [result] = planner.triage(["SO-100002"])
    assert result["explanation"]["stored"] is True and len(llm.calls) == 2


def test_the_limit_counts_exceptions_from_the_top(factory, world_sops):
    llm = FakeLLM(script(explain=grounded_explainer))
    with read_only(factory) as s:
        first = queue_orders(s, POLICY, 1)
    done = _preexplainer(factory, llm, world_sops, limit=1).run_round()
    assert done.orders == 1 and _stored(factory) == set(first)


def test_a_preempted_explanation_is_discarded_and_tried_again(factory, world_sops):
    attempts: list[str] = []

    def model(messages):
        attempts.append("x")
        if len(attempts) == 1:
            raise LLMPreempted("a planner needs the model")
        return grounded_explainer(messages)

    llm = FakeLLM(script(explain=model))
    before = _audit_events(factory)
    done = _preexplainer(factory, llm, world_sops).run_round()
    assert (done.preempted, done.explained, done.fallback) == (1, 2, 0)
    assert len(attempts) == 3 and _stored(factory) == {"SO-100002", "SO-100003"}
    assert _audit_events(factory) == before  # no llm_fallback for the aborted work


def test_a_fallback_is_not_stored_audited_or_retried_while_the_facts_stay(factory, world_sops, caplog):
    llm = FakeLLM(lambda messages: (_ for _ in ()).throw(LLMTimeout("slow")))
    pre = _preexplainer(factory, llm, world_sops)
    before = _audit_events(factory)
    with caplog.at_level(logging.INFO, logger="agent.copilot.preexplain"):
        done = pre.run_round()
    assert (done.fallback, done.explained) == (2, 0) and _stored(factory) == set()
    assert _audit_events(factory) == before and "fell back" in caplog.text
    calls = len(llm.calls)
    again = pre.run_round()
    assert again.skipped == 2 and len(llm.calls) == calls
    # an hour later (the model may only have been away) the orders are tried again
    pre._failed = {key: at - preexplain.RETRY_FALLBACK_S for key, at in pre._failed.items()}
    later = pre.run_round()
    assert later.skipped == 0 and later.fallback == 2 and len(llm.calls) > calls


def test_nothing_is_done_without_a_model_an_index_or_a_limit(factory, world_sops):
    llm = FakeLLM(script(explain=grounded_explainer))
    no_model = PreExplainer(factory, POLICY, orders=lambda s, n: ["SO-100002"], llm=lambda: None)
    no_index = PreExplainer(
        factory, POLICY, orders=lambda s, n: ["SO-100002"], llm=lambda: llm, collection=lambda: None
    )
    off = _preexplainer(factory, llm, world_sops, limit=0)
    for pre in (no_model, no_index, off):
        assert pre.run_round().orders == 0
    assert llm.calls == [] and _stored(factory) == set()


def test_serve_starts_it_once_the_model_is_ready_and_stops_it(tmp_path, monkeypatch):
    monkeypatch.setenv("COPILOT_PREEXPLAIN", "5")
    llm = FakeLLM(script(explain=grounded_explainer))
    svc = api_world.services(monkeypatch, tmp_path / "serve.db", llm=llm)
    monkeypatch.setattr(svc.settings, "llm_provider", "llamacpp")  # served by the fake given
    with svc.factory() as s:
        triage_orders(s, ["SO-100002", "SO-100003"], svc.policy)
        s.commit()
    svc.start_preexplainer()
    pre = svc.preexplainer
    assert pre is not None and pre.limit == 5 and pre._thread is not None and pre._thread.is_alive()
    pre.stop()  # the rounds are driven by hand from here
    assert pre.run_round().orders == 0  # the model has not loaded yet
    svc._load_model()
    assert pre.run_round().explained == 2 and _stored(svc.factory) == {"SO-100002", "SO-100003"}
    svc.close()
    assert svc.preexplainer is None


def test_serve_and_worker_leave_it_off_at_zero_and_with_the_fake_provider(tmp_path, monkeypatch):
    svc = api_world.services(monkeypatch, tmp_path / "off.db")  # COPILOT_PREEXPLAIN=0 (conftest)
    monkeypatch.setattr(svc.settings, "llm_provider", "llamacpp")
    svc.start_preexplainer()
    assert svc.preexplainer is None
    monkeypatch.setattr(svc.settings, "preexplain", 20)
    monkeypatch.setattr(svc.settings, "llm_provider", "fake")
    parts = {"llm": lambda: None, "collection": lambda: None}
    assert make_preexplainer(svc.factory, svc.policy, svc.settings, **parts) is None
    monkeypatch.setattr(svc.settings, "llm_provider", "openai")
    assert make_preexplainer(svc.factory, svc.policy, svc.settings, **parts) is not None
    svc.close()


def test_copilot_worker_runs_it_beside_the_event_worker_and_stops_it(tmp_path, monkeypatch, capsys):
    import agent.flow
    import ui.api.preexplain as wiring

    api_world.make_database(tmp_path / "worker.db")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'worker.db'}")
    monkeypatch.setenv("COPILOT_PREEXPLAIN", "7")
    monkeypatch.setenv("LLM_PROVIDER", "llamacpp")
    seen: list[str] = []

    class Recorder:
        def start(self):
            seen.append("start")

        def stop(self):
            seen.append("stop")

    def make(factory, policy, settings, *, llm, collection):
        seen.append(f"limit {settings.preexplain}")
        return Recorder()

    monkeypatch.setattr(wiring, "make_preexplainer", make)
    monkeypatch.setattr(agent.flow, "run_worker", lambda *a, **k: seen.append("events"))
    monkeypatch.setattr(signal, "signal", lambda *a: None)  # the test runner keeps its Ctrl-C
    code, _out, _err = run(monkeypatch, capsys, "worker")
    assert code == 0 and seen == ["limit 7", "start", "events", "stop"]


def test_a_part_that_does_not_load_turns_it_off_with_one_warning(caplog):
    loads: list[int] = []

    def broken():
        loads.append(1)
        raise FileNotFoundError("no model file")

    get = loaded_once(broken, "language model")
    with caplog.at_level(logging.WARNING):
        assert get() is None and get() is None
    assert loads == [1] and caplog.text.count("pre-explaining is off") == 1


@pytest.mark.postgres
def test_one_process_of_a_deployment_pre_explains_at_a_time(pg_engine):
    """Review finding: every `serve --workers N` process and every worker pre-explained the same
    orders side by side; on PostgreSQL a round now takes a deployment-wide turn without waiting."""
    from agent.copilot.preexplain import my_turn

    factory = session_factory(pg_engine)
    with my_turn(factory) as first:
        assert first is True
        with my_turn(factory) as second:
            assert second is False  # the other process skips its round
    with my_turn(factory) as again:  # the round ended: the turn is free
        assert again is True


def test_serve_keeps_the_explanation_heads_in_the_background_and_gives_way_to_people(tmp_path, monkeypatch):
    """Once the model has loaded, serve keeps every explanation prompt head (keep_explanation_heads)
    as background work: a person's call stops it (LLMPreempted) and it goes on after; with the fake
    provider, or before the model is ready, nothing starts."""
    from agent.llm.priority import LLMPreempted, in_background

    class Heads(FakeLLM):
        def __init__(self) -> None:
            super().__init__(["OK"])
            self.kept: list[bool] = []  # whether each call ran as background work
            self.preempt = 1

        def keep_prefix(self, messages, upto):
            self.kept.append(in_background())
            if self.preempt:
                self.preempt -= 1
                raise LLMPreempted("a person needs the model")
            return 5

    llm = Heads()
    svc = api_world.services(monkeypatch, tmp_path / "heads.db", llm=llm)
    svc.start_keeping_heads()  # the fake provider keeps nothing
    assert svc._heads_thread is None
    monkeypatch.setattr(svc.settings, "llm_provider", "llamacpp")  # served by the fake given
    svc.start_keeping_heads()  # the model has not loaded yet
    assert svc._heads_thread is None
    svc._load_model()
    svc.start_keeping_heads()
    svc._heads_thread.join(timeout=60)
    assert not svc._heads_thread.is_alive()
    pairs = sum(len(c) for c in svc.policy.decision_order.candidates.values())
    heads = svc.heads_kept["heads"]
    assert 0 < heads <= pairs and svc.heads_kept == {"heads": heads, "kept": heads, "tokens": 5 * heads}
    assert len(llm.kept) == heads + 1 and all(llm.kept)  # the preempted head again, all in the background
    assert "explanation_heads" in svc.load_seconds
    svc.close()
