"""What a running copilot process tells its operators: Prometheus metrics, the request id, JSON logs.

- Metrics are prometheus-client objects defined once here and updated where the work happens (the
  HTTP middleware in ``ui.api.observe``, the language-model calls in ``agent.llm.base``). With
  ``PROMETHEUS_MULTIPROC_DIR`` set (``copilot serve --workers N`` sets it before the processes
  start) every process writes its samples to files there and ``/metrics`` sums them.
- The request id of the HTTP request being served (``X-Request-ID``) lives in a context variable:
  the API's audit origin and every log record of the request carry it.
- ``configure_logging`` sets up the root logger: one JSON object per line with
  ``COPILOT_LOG_FORMAT=json`` (for a log collector), the classic text line otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import uuid
from contextvars import ContextVar, Token

from prometheus_client import Counter, Histogram

__all__ = [
    "HTTP_SECONDS",
    "LLM_ERRORS",
    "LLM_SECONDS",
    "LLM_TOKENS",
    "JsonFormatter",
    "configure_logging",
    "current_request_id",
    "new_request_id",
    "observe_llm",
    "reset_request_id",
    "set_request_id",
]

# Latency buckets from 5 ms (a cached read) to 2 minutes (an explanation on a slow CPU).
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

HTTP_SECONDS = Histogram(
    "copilot_http_request_duration_seconds",
    "HTTP request latency by route template, method and status code.",
    ["route", "method", "status"],
    buckets=_BUCKETS,
)
LLM_SECONDS = Histogram(
    "copilot_llm_call_duration_seconds",
    "Language-model call latency by provider and kind (complete or stream).",
    ["provider", "kind"],
    buckets=_BUCKETS,
)
LLM_TOKENS = Counter(
    "copilot_llm_tokens",
    "Language-model tokens by provider and direction (prompt or completion).",
    ["provider", "direction"],
)
LLM_ERRORS = Counter(
    "copilot_llm_errors",
    "Language-model calls that failed (timeout, missing model, malformed output) by provider.",
    ["provider"],
)


def observe_llm(provider: str, kind: str, seconds: float, prompt_tokens: int, completion_tokens: int) -> None:
    LLM_SECONDS.labels(provider, kind).observe(seconds)
    LLM_TOKENS.labels(provider, "prompt").inc(max(prompt_tokens, 0))
    LLM_TOKENS.labels(provider, "completion").inc(max(completion_tokens, 0))


# --- the request id --------------------------------------------------------------------------------

_REQUEST_ID: ContextVar[str | None] = ContextVar("copilot_request_id", default=None)
# What a caller may send as X-Request-ID: a load balancer's or tracer's id, never free text that
# would reach the logs and the audit chain unchecked.
_VALID_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def new_request_id(offered: str | None = None) -> str:
    """The caller's id when it is a plain token of at most 64 characters, else a fresh one."""
    if offered and _VALID_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return _REQUEST_ID.get()


def set_request_id(value: str | None) -> Token:
    return _REQUEST_ID.set(value)


def reset_request_id(token: Token) -> None:
    _REQUEST_ID.reset(token)


# --- logs -------------------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, request_id when a
    request is being served, and the exception's traceback as one string."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            out["request_id"] = request_id
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        return True


class _CopilotHandler(logging.StreamHandler):
    """The handler ``configure_logging`` installs, told apart from others'; it writes to whatever
    ``sys.stderr`` is when a record comes (a test runner may swap it and close the old one)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """The root logger writes to stderr, as JSON lines (``fmt="json"``) or text; uvicorn's loggers
    propagate to it (run uvicorn with ``log_config=None``)."""
    handler = _CopilotHandler()
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _CopilotHandler)]:  # ours only: run twice, one line
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the schema check at start-up, not news
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
