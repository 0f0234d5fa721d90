"""What the API and the panel do, in one place: both call these methods with the signed-in principal.

The heavy parts (the SOP index with its embedding model, the language model, the copilot graph)
load on first use and once; :meth:`Services.warm_up` loads them at start-up so ``/ready`` turns
green only when they are. Triage and chat go through the copilot façade, approvals through
governance, the dashboards through the operations analytics.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from sqlalchemy import func, select

from agent.checkpoint import open_checkpointer
from agent.comms import service as comms
from agent.comms.service import MESSAGE_STATUSES
from agent.comms.worker import CommsWorker
from agent.copilot.explain import keep_explanation_heads
from agent.copilot.preexplain import PreExplainer
from agent.copilot.service import Copilot
from agent.flow import all_kpis
from agent.governance import audit, requests
from agent.governance.impact import whatif as simulate_impact
from agent.governance.recovery import RecoveryLoop, process_name
from agent.governance.tokens import username_for_token
from agent.llm import get_llm
from agent.llm.priority import LLMPreempted, background, wait_until_idle
from agent.ops.anomalies import recurring_anomalies
from agent.ops.monitoring import monitoring as model_monitoring
from agent.ops.risk import RiskModelError, score_open_orders
from agent.policy import load_policy
from agent.settings import Settings, get_settings
from agent.triage.order_numbers import filter_id, order_id_of, order_mentions
from knowledge.embeddings import MiniLMEmbeddingFunction
from knowledge.ingest import ensure_index
from knowledge.retrieve import unknown_citations
from knowledge.store import open_collection
from tools.db import (
    check_connection,
    current_revision,
    head_revision,
    make_engine,
    read_only,
    session_factory,
    url_secrets,
)
from tools.errors import Forbidden, ToolError
from tools.models import Customer, ExceptionRecord
from tools.orders import order_view
from tools.sites import order_condition, scoped, visible_orders
from ui.api.auth import AuthError, Principal, load_token_store, resolve_user
from ui.api.limits import RateLimits
from ui.api.models import MAX_ORDER_IDS, MAX_TEXT_CHARS, MAX_TEXT_LINES
from ui.api.preexplain import make_preexplainer

__all__ = ["LimitExceeded", "Services", "Unavailable", "check_text_limits"]

log = logging.getLogger("copilot.api")

# A part whose warm-up failed is loaded again after 1 s, then 2, 4, ... at most 30 s apart (with a
# little jitter, so processes that failed together do not retry together), until it loads.
WARM_UP_RETRY_FIRST_S = 1.0
WARM_UP_RETRY_MAX_S = 30.0


class LimitExceeded(ToolError):
    """Input over a size limit (HTTP 413); the message names the limit."""


class Unavailable(ToolError):
    """A part the request needs is not ready (HTTP 503), e.g. the SOP index is empty."""


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def check_text_limits(text: str) -> None:
    lines = text.count("\n") + 1
    if lines > MAX_TEXT_LINES:
        raise LimitExceeded(f"the pasted text has {lines:,} lines; the limit is {MAX_TEXT_LINES:,} lines")
    if len(text) > MAX_TEXT_CHARS:
        raise LimitExceeded(
            f"the pasted text has {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,} characters"
        )


class Services:
    """One per app: the database, the policy, the tokens, and the lazily loaded model parts."""

    def __init__(
        self, settings: Settings | None = None, *, embedding_function=None, llm=None, collection=None
    ) -> None:
        self.settings = settings or get_settings()
        self.engine = make_engine(
            self.settings.effective_database_url,
            pool_size=self.settings.db_pool_size,
            max_overflow=self.settings.db_max_overflow,
        )
        self.factory = session_factory(self.engine)
        self.policy = load_policy(self.settings.policy_path)
        self.tokens = load_token_store(self.settings.api_tokens, self.settings.var_dir)
        self.limits = RateLimits(self.settings.api_rate_per_minute, self.settings.api_model_rate_per_minute)
        self._embedding_function = embedding_function
        self._llm = llm
        self._collection = collection
        self._copilot: Copilot | None = None
        self._checkpointer_cm: contextlib.AbstractContextManager[BaseCheckpointSaver] | None = None
        self._lock = threading.RLock()
        self._load_errors: dict[str, str] = {}
        self._model_ready = False
        self.load_seconds: dict[str, float] = {}  # what warm_up loaded, and how long each took
        self._warm_thread: threading.Thread | None = None
        self._retry_thread: threading.Thread | None = None
        self._closing = threading.Event()
        self.warm_up_attempts = 0
        self.comms_worker: CommsWorker | None = None
        self.recovery: RecoveryLoop | None = None
        self.preexplainer: PreExplainer | None = None
        self._heads_thread: threading.Thread | None = None
        self.heads_kept: dict[str, int] = {}  # what start_keeping_heads kept

    # --- lifecycle ------------------------------------------------------------------------------------

    def collection(self):
        with self._lock:
            if self._collection is None:
                ef = self._embedding_function
                if ef is None:
                    ef = MiniLMEmbeddingFunction()
                self._collection = open_collection(
                    ef, var_dir=self.settings.var_dir, chroma_url=self.settings.chroma_url
                )
            return self._collection

    def llm(self):
        with self._lock:
            if self._llm is None:
                self._llm = get_llm(self.settings)
            return self._llm

    def copilot(self):
        """The copilot façade with the durable checkpointer for chat threads."""
        with self._lock:
            if self._copilot is None:
                self._checkpointer_cm = open_checkpointer(self.settings.effective_database_url)
                checkpointer = self._checkpointer_cm.__enter__()
                self._copilot = Copilot(
                    self.factory,
                    self.policy,
                    llm=self.llm(),
                    collection=self.collection(),
                    checkpointer=checkpointer,
                )
            return self._copilot

    def warm_up(self) -> None:
        """Load the SOP index, the model and the copilot (with its chat routing) now, at start-up,
        not on the first request.

        The model loads in a thread of its own (llama.cpp reads and maps the weights outside the
        GIL) while the SOP index and the copilot load here. A part that fails to load is reported
        by :meth:`readiness` (with the reason), not raised: the service still answers /health and
        the endpoints that do not need that part.
        """
        self.warm_up_attempts += 1
        model = threading.Thread(target=self._load_part, args=("model", self._load_model), name="warm-model")
        model.start()
        self._load_part("sop_index", self._sop_index)
        model.join()  # the copilot takes the loaded model
        self._load_part("copilot", self.copilot)
        self._load_part("chat_routing", self._warm_routing)

    def retry_warm_up(
        self,
        on_ready: Callable[[dict[str, Any]], None] | None = None,
        *,
        first_delay_s: float = WARM_UP_RETRY_FIRST_S,
        max_delay_s: float = WARM_UP_RETRY_MAX_S,
    ) -> bool:
        """Load again, with exponential backoff, the parts whose warm-up failed (a model server not
        up yet, a database busy with another process's start-up), until all load or the service
        closes; each attempt is logged. Returns whether everything loaded; then ``on_ready(checks)``
        is called, so ``copilot serve`` says it is ready. Nothing failed: returns at once."""
        delay = first_delay_s
        while self._load_errors:
            wait = delay * random.uniform(0.8, 1.2)
            log.warning(
                "warm-up attempt %d left %s not ready; trying again in %.1f s",
                self.warm_up_attempts,
                ", ".join(f"{k} ({v})" for k, v in sorted(self._load_errors.items())),
                wait,
            )
            if self._closing.wait(wait):
                return False
            self.warm_up_attempts += 1
            loaders = {
                "model": self._load_model,
                "sop_index": self._sop_index,
                "copilot": self.copilot,
                "chat_routing": self._warm_routing,
            }
            for name in [n for n in loaders if n in self._load_errors]:  # the model before the copilot
                self._load_part(name, loaders[name])
            delay = min(delay * 2, max_delay_s)
        if self.warm_up_attempts > 1:
            log.warning("warm-up: every part loaded at attempt %d", self.warm_up_attempts)
        if on_ready is not None and self.warm_up_attempts > 1:
            on_ready(self.readiness())
        return True

    def begin_warm_up_retries(self, on_ready: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Run :meth:`retry_warm_up` in the background when a part failed to load (``copilot serve``)."""
        if self._load_errors and self._retry_thread is None:
            self._retry_thread = threading.Thread(
                target=self.retry_warm_up, args=(on_ready,), name="warm-up-retry", daemon=True
            )
            self._retry_thread.start()

    def begin_warm_up(self) -> None:
        """Start :meth:`warm_up` in the background (``copilot serve``: while the panel is built)."""
        if self._warm_thread is None:
            self._warm_thread = threading.Thread(target=self.warm_up, name="warm-up", daemon=True)
            self._warm_thread.start()

    def wait_warm_up(self) -> None:
        if self._warm_thread is None:
            self.warm_up()
        else:
            self._warm_thread.join()

    def _load_part(self, name: str, load) -> None:
        started = time.perf_counter()
        try:
            load()
            self.load_seconds[name] = round(time.perf_counter() - started, 1)
            self._load_errors.pop(name, None)
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            self._load_errors[name] = self._scrub(f"{type(exc).__name__}: {first}")
            log.warning("%s not ready: %s", name, self._load_errors[name])

    def _scrub(self, text: str) -> str:
        """``text`` without the database password (a driver error may echo its connection string)."""
        for secret in url_secrets(self.engine.url):
            text = text.replace(secret, "***")
        return text

    def _sop_index(self) -> None:
        """Open the SOP index at start-up; an empty one gets the shipped SOPs (first use, logged), so
        the service never explains from a silently empty index. Still empty: the part is not ready,
        and /ready names the command that fixes it."""
        ensure_index(self.collection(), echo=lambda line: log.warning("SOP index: %s", line))

    def _warm_routing(self) -> None:
        """The chat's router by meaning embeds its example questions (``agent.copilot.intents``)."""
        intents = self.copilot().intents
        if intents is not None:
            intents.warm()

    def _load_model(self) -> None:
        """Load the model and prove it answers: one one-token completion (the local model loads at
        its first call). A scripted fake model has nothing to load."""
        llm = self.llm()
        if llm.provider != "fake":
            llm.complete([{"role": "user", "content": "Reply with OK."}], max_tokens=1)
        self._model_ready = True

    def start_comms_worker(self) -> None:
        """Draft due notices and deliver approved messages in the background (``copilot serve``)."""
        if self.comms_worker is None:
            self.comms_worker = CommsWorker(self.factory, self.policy, self.settings, self.llm)
            self.comms_worker.start()

    def start_preexplainer(self) -> None:
        """Explain the top of the work queues ahead of time while the model is idle (``copilot
        serve``; ``COPILOT_PREEXPLAIN``): each round waits until the model and the SOP index have
        loaded."""
        if self.preexplainer is None:
            self.preexplainer = make_preexplainer(
                self.factory,
                self.policy,
                self.settings,
                llm=lambda: self._llm if self._model_ready else None,
                # an SOP index that stayed empty is not ready: no explanation without its passages
                collection=lambda: self._collection if "sop_index" not in self._load_errors else None,
            )
            if self.preexplainer is not None:
                self.preexplainer.start()

    def start_keeping_heads(self) -> None:
        """Evaluate in the background, once the model and the SOP index have loaded, the prompt head
        of every kind of explanation and keep it (:func:`agent.copilot.explain.keep_explanation_heads`:
        the local model with ``LLM_PROMPT_CACHE_MB`` above 0), so that a new order's explanation
        evaluates only its facts (``copilot serve``). It gives way to people: it starts while no
        model call is in flight, and a person's call stops it between two prompt chunks; it then
        goes on from the head it was at once the model is idle again."""
        if (
            self._heads_thread is not None
            or self.settings.llm_provider == "fake"
            or not self._model_ready
            or self._collection is None
            or "sop_index" in self._load_errors
        ):
            return
        self._heads_thread = threading.Thread(target=self._keep_heads, name="explain-heads", daemon=True)
        self._heads_thread.start()

    def _keep_heads(self) -> None:
        llm, collection = self._llm, self._collection
        with background():
            while wait_until_idle(stop=self._closing) and not self._closing.is_set():
                started = time.perf_counter()
                try:
                    self.heads_kept = keep_explanation_heads(llm, collection, self.policy)
                except LLMPreempted:
                    continue
                except Exception as exc:  # an optimisation only: explanations work without it
                    log.warning("explanation prompt heads not kept: %s: %s", type(exc).__name__, exc)
                    return
                log.info(
                    "explanation prompt heads: %(kept)d of %(heads)d kept (%(tokens)d tokens)",
                    self.heads_kept,
                )
                self.load_seconds["explanation_heads"] = round(time.perf_counter() - started, 1)
                return

    def start_recovery(self) -> None:
        """Carry on, in the background, requests another process left half-way (``copilot serve``)."""
        if self.recovery is None:
            self.recovery = RecoveryLoop(
                self.factory, self.policy, after_s=self.settings.resume_after_s, actor=process_name("serve")
            ).start()

    def close(self) -> None:
        self._closing.set()  # a warm-up retry waiting for its next attempt gives up
        if self.recovery is not None:
            self.recovery.stop()
            self.recovery = None
        if self.comms_worker is not None:
            self.comms_worker.stop()
            self.comms_worker = None
        if self.preexplainer is not None:
            self.preexplainer.stop()
            self.preexplainer = None
        with self._lock:
            if self._checkpointer_cm is not None:
                with contextlib.suppress(Exception):
                    self._checkpointer_cm.__exit__(None, None, None)
                self._checkpointer_cm, self._copilot = None, None
        self.engine.dispose()

    def readiness(self) -> dict[str, dict[str, Any]]:
        checks: dict[str, dict[str, Any]] = {}
        try:
            check_connection(self.engine)
            rev, head = current_revision(self.engine), head_revision()
            checks["database"] = {
                "ok": rev == head,
                "detail": f"schema {rev}" + ("" if rev == head else f", needs {head}"),
            }
        except Exception as exc:
            checks["database"] = {"ok": False, "detail": self._scrub(str(exc).splitlines()[0])}
        try:
            n = self.collection().count()
            checks["sop_index"] = {
                "ok": n > 0,
                "detail": f"{n} chunks" if n else "empty: run `copilot knowledge ingest`",
            }
        except Exception as exc:
            checks["sop_index"] = {"ok": False, "detail": str(exc).splitlines()[0]}
        if "model" in self._load_errors:
            checks["model"] = {"ok": False, "detail": self._load_errors["model"]}
        elif self._model_ready:
            checks["model"] = {"ok": True, "detail": f"{self._llm.provider} {self._llm.name}".strip()}
        else:
            checks["model"] = {"ok": False, "detail": "not loaded yet"}
        if "copilot" in self._load_errors:
            checks["copilot"] = {"ok": False, "detail": self._load_errors["copilot"]}
        return checks

    # --- auth -----------------------------------------------------------------------------------------

    def authenticate(self, token: str | None) -> Principal:
        """The active user of ``token``: a database token (``copilot users token issue``; revoked or
        expired ones refused at once), else one of COPILOT_API_TOKENS or the demo tokens file."""
        if not token:
            raise AuthError("missing bearer token: send 'Authorization: Bearer <token>'")
        with self.factory() as session:
            username = username_for_token(session, token.strip())
            if username is None:
                self.tokens = self.tokens.reloaded()  # the tokens file edited: revoked without a restart
                username = self.tokens.username_for(token)
            return resolve_user(session, username)

    def factory_for(self, principal: Principal):
        """Sessions limited to the principal's sites (``tools.sites``): every read below goes
        through them, so a scoped user's orders, requests, messages and lists are their sites' only."""
        return scoped(self.factory, principal.scope)

    def may_decide_for(self, principal: Principal) -> list[str]:
        if principal.role not in self.policy.roles:
            return []
        return sorted({principal.role, *self.policy.delegates(principal.role)})

    # --- orders and triage ----------------------------------------------------------------------------

    def order_detail(self, principal: Principal, order_id: str) -> dict[str, Any]:
        with read_only(self.factory_for(principal)) as session:
            order_id = order_id_of(session, order_id, self.policy.order_numbers)  # so-100042 too
            view = order_view(session, order_id)
        result = self.triage(principal, [order_id])[0]
        return {"order": view, "triage": result}

    def triage(
        self, principal: Principal, order_ids: list[str], *, explain: bool = False
    ) -> list[dict[str, Any]]:
        ids = [o.strip() for o in order_ids if o.strip()]
        if len(ids) > MAX_ORDER_IDS:
            raise LimitExceeded(f"{len(ids):,} order ids; the limit is {MAX_ORDER_IDS} per request")
        return list(self.copilot().triage(ids, explain=explain, scope=principal.scope))

    def triage_stream(self, principal: Principal, order_ids: list[str]) -> Iterator[dict[str, Any]]:
        """Triage with explanations as events: ``token`` (the model writing) and ``final``."""
        return self.copilot().triage_stream(order_ids, explain=True, scope=principal.scope)

    def triage_text(self, principal: Principal, text: str, *, explain: bool = False) -> dict[str, Any]:
        check_text_limits(text)
        copilot = self.copilot()
        # Counted before anything is triaged (reading is linear; a long list is refused for free).
        named = sum(m.report for m in order_mentions(text, copilot.policy.order_numbers))
        if named > MAX_ORDER_IDS:
            raise LimitExceeded(f"the text names {named:,} orders; the limit is {MAX_ORDER_IDS} per request")
        out = copilot.triage_text(text, explain=explain, scope=principal.scope)
        if len(out.get("order_ids") or []) > MAX_ORDER_IDS:
            raise LimitExceeded(
                f"the text names {len(out['order_ids']):,} orders; the limit is {MAX_ORDER_IDS} per request"
            )
        return out

    def chat_stream(self, thread_id: str, message: str, principal: Principal) -> Iterator[dict[str, Any]]:
        return self.copilot().chat_stream(
            thread_id, message, username=principal.username, scope=principal.scope
        )

    def chat(self, thread_id: str, message: str, principal: Principal) -> dict[str, Any]:
        return self.copilot().chat(thread_id, message, username=principal.username, scope=principal.scope)

    # --- exceptions -----------------------------------------------------------------------------------

    def list_exceptions(
        self,
        principal: Principal,
        *,
        status: str | None = "open",
        type: str | None = None,
        warehouse_id: str | None = None,
        customer_id: str | None = None,
        customer_tier: str | None = None,
        order_id: str | None = None,
        sku: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        query = select(ExceptionRecord, Customer.tier).outerjoin(
            Customer, Customer.customer_id == ExceptionRecord.customer_id
        )
        filters = {
            ExceptionRecord.status: status,
            ExceptionRecord.type: type,
            ExceptionRecord.warehouse_id: warehouse_id,
            ExceptionRecord.customer_id: customer_id,
            Customer.tier: customer_tier,
            ExceptionRecord.sku: sku,
        }
        for column, value in filters.items():
            if value:
                query = query.where(column == value)
        with read_only(self.factory_for(principal)) as session:
            if order_id:  # as typed (so-100042)
                query = query.where(
                    ExceptionRecord.order_id == filter_id(session, order_id, self.policy.order_numbers)
                )
            query = query.where(order_condition(session, ExceptionRecord.order_id))
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.execute(
                query.order_by(ExceptionRecord.first_seen_at, ExceptionRecord.id).limit(limit).offset(offset)
            ).all()
            return {
                "items": [self._exception_row(rec, tier, now) for rec, tier in rows],
                "total": total,
                "limit": limit,
                "offset": offset,
            }

    @staticmethod
    def _exception_row(rec: ExceptionRecord, tier: str | None, now: dt.datetime) -> dict[str, Any]:
        first = rec.first_seen_at if rec.first_seen_at.tzinfo else rec.first_seen_at.replace(tzinfo=dt.UTC)
        end = rec.resolved_at or now
        end = end if end.tzinfo else end.replace(tzinfo=dt.UTC)
        return {
            "id": rec.id,
            "order_id": rec.order_id,
            "type": rec.type,
            "instance_key": rec.instance_key,
            "line_no": rec.line_no,
            "shipment_id": rec.shipment_id,
            "sku": rec.sku,
            "customer_id": rec.customer_id,
            "customer_tier": tier,
            "warehouse_id": rec.warehouse_id,
            "status": rec.status,
            "assigned_role": rec.assigned_role,
            "evidence": list(rec.evidence or []),
            "first_seen_at": _iso(first),
            "detected_at": _iso(rec.detected_at),
            "resolved_at": _iso(rec.resolved_at),
            "age_days": round((end - first).total_seconds() / 86400, 2),
        }

    # --- action requests and decisions ----------------------------------------------------------------

    def request_action(
        self,
        principal: Principal,
        *,
        order_id: str,
        action: str | None = None,
        params: dict | None = None,
        citations: list | None = None,
        thread_id: str | None = None,
        source: str = "api",
    ) -> dict[str, Any]:
        if citations:
            # A requester's citations reach the approver: only real SOP sections of the index,
            # never free text (which could carry markup or a fake "pre-approved" claim).
            unknown = unknown_citations(citations, collection=self.collection())
            if unknown:
                raise ToolError(
                    f"{len(unknown)} of {len(citations)} citations name no SOP section of the index: a "
                    "citation is a section id such as 'SOP-CREDIT-001 §3.2' (copilot knowledge search finds them)"
                )
        return requests.request_action(
            self.factory_for(principal),
            self.policy,
            order_id=order_id,
            requested_by=principal.username,
            action=action,
            params=params,
            source=source,
            citations=citations,
            thread_id=thread_id,
        )

    def decide(
        self,
        principal: Principal,
        request_id: int,
        decision: str,
        *,
        reason: str | None = None,
        params: dict | None = None,
    ) -> dict[str, Any]:
        return requests.decide(
            self.factory_for(principal),
            self.policy,
            request_id,
            username=principal.username,
            decision=decision,
            reason=reason,
            params=params,
        )

    def whatif(
        self, principal: Principal, *, order_id: str, action: str | None = None, params: dict | None = None
    ) -> dict[str, Any]:
        """The impact of an action on the other open orders (simulated, rolled back)."""
        with self.factory_for(principal)() as session:
            try:
                return simulate_impact(session, self.policy, order_id=order_id, action=action, params=params)
            finally:
                session.rollback()

    def list_requests(
        self,
        principal: Principal,
        *,
        status: str | None = None,
        role: str | None = None,
        order_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Requests, newest first; ``role``: those that role may decide (its own and its delegates').
        A role the policy does not name is refused (422), not answered with an empty list."""
        if role is not None and role not in self.policy.roles:
            raise ToolError(f"unknown role {role!r}; roles: {', '.join(self.policy.roles)}")
        return requests.list_requests(
            self.factory_for(principal),
            status=status,
            role=role,
            order_id=order_id,
            limit=limit,
            offset=offset,
            policy=self.policy,
        )

    def queue(self, principal: Principal, *, limit: int = 100) -> list[dict[str, Any]]:
        """The requests waiting for a decision that the principal's role may take, oldest first."""
        if principal.role not in self.policy.roles:
            return []
        # nobody decides their own request (domain.md §3): it is not in their queue
        pending = requests.list_requests(
            self.factory_for(principal),
            status="pending_approval",
            role=principal.role,
            limit=limit,
            policy=self.policy,
            not_requested_by=principal.username,
        )
        return sorted(pending, key=lambda r: r["id"])

    def get_request(self, principal: Principal, request_id: int) -> dict[str, Any]:
        return requests.get_request(self.factory_for(principal), request_id)

    # --- communications: customer notices and supplier requests ---------------------------------------

    def list_messages(self, principal: Principal, **filters: Any) -> list[dict[str, Any]]:
        """Messages, newest first; a ``status`` no message can have is refused (422): a typo must
        not read as "no messages"."""
        status = filters.get("status")
        if status and status not in MESSAGE_STATUSES:
            raise ToolError(f"unknown message status {status!r}; statuses: {', '.join(MESSAGE_STATUSES)}")
        return comms.list_messages(
            self.factory_for(principal), **filters, order_numbers=self.policy.order_numbers
        )

    def message_for_request(self, principal: Principal, request_id: int) -> dict[str, Any] | None:
        return comms.message_for_request(self.factory_for(principal), request_id)

    def get_message(self, principal: Principal, notice_id: int) -> dict[str, Any]:
        return comms.get_message(self.factory_for(principal), notice_id)

    def edit_message(self, principal: Principal, notice_id: int, edit: Any) -> dict[str, Any]:
        return comms.edit_message(
            self.factory_for(principal),
            self.policy,
            notice_id,
            username=principal.username,
            subject=edit.subject,
            body=edit.body,
            reason=edit.reason,
        )

    def ask_notice(self, principal: Principal, order_id: str) -> dict[str, Any]:
        return comms.ask_notice(
            self.factory_for(principal),
            self.policy,
            self.llm(),
            order_id=order_id,
            username=principal.username,
        )

    # --- the audit log --------------------------------------------------------------------------------

    def audit_events(self, principal: Principal, **filters: Any) -> list[dict[str, Any]]:
        """Events in chain order; a scoped user's: those of their sites' orders only."""
        with read_only(self.factory_for(principal)) as session:
            return audit.list_events(session, **filters, order_numbers=self.policy.order_numbers)

    def verify_chain(self) -> dict[str, Any]:
        with read_only(self.factory) as session:
            return audit.verify_chain(session)

    @staticmethod
    def check_audit_export(principal: Principal) -> None:
        """The export is the whole log, every site's events: refused to a user limited to some sites."""
        if not principal.scope.unrestricted:
            raise Forbidden(
                f"{principal.username} is limited to {principal.scope.describe()}: the audit export "
                "holds every site's events; ask an unscoped compliance officer, or read /audit for your orders"
            )

    def export_audit(self, principal: Principal, fmt: str, out) -> int:
        """The whole log as JSON Lines or CSV (:meth:`check_audit_export` first)."""
        self.check_audit_export(principal)
        with read_only(self.factory) as session:
            return audit.export_events(session, fmt, out)

    # --- operations analytics -------------------------------------------------------------------------

    def kpis(self, principal: Principal, since: dt.date | None = None) -> dict[str, Any]:
        """The KPIs of the principal's sites (every site for an unscoped user)."""
        with read_only(self.factory_for(principal)) as session:
            return all_kpis(session, self.policy, since)

    def anomalies(self, principal: Principal) -> list[dict[str, Any]]:
        with read_only(self.factory_for(principal)) as session:
            return recurring_anomalies(session, self.policy)

    def risk_scores(self, principal: Principal, top: int | None = None) -> list[dict[str, Any]]:
        """The riskiest open orders (of the principal's sites: scored on every order, as the model
        was trained, then the other sites' dropped before the top is taken)."""
        scoped_user = not principal.scope.unrestricted
        with read_only(self.factory_for(principal)) as session:
            try:
                rows = score_open_orders(
                    session, top=None if scoped_user else top, var_dir=self.settings.var_dir
                )
            except RiskModelError as exc:  # no trained model (or a refused one): not ready, not bad input
                raise Unavailable(str(exc)) from exc
            if scoped_user:
                mine = visible_orders(session, [r["order_id"] for r in rows])
                rows = [r for r in rows if r["order_id"] in mine][:top]
            return rows

    def monitoring(self) -> dict[str, Any]:
        """Drift of the risk model's inputs and override rates by action type, with their warnings
        (drift says ``no_model`` until `copilot risk train`; the override rates need no model)."""
        with read_only(self.factory) as session:
            return model_monitoring(session, self.policy, var_dir=self.settings.var_dir)
