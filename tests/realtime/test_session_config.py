"""Session config wire models, patches and the GA/beta codec."""

import pytest
from openai.types.beta.realtime.session import Session as BetaSession
from openai.types.realtime.realtime_session_create_response import RealtimeSessionCreateResponse

from apps.realtime.protocol.codec import (
    BETA_AUDIO_FORMATS,
    CodecError,
    beta_format_name,
    parse_session_config,
    session_to_beta,
    session_to_ga,
)
from apps.realtime.protocol.session_config import apply_patch, session_defaults


@pytest.fixture
def defaults():
    return session_defaults(instructions="Be kind.", voice="alloy")


def test_defaults_render_as_valid_sdk_objects(defaults) -> None:
    ga = RealtimeSessionCreateResponse.model_validate(session_to_ga(defaults, session_id="sess_1"))
    assert ga.audio.input.turn_detection.threshold == 0.5
    assert ga.audio.input.turn_detection.silence_duration_ms == 500
    assert ga.audio.input.turn_detection.prefix_padding_ms == 300
    assert ga.output_modalities == ["audio"]
    beta = BetaSession.model_validate(session_to_beta(defaults, session_id="sess_1"))
    assert beta.modalities == ["audio", "text"]
    assert beta.input_audio_format == "pcm16"
    assert beta.voice == "alloy"


def test_partial_update_changes_only_what_was_sent(defaults) -> None:
    patch = parse_session_config(
        {"type": "realtime", "audio": {"output": {"speed": 1.3}}}, dialect="ga"
    )
    merged = apply_patch(defaults, patch)
    assert merged["audio"]["output"] == {**defaults["audio"]["output"], "speed": 1.3}
    assert merged["audio"]["input"] == defaults["audio"]["input"]
    assert merged["instructions"] == "Be kind."


def test_leaf_objects_are_replaced_whole_with_their_defaults(defaults) -> None:
    tuned = apply_patch(
        defaults,
        parse_session_config(
            {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 0.8}}},
            },
            dialect="ga",
        ),
    )
    semantic = apply_patch(
        tuned,
        parse_session_config(
            {
                "type": "realtime",
                "audio": {
                    "input": {"turn_detection": {"type": "semantic_vad", "eagerness": "low"}}
                },
            },
            dialect="ga",
        ),
    )
    assert semantic["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad",
        "eagerness": "low",
        "create_response": True,
        "interrupt_response": True,
    }


def test_explicit_null_disables_turn_detection(defaults) -> None:
    patch = parse_session_config(
        {"type": "realtime", "audio": {"input": {"turn_detection": None}}}, dialect="ga"
    )
    assert apply_patch(defaults, patch)["audio"]["input"]["turn_detection"] is None
    beta = parse_session_config({"turn_detection": None}, dialect="beta", prefix=None)
    assert apply_patch(defaults, beta)["audio"]["input"]["turn_detection"] is None


def test_beta_flat_fields_map_onto_the_ga_shape(defaults) -> None:
    patch = parse_session_config(
        {
            "modalities": ["text"],
            "voice": "龙婉",
            "speed": 0.9,
            "temperature": 0.7,
            "max_response_output_tokens": 200,
            "input_audio_format": "g711_alaw",
            "input_audio_noise_reduction": {"type": "far_field"},
            "input_audio_transcription": {"model": "whisper-1", "language": "zh"},
            "turn_detection": {"type": "semantic_vad", "eagerness": "high"},
        },
        dialect="beta",
        prefix=None,
    )
    merged = apply_patch(defaults, patch)
    assert merged["output_modalities"] == ["text"]
    assert merged["audio"]["output"]["voice"] == "龙婉"
    assert merged["audio"]["output"]["speed"] == 0.9
    assert merged["temperature"] == 0.7
    assert merged["max_output_tokens"] == 200
    assert merged["audio"]["input"]["format"] == {"type": "audio/pcma"}
    assert merged["audio"]["input"]["noise_reduction"] == {"type": "far_field", "strength": None}
    assert merged["audio"]["input"]["transcription"]["language"] == "zh"
    assert merged["audio"]["input"]["turn_detection"]["eagerness"] == "high"
    back = session_to_beta(merged, session_id="sess_1")
    BetaSession.model_validate(back)
    assert back["modalities"] == ["text"]
    assert back["input_audio_format"] == "g711_alaw"
    assert back["temperature"] == 0.7


