"""Rate limit for failed authentications, per client IP, shared through Django's cache.

With REDIS_URL set the cache is Redis, so every worker process counts into the same window.
Fixed one-minute windows: simple, and good enough to stop online guessing of ≥190-bit keys
from flooding the database.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

WINDOW_S = 60


def _bucket_key(client_ip: str, now_s: float) -> str:
    return f"authfail:{client_ip}:{int(now_s // WINDOW_S)}"


def failures_exceeded(client_ip: str, *, now_s: float | None = None) -> bool:
    """Whether this IP has used up its failed attempts for the current window."""
    limit = settings.LICENSING_AUTH_FAILURES_PER_MINUTE
    count = cache.get(_bucket_key(client_ip, time.time() if now_s is None else now_s), 0)
    return int(count) >= limit


def record_failure(client_ip: str, *, now_s: float | None = None) -> None:
    """Count one failed authentication for this IP."""
    key = _bucket_key(client_ip, time.time() if now_s is None else now_s)
    # add() is a no-op when the key exists; incr() is atomic on Redis and LocMem.
    cache.add(key, 0, timeout=WINDOW_S * 2)
    try:
        cache.incr(key)
    except ValueError:
        # The key expired between add() and incr(): start the window again.
        cache.set(key, 1, timeout=WINDOW_S * 2)
