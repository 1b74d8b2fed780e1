"""The sessions live in this worker process, and the watch that keeps them honest.

Every admitted session registers here (WebSocket today, WebRTC later) with a callback that
ends it. One watch task per event loop then, for all of them together:

* writes their heartbeat (one UPDATE for all) so other workers count their slots, and a
  slot whose worker died stops counting once its heartbeat is stale;
* re-reads their licenses every ``REALTIME_LICENSE_CHECK_S``: a license revoked, disabled
  or expired in admin, by the CLI or by its expiry time, in any process, ends its sessions
  here with ``invalid_api_key`` and close 4001 (polling the database reaches every worker
  on every channel layer, the in-memory one included);
* checks monthly audio quotas while sessions run, not only at connect;
* ends rows whose heartbeat went stale (a worker that died elsewhere).

It also measures event-loop lag, which admission uses to refuse new sessions while the
worker has no headroom, and holds the process-wide "shutting down" flag: set when the
server begins to stop (SIGTERM), it turns new connections away and tells the sessions that
Daphne then cancels to close with 1001 instead of just disappearing.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from channels.db import DatabaseSyncToAsync
from django.conf import settings

from apps.conversations.services import conversation_end_stale, conversation_heartbeat
from apps.core.memory import release_free_memory
from apps.core.tasks import fire_and_forget
from apps.licensing.selectors import license_quota_exhausted_ids, license_unusable_reasons

from .admission import Refused
from .protocol.errors import ProtocolError

logger = logging.getLogger(__name__)

# How often the watch wakes; each duty below runs on its own, longer period.
WATCH_TICK_S = 0.5
# Event-loop lag is sampled this often; admission looks at the worst of the last window.
LAG_SAMPLE_S = 0.05
LAG_WINDOW_S = 2.0

End = Callable[[str, int, ProtocolError], Awaitable[None]]
"""Ends a session: ``(end reason, close code, the error to send first)``."""

# After a session ends, free heap is returned to the system this much later (once for all
# the sessions ending meanwhile).
TRIM_AFTER_END_S = 2.0
# How long shutdown waits for live sessions to save and close (Daphne's own budget for
# applications to stop is 10 s).
SHUTDOWN_GRACE_S = 8.0


def _db(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    # Not thread-sensitive: the watch must not queue behind (or block) request handling on
    # asgiref's single thread; old connections are closed around each call.
    return DatabaseSyncToAsync(fn, thread_sensitive=False)


@dataclass(eq=False, slots=True)
class LiveSession:
    """One admitted session as the watch sees it."""

    session_id: str
    license_id: int
    transport: str
    end: End
    ending: bool = field(default=False)


class LiveSessions:
    """The live sessions of one event loop (one worker process serves one loop)."""

    def __init__(self) -> None:
        self.sessions: dict[str, LiveSession] = {}
        self.admitting = 0
        self._trim: asyncio.TimerHandle | None = None
        """Connections being admitted right now (they count against the worker's cap)."""
        self._watch: asyncio.Task[None] | None = None
        self._lag: asyncio.Task[None] | None = None
        # (monotonic time, lag ms, loop thread CPU seconds)
        self._lag_samples: list[tuple[float, float, float]] = []
        self._lag_asked_at = 0.0

    # --- registration -----------------------------------------------------------------------

    def register(self, live: LiveSession) -> None:
        """Start watching a session (and start the watch if it is the first)."""
        self.sessions[live.session_id] = live
        if self._watch is None or self._watch.done():
            self._watch = asyncio.ensure_future(self._run_watch())

    def unregister(self, session_id: str) -> None:
        """Stop watching a session (it ended), and soon return freed memory to the system."""
        self.sessions.pop(session_id, None)
        if self._trim is None:
            loop = asyncio.get_running_loop()
            # Later, so what the session's last frames and tasks held is free by then.
            self._trim = loop.call_later(TRIM_AFTER_END_S, self._release_memory, loop)

    def _release_memory(self, loop: asyncio.AbstractEventLoop) -> None:
        self._trim = None
        loop.run_in_executor(None, release_free_memory)

    def count(self, transport: str | None = None) -> int:
        """How many sessions are live here (of one transport, or all)."""
        if transport is None:
            return len(self.sessions)
        return sum(1 for s in self.sessions.values() if s.transport == transport)

    # --- headroom ---------------------------------------------------------------------------

    def loop_lag_ms(self) -> float:
        """The worst event-loop lag seen over the last couple of seconds."""
        self._ensure_sampling()
        return max((lag for _, lag, _ in self._recent_samples()), default=0.0)

    def loop_busy(self) -> float:
        """The share of the last couple of seconds the event-loop thread spent on the CPU.

        Lag only shows once the loop is past saturation (delays pile up in every socket's
        queue first); a loop busy nearly all the time has no headroom for another session.
        """
        self._ensure_sampling()
        samples = self._recent_samples()
        if len(samples) < 2:
            return 0.0
        (first_at, _, first_cpu), (last_at, _, last_cpu) = samples[0], samples[-1]
        return (last_cpu - first_cpu) / max(last_at - first_at, 1e-6)

    def _ensure_sampling(self) -> None:
        self._lag_asked_at = time.monotonic()
        if self._lag is None or self._lag.done():
            self._lag = asyncio.ensure_future(self._measure_lag())

    def _recent_samples(self) -> list[tuple[float, float, float]]:
        now = time.monotonic()
        return [s for s in self._lag_samples if now - s[0] <= LAG_WINDOW_S]

    async def _measure_lag(self) -> None:
        # Runs on the loop's thread, so thread_time() is the loop thread's CPU time.
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_SAMPLE_S)
            now = time.monotonic()
            lag_ms = max(0.0, (loop.time() - before - LAG_SAMPLE_S) * 1000)
            self._lag_samples = [s for s in self._lag_samples if now - s[0] <= LAG_WINDOW_S]
            self._lag_samples.append((now, lag_ms, time.thread_time()))
            if not self.sessions and now - self._lag_asked_at > LAG_WINDOW_S:
                # Nothing to protect: stop sampling until the next admission asks.
                self._lag_samples.clear()
                return

    # --- the watch ----------------------------------------------------------------------------

    async def _run_watch(self) -> None:
        due = {"heartbeat": 0.0, "license": 0.0, "quota": 0.0, "stale": 0.0}
        while self.sessions:
            now = time.monotonic()
            try:
                if now >= due["heartbeat"]:
                    due["heartbeat"] = now + settings.REALTIME_HEARTBEAT_S
                    await _db(conversation_heartbeat)(conversation_ids=list(self.sessions))
                if now >= due["license"]:
                    due["license"] = now + settings.REALTIME_LICENSE_CHECK_S
                    await self._check_licenses()
                if now >= due["quota"]:
                    due["quota"] = now + settings.REALTIME_QUOTA_CHECK_S
                    await self._check_quotas()
                if now >= due["stale"]:
                    due["stale"] = now + settings.REALTIME_HEARTBEAT_STALE_S
                    await _db(conversation_end_stale)()
            except Exception:  # noqa: BLE001 - a database hiccup must not stop the watch
                logger.warning("session watch failed; retrying", exc_info=True)
            await asyncio.sleep(WATCH_TICK_S)

    def _license_ids(self) -> list[int]:
        return sorted({s.license_id for s in self.sessions.values()})

    async def _check_licenses(self) -> None:
        reasons: dict[int, str] = await _db(license_unusable_reasons)(
            license_ids=self._license_ids()
        )
        for license_id, reason in reasons.items():
            message = f"This license key has been {reason}; the session was closed."
            self._end_license(license_id, ProtocolError(message, None, "invalid_api_key"), 4001)

    async def _check_quotas(self) -> None:
        exhausted: set[int] = await _db(license_quota_exhausted_ids)(
            license_ids=self._license_ids()
        )
        for license_id in exhausted:
            message = "You exceeded your monthly audio quota for this license."
            error = ProtocolError(message, None, "insufficient_quota", type="insufficient_quota")
            self._end_license(license_id, error, 4029)

    def _end_license(self, license_id: int, error: ProtocolError, close_code: int) -> None:
        for live in list(self.sessions.values()):
            if live.license_id == license_id and not live.ending:
                live.ending = True
                logger.info(
                    "ending live session", extra={"session_id": live.session_id, "code": error.code}
                )
                fire_and_forget(
                    live.end(error.code or "error", close_code, error),
                    name=f"end:{live.session_id}",
                )

    async def end_all(self, error: ProtocolError, close_code: int) -> None:
        """End every live session (shutdown), waiting up to ``SHUTDOWN_GRACE_S``."""
        ending = [
            asyncio.ensure_future(live.end("server_shutdown", close_code, error))
            for live in list(self.sessions.values())
        ]
        if ending:
            await asyncio.wait(ending, timeout=SHUTDOWN_GRACE_S)


