"""The official openai SDK, pointed at a live server by base URL only, against our HTTP API."""

import openai
import pytest

from apps.licensing.services import license_create

pytestmark = pytest.mark.usefixtures("voices")


@pytest.fixture
def sdk(live_server, transactional_db):
    key = license_create(name="sdk").key
    return (
        openai.OpenAI(api_key=key, base_url=f"{live_server.url}/v1", max_retries=0),
        key,
        live_server.url,
    )


def test_models_list(sdk) -> None:
    client, _, _ = sdk
    ids = [m.id for m in client.models.list()]
    assert "scripted-echo" in ids and "scripted-echo@scripted" in ids
    assert client.models.retrieve("scripted-tools").owned_by == "scripted"


def test_ga_client_secret(sdk) -> None:
    client, _, _ = sdk
    secret = client.realtime.client_secrets.create(
        expires_after={"anchor": "created_at", "seconds": 120},
        session={
            "type": "realtime",
            "instructions": "Be brief.",
            "audio": {"output": {"voice": "coral"}},
        },
    )
    assert secret.value.startswith("ek_")
    assert secret.session.instructions == "Be brief."
    assert secret.session.audio.output.voice == "coral"


def test_beta_session(sdk) -> None:
    client, _, _ = sdk
    session = client.beta.realtime.sessions.create(
        voice="alloy", modalities=["text"], input_audio_format="g711_ulaw"
    )
    assert session.client_secret.value.startswith("ek_")
    assert session.modalities == ["text"]
    assert session.input_audio_format == "g711_ulaw"


def test_sdk_errors_map_to_its_exception_types(sdk) -> None:
    client, _, url = sdk
    with pytest.raises(openai.BadRequestError) as bad:
        client.realtime.client_secrets.create(
            session={"type": "realtime", "audio": {"output": {"speed": 9.0}}}
        )
    assert bad.value.param == "session.audio.output.speed"
    assert bad.value.code == "decimal_above_max_value"
    with pytest.raises(openai.AuthenticationError) as unauth:
        openai.OpenAI(api_key="lic_wrong", base_url=f"{url}/v1", max_retries=0).models.list()
    assert unauth.value.code == "invalid_api_key"
    secret = client.realtime.client_secrets.create(session={"type": "realtime"}).value
    with pytest.raises(openai.PermissionDeniedError):
        openai.OpenAI(api_key=secret, base_url=f"{url}/v1", max_retries=0).models.list()
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")
