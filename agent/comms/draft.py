"""Drafting a notice: the language model writes subject and body from the facts, the check decides.

The model gets the notice's facts (``agent.comms.due``) as a plain list, the tone of
``prompts/notice_tone.txt`` (the customer's operations team edits that file) and the language of
the customer record (English when it has none), and answers ``{"subject", "body"}``. The draft
then passes ``agent.comms.grounding.draft_errors``; on failure the model gets one retry with the
problems; when that fails too — or the model times out, errors or writes nothing — the draft is
the fact-only template in the same language (English where there is no template for it), marked
``fallback`` with the reason. A subject that does not name the order (or purchase order) gets it
prepended: a formatting repair, not a change of content.

The customer's note on the order never reaches the model: it is data, shown quoted to the approver.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from agent.comms.grounding import draft_errors
from agent.llm import LLM, LLMError, parse_json
from prompts import load

__all__ = ["LANGUAGES", "MAX_TOKENS", "draft_notice", "fact_template", "facts_text", "language_name"]

log = logging.getLogger(__name__)

MAX_TOKENS = 320
LANGUAGES = {"en": "English", "es": "Spanish", "fr": "French", "de": "German", "pt": "Portuguese"}
_HIDDEN = ("kind", "language")


class _Draft(BaseModel):
    """The model's answer. No length bounds in the schema: llama.cpp's grammar would spell each
    allowed character out (4,000 nested rules); the check refuses an overlong text instead."""

    subject: str
    body: str


def language_name(code: str | None) -> str:
    """``es`` -> Spanish, ``fr-CA`` -> French; empty -> English; an unknown code as it is."""
    if not code:
        return "English"
    return LANGUAGES.get(code.split("-")[0].split("_")[0].lower(), code)


def _lang_key(code: str | None) -> str:
    return (code or "en").split("-")[0].split("_")[0].lower()


def facts_text(facts: dict[str, Any], prefix: str = "") -> str:
    """The facts as ``name: value`` lines (nested records flattened), for the model to read."""
    lines = []
    for key, value in facts.items():
        if value in (None, "", []) or (not prefix and key in _HIDDEN):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            lines.append(facts_text(value, f"{name}."))
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    lines.append(
                        f"{name}: " + ", ".join(f"{k}={v}" for k, v in item.items() if v is not None)
                    )
                else:
                    lines.append(f"{name}: {item}")
        else:
            lines.append(f"{name}: {value}")
    return "\n".join(line for line in lines if line)


# --- the fact-only template ------------------------------------------------------------------------

_TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "dear": "Dear {name},",
        "new_promised_date": "the delivery date of your order {order_id} has changed from {old_promised_date} "
        "to {new_promised_date}.",
        "partial_shipment": "on your order {order_id}, line {line_no} ({sku}, {description}): {ships_now_qty} "
        "of {qty} ship now; the remaining {backorder_qty} follow as soon as they are in stock.",
        "substitution": "on your order {order_id}, line {line_no}, we will ship {qty} x {substitute_sku} "
        "({substitute_description}) in place of {ordered_sku} ({ordered_description}).",
        "backordered": "on your order {order_id}, {backordered_qty} of line {line_no} ({sku}, {description}) "
        "are now on backorder; your promised date is {promised_date}.",
        "new_carrier": "the shipment of your order {order_id} now travels with {carrier} ({service_level}); "
        "it is expected on {eta}, your promised date was {promised_date}.",
        "expedited": "the shipment of your order {order_id} now travels by {service_level} service; it is "
        "expected on {eta}, your promised date was {promised_date}.",
        "order_status": "this is an update on your order {order_id}: its promised date is {promised_date}.",
        "customer_close": "We apologise for the inconvenience.\nNorthwind Industrial Supply Customer Service",
        "subject_customer": "Order {order_id}: an update on your delivery",
        "expedite_requested": "please expedite purchase order {po_id}: {qty} x {sku} ({description}), "
        "expected on {expected_date}, needed at {deliver_to} by {needed_by}. Please confirm a new ship date.",
        "supplier_close": "Thank you.\nNorthwind Industrial Supply Procurement",
        "subject_supplier": "Purchase order {po_id}: request to expedite",
    },
    "es": {
        "dear": "Estimado/a {name}:",
        "new_promised_date": "la fecha de entrega de su pedido {order_id} ha cambiado de {old_promised_date} "
        "a {new_promised_date}.",
        "partial_shipment": "en su pedido {order_id}, línea {line_no} ({sku}, {description}): enviamos ahora "
        "{ships_now_qty} de {qty}; las {backorder_qty} restantes seguirán en cuanto haya existencias.",
        "substitution": "en su pedido {order_id}, línea {line_no}, enviaremos {qty} x {substitute_sku} "
        "({substitute_description}) en lugar de {ordered_sku} ({ordered_description}).",
        "backordered": "en su pedido {order_id}, {backordered_qty} unidades de la línea {line_no} ({sku}, "
        "{description}) quedan pendientes de existencias; su fecha prometida es {promised_date}.",
        "new_carrier": "el envío de su pedido {order_id} viaja ahora con {carrier} ({service_level}); se "
        "espera el {eta}, su fecha prometida era {promised_date}.",
        "expedited": "el envío de su pedido {order_id} viaja ahora con servicio {service_level}; se espera "
        "el {eta}, su fecha prometida era {promised_date}.",
        "order_status": "le informamos sobre su pedido {order_id}: su fecha prometida es {promised_date}.",
        "customer_close": "Lamentamos las molestias.\nServicio al Cliente de Northwind Industrial Supply",
        "subject_customer": "Pedido {order_id}: novedades sobre su entrega",
    },
    "fr": {
        "dear": "Madame, Monsieur ({name}),",
        "new_promised_date": "la date de livraison de votre commande {order_id} passe du {old_promised_date} "
        "au {new_promised_date}.",
        "partial_shipment": "sur votre commande {order_id}, ligne {line_no} ({sku}, {description}) : "
        "{ships_now_qty} sur {qty} partent maintenant ; les {backorder_qty} restants suivront dès réception.",
        "substitution": "sur votre commande {order_id}, ligne {line_no}, nous expédierons {qty} x "
        "{substitute_sku} ({substitute_description}) à la place de {ordered_sku} ({ordered_description}).",
        "backordered": "sur votre commande {order_id}, {backordered_qty} unités de la ligne {line_no} ({sku}, "
        "{description}) sont en reliquat ; votre date promise est le {promised_date}.",
        "new_carrier": "l'expédition de votre commande {order_id} voyage désormais avec {carrier} "
        "({service_level}) ; arrivée prévue le {eta}, votre date promise était le {promised_date}.",
        "expedited": "l'expédition de votre commande {order_id} voyage désormais en service {service_level} ; "
        "arrivée prévue le {eta}, votre date promise était le {promised_date}.",
        "order_status": "voici où en est votre commande {order_id} : sa date promise est le {promised_date}.",
        "customer_close": "Veuillez nous excuser pour ce désagrément.\nService clients de Northwind Industrial "
        "Supply",
        "subject_customer": "Commande {order_id} : votre livraison",
    },
}


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "-"


def _values(facts: dict[str, Any]) -> _Blank:
    values = _Blank({k: v for k, v in facts.items() if v is not None and not isinstance(v, dict | list)})
    for nested in ("line",):
        for k, v in (facts.get(nested) or {}).items():
            if v is not None:
                values.setdefault(k, v)
    return values


def fact_template(facts: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, body, language code) made of the facts only, in the customer's language when a
    template exists for it, else English. No model involved."""
    lang = _lang_key(facts.get("language"))
    if lang not in _TEMPLATES:
        lang = "en"
    t = {**_TEMPLATES["en"], **_TEMPLATES[lang]} if facts["kind"] == "customer" else _TEMPLATES["en"]
    values = _values(facts)
    if facts["kind"] == "supplier":
        lang = "en"
        values["name"] = facts.get("supplier_name") or "supplier"
        body = [t["dear"], t["expedite_requested"], t["supplier_close"]]
        subject = t["subject_supplier"]
    else:
        values["name"] = facts.get("customer_name") or "customer"
        body = [t["dear"], t.get(facts.get("change") or "", t["new_promised_date"]), t["customer_close"]]
        subject = t["subject_customer"]
    return subject.format_map(values), "\n\n".join(p.format_map(values) for p in body), lang


