"""Chat that answers from tools on every provider: rules choose before any model, follow-ups resolve
from the thread's focus, a model that answers without a tool gets the tool's facts and one more
round; and the conversation eval suite (evals/conversations) scored per turn with the fake provider."""

from __future__ import annotations

from typing import ClassVar

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage

from agent.llm import FakeLLM
from evals.conversation import (
    Turn,
    invented_facts,
    load_threads,
    run_conversations,
    score_turn,
    scripted_model,
)
from tests.copilot_world import grounded_explainer, make_copilot, route, script


class ToolCallingFake(FakeMessagesListChatModel):
    """A scripted chat model that accepts bound tools and counts its invocations."""

    invoked: ClassVar[list] = []

    def bind_tools(self, tools, **kwargs):
        return self

    def invoke(self, messages, *args, **kwargs):
        self.invoked.append(messages)
        return super().invoke(messages, *args, **kwargs)


def _native(responses):
    ToolCallingFake.invoked = []
    chat_model = ToolCallingFake(responses=responses)
    return FakeLLM(script(explain=grounded_explainer, answer=None), chat_model=chat_model), chat_model


def test_rules_choose_before_a_native_tool_calling_model(world):
    llm, _ = _native([AIMessage("SO-100002 is blocked due to a lack of inventory.")])
    reply = make_copilot(world, llm).chat("t1", "What is blocking SO-100002?", username="planner")
    assert ToolCallingFake.invoked == []  # the rules read it: the model only explains
    assert reply["tool_calls"] == [{"name": "triage_order", "args": {"order_id": "SO-100002"}, "error": None}]
    assert reply["answer"].startswith("SO-100002 (open) is blocked by CREDIT_HOLD.")
    assert "inventory" not in reply["answer"].lower()


def test_a_native_answer_without_a_tool_gets_the_facts_and_one_more_round(world):
    llm, _ = _native(
        [
            AIMessage("SO-100002 ships tomorrow."),  # no tool called: not shown
            AIMessage("SO-100002 is held by CREDIT_HOLD; the next step is RELEASE_CREDIT_HOLD."),
        ]
    )
    reply = make_copilot(world, llm).chat("t1", "can SO-100002 go out today?", username="planner")
    assert [c["name"] for c in reply["tool_calls"]] == ["triage_order"]
    assert len(ToolCallingFake.invoked) == 2
    assert "CREDIT_HOLD" in str(ToolCallingFake.invoked[1][-1].content)  # the injected tool result
    assert reply["answer"] == "SO-100002 is held by CREDIT_HOLD; the next step is RELEASE_CREDIT_HOLD."
    assert reply["fallback"] is False


def test_a_native_retry_that_still_invents_gets_the_deterministic_answer(world):
    llm, _ = _native(
        [AIMessage("SO-100002 is fine."), AIMessage("SO-100002 ships on 2026-12-24 for 12,500.00.")]
    )
    reply = make_copilot(world, llm).chat("t1", "can SO-100002 go out today?", username="planner")
    assert reply["fallback"] is True and "not grounded" in reply["fallback_reason"]
    assert reply["answer"].startswith("SO-100002 (open) is blocked by CREDIT_HOLD.")
    assert "2026-12-24" not in reply["answer"]


@pytest.mark.parametrize("native", [False, True])
def test_a_new_thread_asking_why_not_split_asks_which_order_without_a_model(world, native):
    ToolCallingFake.invoked = []
    llm = _native([])[0] if native else FakeLLM(script())
    reply = make_copilot(world, llm).chat("new", "why not split the shipment?", username="planner")
    assert "Which order" in reply["answer"] and reply["tool_calls"] == [] and reply["fallback"] is False
    assert llm.calls == [] and ToolCallingFake.invoked == []


def test_follow_ups_resolve_this_customer_that_sku_and_the_warehouse(world):
    llm = scripted_model()  # explains triage; phrases nothing (READ answers are their facts)
    copilot = make_copilot(world, llm)
    copilot.chat("t1", "what is blocking SO-100003?", username="planner")
    others = copilot.chat("t1", "which other orders of this customer are at risk?", username="planner")
    assert others["tool_calls"][0]["name"] == "find_customer_orders"
    assert others["tool_calls"][0]["args"] == {"customer_id": "C1", "exclude_order_id": "SO-100003"}
    assert others["answer"].startswith("Acme has 1 other open orders besides SO-100003; 0 at risk")
    assert "SO-100001 (open, promised 2026-11-20): on track" in others["answer"]
    stock = copilot.chat("t1", "how much stock of that SKU is there by warehouse?", username="planner")
    assert stock["tool_calls"][0]["name"] == "get_stock" and stock["tool_calls"][0]["args"] == {"sku": "A"}
    assert "- WH1 (east): 500 available (500 on hand, 0 allocated)" in stock["answer"]
    credit = copilot.chat("t1", "and the credit of this customer?", username="planner")
    assert credit["tool_calls"][0]["args"] == {"customer_id": "C1"}
    routes = [c for c in llm.calls if c["json_schema"] is not None]
    assert routes == []  # every choice was the rules'


