"""Unknown ``/v1/…`` paths answer like OpenAI does, in JSON, whatever DEBUG says."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from ..errors import error_response


@csrf_exempt
def not_found(request: HttpRequest) -> JsonResponse:
    """404 with the OpenAI ``Invalid URL`` message."""
    return error_response(f"Invalid URL ({request.method} {request.path})", status=404)
