"""A session's bounded queue of rendered server events and the task that sends them.

Every transport (the WebSocket consumer, a WebRTC call's ``oai-events`` data channel) has a
client that may read slower than the session talks. The outbox is the one place that
decides what happens then:

* it holds at most ``max_events`` events and ``max_bytes`` of text (one event larger than
  the whole budget still goes through an empty outbox);
* when it is full, ``put`` waits: backpressure on whatever is sending (a response, the
  input task), so nothing is dropped;
* the sender holds the next event while the transport reports more than ``backlog_limit``
  bytes sent but not yet taken by the client;
* when ``put`` has waited ``stall_s`` the client has stopped reading: ``on_stall`` is
  called (the transport ends the session) and the event is dropped, as nothing more can
  be said anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

# How often a sender held back by a slow client looks at the transport again.
BACKLOG_POLL_S = 0.02

Send = Callable[[str], Awaitable[None]]
Backlog = Callable[[], "int | None"]


class Outbox:
    """Rendered events waiting for one client, sent in order by one task."""

    def __init__(
        self,
        *,
        send: Send,
        backlog: Backlog,
        backlog_limit: int,
        max_events: int,
        max_bytes: int,
        stall_s: float,
        on_stall: Callable[[], None],
        on_send_failed: Callable[[], None],
    ) -> None:
        self._send = send
        self._backlog = backlog
        self._backlog_limit = backlog_limit
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._stall_s = stall_s
        self._on_stall = on_stall
        self._on_send_failed = on_send_failed
        # Bounded by put() (events and bytes), not by the queue itself.
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._bytes = 0
        self._room = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.closed = False
        """Set once the client is gone: nothing more is sent."""

    def start(self) -> None:
        """Start the sender task."""
        self._task = asyncio.ensure_future(self._run())

    @property
    def running(self) -> bool:
        """Whether the sender task is alive (events put now will be sent)."""
        return self._task is not None and not self._task.done()

    def _has_room(self, size: int) -> bool:
        if self._queue.qsize() >= self._max_events:
            return False
        return self._bytes == 0 or self._bytes + size <= self._max_bytes

    async def put(self, text: str) -> None:
        """Queue ``text``; waits while the outbox is full (see the module's policy)."""
        if self.closed:
            return
        if not self._has_room(len(text)):
            try:
                async with asyncio.timeout(self._stall_s):
                    while not self._has_room(len(text)):
                        self._room.clear()
                        await self._room.wait()
            except TimeoutError:
                self._on_stall()
                return
        if self.closed:
            return
        self._bytes += len(text)
        self._queue.put_nowait(text)

    async def _run(self) -> None:
        while (text := await self._queue.get()) is not None:
            try:
                if self.closed:
                    continue
                await self._drained()
                await self._send(text)
            except Exception:  # noqa: BLE001 - the transport went away; the session is closing
                self.closed = True
                self._on_send_failed()
            finally:
                self._bytes -= len(text)
                self._room.set()

    async def _drained(self) -> None:
        while not self.closed:
            backlog = self._backlog()
            if backlog is None or backlog <= self._backlog_limit:
                return
            await asyncio.sleep(BACKLOG_POLL_S)

    async def drain(self, timeout_s: float) -> None:
        """Send what is queued (up to ``timeout_s``), then stop the sender."""
        task = self._task
        if task is None or task.done():
            return
        self._queue.put_nowait(None)
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
