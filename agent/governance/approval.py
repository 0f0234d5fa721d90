"""The approval flow as a LangGraph graph: guard → await a decision (interrupt) → execute.

One thread per action request (``approval-<id>``), on the durable checkpointer of
``agent.checkpoint`` (SQLite beside the database, PostgreSQL at scale), so a request waiting for a
decision survives restarts and is resumed from any process. The graph is wiring only: what each
step does to the records is passed in (``agent.governance.requests`` supplies it, with the database and the
policy, which are never checkpointed).

    START → guard ─┬─ pending  → await_decision ─┬─ approve/edit → execute → END
                   ├─ auto / escalate ───────────┼──────────────→ execute
                   └─ blocked → END              └─ reject → END

``await_decision`` holds exactly one ``interrupt()`` and nothing else, so re-running it on resume
has no side effect. The decision itself (who, role checks, the approvals row) is recorded
atomically by ``agent.governance.requests.decide`` *before* the thread is resumed, and the resume value
carries only the approval's id: of 50 concurrent approvals one records the decision and resumes;
the others are refused without touching the thread.

State (JSON only; what must survive a restart):
    request_id   the action request this thread is about
    outcome      guard's routing (pending, auto, escalate, blocked), then the end state
                 (executed, failed, rejected)
    decision     approve | reject | edit, from the resume value
    approval_id  the approvals row the decision recorded (None for ESCALATE)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

__all__ = ["ApprovalState", "build_approval_graph", "is_waiting", "resume_with_decision", "thread_config"]


class ApprovalState(TypedDict, total=False):
    request_id: int
    outcome: str | None
    decision: str | None
    approval_id: int | None


GuardStep = Callable[[int], dict[str, Any]]  # request id -> {"outcome", "approval_id"?}
ExecuteStep = Callable[[int, int | None], str]  # (request id, approval id) -> end status


def thread_config(request_id: int) -> dict[str, Any]:
    return {"configurable": {"thread_id": f"approval-{request_id}"}}


def build_approval_graph(*, guard_step: GuardStep, execute_step: ExecuteStep, checkpointer):
    def guard(state: ApprovalState) -> dict[str, Any]:
        return guard_step(state["request_id"])

    def await_decision(state: ApprovalState) -> dict[str, Any]:
        value = interrupt({"request_id": state["request_id"], "waiting_for": "decision"})
        return {"decision": value["decision"], "approval_id": value.get("approval_id")}

    def execute(state: ApprovalState) -> dict[str, Any]:
        return {"outcome": execute_step(state["request_id"], state.get("approval_id"))}

    def after_guard(state: ApprovalState) -> str:
        return {"pending": "await_decision", "auto": "execute", "escalate": "execute"}.get(
            state.get("outcome") or "", END
        )

    def after_decision(state: ApprovalState) -> str:
        return "execute" if state.get("decision") in ("approve", "edit") else "rejected"

    def rejected(state: ApprovalState) -> dict[str, Any]:
        return {"outcome": "rejected"}

    g = StateGraph(ApprovalState)
    g.add_node("guard", guard)
    g.add_node("await_decision", await_decision)
    g.add_node("execute", execute)
    g.add_node("rejected", rejected)
    g.add_edge(START, "guard")
    g.add_conditional_edges("guard", after_guard, ["await_decision", "execute", END])
    g.add_conditional_edges("await_decision", after_decision, ["execute", "rejected"])
    g.add_edge("execute", END)
    g.add_edge("rejected", END)
    return g.compile(checkpointer=checkpointer)


def is_waiting(graph, request_id: int) -> bool:
    """Whether the request's thread is paused at the decision (read from the checkpointer)."""
    return tuple(graph.get_state(thread_config(request_id)).next) == ("await_decision",)


def resume_with_decision(graph, request_id: int, *, decision: str, approval_id: int | None) -> dict[str, Any]:
    """Resume the paused thread with a recorded decision; returns the final state.

    A thread that is not paused at the decision (its checkpoints were lost, e.g. an in-memory
    database in another process) continues from the decision as if it had been: the graph's own
    ``update_state(as_node=...)``. Execution is idempotent, so a resume that already ran is harmless.
    """
    config = thread_config(request_id)
    value = {"decision": decision, "approval_id": approval_id}
    if is_waiting(graph, request_id):
        return graph.invoke(Command(resume=value), config)
    graph.update_state(config, {"request_id": request_id, **value}, as_node="await_decision")
    return graph.invoke(None, config)
