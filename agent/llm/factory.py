"""The one place that turns settings into a language model: ``get_llm()``."""

from __future__ import annotations

from agent.llm.base import LLM
from agent.llm.fake import FakeLLM
from agent.llm.llamacpp import LlamaCppLLM
from agent.llm.openai import OpenAILLM
from agent.settings import Settings, get_settings

__all__ = ["get_llm"]


def get_llm(settings: Settings | None = None) -> LLM:
    """The model the settings name: ``LLM_PROVIDER`` llamacpp (default), openai or fake.

    Cheap: the local model is assembled, checked and loaded at its first call, once per process.
    """
    if settings is None:
        settings = get_settings()
    if settings.llm_provider == "fake":
        return FakeLLM(timeout_s=settings.llm_timeout_s)
    if settings.llm_provider == "openai":
        return OpenAILLM(
            settings.llm_model,
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            timeout_s=settings.llm_timeout_s,
        )
    return LlamaCppLLM(
        settings.llm_model_path,
        var_dir=settings.var_dir,
        n_threads=settings.llm_threads,
        timeout_s=settings.llm_timeout_s,
        prompt_cache_mb=settings.llm_prompt_cache_mb,
    )
