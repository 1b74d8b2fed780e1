"""``GET /v1/models`` and ``GET /v1/models/{id}``: what the configured providers really serve."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from apps.agent.routing import UnknownModel, available_routes, resolve_model

from ..auth import api_endpoint
from ..errors import error_response


def _entry(model_id: str, provider: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": provider}


@api_endpoint(["GET"])
def model_list(request: HttpRequest) -> JsonResponse:
    """One entry per bare model id (routed to its first provider) and per ``model@provider``."""
    data: list[dict[str, Any]] = []
    seen: set[str] = set()
    for route in available_routes():
        if route.model not in seen:
            seen.add(route.model)
            data.append(_entry(route.model, route.provider))
        data.append(_entry(route.qualified, route.provider))
    return JsonResponse({"object": "list", "data": data})


@api_endpoint(["GET"])
def model_retrieve(request: HttpRequest, model_id: str) -> JsonResponse:
    """Describe one model, resolving ``modelId@provider`` like a session would."""
    try:
        route = resolve_model(model_id) if model_id else None
    except UnknownModel as exc:
        return error_response(exc.message, status=404, param="model", code="model_not_found")
    if route is None:
        return error_response("Missing model id.", status=404, code="model_not_found")
    return JsonResponse(_entry(model_id, route.provider))
