"""The one entry point edges (HTTP views, WebSocket consumers, SDP views) use to authenticate.

It combines the failed-attempt throttle with key verification, so every edge gets the same
brute-force protection and the same error codes.
"""

from __future__ import annotations

from . import throttle
from .services import AuthenticationFailed, Credential, credential_authenticate


class TooManyFailures(Exception):
    """This client has failed authentication too often; answer 429 without checking the key."""


def authenticate(*, key: str, client_ip: str) -> Credential:
    """Authenticate ``key`` for a client, counting failures per IP.

    Raises:
        TooManyFailures: The IP is over its failure budget for this minute.
        AuthenticationFailed: The key cannot be used (the failure is counted).
    """
    if throttle.failures_exceeded(client_ip):
        raise TooManyFailures
    try:
        return credential_authenticate(key=key)
    except AuthenticationFailed:
        throttle.record_failure(client_ip)
        raise