# --- the model's draft -----------------------------------------------------------------------------


def _messages(facts: dict[str, Any]) -> list[dict[str, str]]:
    tone = load("notice_tone").render().strip()
    language = language_name(facts.get("language"))
    if facts["kind"] == "supplier":
        return load("request_supplier").messages(
            tone=tone,
            language="English",
            facts=facts_text(facts),
            po_id=facts["po_id"],
            supplier_name=facts.get("supplier_name") or "the supplier",
        )
    return load("notify_customer").messages(
        tone=tone,
        language=language,
        facts=facts_text(facts),
        order_id=facts["order_id"],
        customer_name=facts.get("customer_name") or "the customer",
    )


def _ask(llm: LLM, messages: list[dict], usage: dict) -> _Draft:
    usage["calls"] += 1
    started = time.perf_counter()
    try:
        reply = llm.complete(messages, max_tokens=MAX_TOKENS, json_schema=_Draft)
    finally:
        usage["seconds"] += time.perf_counter() - started
    usage["prompt_tokens"] += reply.prompt_tokens
    usage["completion_tokens"] += reply.completion_tokens
    return parse_json(reply.text, _Draft)


def _named(subject: str, facts: dict[str, Any]) -> str:
    ref = facts.get("po_id") if facts["kind"] == "supplier" else facts.get("order_id")
    subject = " ".join(subject.split())
    return subject if not ref or ref in subject else f"{ref}: {subject}"[:200]


