"""The SDP endpoints: OpenAI GA calls, the beta SDP POST, hangup, and their CORS.

* ``POST /v1/realtime/calls``: the offer as ``application/sdp`` (ephemeral secret or
  license key), or ``multipart/form-data`` with ``sdp`` and ``session`` (a GA session
  config, JSON) → ``201`` with the answer and ``Location: /v1/realtime/calls/{call_id}``.
* ``POST /v1/realtime?model=…``: the beta flow (an ephemeral key from
  ``/v1/realtime/sessions``) → ``201`` with the answer; the call speaks beta event names.
* ``POST /v1/realtime/calls/{call_id}/hangup``: end a call of the key's license.

Browsers post these from other origins: preflights are answered, and they authenticate by
the bearer secret, never a cookie, so CSRF does not apply. Whose origin may use a secret is
decided at admission, as for WebSocket connections. Every refusal is an OpenAI-shaped JSON
error with a 4xx (5xx only for a busy or failing server), never a bare 500.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any

from channels.db import database_sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt

from apps.api.auth import bearer_token, client_ip
from apps.api.errors import error_response, protocol_error_response
from apps.core import metrics, safe_json
from apps.licensing.gate import TooManyFailures, authenticate
from apps.licensing.services import AuthenticationFailed
from apps.realtime.admission import Handshake, Refused
from apps.realtime.protocol.codec import CodecError, Dialect, parse_session_config

from .sdp import SdpRefused
from .services import CallRequest, call_hangup, call_open

logger = logging.getLogger(__name__)

ALLOWED_HEADERS = "Authorization, Content-Type, OpenAI-Beta, OpenAI-Organization, OpenAI-Project"
PREFLIGHT_MAX_AGE_S = 600
# HTTP status for each refusal code (the WebSocket edge closes with these + 4000 instead).
REFUSAL_STATUS = {
    "missing_api_key": 401,
    "invalid_api_key": 401,
    "origin_not_allowed": 403,
    "host_not_allowed": 403,
    "user_mismatch": 403,
    "invalid_user_id": 400,
    "model_not_found": 400,
    "character_not_found": 400,
    "invalid_value": 400,
    "rate_limit_exceeded": 429,
    "too_many_sessions": 429,
    "insufficient_quota": 429,
    "server_busy": 503,
    "server_shutting_down": 503,
    "server_error": 500,
}


def _cors(response: HttpResponse) -> HttpResponse:
    # No cookie ever authenticates these endpoints, so any origin may call them; the bearer
    # secret (and admission's origin rules for browser-held secrets) decide who gets in.
    response["Access-Control-Allow-Origin"] = "*"
    response["Access-Control-Expose-Headers"] = "Location"
    return response


def _preflight() -> HttpResponse:
    response = HttpResponse(status=204)
    response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
    response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_S)
    return _cors(response)


def _error(message: str, *, status: int, code: str | None, param: str | None = None) -> Any:
    return _cors(error_response(message, status=status, code=code, param=param))


def _handshake(request: HttpRequest, dialect: Dialect) -> Handshake:
    origin = request.headers.get("Origin")
    return Handshake(
        key=bearer_token(request),
        key_source="header",
        # A browser page sending its key: the origin rules for browser-held keys apply.
        key_from_browser=bool(origin),
        origin=origin,
        host=request.headers.get("Host"),
        dialect=dialect,
        query={k: v for k, v in request.GET.items()},
        offered_realtime=False,
        client_ip=client_ip(request),
    )


class _BadRequest(Exception):
    def __init__(self, message: str, *, param: str | None = None, code: str = "invalid_value"):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def _text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _BadRequest(f"The {what} is not UTF-8 text.", param=what) from None


def _offer_and_session(request: HttpRequest) -> tuple[str, dict[str, Any] | None]:
    """The SDP offer and the optional GA session patch from a raw or multipart body."""
    content_type = request.content_type or ""
    if content_type == "multipart/form-data":
        try:
            form, files = request.POST, request.FILES
        except MultiPartParserError as exc:
            raise _BadRequest(f"The multipart body cannot be read: {exc}") from None
        if "sdp" in form:
            sdp = form["sdp"]
        elif "sdp" in files:
            sdp = _text(files["sdp"].read(), "sdp")
        else:
            raise _BadRequest("The multipart body has no 'sdp' field.", param="sdp")
        raw_session = form.get("session")
        if raw_session is None and "session" in files:
            raw_session = _text(files["session"].read(), "session")
        patch = None
        if raw_session is not None:
            try:
                data = safe_json.loads(raw_session)
            except safe_json.JsonRejected as exc:
                raise _BadRequest(
                    f"'session' is not valid JSON: {exc.detail}", param="session"
                ) from None
            patch = parse_session_config(data, dialect="ga", prefix="session")
        return sdp, patch
    if content_type != "application/sdp":
        raise _BadRequest(
            "Send the SDP offer as 'Content-Type: application/sdp', or as multipart/form-data "
            "with 'sdp' (and optionally 'session') fields.",
            code="unsupported_content_type",
        )
    return _text(request.body, "body"), None


async def _open(request: HttpRequest, dialect: Dialect) -> HttpResponse:
    try:
        sdp, patch = _offer_and_session(request)
        call_request = CallRequest(
            offer_sdp=sdp, handshake=_handshake(request, dialect), session_patch=patch
        )
        # The call outlives this request: its tasks must not inherit the request's context
        # (asgiref ties thread-sensitive database calls made in it to the request's thread,
        # which is gone once the response is sent).
        opening = asyncio.get_running_loop().create_task(
            call_open(call_request), context=contextvars.Context()
        )
        call, answer = await opening
    except _BadRequest as exc:
        return _error(exc.message, status=400, code=exc.code, param=exc.param)
    except CodecError as exc:
        return _cors(protocol_error_response(exc.error))
    except SdpRefused as exc:
        return _error(exc.message, status=400, code=exc.code, param="sdp")
    except Refused as exc:
        metrics.connect_refused(exc.code)
        status = REFUSAL_STATUS.get(exc.code, 400)
        body = {"error": {"message": exc.message, "type": exc.error_type, "param": None}}
        body["error"]["code"] = exc.code
        return _cors(JsonResponse(body, status=status))
    response = HttpResponse(answer, status=201, content_type="application/sdp")
    response["Location"] = f"/v1/realtime/calls/{call.id}"
    return _cors(response)


@csrf_exempt
async def calls_create(request: HttpRequest) -> HttpResponse:
    """``POST /v1/realtime/calls``: open a GA call."""
    if request.method == "OPTIONS":
        return _preflight()
    if request.method != "POST":
        return _error(f"Method {request.method} is not allowed here.", status=405, code=None)
    return await _open(request, "ga")


@csrf_exempt
async def beta_sdp(request: HttpRequest) -> HttpResponse:
    """``POST /v1/realtime?model=…``: open a call the beta way (beta event names)."""
    if request.method == "OPTIONS":
        return _preflight()
    if request.method != "POST":
        return _error(
            "Use a WebSocket for GET /v1/realtime, or POST an SDP offer.", status=405, code=None
        )
    return await _open(request, "beta")


def _license_of(request: HttpRequest) -> int:
    token = bearer_token(request)
    if token is None:
        raise _Unauthorized("You didn't provide an API key.", 401, "missing_api_key")
    try:
        credential = authenticate(key=token, client_ip=client_ip(request))
    except TooManyFailures as exc:
        raise _Unauthorized(
            f"Too many failed authentication attempts. Try again in {exc.retry_after_s} s.",
            429,
            "rate_limit_exceeded",
        ) from None
    except AuthenticationFailed as exc:
        raise _Unauthorized(exc.message, 401, exc.code) from None
    return int(credential.license.pk)


class _Unauthorized(Exception):
    def __init__(self, message: str, status: int, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


@csrf_exempt
async def call_hangup_view(request: HttpRequest, call_id: str) -> HttpResponse:
    """``POST /v1/realtime/calls/{call_id}/hangup``: end the call (its license's keys only)."""
    if request.method == "OPTIONS":
        return _preflight()
    if request.method != "POST":
        return _error(f"Method {request.method} is not allowed here.", status=405, code=None)
    try:
        license_id = await database_sync_to_async(_license_of)(request)
    except _Unauthorized as exc:
        return _error(exc.message, status=exc.status, code=exc.code)
    if not await call_hangup(call_id=call_id, license_id=license_id):
        return _error(f"No call found with id '{call_id[:64]}'.", status=404, code="call_not_found")
    return _cors(HttpResponse(status=200))
