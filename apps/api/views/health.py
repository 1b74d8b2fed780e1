"""``GET /healthz``: liveness for everyone; the configuration only for operators.

Without credentials the answer is ``{"status": "ok"}`` (200) or ``{"status": "degraded"}``
(503, the database does not answer), which is all a load balancer or orchestrator probe
needs. Versions, engine models, provider base URLs, the database vendor and the channel layer
help an attacker fingerprint the deployment, so they are added only for a signed-in staff
user (the admin session cookie) or a request carrying a valid license key
(``Authorization: Bearer lic_…``).

A missing, unknown, revoked or ephemeral (``ek_…``) credential still gets the status with its
usual code rather than a 401: a probe configured with a key that has since been rotated must
not start failing the instance it watches. Failed keys still count towards the per-address
authentication throttle, so ``/healthz`` is no way around it.
"""

from __future__ import annotations

import logging
from importlib import metadata
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from apps.agent.routing import providers
from apps.licensing.gate import TooManyFailures, authenticate
from apps.licensing.services import AuthenticationFailed
from apps.voice import engines

from ..auth import bearer_token, client_ip

logger = logging.getLogger(__name__)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        ok = True
    except DatabaseError:
        ok = False
    return {"vendor": connection.vendor, "ok": ok}


def _may_see_details(request: HttpRequest) -> bool:
    """Whether the caller is a staff user or holds a valid license key.

    Fails closed: when the check itself fails (the database or the cache holding the
    throttle is down), the caller gets the status only, and the probe still gets its answer.
    """
    try:
        return _is_operator(request)
    except Exception:
        logger.warning("healthz could not check the caller's credentials", exc_info=True)
        return False


def _is_operator(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        return True
    token = bearer_token(request)
    if token is None:
        return False
    try:
        credential = authenticate(key=token, client_ip=client_ip(request))
    except (TooManyFailures, AuthenticationFailed):
        return False
    # Ephemeral secrets live in browsers; they may open a session, not read the configuration.
    return credential.kind == "license"


def _details(database: dict[str, Any]) -> dict[str, Any]:
    loaded_engines = {k: {"loaded": True, **v} for k, v in engines.loaded().items()}
    return {
        "versions": {name: _version(name) for name in ("django", "channels", "daphne")},
        "database": database,
        "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1],
        "engines": {
            kind: {"backend": entry.get("BACKEND"), **loaded_engines.get(kind, {"loaded": False})}
            for kind, entry in settings.VOICE_ENGINES.items()
        },
        "providers": {name: provider.describe() for name, provider in providers().items()},
    }


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers, 503 otherwise.

    Staff and license-key callers also get the configuration: versions, the database, the
    channel layer, the engines (their backend, and once loaded, which the server does in the
    background at start-up, their engine name, version and model) and the LLM providers.
    """
    database = _database()
    body: dict[str, Any] = {"status": "ok" if database["ok"] else "degraded"}
    if _may_see_details(request):
        body.update(_details(database))
    response = JsonResponse(body, status=200 if database["ok"] else 503)
    # The body depends on who asks: a shared cache must not hand the details to anyone else.
    response["Cache-Control"] = "no-store"
    response["Vary"] = "Authorization, Cookie"
    return response
