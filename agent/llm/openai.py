"""OpenAI or any OpenAI-compatible model server (vLLM, Ollama, llama.cpp's server) through langchain-openai
(``LLM_PROVIDER=openai``): the one provider with native tool calling (``chat_model``).

langchain-openai and the openai SDK are imported when such a model is made, not with the package:
most runs use the local model and need neither.
"""

from __future__ import annotations

import json
import re
import time

from agent.llm.base import LLM, LLMError, LLMResult, LLMTimeout

__all__ = ["OpenAILLM"]


class OpenAILLM(LLM):
    """OpenAI or any OpenAI-compatible server (vLLM, Ollama, llama.cpp's server) through langchain-openai."""

    provider = "openai"

    def __init__(self, model: str, *, base_url: str = "", api_key: str = "", timeout_s: float = 60.0) -> None:
        super().__init__(timeout_s=timeout_s)
        from langchain_openai import ChatOpenAI

        self.name = model
        self.chat_model = ChatOpenAI(
            model=model,
            base_url=base_url or None,
            api_key=api_key or "not-needed",
            timeout=timeout_s,
            max_retries=0,
            temperature=0,
        )

    @staticmethod
    def _errors(exc: Exception, timeout: float) -> LLMError:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return LLMTimeout(f"the model server did not answer within {timeout:g} s")
        if isinstance(exc, openai.APIStatusError):
            return LLMError(f"the model server answered {exc.status_code}: {str(exc)[:200]}")
        if isinstance(exc, openai.APIError):
            return LLMError(f"the model server failed: {str(exc)[:200]}")
        return LLMError(f"the model call failed: {type(exc).__name__}: {str(exc)[:200]}")

    def _complete(self, messages, *, max_tokens, json_schema, timeout):
        started = time.perf_counter()
        model = self.chat_model.bind(max_tokens=max_tokens, timeout=timeout)
        try:
            if json_schema is not None:
                # Function calling with a forced tool works on OpenAI and on llama.cpp's server,
                # where response_format json_schema does not.
                name = re.sub(r"[^A-Za-z0-9_-]", "_", str(json_schema.get("title") or "answer"))[:64]
                tool = {
                    "type": "function",
                    "function": {
                        "name": name,
                        "description": str(json_schema.get("description") or "Give the answer."),
                        "parameters": json_schema,
                    },
                }
                reply = model.bind(
                    tools=[tool], tool_choice={"type": "function", "function": {"name": name}}
                ).invoke(messages)
                calls = getattr(reply, "tool_calls", None) or []
                text = json.dumps(calls[0]["args"]) if calls else str(reply.content)
            else:
                reply = model.invoke(messages)
                text = str(reply.content)
        except Exception as exc:
            raise self._errors(exc, timeout) from None
        usage = getattr(reply, "usage_metadata", None) or {}
        return LLMResult(
            text.strip(),
            int(usage.get("input_tokens", 0)),
            int(usage.get("output_tokens", 0)),
            time.perf_counter() - started,
        )

    def _stream(self, messages, *, max_tokens, timeout, counts):
        deadline = time.monotonic() + timeout
        model = self.chat_model.bind(max_tokens=max_tokens, timeout=timeout)
        try:
            pieces = 0
            for chunk in model.stream(messages):
                if time.monotonic() > deadline:
                    raise LLMTimeout(f"{self.name} did not finish within {timeout:g} s")
                usage = getattr(chunk, "usage_metadata", None) or {}
                counts["prompt"] += int(usage.get("input_tokens", 0))
                counts["completion"] += int(usage.get("output_tokens", 0))
                if chunk.content:
                    pieces += 1
                    yield str(chunk.content)
            counts["completion"] = (
                counts["completion"] or pieces
            )  # servers that send no usage: one token a chunk
        except LLMError:
            raise
        except Exception as exc:
            raise self._errors(exc, timeout) from None
