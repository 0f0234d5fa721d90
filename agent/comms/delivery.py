"""Delivering the outbox: once per approved message, with retries, over SMTP or into ``.eml`` files.

A worker claims one ``queued`` message at a time with a compare-and-set on its row (status
``sending``, a lease owner and a lease end), sends it, and records ``sent`` (with the transport)
or, on a temporary failure, puts it back to ``queued`` with an exponential backoff; a permanent
refusal (an SMTP 5xx, a refused recipient) or the last allowed attempt records ``failed`` with the
reason. Each outcome lands in the audit log.

A worker killed mid-send leaves its message ``sending``; another worker takes it over when the
lease ends, or at once when the lease owner was a process on this host that no longer exists. The
resend carries the same Message-ID (derived from the request, ``tools.outbox``), so it is
recognisable downstream; the ``.eml`` transport writes atomically to a file named after the
Message-ID, so a resend replaces the same file instead of adding one.

Transports: :class:`EmlTransport` (the embedded default: ``<COPILOT_VAR_DIR>/outbox/``) and
:class:`SmtpTransport` (stdlib ``smtplib``: STARTTLS, implicit TLS or plain, optional login).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import re
import smtplib
import socket
import ssl
import tempfile
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import CursorResult, and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from agent.governance import audit
from agent.governance.requests import write_session
from agent.settings import Settings
from tools.models import OutboxMessage

__all__ = [
    "DeliveryError",
    "EmlTransport",
    "SmtpTransport",
    "build_message",
    "deliver_due",
    "transport_from_settings",
    "worker_id",
]

MAX_BACKOFF_S = 3600.0


class DeliveryError(Exception):
    """A message that could not be delivered; ``permanent`` ones are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def worker_id() -> str:
    """``host:pid`` of this process: the lease owner it writes."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_gone(owner: str | None) -> bool:
    """Whether the lease owner was a process on this host that no longer runs."""
    host, _, pid = (owner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# --- transports ------------------------------------------------------------------------------------


class EmlTransport:
    """Writes each message as ``<folder>/<Message-ID>.eml``, atomically (temp file, fsync, rename)."""

    name = "eml"

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path_for(self, message_id: str) -> Path:
        return self.folder / (re.sub(r"[^A-Za-z0-9._@-]", "_", message_id.strip("<>")) + ".eml")

    def send(self, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.path_for(message["Message-ID"])
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".sending-", suffix=".eml")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(message.as_bytes())
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise DeliveryError(f"cannot write {target}: {exc}") from exc


class SmtpTransport:
    """Delivers over SMTP with ``smtplib``: ``tls`` starttls, ssl or none; login when a user is set."""

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: str = "starttls",
        username: str = "",
        password: str = "",
        timeout_s: float = 30.0,
    ) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.username, self.password, self.timeout_s = username, password, timeout_s

    def send(self, message: EmailMessage) -> None:
        if not self.host:
            raise DeliveryError("SMTP_HOST is not set", permanent=True)
        try:
            client: smtplib.SMTP
            if self.tls == "ssl":
                client = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout_s, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
            with client:
                if self.tls == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if self.username:
                    client.login(self.username, self.password)
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"recipient refused: {exc.recipients}", permanent=True) from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"SMTP login refused: {exc.smtp_code} {exc.smtp_error!r}", permanent=True
            ) from exc
        except smtplib.SMTPResponseException as exc:
            text = (
                exc.smtp_error.decode(errors="replace")
                if isinstance(exc.smtp_error, bytes)
                else exc.smtp_error
            )
            raise DeliveryError(f"SMTP {exc.smtp_code}: {text}", permanent=exc.smtp_code >= 500) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc


def transport_from_settings(settings: Settings):
    if settings.outbox_transport == "smtp":
        return SmtpTransport(
            settings.smtp_host,
            settings.smtp_port,
            tls=settings.smtp_tls,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout_s=settings.smtp_timeout_s,
        )
    return EmlTransport(settings.var_dir / "outbox")


def build_message(row: OutboxMessage, sender: str) -> EmailMessage:
    """The e-mail of an outbox row: its Message-ID, and the order (and PO) it is about as headers."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = row.recipient
    msg["Subject"] = row.subject
    msg["Date"] = email.utils.format_datetime(
        row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=dt.UTC)
    )
    msg["Message-ID"] = row.message_id
    if row.order_id:
        msg["X-Copilot-Order-Id"] = row.order_id
    if row.po_id:
        msg["X-Copilot-PO-Id"] = row.po_id
    msg["X-Copilot-Request-Id"] = str(row.request_id)
    msg.set_content(row.body)
    return msg


