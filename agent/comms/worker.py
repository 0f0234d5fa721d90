"""The communications worker inside ``copilot serve``: draft due notices, deliver approved messages.

One daemon thread per service process. Each round drafts and files every due notice (the
language model writes; ``agent.comms.service``) and then attempts every message due for delivery
(``agent.comms.delivery``); between rounds it waits ``OUTBOX_POLL_S`` seconds or until
:meth:`CommsWorker.wake` or :meth:`CommsWorker.stop` is called. Several processes may run it
against one database: drafts and messages are claimed with leases, so each is handled once.
"""

from __future__ import annotations

import logging
import threading

from agent.comms.delivery import deliver_due, transport_from_settings
from agent.comms.service import draft_due

__all__ = ["CommsWorker"]

log = logging.getLogger(__name__)


class CommsWorker:
    """Runs rounds until stopped. ``llm`` is a callable returning the model (loaded lazily)."""

    def __init__(self, factory, policy, settings, llm) -> None:
        self.factory, self.policy, self.settings, self._llm = factory, policy, settings, llm
        self.transport = transport_from_settings(settings)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0

    def run_round(self) -> dict[str, list]:
        """One round: draft due notices, then deliver what is due. Errors are logged, not raised."""
        drafted, delivered = [], []
        try:
            drafted = draft_due(self.factory, self.policy, self._llm())
        except Exception:
            log.exception("drafting due notices failed; retried next round")
        try:
            delivered = deliver_due(
                self.factory,
                self.transport,
                sender=self.settings.smtp_from,
                max_attempts=self.settings.outbox_max_attempts,
                backoff_s=self.settings.outbox_backoff_s,
                lease_s=self.settings.outbox_lease_s,
            )
        except Exception:
            log.exception("delivering the outbox failed; retried next round")
        self.rounds += 1
        return {"drafted": drafted, "delivered": delivered}

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_round()
            self._wake.wait(self.settings.outbox_poll_s)
            self._wake.clear()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="copilot-comms", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
