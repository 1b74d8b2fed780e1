"""Persisting a session's transcript without touching the database on the audio path.

The session calls ``item_saved``/``usage_added``, which only queue; one writer task per
session saves in order through ``conversations.services`` in a worker thread. Saves are
idempotent by item id, so an item saved in progress and again when truncated stays one row.

Overflow policy: item saves are never dropped. Their number is bounded by the session's
own rate (a few items per turn, turns limited per minute), so the queue stays short; past
``MAX_PENDING`` a warning says the database is falling behind. Usage deltas are merged
while they wait, so streaming audio adds no queue entries at all.
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


class DatabaseStore:
    """The ``SessionStore`` of a live session, writing to its ``Conversation`` row."""

    def __init__(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        self._pending: deque[StoredItem] = deque()
        self._usage = Usage()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

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
        u = self._usage
        self._usage = Usage(
            input_audio_ms=u.input_audio_ms + usage.input_audio_ms,
            output_audio_ms=u.output_audio_ms + usage.output_audio_ms,
            text_tokens_in=u.text_tokens_in + usage.text_tokens_in,
            text_tokens_out=u.text_tokens_out + usage.text_tokens_out,
        )
        self._wake.set()

    async def _flush(self) -> None:
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
        usage, self._usage = self._usage, Usage()
        if usage != Usage():
            try:
                await sync_to_async(conversation_add_usage)(
                    conversation_id=self.conversation_id, usage=UsageDelta(**asdict(usage))
                )
            except Exception:
                logger.exception("saving usage failed", extra={"session_id": self.conversation_id})

    async def _run(self) -> None:
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()
            # Batch usage: at most a few writes a second while audio streams.
            await asyncio.sleep(0.2)

    async def close(self) -> None:
        """Write everything still queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self._flush()
