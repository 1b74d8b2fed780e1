"""Ephemeral client secrets: GA /v1/realtime/client_secrets and beta /v1/realtime/sessions."""

from datetime import timedelta

import pytest
from django.utils import timezone
from openai.types.beta.realtime.session_create_response import SessionCreateResponse
from openai.types.realtime.client_secret_create_response import ClientSecretCreateResponse

from apps.conversations.models import Conversation
from apps.licensing import keys
from apps.licensing.models import ClientSecret, License
from apps.licensing.services import AuthenticationFailed, credential_authenticate
from tests.conftest import assert_openai_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("voices")]

GA = "/v1/realtime/client_secrets"
BETA = "/v1/realtime/sessions"


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(timezone.now().replace(microsecond=0), tick=False)
    return time_machine


def test_ga_defaults_to_600_seconds_and_matches_the_sdk(api, issued, frozen) -> None:
    response = api.post(GA, {"session": {"type": "realtime"}}, issued.key)
    assert response.status_code == 200, response.content
    assert "no-store" in response["Cache-Control"]
    body = response.json()
    parsed = ClientSecretCreateResponse.model_validate(body)
    assert parsed.value.startswith("ek_") and keys.key_kind(parsed.value) == "client_secret"
    assert parsed.expires_at == int(timezone.now().timestamp()) + 600
    assert parsed.session.type == "realtime"
    assert parsed.session.audio.output.voice == "alloy"
    assert parsed.session.audio.input.turn_detection.type == "server_vad"
    assert body["session"]["model"] == "scripted-echo@scripted"


def test_ga_body_may_be_empty(api, issued) -> None:
    response = api.post(GA, {}, issued.key)
    assert response.status_code == 200
    assert response.json()["session"]["type"] == "realtime"


@pytest.mark.parametrize("seconds", [10, 7200])
def test_ga_honours_expires_after_within_bounds(api, issued, frozen, seconds) -> None:
    body = {
        "expires_after": {"anchor": "created_at", "seconds": seconds},
        "session": {"type": "realtime"},
    }
    response = api.post(GA, body, issued.key)
    assert response.status_code == 200
    assert response.json()["expires_at"] == int(timezone.now().timestamp()) + seconds


@pytest.mark.parametrize(
    ("expires_after", "code"),
    [
        ({"anchor": "created_at", "seconds": 9}, "integer_below_min_value"),
        ({"anchor": "created_at", "seconds": 7201}, "integer_above_max_value"),
        ({"anchor": "created_at", "seconds": "60"}, "invalid_type"),
        ({"anchor": "now", "seconds": 60}, "invalid_value"),
    ],
)
def test_ga_rejects_bad_expiry(api, issued, expires_after, code) -> None:
    response = api.post(
        GA, {"expires_after": expires_after, "session": {"type": "realtime"}}, issued.key
    )
    error = assert_openai_error(response, 400, code=code)
    assert error["param"].startswith("expires_after.")
    assert not ClientSecret.objects.exists()


