"""Client event type -> handler. Registering a type twice is a programming error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...protocol.codec import ParsedEvent
    from ..session import RealtimeSession

Handler = Callable[["RealtimeSession", "ParsedEvent"], Awaitable[None]]
HANDLERS: dict[str, Handler] = {}


def handles(event_type: str) -> Callable[[Handler], Handler]:
    """Register the decorated coroutine as the handler of ``event_type``."""

    def register(handler: Handler) -> Handler:
        if event_type in HANDLERS:
            raise RuntimeError(f"two handlers for {event_type!r}")
        HANDLERS[event_type] = handler
        return handler

    return register
