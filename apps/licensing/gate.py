"""The one entry point edges (HTTP views, WebSocket consumers, SDP views) use to authenticate.

It combines key verification with the failed-attempt throttle, so every edge gets the same
brute-force protection and the same error codes.

The key is verified first, always: a valid key is never refused because others at the same
address (one NAT, one office) failed. Keys carry ~190 bits, so the throttle is not what keeps
them secret; it slows a failing client down (429 with Retry-After) and keeps one address from
generating an unbounded stream of counted failures. Verification is one indexed lookup and
one digest comparison, which is also all a refused attempt costs the database.
"""

from __future__ import annotations

from . import throttle
from .services import AuthenticationFailed, Credential, credential_authenticate


class TooManyFailures(Exception):
    """This client failed too often and presented another bad key; answer 429.

    Attributes:
        retry_after_s: Seconds until the client's next failure would be processed again
            (for a ``Retry-After`` header).
    """

    def __init__(self, retry_after_s: int = throttle.WINDOW_S) -> None:
        super().__init__(f"too many failed authentications; retry after {retry_after_s} s")
        self.retry_after_s = retry_after_s


def authenticate(*, key: str, client_ip: str, now_s: float | None = None) -> Credential:
    """Authenticate ``key`` for a client, budgeting failures per client address.

    Args:
        key: The presented license key or client secret.
        client_ip: The client's address (``apps.core.net.client_address``).
        now_s: Unix time for the throttle; injectable for tests.

    Raises:
        TooManyFailures: The key is not valid and this address already used its failure
            budget for the last 60 s (the failure is not counted).
        AuthenticationFailed: The key cannot be used (the failure is counted).
    """
    try:
        return credential_authenticate(key=key)
    except AuthenticationFailed:
        decision = throttle.failure_admit(client_ip, now_s=now_s)
        if not decision.allowed:
            raise TooManyFailures(decision.retry_after_s) from None
        raise
