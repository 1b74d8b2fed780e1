"""Models, voices and characters as clients see them (/healthz: tests/api/test_health.py)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from openai.types import Model

from apps.avatar.models import Character
from apps.voice.models import Voice
from tests.conftest import assert_openai_error

pytestmark = pytest.mark.django_db


def test_models_list_bare_and_qualified_ids(api, issued) -> None:
    body = api.get("/v1/models", issued.key).json()
    assert body["object"] == "list"
    ids = [entry["id"] for entry in body["data"]]
    assert ids == [
        "scripted-echo",
        "scripted-echo@scripted",
        "scripted-tools",
        "scripted-tools@scripted",
    ]
    for entry in body["data"]:
        Model.model_validate(entry)
        assert entry["owned_by"] == "scripted"


def test_models_list_follows_the_providers(api, issued, settings) -> None:
    settings.AGENT_PROVIDERS = {
        "a": {
            "BACKEND": "apps.agent.providers.scripted.ScriptedLlm",
            "OPTIONS": {"models": ["m1", "shared"]},
        },
        "b": {
            "BACKEND": "apps.agent.providers.scripted.ScriptedLlm",
            "OPTIONS": {"models": ["shared"]},
        },
    }
    ids = [e["id"] for e in api.get("/v1/models", issued.key).json()["data"]]
    assert ids == ["m1", "m1@a", "shared", "shared@a", "shared@b"]
    settings.AGENT_PROVIDERS = {}
    assert api.get("/v1/models", issued.key).json()["data"] == []


@pytest.mark.parametrize(
    ("model_id", "owner"), [("scripted-echo", "scripted"), ("scripted-tools@scripted", "scripted")]
)
def test_model_retrieve(api, issued, model_id, owner) -> None:
    body = api.get(f"/v1/models/{model_id}", issued.key).json()
    assert body == {"id": model_id, "object": "model", "created": 0, "owned_by": owner}


def test_model_retrieve_unknown_is_404(api, issued) -> None:
    assert_openai_error(api.get("/v1/models/gpt-5", issued.key), 404, code="model_not_found")


def test_voices_list_builtin_and_owned(api, issued, other_issued, voices) -> None:
    Voice.objects.create(
        slug="team-voice",
        display_name="Team",
        languages=["en"],
        engine="fake",
        engine_voice="t",
        builtin=False,
        owner_license=issued.license,
    )
    Voice.objects.create(
        slug="u1-clone",
        display_name="Clone",
        languages=["zh"],
        engine="fake",
        engine_voice="c",
        builtin=False,
        owner_license=issued.license,
        owner_user_id="u1",
    )
    Voice.objects.create(
        slug="inactive",
        display_name="Off",
        languages=["en"],
        engine="fake",
        engine_voice="o",
        active=False,
    )
    ids = lambda resp: [v["id"] for v in resp.json()["data"]]  # noqa: E731
    assert ids(api.get("/v1/realtime/voices", issued.key)) == [
        "alloy",
        "coral",
        "龙婉",
        "team-voice",
    ]
    assert ids(api.get("/v1/realtime/voices?user_id=u1", issued.key)) == [
        "alloy",
        "coral",
        "龙婉",
        "team-voice",
        "u1-clone",
    ]
    assert ids(api.get("/v1/realtime/voices", other_issued.key)) == ["alloy", "coral", "龙婉"]
    first = api.get("/v1/realtime/voices", issued.key).json()["data"][0]
    assert first == {
        "id": "alloy",
        "object": "realtime.voice",
        "name": "Alloy",
        "languages": ["en"],
        "gender": "neutral",
        "description": "",
        "builtin": True,
        "owner_user_id": None,
        "license": None,
    }


def test_voice_list_xstar_shape(api, issued, voices) -> None:
    Voice.objects.create(
        slug="u1-clone",
        display_name="克隆语音",
        languages=["zh"],
        engine="fake",
        engine_voice="c",
        builtin=False,
        owner_license=issued.license,
        owner_user_id="u1",
    )
    body = api.get("/v1/realtime/voiceList?userId=u1", issued.key).json()
    assert isinstance(body, list)
    assert [v["name"] for v in body] == ["alloy", "coral", "龙婉", "u1-clone"]
    assert body[-1] == {
        "name": "u1-clone",
        "displayName": "克隆语音",
        "languages": ["zh"],
        "gender": "neutral",
        "description": "",
        "custom": True,
        "license": None,
    }


def test_both_voice_lists_show_each_voice_licence(api, issued, voices) -> None:
    voices["龙婉"].license_name = "non-commercial (Baker CSMSC corpus)"
    voices["龙婉"].save()
    by_id = {v["id"]: v for v in api.get("/v1/realtime/voices", issued.key).json()["data"]}
    assert by_id["龙婉"]["license"] == "non-commercial (Baker CSMSC corpus)"
    assert by_id["alloy"]["license"] is None
    by_name = {v["name"]: v for v in api.get("/v1/realtime/voiceList", issued.key).json()}
    assert by_name["龙婉"]["license"] == "non-commercial (Baker CSMSC corpus)"
    assert by_name["alloy"]["license"] is None


def test_characters_list(api, issued, voices, settings, tmp_path) -> None:
    settings.MEDIA_ROOT = tmp_path
    Character.objects.create(
        slug="girl2",
        display_name="Girl 2",
        default_voice=voices["龙婉"],
        look={"hair": "#000000"},
        portrait=SimpleUploadedFile("p.png", b"\x89PNG\r\n\x1a\n", content_type="image/png"),
    )
    Character.objects.create(slug="hidden", display_name="Hidden", active=False)
    body = api.get("/v1/realtime/characters", issued.key).json()
    assert [c["id"] for c in body["data"]] == ["girl2"]
    girl = body["data"][0]
    assert girl["default_voice"] == "龙婉"
    assert girl["look"]["hair"] == "#000000" and girl["look"]["hair_style"] == "short"
    assert girl["portrait_url"].startswith("http://testserver/media/portraits/")