def test_that_po_is_the_purchase_order_the_triage_answer_named(sqlite_engine):
    from tests.factories import clean_fixture, edit, line, order
    from tools.db import session_factory
    from tools.fixtures import load_fixture

    fixture = clean_fixture(
        order(
            "SO-100004",
            lines=[line(1, "B", qty=700, unit_price=50, backorder_qty=200)],
            promised_date="2026-11-10",
        )
    )
    edit(fixture, "purchase_orders", "PO-7", supplier_id="SUP1", sku="B", warehouse_id="WH1", qty=300,
         expected_date="2026-11-25", status="open")  # fmt: skip
    with session_factory(sqlite_engine)() as session:
        load_fixture(session, fixture, case_id="that-po")
    copilot = make_copilot(session_factory(sqlite_engine), scripted_model())
    blocked = copilot.chat("t1", "what is blocking SO-100004?", username="planner")
    assert "PO-7" in blocked["answer"]  # PROCUREMENT_DELAY names the earliest open PO
    waiting = copilot.chat("t1", "which orders are waiting on that PO?", username="planner")
    assert waiting["tool_calls"][0] == {
        "name": "get_orders_waiting_on_po",
        "args": {"po_id": "PO-7"},
        "error": None,
    }
    assert "SO-100004 line 1" in waiting["answer"]


def test_a_question_no_reading_takes_keeps_the_threads_order_instead_of_asking_which(world):
    copilot = make_copilot(world, FakeLLM([]))  # no model answer: the deterministic reading only
    copilot.chat("t1", "what is blocking SO-100003?", username="planner")
    reply = copilot.chat("t1", "what about the warehouse?", username="planner")
    assert reply["fallback"] is True and reply["tool_calls"] == []
    assert "Which order" not in reply["answer"] and "SO-100003" in reply["answer"]
    fresh = copilot.chat("t2", "what about the warehouse?", username="planner")
    assert fresh["answer"].startswith("Which order do you mean?")  # a new thread has no order


def test_a_model_that_chooses_no_tool_for_an_order_question_gets_the_facts(world):
    llm = FakeLLM(script(routes=[route("none")], explain=grounded_explainer))
    reply = make_copilot(world, llm).chat("t1", "can SO-100002 go out today?", username="planner")
    assert reply["tool_calls"][0]["name"] == "triage_order" and reply["fallback"] is True
    assert "no tool" in reply["fallback_reason"] and "CREDIT_HOLD" in reply["answer"]


def test_invented_facts_are_ids_dates_and_amounts_no_tool_returned():
    known = 'what is blocking SO-200002? {"order_id": "SO-200002", "credit_limit": "40000.00"}'
    answer = (
        "SO-200002 (limit 40000.00) ships on 2026-12-24 from WH-NORTH for 1,250.00; see SOP-CREDIT-001 §3.2."
    )
    assert invented_facts(answer, known) == ["1,250.00", "2026-12-24", "WH-NORTH"]
    assert invented_facts("Which order do you mean? Give its number, e.g. SO-100042.", "") == []


def test_a_turn_scores_its_tools_arguments_and_facts():
    turn = Turn(say="q", tools=["get_stock"], args={"sku": "A"}, must=["WH1"], must_not=["WH9"])
    good = {"answer": "A: 5 at WH1", "tool_calls": [{"name": "get_stock", "args": {"sku": "A"}}]}
    assert score_turn(turn, good, "WH1")["correct"] is True
    bad = {"answer": "A: 5 at WH9 on SO-777", "tool_calls": [{"name": "get_order", "args": {}}]}
    problems = score_turn(turn, bad, "WH9")["problems"]
    assert problems == [
        "tools ['get_order'] != ['get_stock']",
        "args {} lack {'sku': 'A'}",
        "missing 'WH1'",
        "states 'WH9'",
        "invented SO-777",
    ]


def test_the_conversation_suite_with_the_fake_provider():
    threads = load_threads()
    assert len(threads) >= 60 and sum(len(t.turns) for t in threads) >= 120
    llm = scripted_model()
    result = run_conversations(llm, provider="fake")
    s = result["summary"]
    failed = [f"{t['thread']}#{t['turn']}: {t['problems']}" for t in result["turns"] if not t["correct"]]
    assert failed == [] and s["correct_turns"] == s["turns"]
    assert s["invented_facts"] == 0
    # The rules chose every tool but for the approval instruction and the "no" after it (the model's).
    routed = [c["messages"][-1]["content"].rsplit("\n", 2)[-2:] for c in llm.calls if c["json_schema"]]
    assert [r[-1] or r[0] for r in routed] == ["request approval for that", "no, leave it"]
