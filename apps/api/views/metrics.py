"""``GET /metrics``: the Prometheus metrics of ``apps.core.metrics``, for operators only.

Off unless ``METRICS_ENABLED`` is true: then the path answers 404 like any unknown one, so a
deployment that does not scrape exposes nothing. When on, the caller must present
``Authorization: Bearer <METRICS_TOKEN>`` (what a Prometheus scrape job sends with its
``authorization`` or ``bearer_token`` setting) or be a signed-in active staff user (the
admin session, for a look in the browser). License keys are not accepted: they belong to
customers, and the metrics describe every customer's traffic.

Answers: 200 ``text/plain; version=0.0.4`` with the metrics; 401 without a credential or
with a wrong token (``WWW-Authenticate: Bearer``); 403 for a signed-in user who is not
staff; 429 once an address has sent too many wrong tokens (the licensing throttle's
per-address failure budget, so guessing the token is as slow as guessing a key). A correct
token is never refused because of others' failures from the same address. Errors are
OpenAI-shaped JSON, like the rest of the HTTP API.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from apps.core import metrics
from apps.licensing.throttle import failure_admit

from ..auth import bearer_token, client_ip
from ..errors import error_response


def _token_matches(token: str) -> bool:
    expected = str(getattr(settings, "METRICS_TOKEN", "") or "")
    # An unset token never matches, not even an empty presented one.
    if not expected:
        return False
    return hmac.compare_digest(token.encode(), expected.encode())


def _is_staff(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)


def _refusal(request: HttpRequest) -> HttpResponse | None:
    """None when the caller may read the metrics, else the error response to send."""
    token = bearer_token(request)
    if token is not None:
        if _token_matches(token):
            return None
        decision = failure_admit(client_ip(request))
        if not decision.allowed:
            response = error_response(
                "Too many failed authentication attempts; try again later.",
                status=429,
                type="requests",
                code="rate_limit_exceeded",
            )
            response["Retry-After"] = str(decision.retry_after_s)
            return response
        response = error_response("Incorrect metrics token.", status=401, code="invalid_api_key")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if _is_staff(request):
        return None
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return error_response(
            "Only staff users may read the metrics.",
            status=403,
            code="insufficient_permissions",
        )
    response = error_response(
        "The metrics need a bearer token: Authorization: Bearer <METRICS_TOKEN>.",
        status=401,
        code="missing_api_key",
    )
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """The metrics in the Prometheus text format (404 unless ``METRICS_ENABLED``)."""
    if not getattr(settings, "METRICS_ENABLED", False):
        return error_response(f"Invalid URL ({request.method} {request.path})", status=404)
    refusal = _refusal(request)
    if refusal is None:
        body, content_type = metrics.render()
        response = HttpResponse(body, content_type=content_type)
    else:
        response = refusal
    # What is shown depends on who asks; no cache may keep it.
    response["Cache-Control"] = "no-store"
    response["Vary"] = "Authorization, Cookie"
    return response