def test_ga_secret_carries_its_session_and_expires(api, issued, frozen) -> None:
    session = {
        "type": "realtime",
        "instructions": "Be brief.",
        "output_modalities": ["text"],
        "audio": {"output": {"voice": "coral", "speed": 1.25}},
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
        "tool_choice": {"type": "function", "name": "get_weather"},
    }
    body = {
        "expires_after": {"anchor": "created_at", "seconds": 30},
        "session": session,
        "user_id": "user-42",
    }
    value = api.post(GA, body, issued.key).json()["value"]
    credential = credential_authenticate(key=value)
    stored = credential.client_secret
    assert credential.kind == "client_secret" and credential.license == issued.license
    assert stored.user_id == "user-42"
    assert stored.dialect == "ga"
    assert stored.session_config["instructions"] == "Be brief."
    assert stored.session_config["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "coral",
        "speed": 1.25,
    }
    assert stored.session_config["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert value not in repr(list(ClientSecret.objects.values()))
    frozen.shift(timedelta(seconds=30))
    with pytest.raises(AuthenticationFailed, match="expired"):
        credential_authenticate(key=value)


@pytest.mark.parametrize(
    ("session", "param", "code"),
    [
        ({}, "session.type", "missing_required_parameter"),
        ({"type": "transcription"}, "session.type", "invalid_value"),
        ({"type": "realtime", "modalities": ["text"]}, "session.modalities", "unknown_parameter"),
        ({"type": "realtime", "instructions": 42}, "session.instructions", "invalid_type"),
        (
            {"type": "realtime", "output_modalities": ["text", "audio"]},
            "session.output_modalities",
            "invalid_value",
        ),
        (
            {"type": "realtime", "output_modalities": ["video"]},
            "session.output_modalities[0]",
            "invalid_value",
        ),
        (
            {"type": "realtime", "audio": {"output": {"speed": 2.0}}},
            "session.audio.output.speed",
            "decimal_above_max_value",
        ),
        (
            {"type": "realtime", "audio": {"output": {"voice": "nobody"}}},
            "session.audio.output.voice",
            "invalid_value",
        ),
        (
            {"type": "realtime", "audio": {"input": {"format": {"type": "audio/wav"}}}},
            "session.audio.input.format.type",
            "invalid_value",
        ),
        (
            {
                "type": "realtime",
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": 22050}}},
            },
            "session.audio.input.format.rate",
            "invalid_value",
        ),
        (
            {"type": "realtime", "audio": {"input": {"format": {"type": "audio/mpeg"}}}},
            "session.audio.input.format",
            "invalid_value",
        ),
        (
            {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 1.5}}},
            },
            "session.audio.input.turn_detection.threshold",
            "decimal_above_max_value",
        ),
        (
            {
                "type": "realtime",
                "audio": {
                    "input": {
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": "500"}
                    }
                },
            },
            "session.audio.input.turn_detection.silence_duration_ms",
            "invalid_type",
        ),
        (
            {
                "type": "realtime",
                "audio": {
                    "input": {"turn_detection": {"type": "semantic_vad", "eagerness": "now"}}
                },
            },
            "session.audio.input.turn_detection.eagerness",
            "invalid_value",
        ),
        (
            {"type": "realtime", "tools": [{"type": "function", "name": "has space"}]},
            "session.tools[0].name",
            "invalid_value",
        ),
        (
            {"type": "realtime", "tools": [{"type": "function"}]},
            "session.tools[0].name",
            "missing_required_parameter",
        ),
        ({"type": "realtime", "tool_choice": "sometimes"}, "session.tool_choice", "invalid_value"),
        (
            {"type": "realtime", "tools": [], "tool_choice": {"type": "function", "name": "ghost"}},
            "session.tool_choice",
            "invalid_value",
        ),
        (
            {"type": "realtime", "max_output_tokens": 0},
            "session.max_output_tokens",
            "invalid_value",
        ),
        ({"type": "realtime", "model": "no-such-model"}, "session.model", "model_not_found"),
        (
            {"type": "realtime", "model": "scripted-echo@elsewhere"},
            "session.model",
            "model_not_found",
        ),
    ],
)
def test_ga_invalid_session_names_the_field(api, issued, session, param, code) -> None:
    response = api.post(GA, {"session": session}, issued.key)
    assert_openai_error(response, 400, code=code, param=param)
    assert not ClientSecret.objects.exists()


@pytest.mark.parametrize(
    "model", ["scripted-echo", "scripted-tools@scripted", "scripted-tools@SCRIPTED", "gpt-realtime"]
)
def test_ga_accepts_routable_models(api, issued, model) -> None:
    response = api.post(GA, {"session": {"type": "realtime", "model": model}}, issued.key)
    assert response.status_code == 200, response.content
    assert response.json()["session"]["model"] == model


def test_owned_voices_are_private_to_their_license(api, issued, other_issued) -> None:
    from apps.voice.models import Voice

    Voice.objects.create(
        slug="my-clone",
        display_name="Clone",
        languages=["zh"],
        engine="fake",
        engine_voice="x",
        builtin=False,
        owner_license=issued.license,
        owner_user_id="u1",
    )
    body = {
        "session": {"type": "realtime", "audio": {"output": {"voice": {"id": "my-clone"}}}},
        "user_id": "u1",
    }
    assert api.post(GA, body, issued.key).status_code == 200
    # Another user of the same license, and another license, cannot use it.
    assert_openai_error(
        api.post(GA, {**body, "user_id": "u2"}, issued.key), 400, param="session.audio.output.voice"
    )
    assert_openai_error(
        api.post(GA, body, other_issued.key), 400, param="session.audio.output.voice"
    )


def test_user_id_must_be_a_short_string(api, issued) -> None:
    assert_openai_error(api.post(GA, {"user_id": 5}, issued.key), 400, param="user_id")
    assert_openai_error(api.post(GA, {"userId": "x" * 129}, issued.key), 400, param="user_id")


def test_quota_exhausted_is_429(api, issued) -> None:
    License.objects.filter(pk=issued.license.pk).update(monthly_audio_minutes_quota=1)
    Conversation.objects.create(
        license=issued.license, transport="websocket", input_audio_ms=30_000, output_audio_ms=30_000
    )
    assert_openai_error(api.post(GA, {}, issued.key), 429, code="insufficient_quota")
    assert_openai_error(api.post(BETA, {}, issued.key), 429, code="insufficient_quota")


