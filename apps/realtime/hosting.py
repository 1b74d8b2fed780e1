"""What every transport does to host a session: build its dependencies, record its end.

The WebSocket consumer and a WebRTC call differ in how frames move; building a session's
``SessionDeps`` from an admission and recording how it ended are the same for both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from channels.db import DatabaseSyncToAsync
from django.conf import settings

from apps.conversations.services import conversation_end

from . import runtime
from .admission import Admitted, Refused
from .inbound import InboundLimits
from .protocol.codec import Dialect
from .session.deps import SessionDeps, SessionStore, UnknownName
from .session.session import Close, RealtimeSession, Send
from .session.sink import AudioSink
from .store import DatabaseStore

logger = logging.getLogger(__name__)


async def session_deps(admitted: Admitted, store: SessionStore) -> SessionDeps:
    """The engines, lookups, store and limits for an admitted session.

    The engines load on first use (seconds), so that happens off the event loop.
    """
    engines = await asyncio.get_running_loop().run_in_executor(None, runtime.engines)
    return SessionDeps(
        engines=engines,
        resolve_llm=runtime.resolve_llm,
        resolve_voice=runtime.voice_resolver(
            license_id=admitted.credential.license.pk, user_id=admitted.user_id
        ),
        store=store,
        limits=runtime.limits(),
        history=admitted.history,
    )


async def session_build(
    admitted: Admitted,
    *,
    session_id: str,
    dialect: Dialect,
    send: Send,
    close: Close,
    sink_factory: Callable[[RealtimeSession], AudioSink],
) -> tuple[RealtimeSession, DatabaseStore]:
    """An admitted session and its (not yet started) transcript store.

    Raises:
        Refused: The model cannot be used (``model_not_found``).
    """
    store = DatabaseStore(session_id)
    try:
        session = RealtimeSession(
            session_id=session_id,
            config=admitted.config,
            deps=await session_deps(admitted, store),
            send=send,
            close=close,
            sink_factory=sink_factory,
            dialect=dialect,
        )
    except UnknownName as exc:
        raise Refused(str(exc), "model_not_found") from None
    return session, store


async def session_end_record(session_id: str, reason: str) -> None:
    """Mark the session's conversation ended (a failure is logged: the watch ends it later)."""
    try:
        await DatabaseSyncToAsync(conversation_end)(conversation_id=session_id, reason=reason)
    except Exception:
        # The watch ends rows whose heartbeat stopped, so the slot is freed regardless.
        logger.exception("recording the end of a session failed", extra={"session_id": session_id})


def inbound_limits() -> InboundLimits:
    """What one client connection may push in (``REALTIME_INBOUND_*``)."""
    return InboundLimits(
        bytes_per_s=settings.REALTIME_INBOUND_BYTES_PER_S,
        burst_bytes=settings.REALTIME_INBOUND_BURST_BYTES,
        events_per_s=settings.REALTIME_INBOUND_EVENTS_PER_S,
        burst_events=settings.REALTIME_INBOUND_BURST_EVENTS,
        grace_s=settings.REALTIME_INBOUND_GRACE_S,
    )
