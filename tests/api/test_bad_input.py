"""Hostile request bodies on /v1: every one a 4xx in the OpenAI error shape, never a 500.

Before hardening, oversized bodies raised ``RequestDataTooBig`` (500), deep JSON raised
``RecursionError`` (500) and ``NaN``/``Infinity`` reached a JSONField and broke SQLite's
``JSON_VALID`` CHECK constraint (``IntegrityError``, 500).
"""

from __future__ import annotations

import json

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.http import HttpResponse
from django.test import RequestFactory

from apps.api.middleware import ApiErrorMiddleware
from apps.licensing.models import ClientSecret
from tests.conftest import assert_openai_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("voices")]

GA = "/v1/realtime/client_secrets"
BETA = "/v1/realtime/sessions"
DEEP = 5_000


def _tools_with(value: str) -> str:
    """A free-form spot (a tool's JSON schema) holding ``value`` as raw JSON text."""
    return (
        '[{"type": "function", "name": "f", "parameters": {"type": "object", "x": ' + value + "}}]"
    )


def _body(path: str, raw_tools: str) -> bytes:
    if path == GA:
        return ('{"session": {"type": "realtime", "tools": ' + raw_tools + "}}").encode()
    return ('{"tools": ' + raw_tools + "}").encode()


BAD_JSON = {
    "deep arrays": lambda path: ("[" * DEEP + "]" * DEEP).encode(),
    "deep objects": lambda path: ('{"a":' * DEEP + "1" + "}" * DEEP).encode(),
    "deep inside a schema": lambda path: _body(path, _tools_with("[" * DEEP + "]" * DEEP)),
    "NaN": lambda path: _body(path, _tools_with("NaN")),
    "Infinity": lambda path: _body(path, _tools_with("Infinity")),
    "-Infinity": lambda path: _body(path, _tools_with("-Infinity")),
    "overflowing number": lambda path: _body(path, _tools_with("1e999")),
    # Pydantic refuses it in typed fields; a tool's schema is free-form and went to the DB.
    "lone surrogate": lambda path: _body(path, _tools_with('"\\ud800"')),
}


def _post(api, path: str, raw: bytes, key: str | None, content_type: str = "application/json"):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return api.client.post(path, data=raw, content_type=content_type, headers=headers)


@pytest.mark.parametrize("path", [GA, BETA])
@pytest.mark.parametrize("kind", sorted(BAD_JSON))
def test_hostile_json_bodies_are_400_and_nothing_is_minted(api, issued, path, kind) -> None:
    error = assert_openai_error(_post(api, path, BAD_JSON[kind](path), issued.key), 400)
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("We could not parse the JSON body of your request: ")
    assert not ClientSecret.objects.exists()


@pytest.mark.parametrize("path", [GA, BETA])
@pytest.mark.parametrize("raw", [b'"text"', b"null", b"42", b"[]"])
def test_non_object_json_bodies_are_400(api, issued, path, raw) -> None:
    assert_openai_error(_post(api, path, raw, issued.key), 400, code="invalid_type")


@pytest.mark.parametrize("path", [GA, BETA])
def test_a_lone_surrogate_is_refused_but_a_surrogate_pair_is_a_character(api, issued, path):
    lone = _post(api, path, _body(path, _tools_with('"\\ud83d"')), issued.key)
    error = assert_openai_error(lone, 400)
    assert "surrogate" in error["message"]
    response = _post(api, path, _body(path, _tools_with('"\\ud83d\\ude00"')), issued.key)
    assert response.status_code == 200, response.content
    assert "\N{GRINNING FACE}" in json.dumps(response.json(), ensure_ascii=False)


def _oversize() -> bytes:
    # A valid JSON object one byte over the limit: only its size is wrong.
    limit = django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    filler = "x" * (limit - len('{"instructions": ""}') + 1)
    return json.dumps({"instructions": filler}).encode()


@pytest.mark.parametrize("path", [GA, BETA])
def test_oversized_json_body_is_413_and_one_at_the_limit_is_read(api, issued, path) -> None:
    raw = _oversize()
    assert len(raw) == django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1
    assert_openai_error(_post(api, path, raw, issued.key), 413, code="request_too_large")
    # Trailing whitespace is valid JSON: a good body padded to exactly the limit.
    good = b'{"session": {"type": "realtime"}}' if path == GA else b"{}"
    at_limit = good.ljust(django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE, b" ")
    response = _post(api, path, at_limit, issued.key)
    assert response.status_code == 200, response.content[:200]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/models"),
        ("POST", "/v1/models"),
        ("PUT", "/v1/realtime/voices"),
        ("POST", "/v1/no/such/endpoint"),
    ],
)
def test_oversized_body_is_413_on_endpoints_that_do_not_read_json(api, issued, method, path):
    response = api.client.generic(
        method,
        path,
        data=_oversize(),
        content_type="application/octet-stream",
        headers={"Authorization": f"Bearer {issued.key}"},
    )
    assert_openai_error(response, 413, code="request_too_large")


def test_oversized_body_is_413_before_authentication(api) -> None:
    # Refusing by size first costs nothing; no key material is looked at for such a request.
    assert_openai_error(_post(api, GA, _oversize(), None), 413, code="request_too_large")


def test_oversized_multipart_body_is_413(api, issued, settings) -> None:
    # Multipart bodies are left to Django's parser (files are exempt from the limit); this
    # endpoint reads the raw body, which Django refuses past the limit.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = api.client.post(
        GA,
        data={"field": "x" * 2048},
        headers={"Authorization": f"Bearer {issued.key}"},
    )
    assert_openai_error(response, 413, code="request_too_large")


@pytest.mark.parametrize(
    ("exception", "status", "code"),
    [
        (RequestDataTooBig("too big"), 413, "request_too_large"),
        (TooManyFieldsSent("too many fields"), 400, None),
        (SuspiciousOperation("odd"), 400, None),
    ],
)
def test_exceptions_raised_in_api_views_become_openai_errors(exception, status, code) -> None:
    middleware = ApiErrorMiddleware(lambda request: HttpResponse())
    request = RequestFactory().post("/v1/realtime/client_secrets", data=b"{}", content_type="x/y")
    response = middleware.process_exception(request, exception)
    assert response is not None and response.status_code == status
    error = json.loads(response.content)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["code"] == code
    assert str(exception) not in error["message"]
