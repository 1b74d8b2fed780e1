"""Ephemeral secrets: GA ``/v1/realtime/client_secrets``, beta ``/v1/realtime/sessions``."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from apps.realtime.protocol.codec import Dialect
from apps.realtime.services import MintRefused, MintRequest, realtime_client_secret_mint

from ..auth import api_endpoint
from ..errors import error_response, protocol_error_response


def _pop_user_id(body: dict[str, Any]) -> tuple[dict[str, Any], str] | JsonResponse:
    """Take the xStar-style ``user_id``/``userId`` extension out of the body."""
    body = dict(body)
    user_id = body.pop("user_id", None)
    alt = body.pop("userId", None)
    user_id = user_id if user_id is not None else alt
    if user_id is None:
        return body, ""
    if not isinstance(user_id, str) or len(user_id) > 128:
        return error_response(
            "Invalid value for 'user_id': expected a string of at most 128 characters.",
            status=400,
            param="user_id",
            code="invalid_value",
        )
    return body, user_id


def _mint(request: HttpRequest, dialect: Dialect) -> JsonResponse:
    popped = _pop_user_id(request.json)  # type: ignore[attr-defined]
    if isinstance(popped, JsonResponse):
        return popped
    body, user_id = popped
    try:
        payload = realtime_client_secret_mint(
            MintRequest(license=request.license, body=body, dialect=dialect, user_id=user_id)  # type: ignore[attr-defined]
        )
    except MintRefused as exc:
        return protocol_error_response(exc.error, status=exc.status)
    response = JsonResponse(payload)
    # The body carries a live credential: no cache along the way may keep it.
    response["Cache-Control"] = "no-store"
    return response


@api_endpoint(["POST"], json_body=True)
def client_secret_create(request: HttpRequest) -> JsonResponse:
    """GA: ``{expires_after, session}`` → ``{value: "ek_…", expires_at, session}``."""
    return _mint(request, "ga")


@api_endpoint(["POST"], json_body=True)
def session_create(request: HttpRequest) -> JsonResponse:
    """Beta: a flat session config → the session with ``client_secret: {value, expires_at}``."""
    return _mint(request, "beta")
