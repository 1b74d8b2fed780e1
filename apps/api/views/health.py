"""``GET /healthz``: liveness plus what is configured (engines, providers, database, layer)."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from apps.agent.routing import providers
from apps.voice import engines


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


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers, 503 otherwise; always describes the configuration.

    Engines show their backend, and once loaded (the server warms them up in the
    background) their engine name, version and model.
    """
    database = _database()
    loaded_engines = {k: {"loaded": True, **v} for k, v in engines.loaded().items()}
    body = {
        "status": "ok" if database["ok"] else "degraded",
        "versions": {name: _version(name) for name in ("django", "channels", "daphne")},
        "database": database,
        "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1],
        "engines": {
            kind: {"backend": entry.get("BACKEND"), **loaded_engines.get(kind, {"loaded": False})}
            for kind, entry in settings.VOICE_ENGINES.items()
        },
        "providers": {name: provider.describe() for name, provider in providers().items()},
    }
    return JsonResponse(body, status=200 if database["ok"] else 503)