# --- the worker's steps ----------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _claim(factory: sessionmaker[Session], owner: str, lease_s: float, now: dt.datetime) -> int | None:
    """Take the next message due for an attempt (compare-and-set); its id, or None."""
    with factory() as s:
        candidates = s.execute(
            select(
                OutboxMessage.id, OutboxMessage.status, OutboxMessage.lease_owner, OutboxMessage.lease_until
            )
            .where(
                or_(
                    and_(OutboxMessage.status == "queued", OutboxMessage.next_attempt_at <= now),
                    OutboxMessage.status == "sending",
                )
            )
            .order_by(OutboxMessage.id)
            .limit(50)
        ).all()
    for mid, status, lease_owner, lease_until in candidates:
        if status == "sending":
            expired = (
                lease_until is not None
                and (lease_until if lease_until.tzinfo else lease_until.replace(tzinfo=dt.UTC)) < now
            )
            if not (expired or _owner_gone(lease_owner)):
                continue
        with factory() as s, s.begin():
            took: CursorResult = s.execute(  # type: ignore[assignment]
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == mid,
                    OutboxMessage.status == status,
                    OutboxMessage.lease_owner.is_(None)
                    if lease_owner is None
                    else OutboxMessage.lease_owner == lease_owner,
                )
                .values(
                    status="sending",
                    lease_owner=owner,
                    lease_until=now + dt.timedelta(seconds=lease_s),
                    attempts=OutboxMessage.attempts + 1,
                )
            )
        if took.rowcount == 1:
            return mid
    return None


def _record(
    factory: sessionmaker[Session],
    mid: int,
    owner: str,
    *,
    transport: str,
    error: DeliveryError | None,
    max_attempts: int,
    backoff_s: float,
) -> dict[str, Any]:
    with write_session(factory) as s:
        row = s.get(OutboxMessage, mid, with_for_update=True)
        if row is None:
            return {"id": mid, "status": "gone", "note": "the message no longer exists"}
        if row.status != "sending" or row.lease_owner != owner:
            return {"id": mid, "status": row.status, "note": "taken over by another worker"}
        now = _now()
        row.lease_owner, row.lease_until = None, None
        if error is None:
            row.status, row.sent_at, row.transport, row.last_error = "sent", now, transport, None
            event = "message_sent"
        elif error.permanent or row.attempts >= max_attempts:
            row.status, row.last_error = "failed", str(error)
            event = "message_failed"
        else:
            wait = min(MAX_BACKOFF_S, backoff_s * 2 ** (row.attempts - 1))
            row.status, row.last_error = "queued", str(error)
            row.next_attempt_at = now + dt.timedelta(seconds=wait)
            event = "message_retry"
        audit.append_event(
            s,
            event,
            actor="outbox",
            order_id=row.order_id,
            request_id=row.request_id,
            payload={
                "outbox_id": row.id,
                "message_id": row.message_id,
                "recipient": row.recipient,
                "transport": transport,
                "attempts": row.attempts,
                "error": row.last_error,
                "next_attempt_at": row.next_attempt_at.isoformat() if event == "message_retry" else None,
            },
        )
        return {
            "id": mid,
            "notice_id": row.notice_id,
            "request_id": row.request_id,
            "recipient": row.recipient,
            "status": row.status,
            "attempts": row.attempts,
            "error": row.last_error,
        }


def deliver_due(
    factory: sessionmaker[Session],
    transport,
    *,
    sender: str,
    max_attempts: int = 5,
    backoff_s: float = 30.0,
    lease_s: float = 300.0,
    limit: int | None = None,
    owner: str | None = None,
    on_progress=None,
) -> list[dict[str, Any]]:
    """Attempt every message due now (at most ``limit``), one at a time; the outcome of each."""
    owner = owner or worker_id()
    results: list[dict[str, Any]] = []
    while limit is None or len(results) < limit:
        mid = _claim(factory, owner, lease_s, _now())
        if mid is None:
            break
        with factory() as s:
            row = s.get(OutboxMessage, mid)
            if row is None:
                continue
            message = build_message(row, sender)
        error = None
        try:
            transport.send(message)
        except DeliveryError as exc:
            error = exc
        results.append(
            _record(
                factory,
                mid,
                owner,
                transport=transport.name,
                error=error,
                max_attempts=max_attempts,
                backoff_s=backoff_s,
            )
        )
        if on_progress is not None:
            on_progress()
    return results