def draft_notice(
    facts: dict[str, Any], llm: LLM | None, *, other_names: Iterable[str] = ()
) -> dict[str, Any]:
    """The draft of one notice: ``{subject, body, language, fallback, reason, first_try_grounded,
    errors, model, usage}``. Never raises for a model failure: the template takes over, marked."""
    others = list(other_names)
    usage = {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0}
    model = f"{llm.provider}:{llm.name}" if llm is not None else "none"
    first_errors: list[str] = []

    def done(subject: str, body: str, language: str, reason: str | None) -> dict[str, Any]:
        usage["seconds"] = round(usage["seconds"], 3)
        if reason:
            log.warning("notice draft falls back to the fact-only template: %s", reason)
        return {
            "subject": subject,
            "body": body,
            "language": language,
            "fallback": reason is not None,
            "reason": reason,
            "first_try_grounded": usage["calls"] >= 1 and not first_errors and reason is None,
            "errors": first_errors,
            "drafted_by": "template" if reason else "model",
            "model": model,
            "usage": usage,
        }

    if llm is None:
        return done(*fact_template(facts), "no language model configured")
    messages = _messages(facts)
    language = _lang_key(facts.get("language")) if facts["kind"] == "customer" else "en"
    try:
        draft = _ask(llm, messages, usage)
        subject, body = _named(draft.subject, facts), draft.body.strip()
        first_errors = draft_errors(subject, body, facts, other_names=others)
        if not first_errors:
            return done(subject, body, language, None)
        retry = [
            *messages,
            {"role": "assistant", "content": draft.model_dump_json()},
            {
                "role": "user",
                "content": load("notice_retry").render(errors="\n".join(f"- {e}" for e in first_errors[:6])),
            },
        ]
        draft = _ask(llm, retry, usage)
        subject, body = _named(draft.subject, facts), draft.body.strip()
        second = draft_errors(subject, body, facts, other_names=others)
        if not second:
            return done(subject, body, language, None)
        reason = "not grounded after a retry: " + "; ".join(second[:3])
    except LLMError as exc:
        reason = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a provider bug must not lose the notice: logged with its traceback
        log.exception("language model failed while drafting a notice")
        reason = f"{type(exc).__name__}: {exc}"
    return done(*fact_template(facts), reason)
