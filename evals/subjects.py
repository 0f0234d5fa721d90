"""What the runner evaluates: our copilot (``copilot``) or the baseline ReAct agent (evals.baseline).

A subject is bound to each case's database (``bind``), triages through the entry a user hits
(``triage`` by order id, ``triage_text`` for a message), files and approves a proposal through the
real approval step (``approve``), and reports the model calls and tokens it spent (``usage``).

The approval step is ``agent.governance.requests``: the proposal is requested by the eval's own
user ``qa-eval`` (role planner; nobody decides their own request), approved by the demo user named after
the request's approver role, then approved a second time — a retried approval must be refused and
must not execute again. Values an approver supplies (``approve_params``: e.g. the ship-to fields
of ``FIX_MASTER_DATA``) go in as an ``edit`` decision, which is an approval of those values.
"""

from __future__ import annotations

import re
from typing import Any

from agent.copilot.service import Copilot
from agent.governance.requests import decide, request_action
from evals.runner import REQUESTER
from tools.errors import ToolError

__all__ = ["CopilotSubject", "approve_via_governance", "scripted_explainer"]


def approve_via_governance(
    factory,
    policy,
    order_id: str,
    *,
    action: str | None = None,
    params: dict[str, Any] | None = None,
    approve_params: dict[str, Any] | None = None,
    citations: list | None = None,
) -> dict[str, Any]:
    """Request ``action`` (None: the order's recommendation) and approve it as its approver role.

    Returns the request dict after the decision (status ``executed`` when it ran).
    """
    req = request_action(
        factory,
        policy,
        order_id=order_id,
        requested_by=REQUESTER,
        action=action,
        params=params,
        source="eval",
        citations=citations,
    )
    if req["status"] != "pending_approval":  # ESCALATE runs at once; a blocked request stays blocked
        return req
    approver = req["approver_role"]
    if approve_params:
        out = decide(
            factory,
            policy,
            req["id"],
            username=approver,
            decision="edit",
            params=dict(approve_params),
            reason="values supplied by the approver (eval case)",
        )
    else:
        out = decide(factory, policy, req["id"], username=approver, decision="approve")
    try:  # a retried approval: must be refused, and must not execute again (checked by the invariants)
        decide(factory, policy, req["id"], username=approver, decision="approve")
    except ToolError:
        pass
    return out


_CITATION = re.compile(r"^\[([^\]]+)\]", re.M)


def _section(prompt: str, name: str, other: str) -> str:
    """The prompt's ``name`` block, up to the ``other`` block if that follows (either order)."""
    _, found, rest = prompt.partition(name)
    return rest.partition(other)[0] if found else ""


def _sentence(text: str) -> str:
    """A fact line as a sentence of its own, so a claim check reads each fact apart."""
    text = text.rstrip()
    return text if text.endswith((".", "?", "!")) else text + "."


def scripted_explainer(messages: list[dict[str, str]]) -> str:
    """The ``fake`` provider's scripted model: restates the first exception line of the FACTS and
    cites the prompt's SOP passage (the one for the recommendation's exception type), copied from
    the prompt. The explanation's decision line is added by code after it, as for any model.

    It writes language without understanding it, so with ``--provider fake`` the decisions are
    what is measured; explanation quality needs a real model (``llamacpp`` or ``openai``).
    """
    prompt = "\n".join(m.get("content", "") for m in messages if m.get("role") == "user")
    facts, passages = _section(prompt, "FACTS", "SOP PASSAGE"), _section(prompt, "SOP PASSAGE", "FACTS")
    first = next((ln.strip()[2:] for ln in facts.splitlines() if ln.strip().startswith("- ")), None)
    cite = _CITATION.search(passages.strip())
    parts = [_sentence(first) if first else "Nothing blocks this order."]
    if cite:
        parts.append(f"See [{cite.group(1)}].")
    return " ".join(parts)


class CopilotSubject:
    """Our copilot through its façade (``agent.copilot.service.Copilot``)."""

    name = "copilot"

    def __init__(self, policy, llm=None) -> None:
        self.policy, self.llm = policy, llm
        self.factory = self.env = None
        self.copilot: Copilot | None = None
        self._spent: dict[str, Any] = {}

    def bind(self, factory, env) -> None:
        """Each case's database behind ``factory`` (the same factory all run long: one Copilot)."""
        self._spent = self.usage_total()
        if factory is self.factory and self.copilot is not None:
            return
        self.factory, self.env = factory, env
        self.copilot = Copilot(factory, self.policy, llm=self.llm, collection=env.collection)
        self._spent = self.usage_total()

    def _bound(self) -> Copilot:
        if self.copilot is None:
            raise RuntimeError("CopilotSubject.bind() must be called before a case runs")
        return self.copilot

    def triage(self, order_id: str) -> dict[str, Any]:
        return self._bound().triage([order_id], explain=True)[0]

    def triage_text(self, text: str) -> dict[str, Any]:
        return self._bound().triage_text(text, explain=True)

    def approve(self, result: dict[str, Any], approve_params: dict[str, Any] | None) -> dict[str, Any]:
        citations = list((result.get("explanation") or {}).get("citations") or [])
        return approve_via_governance(
            self.factory, self.policy, result["order_id"], approve_params=approve_params, citations=citations
        )

    def usage_total(self) -> dict[str, Any]:
        return dict(self.copilot.usage()) if self.copilot is not None else {}

    def usage(self) -> dict[str, Any]:
        """Model calls and tokens since the case began."""
        now = self.usage_total()
        return {
            k: now.get(k, 0) - self._spent.get(k, 0) for k in ("calls", "prompt_tokens", "completion_tokens")
        }
