"""WebSocket routes: the realtime app's, then a catch-all that refuses unknown paths."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import re_path

from apps.realtime.routing import websocket_urlpatterns as realtime_urlpatterns
from apps.rtc.routing import websocket_urlpatterns as rtc_urlpatterns


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """Refuse WebSocket connections to paths nobody serves (Daphne answers HTTP 403).

    Without a catch-all, URLRouter raises and Daphne answers 500.
    """

    async def connect(self) -> None:
        """Close before accepting."""
        await self.close()

    async def receive(self, text_data: Any = None, bytes_data: Any = None) -> None:
        """Never reached: the connection is refused in connect()."""


websocket_urlpatterns = [
    # rtc first: it claims /v1/realtime?call_id=… (sideband) before the realtime consumer.
    *rtc_urlpatterns,
    *realtime_urlpatterns,
    re_path(r"^.*$", UnknownPathConsumer.as_asgi()),
]