def test_quota_counts_this_month_only(api, issued, frozen) -> None:
    License.objects.filter(pk=issued.license.pk).update(monthly_audio_minutes_quota=1)
    Conversation.objects.create(
        license=issued.license,
        transport="websocket",
        output_audio_ms=120_000,
        started_at=timezone.now() - timedelta(days=40),
    )
    assert api.post(GA, {}, issued.key).status_code == 200


# --- beta -------------------------------------------------------------------------------


def test_beta_defaults_to_60_seconds_and_matches_the_sdk(api, issued, frozen) -> None:
    body = {
        "modalities": ["audio", "text"],
        "instructions": "你是一个活泼的助手。",
        "voice": "龙婉",
        "input_audio_format": "Raw16KHz16BitMonoPcm",
        "output_audio_format": "pcm16",
        "input_audio_transcription": {"model": "whisper-1"},
        "turn_detection": {"type": "server_vad"},
    }
    response = api.post(BETA, body, issued.key)
    assert response.status_code == 200, response.content
    parsed = SessionCreateResponse.model_validate(response.json())
    assert parsed.client_secret.value.startswith("ek_")
    assert parsed.client_secret.expires_at == int(timezone.now().timestamp()) + 60
    assert parsed.voice == "龙婉"
    assert parsed.input_audio_format == "Raw16KHz16BitMonoPcm"
    assert parsed.instructions == "你是一个活泼的助手。"
    stored = credential_authenticate(key=parsed.client_secret.value).client_secret
    assert stored.dialect == "beta"
    assert stored.session_config["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 16000}
    assert stored.session_config["audio"]["input"]["transcription"]["model"] == "whisper-1"


@pytest.mark.parametrize("seconds", [10, 7200])
def test_beta_honours_client_secret_expires_after(api, issued, frozen, seconds) -> None:
    body = {"client_secret": {"expires_after": {"anchor": "created_at", "seconds": seconds}}}
    response = api.post(BETA, body, issued.key)
    assert (
        response.json()["client_secret"]["expires_at"] == int(timezone.now().timestamp()) + seconds
    )


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (
            {"client_secret": {"expires_after": {"anchor": "created_at", "seconds": 5}}},
            "client_secret.expires_after.seconds",
            "integer_below_min_value",
        ),
        (
            {"client_secret": {"expires_after": {"anchor": "created_at", "seconds": 9000}}},
            "client_secret.expires_after.seconds",
            "integer_above_max_value",
        ),
        ({"input_audio_format": "wav"}, "input_audio_format", "invalid_value"),
        ({"input_audio_format": "MonoMp3"}, "input_audio_format", "invalid_value"),
        ({"temperature": 2.0}, "temperature", "decimal_above_max_value"),
        ({"voice": "nobody"}, "voice", "invalid_value"),
        ({"turn_detection": {"type": "magic"}}, "turn_detection.type", "invalid_value"),
        ({"max_response_output_tokens": "lots"}, "max_response_output_tokens", "invalid_value"),
        ({"output_modalities": ["text"]}, "output_modalities", "unknown_parameter"),
    ],
)
def test_beta_invalid_config_names_the_field(api, issued, body, param, code) -> None:
    assert_openai_error(api.post(BETA, body, issued.key), 400, param=param, code=code)
    assert not ClientSecret.objects.exists()


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("pcm16", {"type": "audio/pcm", "rate": 24000}),
        ("g711_ulaw", {"type": "audio/pcmu"}),
        ("g711_alaw", {"type": "audio/pcma"}),
        ("Raw8KHz16BitMonoPcm", {"type": "audio/pcm", "rate": 8000}),
        ("Raw44100Hz16BitMonoPcm", {"type": "audio/pcm", "rate": 44100}),
        ("MonoMp3", {"type": "audio/mpeg"}),
        ("Audio16KHz16BitMonoOpus", {"type": "audio/opus", "rate": 16000}),
    ],
)
def test_beta_output_formats_round_trip(api, issued, name, fmt) -> None:
    response = api.post(BETA, {"output_audio_format": name}, issued.key).json()
    stored = credential_authenticate(key=response["client_secret"]["value"]).client_secret
    assert stored.session_config["audio"]["output"]["format"] == fmt
    expected_name = "pcm16" if name == "Raw24KHz16BitMonoPcm" else name
    assert response["output_audio_format"] == expected_name
