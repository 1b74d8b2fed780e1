"""OpenAI-shaped errors under ``/v1/`` instead of HTML pages: 413, 400 and 500."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse

from .errors import error_response, request_too_large_response

logger = logging.getLogger(__name__)

API_PREFIX = "/v1/"


class ApiErrorMiddleware:
    """Clients of ``/v1`` parse JSON errors; an HTML traceback page would break them.

    Every ``/v1`` request (multipart uploads aside) has its body size checked before any
    view runs, so a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` answers 413 whether or not the
    endpoint reads a body (Django raises ``RequestDataTooBig`` only when a view reads it).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Refuse oversized ``/v1`` bodies, then pass the request on."""
        # Multipart bodies are left to Django's parser, which exempts uploaded files from
        # the limit and raises RequestDataTooBig itself (turned into 413 below).
        if request.path.startswith(API_PREFIX) and request.content_type != "multipart/form-data":
            try:
                # Django checks Content-Length and, under ASGI, the spooled body's real size
                # (a chunked upload has no Content-Length); within the limit the body is
                # cached on the request for the view, so it is read only once.
                request.body  # noqa: B018 - read for its size check
            except RequestDataTooBig:
                return request_too_large_response()
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Answer API requests with JSON (413, 400 or 500); leave pages to Django's handlers."""
        if not request.path.startswith(API_PREFIX):
            return None
        if isinstance(exception, RequestDataTooBig):
            return request_too_large_response()
        if isinstance(exception, SuspiciousOperation):
            # Django's own verdict on malformed requests (too many fields, a bad multipart
            # body): the client's fault, answered 400 as Django would, but in JSON.
            logger.warning(
                "suspicious API request: %s", type(exception).__name__, extra={"path": request.path}
            )
            return error_response("The request could not be processed.", status=400)
        logger.exception("unhandled error in API view", extra={"path": request.path})
        return error_response(
            "The server had an error while processing your request.",
            status=500,
            type="server_error",
        )
