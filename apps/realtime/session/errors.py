"""The exception handlers raise for a client mistake; the session turns it into an ``error``."""

from __future__ import annotations

from ..protocol.errors import ProtocolError


class ClientError(Exception):
    """A client event that is valid JSON but cannot be carried out."""

    def __init__(self, message: str, *, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.error = ProtocolError(message, param, code)
