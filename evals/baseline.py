"""The baseline to beat: LangGraph's prebuilt ReAct agent with the same tools and the same model.

``langgraph.prebuilt.create_react_agent`` (deprecated in LangGraph 1.x in favour of
``langchain.agents.create_agent``, which needs the ``langchain`` package we do not install; the
prebuilt still ships in ``langgraph-prebuilt`` 1.1) gets the copilot's READ tools
(``tools.read.registry.build_read_tools``), ``search_sops`` (``knowledge.tool.build_sop_tool``) and
``propose_action``, and a system prompt (``evals/baseline_prompt.txt``) naming the exception types,
the action catalog and the roles. The agent must find the exceptions, choose the action with its
parameters, risk and approver, and propose it; the proposal then goes through the same approval
step as the copilot's, so the guard and the approver judge it exactly alike.

Models with native tool calling (``llm.chat_model``, e.g. OpenAI) are used as they are. The local
llama.cpp model is called through our completion API, without tools; :class:`PromptedToolChatModel`
gives it tool calling in one of two formats (``TOOL_FORMATS``): ``compact`` — one line per tool in
the prompt and one JSON object per turn, constrained by the JSON grammar; ``native`` — the format
Qwen2.5 was trained on (its chat template's: the tools' JSON schemas in ``<tools>`` tags, calls in
``<tool_call>`` tags, results in ``<tool_response>`` tags), generated freely.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool, StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field

from agent.llm import LLMError, parse_json
from evals.runner import NotRun
from evals.subjects import approve_via_governance
from knowledge.tool import build_sop_tool
from tools.read.registry import build_read_tools

__all__ = ["SYSTEM_PROMPT", "BaselineSubject", "PromptedToolChatModel", "build_propose_tool"]

SYSTEM_PROMPT = (Path(__file__).with_name("baseline_prompt.txt")).read_text(encoding="utf-8")
TOOL_FORMATS = ("compact", "native")
MAX_STEPS = 16  # graph steps per input (about 7 tool calls): a small model that loops stops there
_TOOL_RESULT_CHARS = 1200  # the local model's context is 4096 tokens
_ORDER_ID = re.compile(r"\b[A-Z]{1,4}-?\d+\b")
_SOP = re.compile(r"\b(SOP-[A-Z0-9]+(?:-[A-Z0-9]+)*(?:\s*§\s*[\d.]*\d)?)")


class ProposeArgs(BaseModel):
    order_id: str = Field(description="The order the action is for, e.g. SO-100042.")
    exception_types: list[str] = Field(
        description="Every exception type that holds for the order, e.g. ['CREDIT_HOLD']."
    )
    action: str = Field(description="One action of the catalog, e.g. RELEASE_CREDIT_HOLD, or ESCALATE.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="The action's parameters, e.g. {'order_id': 'SO-100042'}."
    )
    risk: str = Field(default="", description="none, low, medium or high.")
    approver_role: str = Field(default="", description="The role that must approve it, e.g. credit_analyst.")
    reason: str = Field(
        default="", description="One sentence: why this action, citing the SOP, e.g. [SOP-CREDIT-001 §3.2]."
    )


def build_propose_tool(sink: list[dict[str, Any]]) -> BaseTool:
    """``propose_action``: records the agent's proposal; it changes nothing (the approval step acts)."""

    def propose_action(
        order_id: str,
        exception_types: list[str],
        action: str,
        params: dict[str, Any] | None = None,
        risk: str = "",
        approver_role: str = "",
        reason: str = "",
    ) -> str:
        """Propose the next-best action for one order, once you know its exceptions.

        Call it exactly once per order, after reading the order and what its exceptions depend on.
        A person approves or rejects it; nothing changes before that.
        """
        sink.append(
            {
                "order_id": order_id.strip(),
                "exception_types": [t.strip().upper() for t in exception_types],
                "action": action.strip().upper(),
                "params": dict(params or {}),
                "risk": risk.strip().lower(),
                "approver_role": approver_role.strip().lower(),
                "reason": reason,
            }
        )
        return f"proposal recorded for {order_id}: {action}. It now waits for a person's approval."

    return StructuredTool.from_function(
        propose_action, name="propose_action", args_schema=ProposeArgs, metadata={"kind": "PROPOSE"}
    )  # records, never writes


