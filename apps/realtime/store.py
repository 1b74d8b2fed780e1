"""Persisting a session's transcript without touching the database on the audio path.

The session calls ``item_saved``/``usage_added``, which only queue; one writer task per
session saves in order through ``conversations.services`` in a worker thread. Saves are
idempotent by item id, so an item saved in progress and again when truncated stays one row.

Overflow policy: item saves are never dropped. Their number is bounded by the session's
own rate (a few items per turn, turns limited per minute), so the queue stays short; past
``MAX_PENDING`` a warning says the database is falling behind. Usage deltas are merged
while they wait and written every USAGE_WRITE_INTERVAL_S, so streaming audio adds no queue
entries and few writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import asdict

from asgiref.sync import sync_to_async

from apps.conversations.services import UsageDelta, conversation_add_usage, conversation_item_save

from .session.deps import StoredItem, Usage

logger = logging.getLogger(__name__)

MAX_PENDING = 1_024
# Usage counters are written at most this often (items are written as soon as they come):
# a streaming session adds input audio every few milliseconds.
USAGE_WRITE_INTERVAL_S = 2.0


class DatabaseStore:
    """The ``SessionStore`` of a live session, writing to its ``Conversation`` row."""

    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        self._pending: deque[StoredItem] = deque()
        self._usage = Usage()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._usage_written_at = 0.0

    def start(self) -> None:
        """Start the writer task."""
        self._task = asyncio.ensure_future(self._run())

    def item_saved(self, item: StoredItem) -> None:
        """Queue an insert-or-update of one item."""
        if len(self._pending) >= MAX_PENDING:
            logger.warning(
                "transcript writes are falling behind", extra={"session_id": self.conversation_id}
            )
        self._pending.append(item)
        self._wake.set()

    def usage_added(self, usage: Usage) -> None:
        """Add usage; deltas are merged until the writer next runs."""
        self._usage = self._usage + usage

    async def _flush(self, *, usage: bool = True) -> None:
        while self._pending:
            item = self._pending[0]
            fields = asdict(item)
            item_id = fields.pop("item_id")
            try:
                await sync_to_async(conversation_item_save)(
                    conversation_id=self.conversation_id, item_id=item_id, **fields
                )
            except Exception:
                logger.exception(
                    "saving a transcript item failed", extra={"session_id": self.conversation_id}
                )
            self._pending.popleft()
        if not usage:
            return
        self._usage_written_at = asyncio.get_running_loop().time()
        usage, self._usage = self._usage, Usage()
        if usage != Usage():
            try:
                await sync_to_async(conversation_add_usage)(
                    conversation_id=self.conversation_id, usage=UsageDelta(**asdict(usage))
                )
            except Exception:
                logger.exception("saving usage failed", extra={"session_id": self.conversation_id})

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            # Items wake the writer at once; usage is picked up every interval.
            try:
                await asyncio.wait_for(self._wake.wait(), USAGE_WRITE_INTERVAL_S)
            except TimeoutError:
                pass
            self._wake.clear()
            due = loop.time() - self._usage_written_at >= USAGE_WRITE_INTERVAL_S
            await self._flush(usage=due)

    async def close(self) -> None:
        """Write everything still queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self._flush()
