"""Every /v1 endpoint: its auth, and the OpenAI shape of each refusal."""

import pytest

from apps.licensing import keys
from apps.licensing.services import client_secret_create, license_revoke
from tests.conftest import assert_openai_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("voices")]

ENDPOINTS = [
    ("GET", "/v1/models"),
    ("GET", "/v1/models/scripted-echo"),
    ("GET", "/v1/realtime/voices"),
    ("GET", "/v1/realtime/voiceList"),
    ("GET", "/v1/realtime/characters"),
    ("POST", "/v1/realtime/sessions"),
    ("POST", "/v1/realtime/client_secrets"),
]
GOOD_BODY = {
    "/v1/realtime/sessions": {},
    "/v1/realtime/client_secrets": {"session": {"type": "realtime"}},
}


def _call(api, method, path, key=None, **headers):
    if method == "GET":
        return api.client.get(
            path, headers={**({"Authorization": f"Bearer {key}"} if key else {}), **headers}
        )
    return api.post(path, GOOD_BODY.get(path, {}), key)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_license_key_is_accepted(api, issued, method, path) -> None:
    response = _call(api, method, path, issued.key)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_missing_key_is_401(api, method, path) -> None:
    error = assert_openai_error(_call(api, method, path), 401, code=None, param=None)
    assert "Authorization" in error["message"]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_non_bearer_scheme_is_401(api, issued, method, path) -> None:
    response = api.client.generic(method, path, headers={"Authorization": f"Basic {issued.key}"})
    assert_openai_error(response, 401)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_unknown_key_is_401_invalid_api_key(api, method, path) -> None:
    fake = keys.generate_key(keys.LICENSE_PREFIX).value
    error = assert_openai_error(_call(api, method, path, fake), 401, code="invalid_api_key")
    assert fake not in error["message"]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_revoked_key_is_401(api, issued, method, path) -> None:
    license_revoke(license=issued.license)
    assert_openai_error(_call(api, method, path, issued.key), 401, code="invalid_api_key")


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_ephemeral_secret_is_refused_on_management_endpoints(api, issued, method, path) -> None:
    secret = client_secret_create(
        license=issued.license, session_config={"type": "realtime"}, ttl_s=600
    )
    error = assert_openai_error(
        _call(api, method, path, secret.value), 403, code="insufficient_permissions"
    )
    assert "realtime connection" in error["message"]


def test_failed_attempts_are_rate_limited(api, issued, settings) -> None:
    settings.LICENSING_AUTH_FAILURES_PER_MINUTE = 5
    fake = keys.generate_key(keys.LICENSE_PREFIX).value
    for _ in range(5):
        assert_openai_error(api.get("/v1/models", fake), 401)
    response = api.get("/v1/models", fake)
    assert_openai_error(response, 429, code="rate_limit_exceeded")
    assert 1 <= int(response["Retry-After"]) <= 61
    # A valid key from the same address is never refused for others' failures.
    assert api.get("/v1/models", issued.key).status_code == 200


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_wrong_method_is_405_json(api, issued, method, path) -> None:
    other = "DELETE"
    response = api.client.generic(other, path, headers={"Authorization": f"Bearer {issued.key}"})
    assert_openai_error(response, 405)
    assert method in response["Allow"]


@pytest.mark.parametrize("path", ["/v1/nope", "/v1/realtime/unknown", "/v1/models/"])
def test_unknown_paths_are_404_json(api, issued, path) -> None:
    error = assert_openai_error(api.get(path, issued.key), 404, code=None)
    assert error["message"] == f"Invalid URL (GET {path})"


@pytest.mark.parametrize("path", ["/v1/realtime/sessions", "/v1/realtime/client_secrets"])
@pytest.mark.parametrize(
    ("raw", "code"), [(b"{not json", None), (b"[1, 2]", "invalid_type"), (b"\xff\xfe", None)]
)
def test_bad_json_bodies_are_400(api, issued, path, raw, code) -> None:
    assert_openai_error(api.post(path, None, issued.key, raw=raw), 400, code=code)


def test_server_errors_under_v1_are_json(api, issued, monkeypatch) -> None:
    from apps.api.views import models

    def boom():
        raise RuntimeError("provider exploded")

    monkeypatch.setattr(models, "available_routes", boom)
    response = api.get("/v1/models", issued.key)
    error = assert_openai_error(response, 500, code=None)
    assert error["type"] == "server_error"
    assert "exploded" not in error["message"]