_TOOL_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*(?:</tool_call>|$)", re.DOTALL)
_NATIVE_TOOLS = (  # Qwen2.5's chat template, word for word
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{tools}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{{"name": <function-name>, "arguments": '
    "<args-json-object>}}\n</tool_call>"
)


def _native_call(text: str) -> dict[str, Any] | None:
    """The call in a ``native`` answer: the JSON in ``<tool_call>`` tags or, leniently (the small
    model often writes it so), one JSON object with ``name`` and ``arguments`` in a code fence or alone."""
    found = _TOOL_CALL.search(text)
    candidates = [found.group(1)] if found else []
    fenced = re.search(r"```(?:json)?\s*(\{.*\})\s*```", text, re.DOTALL)
    candidates += [fenced.group(1)] if fenced else []
    candidates.append(text.strip())
    for candidate in candidates:
        try:
            call = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if (
            isinstance(call, dict)
            and isinstance(call.get("name"), str)
            and isinstance(call.get("arguments"), dict | None)
        ):
            return call
    return None


def _param_type(p: dict[str, Any], default: str) -> str:
    """A JSON-schema property's type; for an optional one (``anyOf`` with null), the other type."""
    return p.get("type") or next(
        (a.get("type") for a in p.get("anyOf", []) if a.get("type") != "null"), default
    )


def _usage_sentences(description: str) -> str:
    """A tool's first line and its "Use it ... / Do not use it ..." sentences (not the argument and
    result details: the full descriptions are 15,000 characters, more than a 4,096-token context)."""
    paras = [" ".join(p.split()) for p in (description or "").split("\n\n")]
    usage = (
        [x for x in re.split(r"(?<=\.)\s+", paras[1]) if x.startswith(("Use ", "Do not use", "Call "))]
        if len(paras) > 1
        else []
    )
    return " ".join([paras[0], *usage]).strip()


class PromptedToolChatModel(BaseChatModel):
    """Tool calling for a model called without it: the tools in the prompt, one call per turn, in
    the ``compact`` format (JSON object, grammar-constrained) or the model's ``native`` one."""

    llm: Any
    tool_specs: list[dict[str, Any]] = Field(default_factory=list)
    max_tokens: int = 300
    tool_format: str = "compact"

    @property
    def _llm_type(self) -> str:
        return "prompted-tools"

    def bind_tools(self, tools, **kwargs: Any):
        specs = [convert_to_openai_tool(t)["function"] for t in tools]
        return self.model_copy(update={"tool_specs": specs})

    def _schema(self) -> dict[str, Any]:
        names = [s["name"] for s in self.tool_specs] + ["final"]
        return {
            "type": "object",
            "properties": {"tool": {"type": "string", "enum": names}, "args": {"type": "object"}},
            "required": ["tool", "args"],
        }

    @staticmethod
    def _signature(spec: dict[str, Any]) -> str:
        """``get_order(order_id: string) — Get one order ...``: compact, so the prompt fits a small model."""
        params = spec.get("parameters", {})
        required = set(params.get("required", []))
        args = [
            f"{name}: {_param_type(p, 'any')}" + ("" if name in required else "?")
            for name, p in params.get("properties", {}).items()
        ]
        first = (spec.get("description") or "").strip().splitlines()[0] if spec.get("description") else ""
        return f"- {spec['name']}({', '.join(args)}) — {first}"

    @staticmethod
    def _native_spec(spec: dict[str, Any]) -> dict[str, Any]:
        params = spec.get("parameters", {})
        props = {
            name: {
                "type": _param_type(p, "string"),
                **({"description": p["description"]} if p.get("description") else {}),
            }
            for name, p in params.get("properties", {}).items()
        }
        return {
            "type": "function",
            "function": {
                "name": spec["name"],
                "description": _usage_sentences(spec.get("description") or ""),
                "parameters": {"type": "object", "properties": props, "required": params.get("required", [])},
            },
        }

    def _tool_prompt(self) -> str:
        """What the system prompt gets appended: the tools and how to call them, in this format."""
        if self.tool_format == "native":
            return _NATIVE_TOOLS.format(
                tools="\n".join(json.dumps(self._native_spec(s), ensure_ascii=False) for s in self.tool_specs)
            )
        tools = "\n".join(self._signature(s) for s in self.tool_specs)
        return (
            "TOOLS\n" + tools + '\n\nAnswer with ONE JSON object: {"tool": NAME, "args": {...}} to call a '
            'tool, or {"tool": "final", "args": {"answer": TEXT}} when you are done.'
        )

    def _call_text(self, call: Mapping[str, Any]) -> str:
        """An earlier tool call, written back as the model wrote it in this format."""
        if self.tool_format == "native":
            return (
                "<tool_call>\n"
                + json.dumps({"name": call["name"], "arguments": call["args"]}, ensure_ascii=False)
                + "\n</tool_call>"
            )
        return json.dumps({"tool": call["name"], "args": call["args"]})

    def _result_text(self, m: ToolMessage) -> str:
        """A tool's result (cut to fit the context), in this format."""
        content = str(m.content)[:_TOOL_RESULT_CHARS]
        if self.tool_format == "native":
            return f"<tool_response>\n{content}\n</tool_response>"
        return f"RESULT of {m.name}: {content}"

    def _messages(self, messages: list[BaseMessage]) -> list[dict[str, str]]:
        how = self._tool_prompt()
        out: list[dict[str, str]] = []
        for m in messages:
            if m.type == "system":
                out.append({"role": "system", "content": f"{m.content}\n\n{how}"})
            elif isinstance(m, ToolMessage):
                out.append({"role": "user", "content": self._result_text(m)})
            elif isinstance(m, AIMessage) and m.tool_calls:
                out.append({"role": "assistant", "content": self._call_text(m.tool_calls[0])})
            else:
                out.append({"role": "assistant" if m.type == "ai" else "user", "content": str(m.content)})
        if not out or out[0]["role"] != "system":
            out.insert(0, {"role": "system", "content": how})
        return out

    def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        native = self.tool_format == "native"
        result = self.llm.complete(
            self._messages(messages),
            max_tokens=self.max_tokens,
            json_schema=None if native else self._schema(),
        )
        usage = {
            "input_tokens": result.prompt_tokens,
            "output_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens,
        }
        obj: dict[str, Any]
        if native:
            call = _native_call(result.text)
            obj = (
                {"tool": call["name"], "args": call.get("arguments")}
                if call
                else {"tool": "final", "args": {"answer": result.text}}
            )
        else:
            try:
                obj = parse_json(result.text)
            except LLMError:
                obj = {"tool": "final", "args": {"answer": result.text}}
        name = str(obj.get("tool") or "final")
        args: dict[str, Any] = obj["args"] if isinstance(obj.get("args"), dict) else {}
        if name == "final" or name not in {s["name"] for s in self.tool_specs}:
            message = AIMessage(content=str(args.get("answer") or result.text), usage_metadata=usage)
        else:
            calls = sum(1 for m in messages if isinstance(m, AIMessage) and m.tool_calls)
            message = AIMessage(
                content="",
                tool_calls=[{"name": name, "args": args, "id": f"call_{calls + 1}"}],
                usage_metadata=usage,
            )
        return ChatResult(generations=[ChatGeneration(message=message)])


class _Usage(BaseCallbackHandler):
    def __init__(self) -> None:
        self.calls = self.prompt_tokens = self.completion_tokens = 0

    def on_llm_end(self, response, **kwargs: Any) -> None:
        self.calls += 1
        for gens in response.generations:
            for g in gens:
                meta = getattr(getattr(g, "message", None), "usage_metadata", None) or {}
                self.prompt_tokens += int(meta.get("input_tokens", 0))
                self.completion_tokens += int(meta.get("output_tokens", 0))


def _react_agent(model, tools, prompt: str):
    with warnings.catch_warnings():  # deprecated in LangGraph 1.x, still the prebuilt the issue names
        warnings.simplefilter("ignore")
        from langgraph.prebuilt import create_react_agent

        return create_react_agent(model, tools, prompt=prompt)


class BaselineSubject:
    """The prebuilt ReAct agent as an eval subject (``copilot eval --agent baseline``)."""

    name = "baseline"

    def __init__(self, policy, llm, tool_format: str = "compact") -> None:
        if llm is None:
            raise NotRun("the baseline needs a language model")
        if tool_format not in TOOL_FORMATS:
            raise ValueError(f"tool_format must be one of {', '.join(TOOL_FORMATS)}, not {tool_format!r}")
        self.policy, self.llm, self.tool_format = policy, llm, tool_format
        self.factory = self.env = None
        self.agent: Any = None  # the ReAct graph, built for each case's database by bind()
        self.proposals: list[dict[str, Any]] = []
        self.counter = _Usage()

    def bind(self, factory, env) -> None:
        self.factory, self.env = factory, env
        self.proposals, self.counter = [], _Usage()
        tools = [*build_read_tools(factory), build_propose_tool(self.proposals)]
        if env.collection is not None:
            tools.append(build_sop_tool(env.collection))
        model = getattr(self.llm, "chat_model", None) or PromptedToolChatModel(
            llm=self.llm, tool_format=self.tool_format
        )
        self.agent = _react_agent(model, tools, SYSTEM_PROMPT)

    def _run(self, text: str) -> str:
        from langgraph.errors import GraphRecursionError

        try:
            state = self.agent.invoke(
                {"messages": [{"role": "user", "content": text}]},
                {"recursion_limit": MAX_STEPS, "callbacks": [self.counter]},
            )
        except (GraphRecursionError, LLMError, ValueError) as exc:  # e.g. a context window overflow
            return f"(the agent stopped: {type(exc).__name__}: {str(exc)[:300]})"
        messages = state.get("messages") or []
        return str(messages[-1].content) if messages else ""

    def _result(self, order_id: str, final: str) -> dict[str, Any]:
        mine = [p for p in self.proposals if p["order_id"] == order_id]
        p = mine[-1] if mine else None
        text = "\n".join(filter(None, [p["reason"] if p else None, final]))
        citations = list(dict.fromkeys(" ".join(c.split()) for c in _SOP.findall(text)))
        rec = None
        if p:
            rec = {
                "action": p["action"],
                "params": p["params"],
                "risk": p["risk"] or None,
                "approver_role": p["approver_role"] or None,
            }
        return {
            "order_id": order_id,
            "exceptions": [{"type": t} for t in (p["exception_types"] if p else [])],
            "recommendation": rec,
            "plan": [rec] if rec else [],
            "explanation": {"text": text, "citations": citations, "fallback": False, "reason": None},
        }

    def triage(self, order_id: str) -> dict[str, Any]:
        final = self._run(f"Triage order {order_id}: find its exceptions and propose the next-best action.")
        return self._result(order_id, final)

    def triage_text(self, text: str) -> dict[str, Any]:
        final = self._run(
            "A message from a colleague or customer follows. Triage every order it names and propose "
            f"the next-best action for each.\n\nMESSAGE:\n{text}"
        )
        named = list(dict.fromkeys(p["order_id"] for p in self.proposals))
        return {
            "order_ids": named,
            "not_found": [],
            "customer_request": None,
            "results": [self._result(oid, final) for oid in named],
        }

    def approve(self, result: dict[str, Any], approve_params: dict[str, Any] | None) -> dict[str, Any]:
        rec = result["recommendation"]
        return approve_via_governance(
            self.factory,
            self.policy,
            result["order_id"],
            action=rec["action"],
            params=rec["params"],
            approve_params=approve_params,
            citations=result["explanation"]["citations"],
        )

    def usage(self) -> dict[str, Any]:
        return {
            "calls": self.counter.calls,
            "prompt_tokens": self.counter.prompt_tokens,
            "completion_tokens": self.counter.completion_tokens,
        }
