"""Sliding one-minute budgets, shared through Django's cache.

Failed authentications per client address (``failure_admit``), and any other count a
caller names (``admit``: the talk page's secrets per visitor and per address).

Guarantee: at most ``LICENSING_AUTH_FAILURES_PER_MINUTE`` failures from one address are
*processed* (answered 401 and counted) in any 60 s span. A fixed one-minute window cannot
promise that (a burst at the end of one window and another at the start of the next pass
twice the budget within seconds), so this is a sliding window:

* events are counted in one-second buckets (``<kind>:<who>:<second>``), and the
  window at time ``t`` is the sum of the buckets from ``floor(t) - 60`` to ``floor(t)``. That
  covers at least the last 60 s (up to 61 s: the rounding only ever errs towards refusing);
* a failure is admitted by *increment, then read, then undo if over*: ``cache.incr`` on the
  current bucket (atomic on Redis and on LocMem), then one ``get_many`` of the window; a
  sum over the budget means refused, and the increment is taken back with ``cache.decr``.

Why this is correct across workers without a Lua script or a lock: every admitted failure's
increment happens before its own read, so of any set of admitted failures the one whose
increment came last saw all the others in its read; its sum was within the budget, hence
so is the set. Concurrent attempts can only see each other's not-yet-undone increments,
which makes them refuse more, never admit more. Costs: one ``INCR`` and one ``MGET`` of 61
keys per failure (plus a ``DECR`` when refused) and nothing at all for a valid key.

With REDIS_URL set the cache is Redis and every worker shares the budget; with the default
LocMem cache each worker process has its own.

IPv6 clients are counted per /64: one host usually holds a whole /64 and could otherwise
rotate through 2^64 budgets.
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

WINDOW_S = 60
# One-second buckets; the window reads the current one and the WINDOW_S before it.
BUCKETS = WINDOW_S + 1
# Long enough that no bucket inside the window expires; short enough to clean itself up.
BUCKET_TTL_S = 2 * WINDOW_S
IPV6_SUBJECT_PREFIX = 64
# Later buckets a window read includes (see ``_window``).
CLOCK_SLACK_S = 5


@dataclass(frozen=True, slots=True)
class FailureDecision:
    """Whether an event (a failed attempt, ...) was counted, or refused as over budget."""

    allowed: bool
    # Seconds until the oldest counted failure leaves the window (0 when allowed).
    retry_after_s: int = 0


def subject(client_ip: str) -> str:
    """The throttle's key for an address: the address, or its /64 network for IPv6."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return client_ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        network = ipaddress.IPv6Network(f"{address}/{IPV6_SUBJECT_PREFIX}", strict=False)
        return str(network)
    return str(address)


AUTH_FAILURES = "authfail"


def _key(kind: str, who: str, second: int) -> str:
    return f"{kind}:{who}:{second}"


def _window(kind: str, who: str, second: int) -> dict[int, int]:
    """Failures per second in the window ending at ``second`` (seconds with none left out).

    Buckets up to ``CLOCK_SLACK_S`` after ``second`` are read too: a process can be
    descheduled between reading the clock and incrementing, so a peer that read the clock
    later may already have counted into a later bucket. Seeing it only errs towards
    refusing, and keeps the "last incrementer saw all the others" argument true.
    """
    keys = {_key(kind, who, s): s for s in range(second - WINDOW_S, second + CLOCK_SLACK_S + 1)}
    return {keys[k]: int(v) for k, v in cache.get_many(list(keys)).items() if v}


def _increment(key: str) -> None:
    # add() is a no-op when the bucket exists; incr() is atomic on Redis and LocMem.
    cache.add(key, 0, timeout=BUCKET_TTL_S)
    try:
        cache.incr(key)
    except ValueError:
        # Evicted between add() and incr() (LocMem's size cap): start the bucket again.
        cache.set(key, 1, timeout=BUCKET_TTL_S)


def admit(kind: str, who: str, limit: int, *, now_s: float | None = None) -> FailureDecision:
    """Count one event of ``kind`` for ``who`` if fewer than ``limit`` are in the window.

    Args:
        kind: What is counted (a key prefix: ``authfail``, ``talkmint``, ...).
        who: Whom it is counted for (an address's ``subject``, a visitor id).
        limit: Events allowed in any 60 s.
        now_s: The current Unix time in seconds; injectable for tests.

    Returns:
        ``allowed=True`` when the event was counted; ``allowed=False`` with
        ``retry_after_s`` when ``who`` already has ``limit`` in the last 60 s. A refused
        event is not counted.
    """
    now_s = time.time() if now_s is None else now_s
    second = math.floor(now_s)
    current = _key(kind, who, second)
    _increment(current)
    window = _window(kind, who, second)
    if sum(window.values()) <= limit:
        return FailureDecision(allowed=True)
    try:
        cache.decr(current)
    except ValueError:
        pass  # Already gone: nothing left to take back.
    # Our own (now undone) increment sits in the current second; the oldest bucket decides.
    oldest = min(window)
    return FailureDecision(allowed=False, retry_after_s=max(1, math.ceil(oldest + BUCKETS - now_s)))


def failure_admit(client_ip: str, *, now_s: float | None = None) -> FailureDecision:
    """Count one failed authentication from ``client_ip`` if its budget allows.

    Args:
        client_ip: The client's address (see ``apps.core.net.client_address``).
        now_s: The current Unix time in seconds; injectable for tests.

    Returns:
        ``allowed=True`` when the failure was counted (answer it as the failure it is);
        ``allowed=False`` with ``retry_after_s`` when the address already has
        ``LICENSING_AUTH_FAILURES_PER_MINUTE`` failures in the last 60 s (answer 429).
        A refused attempt is not counted, so a client that keeps failing regains one
        attempt as each old failure ages out, and no more.
    """
    limit = int(settings.LICENSING_AUTH_FAILURES_PER_MINUTE)
    return admit(AUTH_FAILURES, subject(client_ip), limit, now_s=now_s)


def failures_in_window(client_ip: str, *, now_s: float | None = None) -> int:
    """Failures counted for ``client_ip`` in the current window (for operators and tests)."""
    now_s = time.time() if now_s is None else now_s
    return sum(_window(AUTH_FAILURES, subject(client_ip), math.floor(now_s)).values())
