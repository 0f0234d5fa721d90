"""Stored explanations: a grounded explanation is written by the model once and read many times.

The same order is explained again and again — chat, ``copilot triage --explain``, the API, the
panel, several planners — and on a small CPU one explanation costs the model seconds. An
explanation depends only on what the model was shown, so :func:`explanation_key` hashes exactly
that: the order id, the facts it reads (``facts_text``), the SOP passages (citation and text, in
order), the model (``provider:name``), the prompt templates (``explain``, ``explain_retry``) and the
token budget. The same key means the same prompt, so the stored text is the one the model would
write again (it decodes greedily); any change of a fact, passage, model or prompt is a new key, and
a stale text is never served.

Only grounded model text is kept — never the fact-only fallback — with its citations, ``cited_by``,
the usage of the calls that wrote it and when. One row per order and model: storing a new one
drops the order's older rows of that model (their facts are gone). Rows of orders without an open
exception are removed by ``copilot retention purge`` (``agent.governance.retention``).

The store is an optimisation: every read and write here logs a database error and carries on
(:func:`lookup` then reports a miss, :func:`keep` stores nothing), so an explanation never fails
because of it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from agent.copilot.explain import MAX_TOKENS, decision_line, facts_text
from prompts import load
from tools.models import StoredExplanation

__all__ = ["explanation_key", "keep", "lookup", "model_label"]

log = logging.getLogger(__name__)

_PROMPTS = ("explain", "explain_examples", "explain_retry")
_NO_CALLS = {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0}


def model_label(llm: Any) -> str:
    """``provider:name`` of the model, as explanations name it."""
    return f"{llm.provider}:{llm.name}"


def explanation_key(result: dict, passages: Sequence, llm: Any) -> str:
    """The SHA-256 (hex) of everything the explanation of ``result`` with ``passages`` by ``llm``
    depends on."""
    material = {
        "order_id": result["order_id"],
        "facts": facts_text(result),
        "decision": decision_line(result),  # its risk is not in the facts the model reads
        "passages": [[p.citation, p.text] for p in passages],
        "model": model_label(llm),
        "prompts": [load(name).sha256 for name in _PROMPTS],
        "max_tokens": MAX_TOKENS,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode("utf-8")).hexdigest()


def lookup(factory: sessionmaker[Session], key: str) -> dict[str, Any] | None:
    """The stored explanation under ``key``, shaped as ``explain_order`` returns one plus
    ``"stored": true`` and ``stored_at`` (its usage counts no call: none was made); None when there
    is none or the store cannot be read."""
    try:
        with factory() as session:
            row = session.get(StoredExplanation, key)
            if row is None:
                return None
            return {
                "text": row.text,
                "citations": list(row.citations or []),
                "fallback": False,
                "reason": None,
                "cited_by": row.cited_by,
                "model": row.model,
                "usage": dict(_NO_CALLS),
                "warning": row.warning,
                "stored": True,
                "stored_at": row.created_at.isoformat(),
            }
    except SQLAlchemyError as exc:
        log.warning("stored explanations unreadable (explaining live): %s", _first_line(exc))
        return None


def keep(factory: sessionmaker[Session], key: str, order_id: str, explanation: dict[str, Any]) -> bool:
    """Store a grounded model ``explanation`` of ``order_id`` under ``key`` (replacing the order's
    older rows of the same model, and a row of the same key whose text today's grounding check
    refused); a fallback is refused. False when nothing was stored: a fallback, the key stored by
    another process meanwhile (a race on the insert), or a database error (logged)."""
    if explanation.get("fallback") or explanation.get("stored") or not explanation.get("text"):
        return False
    model = str(explanation.get("model") or "")
    try:
        with factory() as session:
            # the order's older rows of this model, and a row of this key a laxer check once let in
            session.execute(
                delete(StoredExplanation).where(
                    (StoredExplanation.key == key)
                    | ((StoredExplanation.order_id == order_id) & (StoredExplanation.model == model))
                )
            )
            session.add(
                StoredExplanation(
                    key=key,
                    order_id=order_id,
                    model=model,
                    text=explanation["text"],
                    citations=list(explanation.get("citations") or []),
                    cited_by=str(explanation.get("cited_by") or "model"),
                    warning=explanation.get("warning"),
                    usage=dict(explanation.get("usage") or {}),
                    created_at=dt.datetime.now(dt.UTC),
                )
            )
            session.commit()
        return True
    except IntegrityError:  # the same key stored by another process (or planner) just now
        log.info("explanation of %s was stored meanwhile by another writer", order_id)
        return False
    except SQLAlchemyError as exc:
        log.warning("explanation of %s not stored: %s", order_id, _first_line(exc))
        return False


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
