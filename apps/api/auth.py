"""The decorator every ``/v1`` endpoint goes through: method, Bearer auth, JSON body.

Only license keys authenticate these management endpoints. An ephemeral secret (``ek_…``)
is meant to sit in a browser and open one realtime connection, so it is refused here with
403 even though it is valid.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from apps.licensing.gate import TooManyFailures, authenticate
from apps.licensing.services import AuthenticationFailed

from .errors import error_response

View = Callable[..., HttpResponse]

MISSING_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your license key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


def client_ip(request: HttpRequest) -> str:
    """The peer address Daphne reports (``daphne --proxy-headers`` takes it from a proxy)."""
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def bearer_token(request: HttpRequest) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, if there is one."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def api_endpoint(methods: Iterable[str], *, json_body: bool = False) -> Callable[[View], View]:
    """Wrap a view: allowed methods, license-key auth, optional JSON object body.

    The wrapped view receives ``request.license`` (and ``request.json`` with ``json_body``).
    CSRF does not apply: these endpoints authenticate with a bearer key, never a cookie.
    """
    allowed = tuple(m.upper() for m in methods)

    def decorate(view: View) -> View:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in allowed:
                response = error_response(
                    f"Method {request.method} is not allowed for {request.path}.", status=405
                )
                response["Allow"] = ", ".join(allowed)
                return response
            token = bearer_token(request)
            if token is None:
                return error_response(MISSING_KEY_MESSAGE, status=401)
            try:
                credential = authenticate(key=token, client_ip=client_ip(request))
            except TooManyFailures:
                response = error_response(
                    "Too many failed authentication attempts. Try again in a minute.",
                    status=429,
                    type="requests",
                    code="rate_limit_exceeded",
                )
                response["Retry-After"] = "60"
                return response
            except AuthenticationFailed as exc:
                return error_response(exc.message, status=401, code=exc.code)
            if credential.kind != "license":
                return error_response(
                    "Ephemeral client secrets can only open a realtime connection (WebSocket or "
                    "WebRTC). Use a license key for this endpoint.",
                    status=403,
                    code="insufficient_permissions",
                )
            request.license = credential.license  # type: ignore[attr-defined]
            if json_body:
                try:
                    payload = json.loads(request.body or b"{}")
                except (ValueError, UnicodeDecodeError):
                    return error_response(
                        "We could not parse the JSON body of your request. (HINT: This likely "
                        "means you aren't sending valid JSON. Check the Content-Type and body.)",
                        status=400,
                    )
                if not isinstance(payload, dict):
                    return error_response(
                        "Invalid type for request body: expected an object.",
                        status=400,
                        code="invalid_type",
                    )
                request.json = payload  # type: ignore[attr-defined]
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
