"""ICE servers for the server's peers: STUN URLs and TURN with short-lived credentials.

TURN credentials follow the "REST API for access to TURN services" scheme that coturn
implements (``use-auth-secret``): the username is ``<expiry unix time>:<user>`` and the
password the base64 HMAC-SHA1 of the username under the shared secret, so they expire on
their own and no TURN account is ever stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from aiortc import RTCConfiguration, RTCIceServer
from django.conf import settings


def turn_credentials(*, user: str, now_s: float | None = None) -> tuple[str, str]:
    """A username and password for the configured TURN secret, valid ``RTC_TURN_TTL_S``."""
    expiry = int((time.time() if now_s is None else now_s) + settings.RTC_TURN_TTL_S)
    username = f"{expiry}:{user}"
    digest = hmac.new(settings.RTC_TURN_SECRET.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def ice_servers(*, user: str) -> list[RTCIceServer]:
    """The configured STUN and TURN servers (none by default)."""
    servers: list[RTCIceServer] = []
    if settings.RTC_STUN_URLS:
        servers.append(RTCIceServer(urls=list(settings.RTC_STUN_URLS)))
    if settings.RTC_TURN_URLS and settings.RTC_TURN_SECRET:
        username, credential = turn_credentials(user=user)
        servers.append(
            RTCIceServer(
                urls=list(settings.RTC_TURN_URLS), username=username, credential=credential
            )
        )
    return servers


def ice_servers_json(*, user: str) -> list[dict[str, object]]:
    """The same servers as a browser's ``RTCPeerConnection`` takes them."""
    return [
        {
            "urls": server.urls,
            **({"username": server.username} if server.username else {}),
            **({"credential": server.credential} if server.credential else {}),
        }
        for server in ice_servers(user=user)
    ]


def rtc_configuration(*, user: str) -> RTCConfiguration:
    """The configuration a server peer is created with."""
    return RTCConfiguration(iceServers=ice_servers(user=user))
