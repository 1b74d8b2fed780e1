"""``input_audio_buffer.*`` client events; the work happens in ``session.input_audio``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .registry import handles
from .response import interrupt

if TYPE_CHECKING:
    from ...protocol.codec import ParsedEvent
    from ..session import RealtimeSession


@handles("input_audio_buffer.append")
async def append(session: RealtimeSession, parsed: ParsedEvent) -> None:
    """Queue the decoded audio (no confirmation is sent, as with OpenAI)."""
    event = parsed.event
    session.input.append(event.audio_bytes, event_id=event.event_id)


@handles("input_audio_buffer.commit")
async def commit(session: RealtimeSession, parsed: ParsedEvent) -> None:
    """Commit the buffer as a user item (after the appends already sent)."""
    session.input.commit(event_id=parsed.event.event_id)


@handles("input_audio_buffer.clear")
async def clear(session: RealtimeSession, parsed: ParsedEvent) -> None:
    """Drop the buffered audio."""
    session.input.clear(event_id=parsed.event.event_id)


@handles("output_audio_buffer.clear")
async def output_clear(session: RealtimeSession, parsed: ParsedEvent) -> None:
    """Stop the audio being played: cancel the response and drop what the sink holds."""
    runner = session.default_response
    await interrupt(session, reason="client_cancelled")
    await session.sink.clear()
    if session.sink.reports_playback:
        return  # the sink said what it cleared, and truncated the item
    await session.emit(
        {
            "type": "output_audio_buffer.cleared",
            "response_id": runner.id if runner is not None else "",
        }
    )
