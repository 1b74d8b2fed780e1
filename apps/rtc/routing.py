"""WebSocket routes of the rtc app: sideband control of calls and NavTalk's ``/iwebrtc``."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from django.urls import re_path

from apps.realtime.consumers import RealtimeConsumer

from .sideband import SidebandConsumer
from .signaling import IWebRtcConsumer


class WhenQueryHas:
    """An ASGI app that picks ``app`` when the query string has ``param``, else ``otherwise``.

    ``/v1/realtime`` is both the realtime WebSocket and, with ``?call_id=``, a call's
    sideband; URL routing sees only the path.
    """

    def __init__(self, param: str, app: Any, otherwise: Any) -> None:
        self.param = param
        self.app = app
        self.otherwise = otherwise

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Route by the query string."""
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        app = self.app if self.param in query else self.otherwise
        await app(scope, receive, send)


websocket_urlpatterns = [
    re_path(
        r"^v1/realtime/?$",
        WhenQueryHas("call_id", SidebandConsumer.as_asgi(), RealtimeConsumer.as_asgi()),
    ),
    re_path(r"^iwebrtc/?$", IWebRtcConsumer.as_asgi()),
]
