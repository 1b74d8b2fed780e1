"""Shared fixtures: licenses, authenticated API calls, OpenAI error-shape checks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from apps.licensing.services import IssuedLicense, license_create


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    """The auth-failure throttle lives in the cache; start every test with a clean slate."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def issued(db: None) -> IssuedLicense:
    """A fresh active license and its one-time key."""
    return license_create(
        name="Test license", owner="tests", allowed_origins=["https://app.example.com"]
    )


@pytest.fixture
def other_issued(db: None) -> IssuedLicense:
    """A second, unrelated license."""
    return license_create(name="Other license")


class Api:
    """Django test client wrapper that speaks to /v1 with a Bearer key."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def get(self, path: str, key: str | None = None, **extra: Any) -> Any:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self.client.get(path, headers=headers, **extra)

    def post(
        self, path: str, body: Any, key: str | None = None, *, raw: bytes | None = None
    ) -> Any:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        data = raw if raw is not None else json.dumps(body)
        return self.client.post(path, data=data, content_type="application/json", headers=headers)


@pytest.fixture
def api(client: Client) -> Api:
    return Api(client)


def assert_openai_error(
    response: Any, status: int, *, code: Any = ..., param: Any = ...
) -> dict[str, Any]:
    """Check an OpenAI-shaped error body and return its ``error`` object."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    if code is not ...:
        assert error["code"] == code, error
    if param is not ...:
        assert error["param"] == param, error
    return error


@pytest.fixture
def voices(db: None) -> dict[str, Any]:
    """A small built-in catalogue: two OpenAI names and one Chinese name."""
    from apps.voice.models import Voice

    created = {}
    for slug, languages in (("alloy", ["en"]), ("coral", ["en"]), ("龙婉", ["zh"])):
        created[slug] = Voice.objects.create(
            slug=slug,
            display_name=slug.title(),
            languages=languages,
            engine="fake",
            engine_voice=slug,
        )
    return created