_registries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LiveSessions] = (
    weakref.WeakKeyDictionary()
)


def live_sessions() -> LiveSessions:
    """The registry of the running event loop."""
    loop = asyncio.get_running_loop()
    registry = _registries.get(loop)
    if registry is None:
        registry = _registries[loop] = LiveSessions()
    return registry


_shutting_down = False


async def shutdown_sessions() -> None:
    """Stop admitting, then end this loop's live sessions with an error and 1001."""
    global _shutting_down
    _shutting_down = True
    registry = _registries.get(asyncio.get_running_loop())
    count = registry.count() if registry is not None else 0
    logger.info("shutting down: closing live sessions", extra={"sessions": count})
    if registry is not None:
        error = ProtocolError(
            "The server is restarting; reconnect to continue.",
            None,
            "server_shutting_down",
            type="server_error",
        )
        await registry.end_all(error, 1001)


def shutting_down() -> bool:
    """Whether the process has begun to stop."""
    return _shutting_down


def headroom_check() -> None:
    """Refuse a new session while this worker stops, is full, or has no time to spare.

    Raises:
        Refused: ``server_shutting_down`` or ``server_busy``.
    """
    if shutting_down():
        raise Refused("The server is restarting; try again in a moment.", "server_shutting_down")
    live = live_sessions()
    if live.count() + live.admitting >= settings.REALTIME_MAX_SESSIONS_PER_WORKER:
        reason = "it is at its session limit"
    elif (
        live.loop_lag_ms() > settings.REALTIME_MAX_LOOP_LAG_MS
        or live.loop_busy() * 100 > settings.REALTIME_MAX_LOOP_BUSY_PERCENT
    ):
        reason = "it is too busy to serve another session well"
    else:
        return
    raise Refused(
        f"This server cannot take a new session now: {reason}. Try again shortly.",
        "server_busy",
        error_type="server_error",
    )
