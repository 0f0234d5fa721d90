"""The baseline ReAct agent (LangGraph prebuilt) as an eval subject, driven by a scripted model."""

from __future__ import annotations

import json

import pytest

from agent.llm import FakeLLM
from evals.evaluate import evaluate


@pytest.fixture(scope="module")
def sops(tmp_path_factory):
    from knowledge.embeddings import FakeEmbeddingFunction
    from knowledge.ingest import ingest
    from knowledge.store import open_collection

    collection = open_collection(FakeEmbeddingFunction(), var_dir=tmp_path_factory.mktemp("sops"))
    ingest(collection, None, echo=lambda _: None, progress=False)
    return collection


def _script(*turns: dict) -> FakeLLM:
    return FakeLLM([json.dumps(t) for t in turns], name="scripted-react")


def test_a_right_proposal_is_approved_and_executed_like_the_copilots(sops):
    llm = _script(
        {"tool": "get_order", "args": {"order_id": "SO1"}},
        {"tool": "get_customer_credit", "args": {"customer_id": "C1"}},
        {
            "tool": "search_sops",
            "args": {"question": "who releases a credit hold", "exception_types": ["CREDIT_HOLD"]},
        },
        {
            "tool": "propose_action",
            "args": {
                "order_id": "SO1",
                "exception_types": ["CREDIT_HOLD"],
                "action": "RELEASE_CREDIT_HOLD",
                "params": {"order_id": "SO1"},
                "risk": "medium",
                "approver_role": "credit_analyst",
                "reason": "account flagged, within the limit [SOP-CREDIT-001 §3.1]",
            },
        },
        {"tool": "final", "args": {"answer": "Proposed RELEASE_CREDIT_HOLD for SO1."}},
    )
    report = evaluate(
        "credit", agent="baseline", llm=llm, collection=sops, only=["credit-flag-only"], progress=False
    )
    s = report["summary"]
    r = report["runs"][0][0]
    assert s["passed"] == 1 and s["violations"] == 0, r["checks"]
    assert [e["action"] for e in r["executed"]] == ["RELEASE_CREDIT_HOLD"]
    assert r["llm_calls"] == 5 and r["prompt_tokens"] > 0
    assert r["citations"] == ["SOP-CREDIT-001 §3.1"]
    assert (
        report["meta"]["agent"] == "baseline"
        and "evals/baseline_prompt.txt" in report["meta"]["prompt_hashes"]
    )
    # the tool results went back to the model as messages
    assert any("RESULT of get_order" in m["content"] for m in llm.calls[1]["messages"])


def test_a_wrong_or_missing_proposal_fails_the_case_and_executes_nothing(sops):
    wrong = _script(
        {
            "tool": "propose_action",
            "args": {
                "order_id": "SO1",
                "exception_types": ["INVENTORY_SHORTFALL"],
                "action": "REALLOCATE_WAREHOUSE",
                "params": {"order_id": "SO1", "line_no": 1, "to_warehouse_id": "WH9"},
                "risk": "low",
                "approver_role": "planner",
            },
        },
        {"tool": "final", "args": {"answer": "done"}},
        "not json at all",  # the second case: the model answers in prose and proposes nothing
    )
    report = evaluate(
        "credit",
        agent="baseline",
        llm=wrong,
        collection=sops,
        only=["credit-flag-only", "credit-overdue-only"],
        progress=False,
    )
    s = report["summary"]
    assert s["failed"] == ["credit/credit-flag-only", "credit/credit-overdue-only"] and s["violations"] == 0
    first, second = report["runs"][0]
    failed = {c["name"] for c in first["checks"] if c["status"] == "fail"}
    assert {"exceptions", "action", "approver_role", "approval", "after_approval"} <= failed
    assert first["executed"] == [] and second["executed"] == []
    assert second["action"] is None


def _native(name: str, **arguments) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


def test_the_native_tool_format_speaks_the_models_own_tags(sops):
    """--baseline-tools native: schemas in <tools>, calls in <tool_call>, results in <tool_response>."""
    llm = FakeLLM(
        [
            "```json\n"
            + json.dumps({"name": "get_order", "arguments": {"order_id": "SO1"}})
            + "\n```",  # fenced
            _native(
                "propose_action",
                order_id="SO1",
                exception_types=["CREDIT_HOLD"],
                action="RELEASE_CREDIT_HOLD",
                params={"order_id": "SO1"},
                risk="medium",
                approver_role="credit_analyst",
                reason="flagged account within its limit [SOP-CREDIT-001 §3.1]",
            ),
            "Proposed RELEASE_CREDIT_HOLD for SO1.",  # no tag: the final answer
        ],
        name="scripted-native",
    )
    report = evaluate(
        "credit",
        agent="baseline",
        llm=llm,
        collection=sops,
        only=["credit-flag-only"],
        progress=False,
        tool_format="native",
    )
    r = report["runs"][0][0]
    assert report["summary"]["passed"] == 1, r["checks"]
    assert report["meta"]["baseline_tool_format"] == "native"
    system = llm.calls[0]["messages"][0]["content"]
    assert "<tools>" in system and '"name": "get_order"' in system and "Use it first whenever" in system
    assert "Returns the order's status" not in system  # argument and result details are left out
    assert llm.calls[0]["json_schema"] is None  # generated freely, parsed from the tags
    assert llm.calls[1]["messages"][-1]["content"].startswith("<tool_response>\n")
    assert llm.calls[1]["messages"][-2]["content"].startswith("<tool_call>\n")  # written back in the tags


def test_an_unknown_tool_format_is_refused(sops):
    with pytest.raises(ValueError, match="tool_format must be one of compact, native"):
        evaluate(
            "credit",
            agent="baseline",
            llm=FakeLLM(["x"]),
            collection=sops,
            only=["credit-flag-only"],
            tool_format="xml",
        )
