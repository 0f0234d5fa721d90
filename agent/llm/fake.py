"""A scripted, deterministic language model for tests, evals and runs without a model (``LLM_PROVIDER=fake``)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from agent.llm.base import LLM, LLMError, LLMResult, Message, approx_tokens

__all__ = ["FakeLLM"]


class FakeLLM(LLM):
    """A scripted model for tests and evals.

    ``responses`` is a list consumed in order (a string is the answer; an exception instance is
    raised, e.g. ``LLMTimeout("slow")``), or a callable ``messages -> str`` (it may raise too).
    With no script every call raises ``LLMError``, so callers fall back deterministically.
    ``calls`` records the messages of each call (with ``max_tokens`` and ``json_schema``).
    """

    provider = "fake"

    def __init__(
        self,
        responses: Sequence[str | BaseException] | Callable[[list[Message]], str] | None = None,
        *,
        name: str = "fake",
        chat_model: Any = None,
        timeout_s: float = 60.0,
    ) -> None:
        super().__init__(timeout_s=timeout_s)
        self.name = name
        self.chat_model = chat_model
        self._script = responses if callable(responses) else list(responses or [])
        self._lock = threading.Lock()
        self.calls: list[dict] = []

    def _next(self, messages: list[Message]) -> str:
        with self._lock:
            if callable(self._script):
                answer: Any = self._script(messages)
            elif self._script:
                answer = self._script.pop(0)
            else:
                raise LLMError("fake model: no scripted response left")
        if isinstance(answer, BaseException):
            raise answer
        if not isinstance(answer, str):
            raise LLMError(f"fake model: scripted response is {type(answer).__name__}, not str")
        return answer

    def _complete(self, messages, *, max_tokens, json_schema, timeout):
        started = time.perf_counter()
        self.calls.append({"messages": messages, "max_tokens": max_tokens, "json_schema": json_schema})
        text = self._next(messages)
        prompt = sum(approx_tokens(m["content"]) for m in messages)
        return LLMResult(text, prompt, approx_tokens(text), time.perf_counter() - started)

    def _stream(self, messages, *, max_tokens, timeout, counts):
        self.calls.append({"messages": messages, "max_tokens": max_tokens, "json_schema": None})
        text = self._next(messages)
        counts["prompt"] = sum(approx_tokens(m["content"]) for m in messages)
        counts["completion"] = approx_tokens(text)
        yield from re.findall(r"\S+\s*|\s+", text)
