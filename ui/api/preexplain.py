"""Wiring of the pre-explainer (:mod:`agent.copilot.preexplain`) into ``copilot serve`` and
``copilot worker``: the orders it explains are those of the top ``COPILOT_PREEXPLAIN`` open
exceptions of all work queues, in queue priority order."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from agent.copilot.preexplain import PreExplainer
from agent.flow.queue import load_queue
from agent.llm import get_llm
from agent.policy import Policy
from agent.settings import Settings
from knowledge.embeddings import MiniLMEmbeddingFunction
from knowledge.store import open_collection

__all__ = ["loaded_once", "make_preexplainer", "queue_orders", "worker_parts"]

log = logging.getLogger(__name__)


def queue_orders(session: Session, policy: Policy, limit: int) -> list[str]:
    """The orders of the ``limit`` highest-priority open exceptions of all queues, in queue order."""
    items = load_queue(session, policy, limit=limit, recommendations=False)
    return list(dict.fromkeys(i["order_id"] for i in items))


def make_preexplainer(
    factory: sessionmaker[Session],
    policy: Policy,
    settings: Settings,
    *,
    llm: Callable[[], Any],
    collection: Callable[[], Any],
) -> PreExplainer | None:
    """The pre-explainer over the work queues, or None when ``COPILOT_PREEXPLAIN`` is 0 or the
    model is the scripted fake (``LLM_PROVIDER=fake``: tests and evals, where every model call is
    one the test or case made)."""
    if settings.preexplain <= 0 or settings.llm_provider == "fake":
        return None
    return PreExplainer(
        factory,
        policy,
        orders=lambda session, limit: queue_orders(session, policy, limit),
        llm=llm,
        collection=collection,
        limit=settings.preexplain,
    )


def loaded_once(load: Callable[[], Any], what: str) -> Callable[[], Any]:
    """A callable giving ``load()``'s value, loaded at the first call; None (logged once) when it
    failed."""
    lock, box = threading.Lock(), {}

    def get() -> Any:
        with lock:
            if "value" not in box:
                try:
                    box["value"] = load()
                except Exception as exc:  # a missing model file, an unreachable index: no pre-explaining
                    log.warning("pre-explaining is off: the %s did not load: %s", what, exc)
                    box["value"] = None
            return box["value"]

    return get


def worker_parts(settings: Settings) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """The model and the SOP index of a ``copilot worker`` process, loaded at the pre-explainer's
    first round (on its thread, so the worker applies events meanwhile)."""

    def model() -> Any:
        llm = get_llm(settings)
        if hasattr(llm, "load"):
            llm.load()
        return llm

    def index() -> Any:
        return open_collection(
            MiniLMEmbeddingFunction(), var_dir=settings.var_dir, chroma_url=settings.chroma_url
        )

    return loaded_once(model, "language model"), loaded_once(index, "SOP index")
