"""Persisting a session's transcript without touching the database on the audio path.

The session calls ``item_saved``/``usage_added``, which only queue; one writer task per
session saves in order through ``conversations.services`` in a worker thread. Saves are
idempotent by item id, so an item saved in progress and again when truncated stays one row.

Failures: a save that fails (the database restarting, refusing connections, a lock) is
retried with exponential backoff, from ``RETRY_FIRST_S`` up to ``RETRY_MAX_S``, for as long
as the session lives; the item stays queued meanwhile and the session goes on. Each call
closes unusable connections first (as Channels does for consumers), so a connection broken
by a database restart is replaced rather than reused forever. ``close`` keeps retrying for
up to ``close_timeout_s`` and then logs, as an error, every item it could not save.

Overflow policy: only the latest version of an item matters, so a newer version replaces
the queued one in place (its position in the queue is kept) and the queue holds at most
one entry per item. Conversations are capped at ``Limits.max_items`` items, so the queue
is bounded by that; should it still reach ``MAX_PENDING`` items during a long outage, the
oldest queued item is dropped and logged as an error naming it. Usage deltas are merged
while they wait and written every USAGE_WRITE_INTERVAL_S, so streaming audio adds no queue
entries and few writes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict

from channels.db import DatabaseSyncToAsync

from apps.conversations.services import UsageDelta, conversation_add_usage, conversation_item_save
from apps.core import metrics

from .session.deps import StoredItem, Usage

logger = logging.getLogger(__name__)

MAX_PENDING = 1_024
# Usage counters are written at most this often (items are written as soon as they come):
# a streaming session adds input audio every few milliseconds.
USAGE_WRITE_INTERVAL_S = 2.0
RETRY_FIRST_S = 0.25
RETRY_MAX_S = 5.0
CLOSE_TIMEOUT_S = 5.0


def _save_item(conversation_id: str, item: StoredItem) -> None:
    fields = asdict(item)
    item_id = fields.pop("item_id")
    conversation_item_save(conversation_id=conversation_id, item_id=item_id, **fields)


def _add_usage(conversation_id: str, usage: Usage) -> None:
    conversation_add_usage(conversation_id=conversation_id, usage=UsageDelta(**asdict(usage)))


class DatabaseStore:
    """The ``SessionStore`` of a live session, writing to its ``Conversation`` row."""

    def __init__(self, conversation_id: str, *, close_timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        self.conversation_id = conversation_id
        self.close_timeout_s = close_timeout_s
        # Insertion-ordered: item id -> its latest version still to be written.
        self._pending: dict[str, StoredItem] = {}
        # When each pending item was first queued (for the store-lag metric).
        self._queued_s: dict[str, float] = {}
        self._usage = Usage()
        self._wake = asyncio.Event()
        self._close_requested = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._usage_written_at = 0.0
        self._retry_s = 0.0
        # Not thread-sensitive: a stalled database must not hold asgiref's one shared thread
        # (and with it every other consumer's ORM call) while this writer retries.
        self._save_item = DatabaseSyncToAsync(_save_item, thread_sensitive=False)
        self._add_usage = DatabaseSyncToAsync(_add_usage, thread_sensitive=False)

    @property
    def _log(self) -> dict[str, str]:
        return {"session_id": self.conversation_id}

    def start(self) -> None:
        """Start the writer task."""
        self._task = asyncio.ensure_future(self._run())

    def item_saved(self, item: StoredItem) -> None:
        """Queue an insert-or-update of one item (replacing a queued older version)."""
        if item.item_id not in self._pending and len(self._pending) >= MAX_PENDING:
            oldest = next(iter(self._pending))
            del self._pending[oldest]
            self._queued_s.pop(oldest, None)
            logger.error(
                "transcript queue full: an item was dropped unsaved",
                extra={**self._log, "item_id": oldest},
            )
        self._pending[item.item_id] = item
        self._queued_s.setdefault(item.item_id, time.monotonic())
        self._wake.set()

    def usage_added(self, usage: Usage) -> None:
        """Add usage; deltas are merged until the writer next runs."""
        self._usage = self._usage + usage

    async def _flush(self, *, usage: bool = True) -> bool:
        """Write what is queued; False if the database failed (the rest stays queued)."""
        while self._pending:
            item_id, item = next(iter(self._pending.items()))
            try:
                await self._save_item(self.conversation_id, item)
            except Exception:
                self._failed("saving a transcript item failed")
                return False
            # A newer version may have been queued while this one was being written.
            if self._pending.get(item_id) is item:
                del self._pending[item_id]
                metrics.store_saved(
                    time.monotonic() - self._queued_s.pop(item_id, time.monotonic())
                )
        if usage:
            self._usage_written_at = asyncio.get_running_loop().time()
            delta, self._usage = self._usage, Usage()
            if delta != Usage():
                try:
                    await self._add_usage(self.conversation_id, delta)
                except Exception:
                    self._usage = delta + self._usage
                    self._failed("saving usage failed")
                    return False
        self._retry_s = 0.0
        return True

    def _failed(self, message: str) -> None:
        metrics.store_retry()
        self._retry_s = min(RETRY_MAX_S, max(RETRY_FIRST_S, self._retry_s * 2))
        # The first failure of an outage with its traceback, the rest in one line each.
        logger.warning(
            message + "; retrying",
            exc_info=self._retry_s == RETRY_FIRST_S,
            extra={**self._log, "pending": len(self._pending), "retry_s": self._retry_s},
        )

    async def _wait(self, event: asyncio.Event, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                await event.wait()
        except TimeoutError:
            pass

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            if self._retry_s:
                # Backing off after a failure: only closing cuts the wait short.
                await self._wait(self._close_requested, self._retry_s)
            else:
                # Items wake the writer at once; usage is picked up every interval.
                await self._wait(self._wake, USAGE_WRITE_INTERVAL_S)
            if self._closing:
                return
            self._wake.clear()
            due = (
                self._retry_s > 0 or loop.time() - self._usage_written_at >= USAGE_WRITE_INTERVAL_S
            )
            await self._flush(usage=due)

    async def close(self) -> None:
        """Write everything still queued (retrying for up to ``close_timeout_s``), then stop."""
        self._closing = True
        self._close_requested.set()
        self._wake.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.close_timeout_s
        if self._task is not None:
            # Let a write in progress finish rather than race a second copy of it.
            await asyncio.wait({self._task}, timeout=self.close_timeout_s)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while not await self._flush():
            if loop.time() + self._retry_s > deadline:
                logger.error(
                    "the database stayed unavailable: transcript items were not saved",
                    extra={
                        **self._log,
                        "item_ids": list(self._pending),
                        "usage": asdict(self._usage),
                    },
                )
                return
            await asyncio.sleep(self._retry_s)
