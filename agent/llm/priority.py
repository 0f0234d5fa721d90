"""Background model calls that give way to people: the pre-explainer's work never delays a planner.

Work nobody waits for (explaining the queue ahead of time) runs inside :func:`background`; every
other model call is a foreground call. The process counts the foreground calls in flight
(:func:`foreground_calls`; :class:`agent.llm.base.LLM` counts its ``complete`` and ``stream``), so
background work can wait for a quiet moment (:func:`wait_until_idle`) before it starts one.

Once started, a background generation can still be overtaken: the llamacpp provider serves one
generation at a time, and when a foreground call is waiting for the model it stops the background
one at its next token and raises :class:`LLMPreempted` in the background thread. Providers that
cannot stop a call (an OpenAI-compatible server) simply finish it; the server runs both at once.

``LLMPreempted`` is a ``BaseException``, like ``asyncio.CancelledError``: it is a cancellation, not a
model failure, so the ``except Exception`` / ``except LLMError`` fallbacks on the way up (which would
write the fact template and an ``llm_fallback`` audit event) let it through to the background loop,
which discards the work and tries again later.

    with background():
        try:
            explanation = explain_one(ctx, result)
        except LLMPreempted:
            ...  # a person needed the model: try this one again later
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "LLMPreempted",
    "background",
    "foreground",
    "foreground_calls",
    "in_background",
    "wait_until_idle",
]


class LLMPreempted(BaseException):
    """A background generation was stopped because a foreground call needed the model."""


_local = threading.local()
_idle = threading.Condition()
_in_flight = 0


@contextmanager
def background() -> Iterator[None]:
    """Model calls made by this thread inside the block are background calls."""
    before = getattr(_local, "background", False)
    _local.background = True
    try:
        yield
    finally:
        _local.background = before


def in_background() -> bool:
    """Whether this thread is inside :func:`background`."""
    return bool(getattr(_local, "background", False))


@contextmanager
def foreground() -> Iterator[None]:
    """Count a model call as in flight for the block, unless this thread is in the background."""
    if in_background():
        yield
        return
    global _in_flight
    with _idle:
        _in_flight += 1
    try:
        yield
    finally:
        with _idle:
            _in_flight -= 1
            if _in_flight == 0:
                _idle.notify_all()


def foreground_calls() -> int:
    """Foreground model calls in flight in this process now."""
    with _idle:
        return _in_flight


def wait_until_idle(timeout: float | None = None, stop: threading.Event | None = None) -> bool:
    """Block until no foreground model call is in flight (True), ``timeout`` passes or ``stop`` is
    set (False, unless idle by then). ``stop`` is looked at each second at least."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with _idle:
        while _in_flight:
            if stop is not None and stop.is_set():
                return False
            left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if left <= 0:
                return False
            _idle.wait(left)
        return True
