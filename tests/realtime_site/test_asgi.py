"""The ASGI application: HTTP through Django, unknown WebSocket paths refused cleanly."""

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from realtime_site.routing import websocket_urlpatterns


# Channels closes old database connections around every message it dispatches; a session
# ended by the live watch (not by a message) can leave one open in asgiref's thread, which
# that clean-up then touches: allow database access rather than depend on test order.
@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/nope", "/v1/realtime/other", "/api/realtime-api/x", "/"])
async def test_unknown_websocket_paths_are_refused(path) -> None:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    connected, _ = await communicator.connect()
    assert connected is False
    await communicator.disconnect()
