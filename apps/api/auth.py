"""The decorator every ``/v1`` endpoint goes through: method, Bearer auth, JSON body.

Only license keys authenticate these management endpoints. An ephemeral secret (``ek_…``)
is meant to sit in a browser and open one realtime connection, so it is refused here with
403 even though it is valid.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from apps.core import safe_json
from apps.licensing.gate import TooManyFailures, authenticate
from apps.licensing.services import AuthenticationFailed

from .errors import error_response, request_too_large_response

View = Callable[..., HttpResponse]

MISSING_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your license key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


def client_ip(request: HttpRequest) -> str:
    """The client's address: the peer, or what ``TRUSTED_PROXIES`` forwarded for it.

    Daphne must run without ``--proxy-headers`` (see ``apps.core.net``).
    """
    # Imported here to keep this function's change self-contained.
    from apps.core.net import client_address

    return client_address(request.META.get("REMOTE_ADDR"), request.headers)


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
    The body is read with ``apps.core.safe_json.loads``: invalid JSON, nesting deeper than
    64 levels, ``NaN``/``Infinity`` and lone surrogates answer 400, a body over
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` answers 413.
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
            except TooManyFailures as exc:
                response = error_response(
                    f"Too many failed authentication attempts. Try again in {exc.retry_after_s} s.",
                    status=429,
                    type="requests",
                    code="rate_limit_exceeded",
                )
                response["Retry-After"] = str(exc.retry_after_s)
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
                    body = request.body
                except RequestDataTooBig:
                    # ApiErrorMiddleware reads /v1 bodies first; this covers any other mount.
                    return request_too_large_response()
                try:
                    payload = safe_json.loads(body or b"{}")
                except safe_json.JsonRejected as exc:
                    return error_response(
                        f"We could not parse the JSON body of your request: {exc.detail}. "
                        "(HINT: This likely means you aren't sending valid JSON. Check the "
                        "Content-Type and body.)",
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
