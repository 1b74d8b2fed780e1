"""A per-connection budget for what a client may push in, checked before any parsing.

Daphne queues every frame it reads into the application's queue without bound and gives
the client no backpressure, so a connection that sends faster than the session can process
grows server memory until it leaves. The consumer therefore meters each frame on arrival,
in O(1) and before JSON parsing, against two token buckets: bytes and events.

Overflow policy:

* Within the buckets (rate plus burst) a frame is handed to the session.
* Past them the frame is dropped unparsed, and still charged: the buckets go into debt (at
  most ``DEBT_S`` seconds of refill). ``refill_wait_s`` is how long the client must then go
  unread to pay for what it sent over; the consumer stops reading its socket that long, so a
  flood costs the server one socket read per pause instead of parsing every frame.
* The first drop of an overflow episode, and at most one drop a second after it, is answered
  with an ``error`` (``rate_limit_exceeded``); the rest are dropped silently, so a flood
  does not turn into a flood of error events.
* An episode ends once a second passes with no drop and no debt. A client still over
  budget ``grace_s`` after its episode began is closed (1008, policy violation).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Verdict(enum.Enum):
    """What to do with one inbound frame."""

    ACCEPT = "accept"
    DROP_AND_TELL = "drop_and_tell"
    DROP = "drop"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class InboundLimits:
    """Rates and bursts of one connection's inbound budget."""

    bytes_per_s: float
    burst_bytes: float
    events_per_s: float
    burst_events: float
    grace_s: float
    """How long a client may stay over budget before it is closed."""


# An overflow episode ends after this long without a dropped frame; errors are sent at most
# this often while it lasts.
EPISODE_QUIET_S = 1.0
# The most debt a bucket takes on, in seconds of its refill rate: bounds the longest pause.
DEBT_S = 5.0


class _Bucket:
    __slots__ = ("rate", "capacity", "level", "at")

    def __init__(self, rate: float, capacity: float, now_s: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.level = capacity
        self.at = now_s

    def refill(self, now_s: float) -> None:
        self.level = min(self.capacity, self.level + (now_s - self.at) * self.rate)
        self.at = now_s

    def charge(self, amount: float) -> None:
        self.level = max(-DEBT_S * self.rate, self.level - amount)


class InboundBudget:
    """Meters one connection's frames; call ``admit`` once per frame, in arrival order."""

    def __init__(self, limits: InboundLimits, *, now_s: float) -> None:
        self.limits = limits
        self._bytes = _Bucket(limits.bytes_per_s, limits.burst_bytes, now_s)
        self._events = _Bucket(limits.events_per_s, limits.burst_events, now_s)
        self._episode_start: float | None = None
        # Until when the client counts as over budget: its last drop, or its debt paid off.
        self._over_until = 0.0
        self._last_told = 0.0

    def refill_wait_s(self) -> float:
        """How long until the buckets can take another (small) frame."""
        waits = [max(0.0, 1.0 - self._events.level) / self._events.rate]
        if self._bytes.level < 0:
            waits.append(-self._bytes.level / self._bytes.rate)
        return max(waits)

    def admit(self, size_bytes: int, *, now_s: float) -> Verdict:
        """Decide about one frame of ``size_bytes`` arriving at ``now_s`` (monotonic)."""
        self._bytes.refill(now_s)
        self._events.refill(now_s)
        if self._episode_start is not None and now_s - self._over_until >= EPISODE_QUIET_S:
            self._episode_start = None
        # A frame larger than the whole burst could never pass; it is judged against a full
        # bucket so one big (but allowed) event is not refused forever.
        needed = min(float(size_bytes), self._bytes.capacity)
        if self._bytes.level >= needed and self._events.level >= 1.0:
            self._bytes.level -= needed
            self._events.level -= 1.0
            return Verdict.ACCEPT
        self._bytes.charge(needed)
        self._events.charge(1.0)
        self._over_until = now_s + self.refill_wait_s()
        if self._episode_start is None:
            self._episode_start = now_s
            self._last_told = now_s
            return Verdict.DROP_AND_TELL
        if now_s - self._episode_start >= self.limits.grace_s:
            return Verdict.CLOSE
        if now_s - self._last_told >= EPISODE_QUIET_S:
            self._last_told = now_s
            return Verdict.DROP_AND_TELL
        return Verdict.DROP
