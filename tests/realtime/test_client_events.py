"""Client events: every event type parses, errors name the field and echo event_id, and no
input whatsoever escapes as anything but a CodecError."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.beta.realtime import RealtimeClientEvent as BetaClientEvent
from openai.types.realtime import RealtimeClientEvent
from pydantic import TypeAdapter

from apps.realtime.protocol.client_events import EVENT_MODELS
from apps.realtime.protocol.codec import CodecError, parse_client_event

GA_UNION = TypeAdapter(RealtimeClientEvent)
BETA_UNION = TypeAdapter(BetaClientEvent)

VALID_GA = [
    {"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief."}},
    {"type": "input_audio_buffer.append", "audio": "AAAAAA==", "event_id": "evt_1"},
    {"type": "input_audio_buffer.commit"},
    {"type": "input_audio_buffer.clear"},
    {"type": "output_audio_buffer.clear"},
    {
        "type": "conversation.item.create",
        "previous_item_id": "root",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Hello"}],
        },
    },
    {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hi."}],
        },
    },
    {
        "type": "conversation.item.create",
        "item": {"type": "function_call", "name": "f", "call_id": "call_1", "arguments": "{}"},
    },
    {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": "call_1", "output": "42"},
    },
    {"type": "conversation.item.retrieve", "item_id": "item_1"},
    {
        "type": "conversation.item.truncate",
        "item_id": "item_1",
        "content_index": 0,
        "audio_end_ms": 1500,
    },
    {"type": "conversation.item.delete", "item_id": "item_1"},
    {"type": "response.create"},
    {
        "type": "response.create",
        "response": {
            "conversation": "none",
            "output_modalities": ["text"],
            "instructions": "Summarise.",
            "metadata": {"topic": "summary"},
            "input": [
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "x"}],
                }
            ],
            "audio": {"output": {"voice": "alloy"}},
            "tool_choice": "none",
            "max_output_tokens": 100,
        },
    },
    {"type": "response.cancel"},
    {"type": "response.cancel", "response_id": "resp_1"},
]


def test_every_client_event_type_is_covered() -> None:
    assert {e["type"] for e in VALID_GA} == set(EVENT_MODELS)


@pytest.mark.parametrize("event", VALID_GA, ids=lambda e: e["type"])
def test_valid_ga_events_parse_and_match_the_sdk(event) -> None:
    parsed = parse_client_event(json.dumps(event), dialect="ga")
    assert parsed.event.type == event["type"]
    GA_UNION.validate_python(event)  # what we accept is what the official SDK sends


def test_append_decodes_audio() -> None:
    parsed = parse_client_event(
        '{"type": "input_audio_buffer.append", "audio": "AAEC"}', dialect="ga"
    )
    assert parsed.event.audio_bytes == b"\x00\x01\x02"


def test_session_update_yields_a_patch_for_each_dialect() -> None:
    ga = parse_client_event(
        json.dumps(
            {
                "type": "session.update",
                "session": {"type": "realtime", "audio": {"output": {"speed": 1.2}}},
            }
        ),
        dialect="ga",
    )
    assert ga.session_patch == {"type": "realtime", "audio": {"output": {"speed": 1.2}}}
    beta_event = {
        "type": "session.update",
        "session": {"voice": "alloy", "input_audio_format": "g711_ulaw"},
    }
    BETA_UNION.validate_python(beta_event)
    beta = parse_client_event(json.dumps(beta_event), dialect="beta")
    assert beta.session_patch == {
        "audio": {"input": {"format": {"type": "audio/pcmu"}}, "output": {"voice": "alloy"}}
    }


def test_beta_names_map_to_ga_shapes() -> None:
    item_event = {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": "Hi."}],
        },
    }
    BETA_UNION.validate_python(item_event)
    parsed = parse_client_event(json.dumps(item_event), dialect="beta")
    assert parsed.event.item.content[0].type == "output_text"
    response_event = {
        "type": "response.create",
        "response": {
            "modalities": ["text", "audio"],
            "voice": "coral",
            "output_audio_format": "g711_alaw",
            "max_response_output_tokens": "inf",
            "temperature": 0.9,
        },
    }
    BETA_UNION.validate_python(response_event)
    params = parse_client_event(json.dumps(response_event), dialect="beta").event.response
    assert params.output_modalities == ["audio"] and params.max_output_tokens == "inf"
    assert params.audio.output.voice == "coral" and params.audio.output.format.type == "audio/pcma"
    # GA spellings are not beta's and vice versa.
    with pytest.raises(CodecError):
        parse_client_event(json.dumps(response_event), dialect="ga")


def test_xstar_tts_text_content() -> None:
    event = {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "tts_text", "text": "电量不足，请及时充电"}],
        },
    }
    for dialect in ("ga", "beta"):
        assert (
            parse_client_event(json.dumps(event), dialect=dialect).event.item.content[0].type
            == "tts_text"
        )


@pytest.mark.parametrize(
    ("raw", "param", "code"),
    [
        ("{not json", None, "invalid_json"),
        ("[1, 2]", None, "invalid_type"),
        ('{"event_id": "e"}', "type", "missing_required_parameter"),
        ('{"type": "session.create", "event_id": "e"}', "type", "invalid_value"),
        (
            '{"type": "input_audio_buffer.append", "event_id": "e"}',
            "audio",
            "missing_required_parameter",
        ),
        (
            '{"type": "input_audio_buffer.append", "audio": "@@@", "event_id": "e"}',
            "audio",
            "invalid_value",
        ),
        (
            '{"type": "input_audio_buffer.append", "audio": 5, "event_id": "e"}',
            "audio",
            "invalid_type",
        ),
        (
            '{"type": "input_audio_buffer.commit", "extra": 1, "event_id": "e"}',
            "extra",
            "unknown_parameter",
        ),
        (
            '{"type": "conversation.item.truncate", "item_id": "i", "content_index": 0, "audio_end_ms": "5", "event_id": "e"}',
            "audio_end_ms",
            "invalid_type",
        ),
        (
            '{"type": "conversation.item.create", "item": {"type": "message", "role": "user"}, "event_id": "e"}',
            "item.content",
            "missing_required_parameter",
        ),
        (
            '{"type": "conversation.item.create", "item": {"type": "message", "role": "robot", "content": []}, "event_id": "e"}',
            "item.role",
            "invalid_value",
        ),
        (
            '{"type": "response.create", "response": {"conversation": "other"}, "event_id": "e"}',
            "response.conversation",
            "invalid_value",
        ),
        (
            '{"type": "response.create", "response": {"metadata": {"k": 5}}, "event_id": "e"}',
            "response.metadata.k",
            "invalid_type",
        ),
        (
            '{"type": "session.update", "session": {"type": "realtime", "voice": "alloy"}, "event_id": "e"}',
            "session.voice",
            "unknown_parameter",
        ),
    ],
)
def test_errors_name_the_field_and_echo_the_event_id(raw, param, code) -> None:
    with pytest.raises(CodecError) as info:
        parse_client_event(raw, dialect="ga")
    assert info.value.error.param == param
    assert info.value.error.code == code
    assert info.value.error.type == "invalid_request_error"
    assert info.value.event_id == ("e" if '"event_id"' in raw else None)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _mutate(value, path, action, replacement):
    if not path:
        return replacement if action != "keep" else value
    head, *rest = path
    copy = dict(value) if isinstance(value, dict) else list(value)
    if not rest and action == "drop":
        del copy[head]
        return copy
    copy[head] = _mutate(copy[head], rest, action, replacement)
    return copy


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(VALID_GA),
    data=st.data(),
    action=st.sampled_from(["replace", "drop", "add"]),
    replacement=JSON_VALUES,
    dialect=st.sampled_from(["ga", "beta"]),
)
def test_mutated_events_give_an_event_or_one_codec_error(
    base, data, action, replacement, dialect
) -> None:
    paths = list(_paths(base))
    path = data.draw(st.sampled_from(paths))
    if action == "add":
        event = json.loads(json.dumps(base))
        target = event
        for key in path:
            target = target[key]
        if isinstance(target, dict):
            target[data.draw(st.text(min_size=1, max_size=10))] = replacement
    else:
        event = _mutate(base, path, action, replacement) if path or action == "replace" else base
    try:
        parse_client_event(json.dumps(event), dialect=dialect)
    except CodecError as exc:
        assert exc.error.message and exc.error.type == "invalid_request_error"
        if isinstance(event, dict) and isinstance(event.get("event_id"), str):
            assert exc.event_id == event["event_id"]


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=200) | st.text(max_size=200))
def test_arbitrary_frames_never_escape(raw) -> None:
    try:
        parse_client_event(raw, dialect="ga")
    except CodecError:
        pass
