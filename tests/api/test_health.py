"""/healthz: the status for anyone; the configuration only for staff and license keys."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError

from apps.api.views import health
from apps.licensing import keys
from apps.licensing.services import client_secret_create, license_revoke

pytestmark = pytest.mark.django_db

DETAIL_KEYS = {"versions", "database", "channel_layer", "engines", "providers"}


def _get(client, key: str | None = None):
    return client.get("/healthz", headers={"Authorization": f"Bearer {key}"} if key else {})


def _staff(client, *, is_staff: bool) -> None:
    user = get_user_model().objects.create_user(
        "operator", password="pw-for-tests-only", is_staff=is_staff
    )
    client.force_login(user)


def test_anonymous_callers_get_only_the_status(client) -> None:
    response = _get(client)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"
    assert "Authorization" in response["Vary"]


def test_a_license_key_sees_the_configuration(client, issued, settings) -> None:
    response = _get(client, issued.key)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", *DETAIL_KEYS}
    assert body["status"] == "ok"
    assert body["database"] == {"vendor": "sqlite", "ok": True}
    assert body["versions"]["django"].startswith("5.2")
    assert body["channel_layer"] == "InMemoryChannelLayer"
    assert body["providers"]["scripted"]["backend"] == "apps.agent.providers.scripted.ScriptedLlm"
    settings.VOICE_ENGINES = {"vad": {"BACKEND": "apps.voice.vad.fake.FakeVad"}}
    assert _get(client, issued.key).json()["engines"] == {
        "vad": {"backend": "apps.voice.vad.fake.FakeVad", "loaded": False}
    }
    from apps.voice.engines import get_vad

    get_vad()
    assert _get(client, issued.key).json()["engines"]["vad"] == {
        "backend": "apps.voice.vad.fake.FakeVad",
        "loaded": True,
        "engine": "FakeVad",
    }


def test_a_signed_in_staff_user_sees_the_configuration(client) -> None:
    _staff(client, is_staff=True)
    assert set(_get(client).json()) == {"status", *DETAIL_KEYS}


def test_a_signed_in_non_staff_user_does_not(client) -> None:
    _staff(client, is_staff=False)
    assert _get(client).json() == {"status": "ok"}


def test_provider_base_urls_are_not_shown_without_credentials(client, issued, settings) -> None:
    settings.AGENT_PROVIDERS = {
        "internal": {
            "BACKEND": "apps.agent.providers.openai_compat.OpenAICompatLlm",
            "OPTIONS": {
                "base_url": "http://10.1.2.3:8001/v1",
                "models": ["m"],
                "name": "internal",
            },
        }
    }
    assert "10.1.2.3" not in _get(client).content.decode()
    assert "10.1.2.3" in _get(client, issued.key).content.decode()


def test_ephemeral_secrets_and_bad_keys_get_only_the_status(client, issued) -> None:
    secret = client_secret_create(
        license=issued.license, session_config={"type": "realtime"}, ttl_s=600
    )
    unknown = keys.generate_key(keys.LICENSE_PREFIX).value
    for key in (secret.value, unknown, "garbage"):
        response = _get(client, key)
        # Not a 401: a probe holding a stale key must keep seeing the instance as healthy.
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
    license_revoke(license=issued.license)
    assert _get(client, issued.key).json() == {"status": "ok"}


def test_failed_keys_count_towards_the_throttle(client, issued, settings) -> None:
    settings.LICENSING_AUTH_FAILURES_PER_MINUTE = 3
    unknown = keys.generate_key(keys.LICENSE_PREFIX).value
    for _ in range(4):
        assert _get(client, unknown).json() == {"status": "ok"}
    # /healthz is no side door for guessing keys: the /v1 endpoints now refuse this address.
    response = client.get("/v1/models", headers={"Authorization": f"Bearer {unknown}"})
    assert response.status_code == 429


def test_a_dead_database_is_503_with_the_status_only(client, issued, monkeypatch) -> None:
    class Broken:
        vendor = "sqlite"

        def cursor(self):
            raise DatabaseError("down")

    monkeypatch.setattr(health, "connection", Broken())
    response = _get(client)
    assert response.status_code == 503
    assert response.json() == {"status": "degraded"}
    detailed = _get(client, issued.key)
    assert detailed.status_code == 503
    assert detailed.json()["database"] == {"vendor": "sqlite", "ok": False}


def test_a_failing_credential_check_still_answers_the_probe(client, issued, monkeypatch) -> None:
    def unavailable(**kwargs):
        raise DatabaseError("connection refused")

    monkeypatch.setattr(health, "authenticate", unavailable)
    response = _get(client, issued.key)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
