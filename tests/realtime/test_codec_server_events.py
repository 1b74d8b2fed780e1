"""Server events through the codec: GA passes through, beta is respelled or dropped."""

from __future__ import annotations

import json
import typing

import pytest

from apps.realtime.protocol.codec import (
    BETA_AUDIO_FORMATS,
    dump_server_event,
    render_server_event,
)
from apps.realtime.protocol.session_config import (
    Mp3Format,
    OpusFormat,
    PcmaFormat,
    PcmFormat,
    PcmuFormat,
    session_defaults,
)

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


def _accepted_formats() -> list[dict]:
    """Every audio format object the GA session config accepts, rates enumerated."""
    formats: list[dict] = []
    for model in (PcmFormat, PcmuFormat, PcmaFormat, Mp3Format, OpusFormat):
        kind = typing.get_args(model.model_fields["type"].annotation)[0]
        if "rate" in model.model_fields:
            rates = typing.get_args(model.model_fields["rate"].annotation)
            formats.extend({"type": kind, "rate": rate} for rate in rates)
        else:
            formats.append({"type": kind})
    return formats


def _response_with_format(fmt: dict) -> dict:
    return {
        "type": "response.done",
        "event_id": "e",
        "response": {
            "object": "realtime.response",
            "id": "r",
            "status": "completed",
            "status_details": None,
            "output": [],
            "conversation_id": None,
            "output_modalities": ["audio"],
            "max_output_tokens": "inf",
            "audio": {"output": {"format": fmt, "voice": "alloy"}},
            "usage": None,
            "metadata": None,
        },
    }


@pytest.mark.parametrize("fmt", _accepted_formats(), ids=lambda f: f"{f['type']}-{f.get('rate')}")
def test_every_accepted_format_renders_for_beta_and_round_trips(fmt: dict) -> None:
    # A beta client can hold any GA format (a secret minted with a GA config, or a GA-shaped
    # default); rendering its session must never raise inside the send task.
    config = session_defaults(instructions="x", voice="alloy")
    config["audio"]["input"]["format"] = (
        fmt if fmt["type"] != "audio/mpeg" else {"type": "audio/pcmu"}
    )
    config["audio"]["output"]["format"] = fmt
    beta = render({"type": "session.updated", "event_id": "e", "session": config}, "beta")
    name = beta["session"]["output_audio_format"]
    assert BETA_AUDIO_FORMATS[name] == fmt
    response = render(_response_with_format(fmt), "beta")
    assert response["response"]["output_audio_format"] == name


def test_opus_48khz_has_a_beta_name() -> None:
    fmt = {"type": "audio/opus", "rate": 48000}
    config = session_defaults(instructions="x", voice="alloy")
    config["audio"]["output"]["format"] = fmt
    beta = render({"type": "session.created", "event_id": "e", "session": config}, "beta")
    assert beta["session"]["output_audio_format"] == "Audio48KHz16BitMonoOpus"
    assert beta["session"]["input_audio_format"] == "pcm16"


def test_a_format_without_a_beta_name_goes_out_as_its_ga_object() -> None:
    # Not reachable with a validated config (see above); if it ever is, the event still goes
    # out rather than the send task dying with the session left silent.
    odd = {"type": "audio/pcm", "rate": 12345}
    beta = render(_response_with_format(odd), "beta")
    assert beta["response"]["output_audio_format"] == odd


def test_dump_server_event_is_always_valid_utf8_json() -> None:
    event = {
        "type": "response.output_text.delta",
        "event_id": "e",
        "delta": "caf\u00e9 \ud800",
        "score": float("nan"),
        "limits": [float("inf"), 1.5],
    }
    text = dump_server_event(event)
    text.encode("utf-8")
    assert json.loads(text) == {
        **event,
        "delta": "caf\u00e9 \ufffd",
        "score": None,
        "limits": [None, 1.5],
    }
    clean = {"type": "response.output_audio.delta", "event_id": "e", "delta": "AAAA"}
    assert dump_server_event(clean) == json.dumps(clean, ensure_ascii=False)


def test_large_server_encoded_audio_is_spliced_into_exactly_the_json_the_encoder_makes() -> None:
    import base64
    import json
    import os

    from apps.realtime.protocol.codec import SPLICE_MIN_CHARS, Base64Text, dump_server_event

    audio = base64.b64encode(os.urandom(SPLICE_MIN_CHARS)).decode("ascii")
    part = {"type": "input_audio", "audio": Base64Text(audio), "transcript": "é \u2028"}
    event = {
        "type": "conversation.item.retrieved",
        "event_id": "event_1",
        "item": {"id": "item_1", "type": "message", "role": "user", "content": [part]},
    }
    text = dump_server_event(event)
    assert text == json.dumps(event, ensure_ascii=False)
    assert json.loads(text)["item"]["content"][0]["audio"] == audio
    # The event itself is left as it was.
    assert event["item"]["content"][0] is part and part["audio"] == audio
