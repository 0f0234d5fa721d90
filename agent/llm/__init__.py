"""The language model: facts decide, the model only writes language.

One interface (``LLM``: ``complete``, ``stream``, JSON-constrained answers read by ``parse_json``),
three providers — a local GGUF run by llama.cpp (``llamacpp``, the default, assembled by
``local_model``), any OpenAI-compatible server (``openai``), a script (``fake``) — and the factory
``get_llm`` that picks one from the settings. Every failure is an ``LLMError``; callers fall back to
fact-only text and say so.
"""

from agent.llm.base import LLM, LLMError, LLMResult, LLMTimeout, parse_json, schema_of
from agent.llm.factory import get_llm
from agent.llm.fake import FakeLLM
from agent.llm.llamacpp import LlamaCppLLM
from agent.llm.openai import OpenAILLM

__all__ = [
    "LLM",
    "FakeLLM",
    "LLMError",
    "LLMResult",
    "LLMTimeout",
    "LlamaCppLLM",
    "OpenAILLM",
    "get_llm",
    "parse_json",
    "schema_of",
]
