"""``conversation.item.*`` client events: create, retrieve, truncate, delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from apps.core.audio import resample
from apps.core.audio_codecs import UnsupportedFormat, format_rate, make_encoder
from apps.core.b64 import b64encode_text
from apps.core.ids import item_id as new_item_id

from ...protocol.codec import Base64Text
from ..conversation import Item
from ..errors import ClientError
from .registry import handles

if TYPE_CHECKING:
    from ...protocol.codec import ParsedEvent
    from ..session import RealtimeSession


def item_from_client(raw: Any) -> Item:
    """A conversation ``Item`` from a validated client item (GA-shaped)."""
    content: list[dict[str, Any]] = []
    for part in raw.content or []:
        entry = part.model_dump(exclude_none=True)
        if entry["type"] == "input_audio":
            # Audio the client sends is kept as its transcript only (the model is text-only).
            entry.pop("audio", None)
            entry.setdefault("transcript", None)
        content.append(entry)
    return Item(
        type=raw.type,
        id=raw.id or new_item_id(),
        role=raw.role,
        status="completed",
        content=content,
        call_id=raw.call_id,
        name=raw.name,
        arguments=raw.arguments,
        output=raw.output,
    )


@handles("conversation.item.create")
async def create(session: RealtimeSession, parsed: ParsedEvent) -> None:
    """Add an item (after ``previous_item_id`` when given)."""
    event = parsed.event
    if event.item.type == "item_reference":
        raise ClientError(
            "item_reference items can only be used in response.create's input.",
            code="invalid_value",
            param="item.type",
        )
    if event.item.id and event.item.id in session.conversation:
        raise ClientError(
            f"Item with id '{event.item.id}' already exists.",
            code="item_already_exists",
            param="item.id",
        )
    item = item_from_client(event.item)
    try:
        previous = session.conversation.add(item, previous_item_id=event.previous_item_id)
    except KeyError:
        raise ClientError(
            f"Previous item with id '{event.previous_item_id}' not found.",
            code="invalid_value",
            param="previous_item_id",
        ) from None
    wire = item.wire()
    await session.emit(
        {"type": "conversation.item.added", "item": wire, "previous_item_id": previous}
    )
    await session.emit(
        {"type": "conversation.item.done", "item": wire, "previous_item_id": previous}
    )
    session.save_item(item)


def _find(session: RealtimeSession, item_id: str, code: str) -> Item:
    item = session.conversation.get(item_id)
    if item is None:
        raise ClientError(
            f"Item with item_id '{item_id}' not found in the conversation.",
            code=code,
            param="item_id",
        )
    return item


def _encoded_audio(samples: np.ndarray, fmt: dict[str, Any]) -> str | None:
    """Base64 of 16 kHz item audio in a wire format (None when it cannot be encoded)."""
    try:
        encoder = make_encoder(fmt)
    except UnsupportedFormat:
        return None
    native = resample(samples, 16_000, format_rate(fmt))
    data = b"".join(encoder.encode(native) + encoder.flush())
    return Base64Text(b64encode_text(data))


@handles("conversation.item.retrieve")
async def retrieve(session: RealtimeSession, parsed: ParsedEvent) -> None:
    """Send the item, with its audio when it is user audio the server still holds."""
    item = _find(session, parsed.event.item_id, "item_retrieve_invalid_item_id")
    wire = item.wire()
    if item.audio is not None and wire.get("content"):
        fmt = session.config["audio"]["input"]["format"]
        # Minutes of audio take a while to resample and encode: off the event loop.
        engines = session.deps.engines
        audio = await engines.run(engines.audio_executor, _encoded_audio, item.audio, fmt)
        if audio is not None:
            wire["content"][0]["audio"] = audio
    await session.emit({"type": "conversation.item.retrieved", "item": wire})


@handles("conversation.item.delete")
async def delete(session: RealtimeSession, parsed: ParsedEvent) -> None:
    """Remove the item from the conversation (the saved transcript keeps it)."""
    item_id = parsed.event.item_id
    _find(session, item_id, "item_delete_invalid_item_id")
    session.conversation.delete(item_id)
    await session.emit({"type": "conversation.item.deleted", "item_id": item_id})


@handles("conversation.item.truncate")
async def truncate(session: RealtimeSession, parsed: ParsedEvent) -> None:
    """Cut an assistant audio item at what was heard; the unheard text leaves the context."""
    event = parsed.event
    item = _find(session, event.item_id, "item_truncate_invalid_item_id")
    if item.role != "assistant" or not any(
        part.get("type") == "output_audio" for part in item.content
    ):
        raise ClientError(
            "Only assistant messages with audio can be truncated.",
            code="item_truncate_invalid_item_id",
            param="item_id",
        )
    if event.content_index >= len(item.content):
        raise ClientError(
            f"Invalid content_index {event.content_index}.",
            code="invalid_value",
            param="content_index",
        )
    # If that item is still being spoken, stop it first: what comes after is unheard anyway.
    runner = next((r for r in session.responses.values() if r.owns(item.id)), None)
    if runner is not None:
        runner.cancel("client_cancelled")
        await runner.wait()
    if event.audio_end_ms > round(item.audio_ms):
        raise ClientError(
            f"Audio content of {round(item.audio_ms)}ms is shorter than {event.audio_end_ms}ms.",
            code="invalid_value",
            param="audio_end_ms",
        )
    await truncate_item(session, item, event.content_index, event.audio_end_ms)


async def truncate_item(
    session: RealtimeSession, item: Item, content_index: int, audio_end_ms: int
) -> None:
    """Cut ``item`` at ``audio_end_ms``: keep the words heard by then, tell, and save.

    Used by ``conversation.item.truncate`` and by transports that know what was played
    (a WebRTC call truncates the item itself on barge-in, as OpenAI's does).
    """
    heard = " ".join(t for t in (s.heard(audio_end_ms) for s in item.spoken) if t)
    part = item.content[content_index]
    part["transcript"] = heard
    item.spoken = [s for s in item.spoken if s.start_ms < audio_end_ms]
    item.audio_ms = float(audio_end_ms)
    item.truncated_at_ms = audio_end_ms
    await session.emit(
        {
            "type": "conversation.item.truncated",
            "item_id": item.id,
            "content_index": content_index,
            "audio_end_ms": audio_end_ms,
        }
    )
    session.save_item(item)
