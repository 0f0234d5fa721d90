"""Pre-explaining: the orders at the top of the work queues are explained before anyone asks.

A planner opens the exceptions at the top of their queue; on a small CPU the model needs seconds
to explain one. :class:`PreExplainer` runs beside ``copilot serve`` and ``copilot worker`` (when
``COPILOT_PREEXPLAIN`` is above 0 and a language model is loaded): each round it asks ``orders``
for the orders to explain — the wiring passes the orders of the ``COPILOT_PREEXPLAIN``
highest-priority open exceptions of all work queues (``agent.flow.queue``, a sibling this package
does not import) — triages them read-only and explains, in that order, each one without a stored
explanation (:func:`agent.copilot.nodes.explain_one`, which stores it). A planner then gets the
stored text at once (:mod:`agent.copilot.stored`).

It never delays a person:

- it starts a model call only when no foreground call is in flight in the process
  (:func:`agent.llm.priority.wait_until_idle`), and all its calls are background calls
  (:func:`agent.llm.priority.background`);
- with the local model (llamacpp) a foreground call that needs the model while a background one
  runs stops it within a token or a prompt chunk (``LLMPreempted``); the half-written explanation
  is discarded — no fallback, no audit event, nothing stored — and the order is tried again once
  the model is idle;
- an OpenAI-compatible server cannot be interrupted: a background call that has started runs to its
  end, beside the person's call, which the server serves concurrently. Only starting while idle
  applies there.

It writes no audit events: explanations are language, not decisions. An order whose explanation
fell back (the model failed or was not grounded) is not tried again while its facts stay the same.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from agent.copilot.context import CopilotContext
from agent.copilot.explain import facts_text
from agent.copilot.nodes import explain_one, plain
from agent.llm.priority import LLMPreempted, background, wait_until_idle
from agent.policy import Policy
from agent.triage.service import OrderNotFound, triage_order
from tools.db import read_only

__all__ = ["PREEXPLAIN_POLL_S", "PreExplainer", "Round"]

log = logging.getLogger(__name__)

PREEXPLAIN_POLL_S = 60.0  # the queues' order changes with events; a minute between looks is plenty
_TRIES = 3  # preemptions of one order in a round before it waits for the next round
_FAILED_MAX = 10_000
# An order whose explanation fell back is left alone this long while its facts stay the same (the
# model's text was refused, or the model was away): then it is tried again.
RETRY_FALLBACK_S = 3600.0


# Several processes may run a pre-explainer (`copilot serve --workers N`, `copilot worker`s): on
# PostgreSQL a round runs under this session-level advisory lock, taken without waiting on a
# connection of its own in autocommit (no transaction stays open for the round's minutes), so one
# process explains at a time and the others skip their round rather than explain the same orders.
PREEXPLAIN_LOCK_KEY = zlib.crc32(b"copilot.preexplain") - 2**31


@contextmanager
def my_turn(factory: sessionmaker[Session]) -> Iterator[bool]:
    """The deployment's pre-explaining turn for the block: True when this process holds it (released
    at the end, or with the connection if the process dies), False when another one does. SQLite:
    always True (one process writes at a time anyway)."""
    with factory() as probe:
        bind = probe.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    if engine.dialect.name != "postgresql":
        yield True
        return
    try:
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except SQLAlchemyError as exc:
        log.warning("pre-explaining: %s", str(getattr(exc, "orig", exc)).splitlines()[0])
        yield False
        return
    with conn:
        held = bool(conn.scalar(select(func.pg_try_advisory_lock(PREEXPLAIN_LOCK_KEY))))
        try:
            yield held
        finally:
            if held:
                conn.scalar(select(func.pg_advisory_unlock(PREEXPLAIN_LOCK_KEY)))


@dataclass
class Round:
    """What one round did: orders looked at, explained now, already stored, preempted (to be tried
    again), fell back (not stored), skipped (fell back before with the same facts) or failed."""

    orders: int = 0
    explained: int = 0
    stored: int = 0
    preempted: int = 0
    fallback: int = 0
    skipped: int = 0
    failed: int = 0
    stopped: bool = False


class PreExplainer:
    """Explains the top of the queues in the background, on a daemon thread or round by round.

    ``orders(session, limit)`` gives the order ids to explain, most urgent first; ``llm`` and
    ``collection`` are callables giving the model and the SOP index, or None while they are not
    loaded (a round then does nothing; ``collection=None`` itself means explanations without SOP
    passages); ``limit`` is ``COPILOT_PREEXPLAIN`` (0: nothing is done).
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        policy: Policy,
        *,
        orders: Callable[[Session, int], list[str]],
        llm: Callable[[], Any],
        collection: Callable[[], Any] | None = None,
        limit: int = 20,
        poll_s: float = PREEXPLAIN_POLL_S,
    ) -> None:
        self.factory, self.policy, self.limit, self.poll_s = factory, policy, limit, poll_s
        self._orders, self._llm, self._collection = orders, llm, collection
        self._stop, self._wake = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: dict[tuple[str, str], float] = {}  # (order, facts hash) -> when it fell back
        self.rounds = 0
        self.last: Round | None = None

    # --- one round -------------------------------------------------------------------------------

    def run_round(self, stop: threading.Event | None = None) -> Round:
        """Explain the top of the queues that has no stored explanation; what was done. ``stop``
        (the thread's) ends the round between two orders or while it waits for the model."""
        stop = stop or threading.Event()
        done = Round()
        llm = self._llm() if self.limit > 0 else None
        collection = self._collection() if self._collection is not None else None
        if llm is None or (self._collection is not None and collection is None):
            return done  # not loaded (yet): a planner would be shown other passages
        ctx = CopilotContext(
            factory=self.factory,
            policy=self.policy,
            llm=llm,
            collection=collection,
            username="copilot-preexplain",
        )
        with my_turn(self.factory) as mine:  # one pre-explainer at a time in the deployment
            if not mine:
                return done
            with read_only(self.factory) as session:
                order_ids = list(dict.fromkeys(self._orders(session, self.limit)))
            self._explain_all(ctx, order_ids, done, stop)
        self.rounds += 1
        self.last = done
        return done

    def _explain_all(
        self, ctx: CopilotContext, order_ids: list[str], done: Round, stop: threading.Event
    ) -> None:
        for order_id in order_ids:
            if stop.is_set():
                done.stopped = True
                break
            done.orders += 1
            try:
                self._explain(ctx, order_id, done, stop)
            except SQLAlchemyError as exc:
                done.failed += 1
                log.warning("pre-explaining %s: %s", order_id, str(getattr(exc, "orig", exc)).splitlines()[0])

    def _explain(self, ctx: CopilotContext, order_id: str, done: Round, stop: threading.Event) -> None:
        with read_only(self.factory) as session:
            try:
                result = plain(triage_order(session, order_id, self.policy, record=False))
            except OrderNotFound:
                return
        facts = hashlib.sha256(facts_text(result).encode("utf-8")).hexdigest()
        failed_at = self._failed.get((order_id, facts))
        if failed_at is not None and time.monotonic() - failed_at < RETRY_FALLBACK_S:
            done.skipped += 1
            return
        for _ in range(_TRIES):
            if not wait_until_idle(stop=stop):  # a person is using the model
                done.stopped = True
                return
            try:
                with background():
                    explanation = explain_one(ctx, result)
            except LLMPreempted:
                done.preempted += 1
                continue  # once the person's call is done
            if explanation.get("stored"):
                done.stored += 1
            elif explanation.get("fallback"):
                done.fallback += 1
                if len(self._failed) < _FAILED_MAX or (order_id, facts) in self._failed:
                    self._failed[(order_id, facts)] = time.monotonic()
                log.info("pre-explaining %s fell back: %s", order_id, explanation.get("reason"))
            else:
                done.explained += 1
            return

    # --- the thread ------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_round(self._stop)
            except Exception:
                log.exception("pre-explaining failed; retried next round")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def start(self) -> PreExplainer:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="copilot-preexplain", daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        """Look at the queues now (new exceptions arrived)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current model call (a background local generation stops at once only when
        a foreground call needs the model; otherwise it finishes its few seconds)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
