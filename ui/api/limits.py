"""Per-user rate limits of the API and panel, so that one client cannot starve the model for everyone.

Two sliding-window limits per signed-in user (pyrate-limiter's in-memory bucket, one per user and
limit): every authenticated request counts against ``COPILOT_API_RATE_PER_MINUTE``, and a request
that may call the language model (chat, pasted text, triage with explanations) also against
``COPILOT_API_MODEL_RATE_PER_MINUTE``. Beyond either the request is refused with
:class:`RateLimited` (HTTP 429) carrying the seconds until the oldest counted request leaves the
window (``Retry-After``). Limits are per process: each worker of a deployment keeps its own.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import cast

from pyrate_limiter import Duration, InMemoryBucket, Rate, RateItem

__all__ = ["RateLimited", "RateLimits"]


class RateLimited(Exception):
    """Too many requests from one user; ``retry_after`` whole seconds until one more is admitted."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimits:
    """``take(username)`` counts one request, ``take_model(username)`` one that may call the model;
    each raises :class:`RateLimited` past its limit.

    ``clock`` returns milliseconds (tests pass their own, so no test waits for a window to pass).
    """

    def __init__(
        self,
        per_minute: int,
        model_per_minute: int,
        *,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self._rates = {"requests": per_minute, "model requests": model_per_minute}
        self._clock = clock or (lambda: time.monotonic_ns() // 1_000_000)
        self._buckets: dict[tuple[str, str], InMemoryBucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, kind: str, username: str) -> InMemoryBucket:
        with self._lock:
            bucket = self._buckets.get((kind, username))
            if bucket is None:
                bucket = InMemoryBucket([Rate(self._rates[kind], Duration.MINUTE)])
                self._buckets[(kind, username)] = bucket
            return bucket

    def _take(self, kind: str, username: str) -> None:
        bucket, now = self._bucket(kind, username), self._clock()
        bucket.leak(now)  # forget requests older than the window: memory stays bounded per user
        item = RateItem(username, now)
        if bucket.put(item):
            return
        wait_ms = cast(int, bucket.waiting(item))  # an in-memory bucket answers at once, not awaitable
        retry_after = max(1, math.ceil(max(0, wait_ms) / 1000))
        raise RateLimited(
            f"too many {kind}: {self._rates[kind]} a minute per user; retry in {retry_after} s", retry_after
        )

    def take(self, username: str) -> None:
        """Count one request of ``username`` or raise :class:`RateLimited`."""
        self._take("requests", username)

    def take_model(self, username: str) -> None:
        """Count one request of ``username`` that may call the language model, or raise."""
        self._take("model requests", username)
