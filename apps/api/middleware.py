"""Turn unexpected exceptions under ``/v1/`` into OpenAI-shaped 500s instead of HTML pages."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .errors import error_response

logger = logging.getLogger(__name__)


class ApiErrorMiddleware:
    """Clients of ``/v1`` parse JSON errors; an HTML traceback page would break them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Pass the request on; errors are handled in process_exception."""
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Answer API requests with a JSON 500; leave pages to Django's handlers."""
        if not request.path.startswith("/v1/"):
            return None
        logger.exception("unhandled error in API view", extra={"path": request.path})
        return error_response(
            "The server had an error while processing your request.",
            status=500,
            type="server_error",
        )
