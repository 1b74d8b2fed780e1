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
from apps.realtime.protocol.codec import (
    MAX_EVENT_ID_CHARS,
    CodecError,
    parse_client_event,
    usable_event_id,
)

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


def _deep(depth: int) -> str:
    return (
        '{"a": ' * (depth // 2)
        + "[" * (depth - depth // 2)
        + "]" * (depth - depth // 2)
        + ("}" * (depth // 2))
    )


def _in_metadata(raw: str) -> str:
    return '{"type": "response.create", "event_id": "e", "response": {"metadata": ' + raw + "}}"


# Frames that used to silence or kill a session: (raw, the event_id the error must echo).
HOSTILE = {
    "surrogate in type": ('{"type": "\\ud800", "event_id": "e"}', "e"),
    "surrogate in event_id": ('{"type": "input_audio_buffer.clear", "event_id": "\\ud800"}', None),
    "low surrogate in event_id": ('{"type": "bogus", "event_id": "x\\udfff"}', None),
    "surrogate in a key": (
        '{"type": "input_audio_buffer.clear", "\\udc00": 1, "event_id": "e"}',
        "e",
    ),
    "surrogate in instructions": (
        '{"type": "session.update", "event_id": "e", '
        '"session": {"type": "realtime", "instructions": "hi \\ud83d"}}',
        "e",
    ),
    "deep arrays": ("[" * 2_000 + "]" * 2_000, None),
    "deep objects": ('{"a":' * 2_000 + "1" + "}" * 2_000, None),
    "deep in metadata": (
        _in_metadata(_deep(5_000)),
        None,
    ),
    # The event (1) and its response (2) enclose the metadata value: 2 + 63 = 65 levels.
    "one past the depth limit": (
        _in_metadata(_deep(63)),
        None,
    ),
    "NaN": (
        '{"type": "session.update", "event_id": "e", '
        '"session": {"type": "realtime", "temperature": NaN}}',
        "e",
    ),
    "Infinity": (
        '{"type": "conversation.item.truncate", "event_id": "e", "item_id": "i", '
        '"content_index": 0, "audio_end_ms": Infinity}',
        "e",
    ),
    "-Infinity in a tool schema": (
        '{"type": "session.update", "event_id": "e", "session": {"type": "realtime", "tools": '
        '[{"type": "function", "name": "f", "parameters": {"type": "object", "min": -Infinity}}]}}',
        "e",
    ),
    "overflowing number": (
        '{"type": "session.update", "event_id": "e", "session": {"type": "realtime", "tools": '
        '[{"type": "function", "name": "f", "parameters": {"type": "object", "max": 1e999}}]}}',
        "e",
    ),
}


def _sendable(exc: CodecError) -> None:
    """What the session sends for this error must be valid JSON and encode as UTF-8."""
    error = {**exc.error.as_dict(), "event_id": exc.event_id}
    json.dumps({"type": "error", "error": error}, ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


@pytest.mark.parametrize("dialect", ["ga", "beta"])
@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_frames_give_one_sendable_invalid_json_error(kind, dialect) -> None:
    raw, echo = HOSTILE[kind]
    with pytest.raises(CodecError) as info:
        parse_client_event(raw, dialect=dialect)
    assert info.value.error.code == "invalid_json"
    assert info.value.error.param is None
    assert info.value.error.message.startswith("The event is not valid JSON: ")
    assert info.value.event_id == echo
    _sendable(info.value)


def test_a_surrogate_pair_is_one_character_and_a_lone_half_is_refused() -> None:
    def frame(escapes: str) -> str:
        # A tool's schema is free-form: nothing but the JSON reader can catch a lone half.
        return (
            '{"type": "session.update", "event_id": "\\ud83d\\ude00", "session": '
            '{"type": "realtime", "tools": [{"type": "function", "name": "f", '
            '"parameters": {"type": "object", "description": "' + escapes + '"}}]}}'
        )

    parsed = parse_client_event(frame("\\ud83d\\ude00"), dialect="ga")
    assert parsed.session_patch["tools"][0]["parameters"]["description"] == "\N{GRINNING FACE}"
    with pytest.raises(CodecError) as info:
        parse_client_event(frame("\\ud83d"), dialect="ga")
    assert info.value.error.code == "invalid_json"
    assert info.value.event_id == "\N{GRINNING FACE}"


def test_only_usable_event_ids_are_echoed() -> None:
    long_id = "e" * (MAX_EVENT_ID_CHARS + 1)
    with pytest.raises(CodecError) as info:
        parse_client_event(json.dumps({"type": "bogus", "event_id": long_id}), dialect="ga")
    assert info.value.event_id is None
    assert usable_event_id({"event_id": long_id[1:]}) == long_id[1:]
    assert usable_event_id({"event_id": "a\udfffb"}) is None
    assert usable_event_id(["event_id"]) is None


NON_FINITE = st.sampled_from([float("nan"), float("inf"), float("-inf")])
# Text that may hold lone surrogates (hypothesis leaves the Cs category out by default).
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=20)
# A placeholder string, swapped for raw deeply nested JSON after json.dumps (which cannot
# itself write nesting that deep without recursing).
DEEP_MARK = "\x00deep\x00"
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | NON_FINITE
    | ANY_TEXT
    | st.just(DEEP_MARK),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4)
    ),
    max_leaves=12,
)


def _frame_text(dumped: str, deep_depth: int) -> str:
    """Splice nesting ``deep_depth`` levels deep in place of every ``DEEP_MARK``.

    ``json.dumps`` (allow_nan=True, its default) already wrote NaN/Infinity as the literals.
    """
    return dumped.replace(json.dumps(DEEP_MARK), _deep(deep_depth))


def _has_mark(value: object) -> bool:
    return json.dumps(DEEP_MARK) in json.dumps(value)


def _clean(value: object) -> bool:
    """Whether ``value`` has no non-finite float and no lone surrogate anywhere."""
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False, default=str).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return False
    return True


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
    action=st.sampled_from(["replace", "drop", "add", "duplicate"]),
    replacement=JSON_VALUES,
    dialect=st.sampled_from(["ga", "beta"]),
    # Shallow enough to stay far inside the limit wherever it lands, or far past it.
    deep_depth=st.integers(min_value=1, max_value=8) | st.integers(min_value=100, max_value=3_000),
)
def test_mutated_events_give_an_event_or_one_codec_error(
    base, data, action, replacement, dialect, deep_depth
) -> None:
    if action == "duplicate":
        # A key sent twice: the last value counts, as in json.loads.
        key = data.draw(st.sampled_from(sorted(base)))
        rest = json.dumps({k: v for k, v in base.items() if k != key})[1:-1]
        pairs = [rest] if rest else []
        pairs += [f"{json.dumps(key)}: {json.dumps(value)}" for value in (base[key], replacement)]
        frame = _frame_text("{" + ", ".join(pairs) + "}", deep_depth)
        event = {**base, key: replacement}
    else:
        path = data.draw(st.sampled_from(list(_paths(base))))
        if action == "add":
            event = json.loads(json.dumps(base))
            target = event
            for key in path:
                target = target[key]
            if isinstance(target, dict):
                target[data.draw(ANY_TEXT.filter(bool))] = replacement
        else:
            event = (
                _mutate(base, path, action, replacement) if path or action == "replace" else base
            )
        frame = _frame_text(json.dumps(event), deep_depth)
    too_deep = deep_depth >= 100 and _has_mark(event)
    # The oracle: what the standard library makes of the frame (it keeps NaN and surrogates).
    decoded = None if too_deep else json.loads(frame)
    try:
        parsed = parse_client_event(frame, dialect=dialect)
    except CodecError as exc:
        assert exc.error.message and exc.error.type == "invalid_request_error"
        _sendable(exc)
        if too_deep or not _clean(decoded):
            # Not acceptable JSON: refused before any field is looked at.
            assert exc.error.code == "invalid_json", exc.error
        # The id is echoed whenever it was readable and sendable; never from a frame too
        # deep to decode.
        assert exc.event_id == (None if too_deep else usable_event_id(decoded))
    else:
        assert not too_deep and _clean(decoded), "accepted NaN/Infinity, a surrogate or deep JSON"
        assert _clean(parsed.event.model_dump())


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=200) | ANY_TEXT | st.text(max_size=200))
def test_arbitrary_frames_never_escape(raw) -> None:
    try:
        parse_client_event(raw, dialect="ga")
    except CodecError as exc:
        _sendable(exc)


def test_an_appends_audio_is_decoded_once_while_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Parsing may run off the event loop; the handler, on it, must not decode megabytes again.
    import base64

    from apps.realtime.protocol import client_events

    calls: list[int] = []
    real = client_events.decode_base64

    def counting(value: object) -> bytes:
        calls.append(1)
        return real(value)

    monkeypatch.setattr(client_events, "decode_base64", counting)
    pcm = bytes(range(256)) * 100
    frame = json.dumps(
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}
    )
    event = parse_client_event(frame, dialect="ga").event
    assert event.audio_bytes == pcm
    assert len(calls) == 1
