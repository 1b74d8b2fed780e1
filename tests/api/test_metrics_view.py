"""GET /metrics: off by default; when on, only for the metrics token or a staff user."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from prometheus_client.parser import text_string_to_metric_families

from apps.core import metrics
from tests.conftest import assert_openai_error
from tests.core.test_metrics import METRIC_NAMES

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-0123456789abcdef"


@pytest.fixture
def enabled(settings):
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = TOKEN
    return settings


def _get(client, token: str | None = None):
    return client.get("/metrics", headers={"Authorization": f"Bearer {token}"} if token else {})


def _login(client, *, is_staff: bool) -> None:
    user = get_user_model().objects.create_user(
        "operator", password="pw-for-tests-only", is_staff=is_staff
    )
    client.force_login(user)


def _families(response) -> dict:
    return {f.name: f for f in text_string_to_metric_families(response.content.decode())}


def test_off_unless_enabled(client, settings) -> None:
    if hasattr(settings, "METRICS_ENABLED"):
        del settings.METRICS_ENABLED
    settings.METRICS_TOKEN = TOKEN
    assert_openai_error(_get(client, TOKEN), 404)
    settings.METRICS_ENABLED = False
    assert_openai_error(_get(client, TOKEN), 404)
    _login(client, is_staff=True)
    assert_openai_error(_get(client), 404)


def test_no_credential_is_401(client, enabled) -> None:
    response = _get(client)
    assert_openai_error(response, 401, code="missing_api_key")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response["Cache-Control"] == "no-store"


def test_a_wrong_token_or_a_license_key_is_401(client, enabled, issued) -> None:
    for token in (TOKEN + "x", TOKEN[:-1], "x", issued.key):
        assert_openai_error(_get(client, token), 401, code="invalid_api_key")


def test_without_a_configured_token_no_bearer_passes(client, settings) -> None:
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = ""
    assert_openai_error(_get(client, "anything"), 401)


def test_the_token_gets_the_prometheus_text(client, enabled) -> None:
    metrics.event_in("response.cancel")
    before = _families(_get(client, TOKEN))
    metrics.event_in("response.cancel")
    response = _get(client, TOKEN)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response["Cache-Control"] == "no-store"
    families = _families(response)
    assert METRIC_NAMES <= set(families)

    def cancels(found: dict) -> float:
        return next(
            s.value
            for s in found["realtime_client_events"].samples
            if s.name == "realtime_client_events_total" and s.labels["type"] == "response.cancel"
        )

    assert cancels(families) == cancels(before) + 1


def test_a_staff_session_gets_the_metrics(client, enabled) -> None:
    _login(client, is_staff=True)
    response = _get(client)
    assert response.status_code == 200
    assert METRIC_NAMES <= set(_families(response))


def test_a_signed_in_user_who_is_not_staff_is_403(client, enabled) -> None:
    _login(client, is_staff=False)
    assert_openai_error(_get(client), 403)


def test_guessing_is_throttled_but_the_right_token_still_passes(client, enabled) -> None:
    enabled.LICENSING_AUTH_FAILURES_PER_MINUTE = 2
    for _ in range(2):
        assert_openai_error(_get(client, "guess"), 401)
    response = _get(client, "guess")
    assert_openai_error(response, 429, code="rate_limit_exceeded")
    assert int(response["Retry-After"]) >= 1
    assert _get(client, TOKEN).status_code == 200


def test_only_get(client, enabled) -> None:
    response = client.post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 405