def test_beta_turn_detection_without_type_is_server_vad(defaults) -> None:
    patch = parse_session_config(
        {"turn_detection": {"silence_duration_ms": 800}}, dialect="beta", prefix=None
    )
    td = apply_patch(defaults, patch)["audio"]["input"]["turn_detection"]
    assert (
        td["type"] == "server_vad" and td["silence_duration_ms"] == 800 and td["threshold"] == 0.5
    )


@pytest.mark.parametrize("name", sorted(BETA_AUDIO_FORMATS))
def test_every_beta_format_name_round_trips(name) -> None:
    expected = "pcm16" if name == "Raw24KHz16BitMonoPcm" else name
    assert beta_format_name(BETA_AUDIO_FORMATS[name]) == expected


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ({"type": "audio/opus"}, "Audio16KHz16BitMonoOpus"),
        ({"type": "audio/opus", "rate": 48000}, "Audio48KHz16BitMonoOpus"),
        ({"type": "audio/pcm"}, "pcm16"),
        ({"type": "audio/pcm", "rate": None}, "pcm16"),
    ],
)
def test_beta_format_names_fill_in_ga_defaults(fmt, name) -> None:
    assert beta_format_name(fmt) == name


def test_beta_clients_can_choose_48khz_opus(defaults) -> None:
    patch = parse_session_config(
        {
            "input_audio_format": "Audio48KHz16BitMonoOpus",
            "output_audio_format": "Audio48KHz16BitMonoOpus",
        },
        dialect="beta",
        prefix=None,
    )
    opus = {"type": "audio/opus", "rate": 48000}
    assert patch["audio"] == {"input": {"format": opus}, "output": {"format": opus}}
    beta = session_to_beta(apply_patch(defaults, patch), session_id="s")
    assert beta["input_audio_format"] == beta["output_audio_format"] == "Audio48KHz16BitMonoOpus"


def test_ga_shows_extension_fields_only_when_used(defaults) -> None:
    assert "temperature" not in session_to_ga(defaults, session_id="s")
    with_temp = apply_patch(
        defaults, parse_session_config({"type": "realtime", "temperature": 0.9}, dialect="ga")
    )
    assert session_to_ga(with_temp, session_id="s")["temperature"] == 0.9


@pytest.mark.parametrize(
    ("data", "dialect", "param", "code"),
    [
        ("text", "ga", "session", "invalid_type"),
        (
            {"type": "realtime", "audio": {"input": {"bogus": 1}}},
            "ga",
            "session.audio.input.bogus",
            "unknown_parameter",
        ),
        (
            {
                "type": "realtime",
                "audio": {"output": {"format": {"type": "audio/pcm", "rate": "24000"}}},
            },
            "ga",
            "session.audio.output.format.rate",
            "invalid_value",
        ),
        (
            {"type": "realtime", "audio": {"input": {"noise_reduction": {"type": "loud"}}}},
            "ga",
            "session.audio.input.noise_reduction.type",
            "invalid_value",
        ),
        (
            {
                "type": "realtime",
                "tools": [{"type": "function", "name": "f", "parameters": {"type": "array"}}],
            },
            "ga",
            "session.tools[0].parameters",
            "invalid_value",
        ),
        (
            {
                "type": "realtime",
                "audio": {
                    "input": {"turn_detection": {"type": "server_vad", "create_response": "yes"}}
                },
            },
            "ga",
            "session.audio.input.turn_detection.create_response",
            "invalid_type",
        ),
        ({"instructions": ["a"]}, "beta", "instructions", "invalid_type"),
        ({"modalities": []}, "beta", "modalities", "invalid_value"),
        ({"speed": 0.1}, "beta", "speed", "decimal_below_min_value"),
        (
            {"tool_choice": {"type": "function", "name": "nope"}, "tools": []},
            "beta",
            "tool_choice",
            "invalid_value",
        ),
    ],
)
def test_errors_name_the_field(data, dialect, param, code) -> None:
    prefix = "session" if dialect == "ga" else None
    with pytest.raises(CodecError) as info:
        parse_session_config(data, dialect=dialect, prefix=prefix)
    assert info.value.error.param == param
    assert info.value.error.code == code
    assert info.value.error.type == "invalid_request_error"
