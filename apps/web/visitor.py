"""Who a visitor of the public pages is: a random id in a signed cookie.

The talk page binds every secret it mints to this id (the realtime ``userId``), so a
visitor's memory and history follow their browser and nobody else's. The id is random and
signed: a visitor cannot choose it, so cannot select another visitor's data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse

from apps.core.ids import prefixed_id

COOKIE = "rt_visitor"
SALT = "apps.web.visitor"
MAX_AGE_S = 365 * 24 * 3600
_VALID = re.compile(r"v_[0-9A-Za-z]{22}")


def visitor_id(request: HttpRequest) -> tuple[str, bool]:
    """The visitor's id, and whether it is new (not yet in a cookie)."""
    value = request.get_signed_cookie(COOKIE, default=None, salt=SALT, max_age=MAX_AGE_S)
    if value and _VALID.fullmatch(value):
        return value, False
    return prefixed_id("v"), True


def with_visitor(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Set ``request.visitor_id`` for the view, and the cookie when it is new."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        vid, new = visitor_id(request)
        request.visitor_id = vid  # type: ignore[attr-defined]
        response = view(request, *args, **kwargs)
        if new:
            response.set_signed_cookie(
                COOKIE,
                vid,
                salt=SALT,
                max_age=MAX_AGE_S,
                httponly=True,
                samesite="Lax",
                secure=request.is_secure(),
            )
        return response

    return wrapped
