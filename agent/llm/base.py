"""The language-model interface every provider implements, and the lenient JSON reading of its answers.

Facts decide, the model only writes language: every caller treats an ``LLMError`` (which includes
``LLMTimeout`` and malformed output) as "fall back to the fact-only text", never as a failed triage.

    result = llm.complete([{"role": "system", "content": "..."}, {"role": "user", "content": "..."}])
    result.text, result.prompt_tokens, result.completion_tokens, result.seconds
    for piece in llm.stream(messages): ...
    llm.complete(messages, json_schema=ToolChoice)   # schema-constrained JSON; then parse_json(text, ToolChoice)

Messages are ``{"role": "system"|"user"|"assistant", "content": str}`` dicts (LangChain messages are
accepted too). ``llm.chat_model`` is a LangChain chat model for native tool calling (openai), or
None (llamacpp, fake): callers then pick tools through ``json_schema``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from agent.llm.priority import foreground
from agent.telemetry import LLM_ERRORS, observe_llm

__all__ = [
    "LLM",
    "LLMError",
    "LLMResult",
    "LLMTimeout",
    "Message",
    "approx_tokens",
    "normalize",
    "parse_json",
    "schema_of",
]

Message = dict[str, str]


class LLMError(RuntimeError):
    """The model could not give an answer: it failed, is missing, or its output was malformed."""


class LLMTimeout(LLMError):
    """The model did not finish within its deadline (``LLM_TIMEOUT_S``)."""


@dataclass(frozen=True)
class LLMResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float


_ROLE = {
    "human": "user",
    "ai": "assistant",
    "system": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "user",
    "function": "user",
}


def normalize(messages: Sequence[Any]) -> list[Message]:
    """Plain ``{"role", "content"}`` dicts from dicts or LangChain messages; an unknown role is an error."""
    out: list[Message] = []
    for message in messages:
        if isinstance(message, dict):
            role, content = message.get("role"), message.get("content")
        else:  # a LangChain BaseMessage
            role, content = getattr(message, "type", None), getattr(message, "content", None)
        if role not in _ROLE:
            raise ValueError(f"unknown message role {role!r}")
        if not isinstance(content, str):
            content = json.dumps(content, default=str)
        out.append({"role": _ROLE[role], "content": content})
    if not out:
        raise ValueError("no messages")
    return out


def schema_of(json_schema: Any) -> dict:
    """A JSON schema dict from a dict or a pydantic model class."""
    if isinstance(json_schema, dict):
        return json_schema
    if hasattr(json_schema, "model_json_schema"):
        return json_schema.model_json_schema()
    raise TypeError("json_schema must be a JSON-schema dict or a pydantic model class")


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def parse_json(text: str, model: Any = None) -> Any:
    """Parse a model's JSON leniently, then validate it.

    Lenient: code fences and text around the outermost object are dropped, raw control characters
    inside strings are accepted (llama.cpp's grammar lets them through). Then, when ``model`` is a
    pydantic model class, the object is validated into it. Anything else raises ``LLMError``.
    """
    body = _FENCE.sub("", text.strip())
    start, end = body.find("{"), body.rfind("}")
    if start == -1 or end < start:
        raise LLMError(f"malformed model output: no JSON object in {text[:120]!r}")
    try:
        value = json.loads(body[start : end + 1], strict=False)
    except json.JSONDecodeError as exc:
        raise LLMError(f"malformed model output: {exc}") from None
    if model is None:
        return value
    try:
        return model.model_validate(value)
    except Exception as exc:  # pydantic.ValidationError: the message names the field
        raise LLMError(
            f"model output does not fit {getattr(model, '__name__', 'the schema')}: {exc}"
        ) from None


def approx_tokens(text: str) -> int:
    return len(re.findall(r"\w+|[^\w\s]", text))


class LLM:
    """A language model. Subclasses implement ``_complete`` and ``_stream``."""

    name: str = ""
    provider: str = ""
    chat_model: Any = None

    def __init__(self, *, timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        self._local = threading.local()

    def complete(
        self,
        messages: Sequence[Any],
        *,
        max_tokens: int = 256,
        json_schema: Any = None,
        timeout: float | None = None,
    ) -> LLMResult:
        """The model's whole answer. With ``json_schema`` (dict or pydantic class) the answer is JSON
        constrained to it where the provider can (grammar, function calling); validate with ``parse_json``."""
        schema = schema_of(json_schema) if json_schema is not None else None
        try:
            with foreground():  # counted unless inside agent.llm.priority.background()
                result = self._complete(
                    normalize(messages),
                    max_tokens=max_tokens,
                    json_schema=schema,
                    timeout=timeout or self.timeout_s,
                )
        except LLMError:
            LLM_ERRORS.labels(self.provider or "unknown").inc()
            raise
        observe_llm(
            self.provider or "unknown",
            "complete",
            result.seconds,
            result.prompt_tokens,
            result.completion_tokens,
        )
        return result

    def stream(
        self, messages: Sequence[Any], *, max_tokens: int = 256, timeout: float | None = None
    ) -> Iterator[str]:
        """The answer piece by piece as the model writes it; raises ``LLMTimeout`` past the deadline.

        Once the iterator is exhausted, ``last_usage()`` gives the call's tokens and seconds."""
        return self._counted(normalize(messages), max_tokens, timeout or self.timeout_s)

    def _counted(self, messages: list[Message], max_tokens: int, timeout: float) -> Iterator[str]:
        self._local.last = None
        counts = {"prompt": 0, "completion": 0}
        started, pieces = time.perf_counter(), []
        try:
            with foreground():
                for piece in self._stream(messages, max_tokens=max_tokens, timeout=timeout, counts=counts):
                    pieces.append(piece)
                    yield piece
        except LLMError:
            LLM_ERRORS.labels(self.provider or "unknown").inc()
            raise
        last = LLMResult(
            "".join(pieces), counts["prompt"], counts["completion"], time.perf_counter() - started
        )
        self._local.last = last
        observe_llm(
            self.provider or "unknown", "stream", last.seconds, last.prompt_tokens, last.completion_tokens
        )

    def keep_prefix(self, messages: Sequence[Any], upto: str) -> int:
        """Evaluate now and keep the head of the prompt ``messages`` make (its text before ``upto``),
        for a provider that keeps prompt states (llamacpp): the prompt tokens kept. Others keep none: 0."""
        return 0

    def last_usage(self) -> LLMResult | None:
        """The result of this thread's last completed ``stream`` (text, tokens, seconds), if any."""
        return getattr(self._local, "last", None)

    def _complete(
        self, messages: list[Message], *, max_tokens: int, json_schema: dict | None, timeout: float
    ) -> LLMResult:
        raise NotImplementedError

    def _stream(
        self, messages: list[Message], *, max_tokens: int, timeout: float, counts: dict
    ) -> Iterator[str]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.provider}:{self.name}>"
