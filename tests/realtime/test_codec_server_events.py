"""Server events through the codec: GA passes through, beta is respelled or dropped."""

from __future__ import annotations

import pytest

from apps.realtime.protocol.codec import render_server_event
from apps.realtime.protocol.session_config import session_defaults

from .conformance import validate_event


def render(event: dict, dialect: str) -> dict | None:
    return render_server_event(event, dialect=dialect, session_id="sess_1", expires_at=10)


@pytest.mark.parametrize(
    ("ga", "beta"),
    [
        ("response.output_audio.delta", "response.audio.delta"),
        ("response.output_audio.done", "response.audio.done"),
        ("response.output_audio_transcript.delta", "response.audio_transcript.delta"),
        ("response.output_text.done", "response.text.done"),
    ],
)
def test_beta_names(ga: str, beta: str) -> None:
    event = {
        "type": ga,
        "event_id": "e",
        "response_id": "r",
        "item_id": "i",
        "output_index": 0,
        "content_index": 0,
        "delta": "x",
        "text": "x",
        "transcript": "x",
    }
    assert render(event, "ga")["type"] == ga
    assert render(event, "beta")["type"] == beta


def test_item_events_and_ga_only_events() -> None:
    item = {
        "id": "i",
        "object": "realtime.item",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_audio", "transcript": "hi"}],
    }
    added = {
        "type": "conversation.item.added",
        "event_id": "e",
        "item": item,
        "previous_item_id": None,
    }
    beta = render(added, "beta")
    assert beta["type"] == "conversation.item.created"
    assert beta["item"]["content"][0]["type"] == "audio"
    validate_event(beta, "beta")
    validate_event(render(added, "ga"), "ga")
    assert render({"type": "conversation.item.done", "event_id": "e", "item": item}, "beta") is None
    timeout = {
        "type": "input_audio_buffer.timeout_triggered",
        "event_id": "e",
        "item_id": "i",
        "audio_start_ms": 0,
        "audio_end_ms": 1,
    }
    assert render(timeout, "beta") is None


def test_session_events_render_the_canonical_config() -> None:
    config = session_defaults(instructions="x", voice="alloy")
    config["audio"]["output"]["format"] = {"type": "audio/pcmu"}
    event = {"type": "session.created", "event_id": "e", "session": config}
    ga = render(event, "ga")
    assert ga["session"]["id"] == "sess_1" and ga["session"]["expires_at"] == 10
    assert ga["session"]["audio"]["output"]["format"] == {"type": "audio/pcmu"}
    beta = render(event, "beta")
    assert beta["session"]["output_audio_format"] == "g711_ulaw"
    assert beta["session"]["voice"] == "alloy"
    validate_event(ga, "ga")
    validate_event(beta, "beta")


def test_response_object_for_beta() -> None:
    response = {
        "object": "realtime.response",
        "id": "r",
        "status": "completed",
        "status_details": None,
        "output": [],
        "conversation_id": None,
        "output_modalities": ["text"],
        "max_output_tokens": "inf",
        "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "echo"}},
        "usage": None,
        "metadata": None,
    }
    beta = render({"type": "response.done", "event_id": "e", "response": response}, "beta")
    assert beta["response"]["modalities"] == ["text"]
    assert beta["response"]["output_audio_format"] == "pcm16"
    assert beta["response"]["voice"] == "echo"
    validate_event(beta, "beta")
