"""WebSocket routes of the realtime API (mounted by ``realtime_site.routing``)."""

from __future__ import annotations

from django.urls import re_path

from .consumers import NavTalkConsumer, RealtimeConsumer

websocket_urlpatterns = [
    re_path(r"^v1/realtime/?$", RealtimeConsumer.as_asgi()),
    re_path(r"^api/realtime-api/?$", NavTalkConsumer.as_asgi()),
]
