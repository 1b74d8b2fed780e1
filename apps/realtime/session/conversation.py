"""The session's conversation: ordered items, and the model context they make.

Items are GA-shaped (``output_audio``, ``output_text``); the codec respells them for beta
clients. Assistant audio items remember what each stretch of audio said, so a truncate can
cut the transcript to what the user actually heard.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from apps.agent.base import ChatMessage, ToolCall
from apps.core.ids import item_id as new_item_id

ItemType = Literal["message", "function_call", "function_call_output"]
# Recent user audio is kept for conversation.item.retrieve; older items keep only text, so an
# idle session's memory does not grow with its length.
KEEP_AUDIO_ITEMS = 4


@dataclass(slots=True)
class Spoken:
    """A stretch of an assistant item's audio and the text it says."""

    start_ms: float
    end_ms: float
    text: str

    def heard(self, until_ms: float) -> str:
        """The part of ``text`` spoken before ``until_ms`` (whole words, by time share)."""
        if until_ms >= self.end_ms:
            return self.text
        if until_ms <= self.start_ms:
            return ""
        share = (until_ms - self.start_ms) / max(1.0, self.end_ms - self.start_ms)
        cut = int(len(self.text) * share)
        if " " in self.text:
            # Do not keep half a word: back off to the last space before the cut.
            space = self.text.rfind(" ", 0, cut + 1)
            cut = space if space > 0 else 0
        return self.text[:cut].rstrip()


@dataclass(slots=True)
class Item:
    """One conversation item (message, function call, or function call output)."""

    type: ItemType
    id: str = field(default_factory=new_item_id)
    role: Literal["user", "assistant", "system"] | None = None
    status: Literal["completed", "incomplete", "in_progress"] = "completed"
    content: list[dict[str, Any]] = field(default_factory=list)
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None
    # Assistant audio: what was spoken when (for truncation) and how much was sent.
    spoken: list[Spoken] = field(default_factory=list)
    audio_ms: float = 0.0
    truncated_at_ms: int | None = None
    # User audio: 16 kHz samples (recent items only) and the pending transcription.
    audio: np.ndarray | None = None
    transcribed: asyncio.Future[str] | None = None

    def wire(self) -> dict[str, Any]:
        """The GA ``realtime.item`` object."""
        item: dict[str, Any] = {
            "id": self.id,
            "object": "realtime.item",
            "type": self.type,
            "status": self.status,
        }
        if self.type == "message":
            item["role"] = self.role
            item["content"] = [dict(part) for part in self.content]
        elif self.type == "function_call":
            item.update(call_id=self.call_id, name=self.name, arguments=self.arguments or "")
        else:
            item.update(call_id=self.call_id, output=self.output or "")
        return item

    def _words(self, *, skip: str | None = None) -> str:
        values = (
            part.get("text") if part.get("text") is not None else part.get("transcript")
            for part in self.content
            if part.get("type") != skip
        )
        return " ".join(value for value in values if value)

    @property
    def text(self) -> str:
        """The item's words: message text and transcripts, joined."""
        return self._words()

    def context_text(self) -> str:
        """Text the model should see (``tts_text`` is an instruction to speak, not input)."""
        return self._words(skip="tts_text")


class Conversation:
    """Ordered items with O(1) lookup.

    Bounded: beyond ``max_items`` the oldest are dropped (they stay persisted; the model
    just stops seeing them).
    """

    def __init__(self, *, max_items: int = 1_000) -> None:
        self._items: OrderedDict[str, Item] = OrderedDict()
        self.max_items = max_items

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._items

    def get(self, item_id: str) -> Item | None:
        """The item with this id, if it is still in the conversation."""
        return self._items.get(item_id)

    def last_id(self) -> str | None:
        """The id of the last item (the ``previous_item_id`` of the next one)."""
        return next(reversed(self._items), None) if self._items else None

    def items(self) -> list[Item]:
        """All items, in order."""
        return list(self._items.values())

    def add(self, item: Item, *, previous_item_id: str | None = None) -> str | None:
        """Insert ``item`` after ``previous_item_id`` (``"root"``: first; None: last).

        Returns:
            The id of the item it now follows (None at the start).

        Raises:
            KeyError: ``previous_item_id`` names no item.
        """
        if previous_item_id is None or previous_item_id == self.last_id():
            previous = self.last_id()
            self._items[item.id] = item
        elif previous_item_id == "root":
            previous = None
            self._items[item.id] = item
            self._items.move_to_end(item.id, last=False)
        else:
            if previous_item_id not in self._items:
                raise KeyError(previous_item_id)
            previous = previous_item_id
            rebuilt: OrderedDict[str, Item] = OrderedDict()
            for key, value in self._items.items():
                rebuilt[key] = value
                if key == previous_item_id:
                    rebuilt[item.id] = item
            self._items = rebuilt
        self._trim()
        return previous

    def _trim(self) -> None:
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)
        with_audio = [i for i in self._items.values() if i.audio is not None]
        for old in with_audio[:-KEEP_AUDIO_ITEMS]:
            old.audio = None

    def delete(self, item_id: str) -> Item:
        """Remove an item.

        Raises:
            KeyError: No such item.
        """
        return self._items.pop(item_id)


def context_messages(items: list[Item]) -> list[ChatMessage]:
    """Turn items into chat messages: consecutive function calls become one assistant turn."""
    return [message for message, _ in context_message_items(items)]


def context_message_items(items: list[Item]) -> list[tuple[ChatMessage, str]]:
    """``context_messages`` with, for each message, the id of the first item it came from.

    The ids let truncation remember where the model's window starts (``context_budget``).
    """
    messages: list[tuple[ChatMessage, str]] = []
    calls: list[ToolCall] = []
    first_call_id = ""

    def flush_calls() -> None:
        if calls:
            messages.append((ChatMessage(role="assistant", tool_calls=tuple(calls)), first_call_id))
            calls.clear()

    for item in items:
        if item.type == "function_call":
            if not calls:
                first_call_id = item.id
            calls.append(
                ToolCall(
                    call_id=item.call_id or item.id,
                    name=item.name or "",
                    arguments=item.arguments or "{}",
                )
            )
            continue
        flush_calls()
        if item.type == "function_call_output":
            messages.append(
                (
                    ChatMessage(role="tool", content=item.output or "", tool_call_id=item.call_id),
                    item.id,
                )
            )
        elif item.role is not None:
            text = item.context_text()
            if text:
                messages.append((ChatMessage(role=item.role, content=text), item.id))
    flush_calls()
    return messages
