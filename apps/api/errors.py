"""OpenAI-shaped JSON error responses: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse

from apps.realtime.protocol.errors import ProtocolError


def error_response(
    message: str,
    *,
    status: int,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> JsonResponse:
    """Build an error response the way the OpenAI API shapes them."""
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return JsonResponse(body, status=status)


def protocol_error_response(error: ProtocolError, *, status: int = 400) -> JsonResponse:
    """Render a protocol error (e.g. a bad session field) as an HTTP error response."""
    return JsonResponse({"error": error.as_dict()}, status=status)


def request_too_large_response() -> JsonResponse:
    """413 for a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (Django's in-memory body limit)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return error_response(
        f"The request body is larger than the limit of {limit} bytes.",
        status=413,
        code="request_too_large",
    )
