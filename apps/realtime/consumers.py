"""WebSocket edges: ``/v1/realtime`` (OpenAI, xStar) and ``/api/realtime-api`` (NavTalk).

The consumer authenticates, picks the dialect, builds a ``RealtimeSession`` and then only
moves frames: client frames into the session, server events from the session's bounded
outbox to the socket (spelled for the dialect by ``protocol.codec``). A refused
connection is accepted just long enough to send one OpenAI-shaped ``error`` event, then
closed with a matching code, so clients can show the reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from apps.agent.base import ChatMessage
from apps.avatar.models import Character
from apps.conversations.selectors import license_open_sessions, user_recent_messages
from apps.conversations.services import conversation_end, conversation_start
from apps.core.ids import event_id as new_event_id
from apps.core.ids import session_id as new_session_id
from apps.licensing.gate import TooManyFailures, authenticate
from apps.licensing.selectors import license_quota_exhausted
from apps.licensing.services import AuthenticationFailed, Credential

from . import runtime
from .protocol.codec import Dialect, render_server_event
from .protocol.errors import ProtocolError
from .protocol.session_config import apply_patch, session_defaults
from .session.deps import SessionDeps, UnknownName
from .session.session import RealtimeSession
from .session.sink import WebSocketAudioSink
from .store import DatabaseStore

logger = logging.getLogger(__name__)

KEY_SUBPROTOCOL = "openai-insecure-api-key."
BETA_SUBPROTOCOL = "openai-beta.realtime-v1"
OUTBOX_EVENTS = 1_024
# Close codes (4000–4999 are for applications): the HTTP status a REST API would use + 4000.
CLOSE_CODES = {
    "invalid_api_key": 4001,
    "missing_api_key": 4001,
    "origin_not_allowed": 4003,
    "model_not_found": 4004,
    "character_not_found": 4004,
    "session_expired": 4008,
    "rate_limit_exceeded": 4029,
    "too_many_sessions": 4029,
    "insufficient_quota": 4029,
}


class Refused(Exception):
    """The connection cannot become a session; the error event says why."""

    def __init__(self, message: str, code: str, *, error_type: str = "invalid_request_error"):
        super().__init__(message)
        self.message = message
        self.code = code
        self.error_type = error_type


@dataclass(frozen=True, slots=True)
class Handshake:
    """What the client presented."""

    key: str | None
    key_from_browser: bool
    origin: str | None
    host: str | None
    dialect: Dialect
    query: dict[str, str]
    offered_realtime: bool
    client_ip: str


def _handshake(scope: dict[str, Any], *, navtalk: bool) -> Handshake:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
    protocols = list(scope.get("subprotocols") or [])
    key, from_browser = None, False
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        key = token.strip()
    for proto in protocols:
        if key is None and proto.startswith(KEY_SUBPROTOCOL):
            key, from_browser = proto[len(KEY_SUBPROTOCOL) :], True
    if key is None and (query.get("api_key") or query.get("license")):
        key = query.get("api_key") or query.get("license")
        from_browser = "origin" in headers
    beta = (
        navtalk
        or "realtime=v1" in headers.get("openai-beta", "").replace(" ", "")
        or BETA_SUBPROTOCOL in protocols
    )
    client = scope.get("client") or ["unknown"]
    return Handshake(
        key=key,
        key_from_browser=from_browser,
        origin=headers.get("origin"),
        host=headers.get("host"),
        dialect="beta" if beta else "ga",
        query=query,
        offered_realtime="realtime" in protocols,
        client_ip=str(client[0]),
    )


def _same_origin(origin: str, host: str | None) -> bool:
    if not host:
        return False
    return origin.split("://", 1)[-1].rstrip("/").lower() == host.lower()


@dataclass(slots=True)
class Admitted:
    """An authenticated, admitted connection: everything needed to build the session."""

    credential: Credential
    config: dict[str, Any]
    user_id: str
    character_id: int | None
    history: list[ChatMessage]


@database_sync_to_async
def _admit(hs: Handshake, session_id: str) -> Admitted:
    """Authenticate and apply the license's limits (runs in a thread: it uses the ORM)."""
    if not hs.key:
        raise Refused(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>', the "
            "'openai-insecure-api-key.<key>' subprotocol, or ?api_key=.",
            "missing_api_key",
        )
    try:
        credential = authenticate(key=hs.key, client_ip=hs.client_ip)
    except TooManyFailures:
        raise Refused(
            "Too many failed authentication attempts. Try again in a minute.",
            "rate_limit_exceeded",
            error_type="requests",
        ) from None
    except AuthenticationFailed as exc:
        raise Refused(exc.message, exc.code) from None
    license = credential.license
    # Browsers send Origin and can be made to connect by any page (CSWSH): a credential a
    # browser carries is honoured only from this site or the license's allowed origins.
    if hs.origin and (hs.key_from_browser or credential.kind == "client_secret"):
        if not (_same_origin(hs.origin, hs.host) or license.origin_allowed(hs.origin)):
            raise Refused(f"Origin {hs.origin} is not allowed for this key.", "origin_not_allowed")
    user_id = (hs.query.get("userId") or hs.query.get("user_id") or "")[:128]
    if credential.client_secret is not None:
        config = dict(credential.client_secret.session_config)
        user_id = user_id or credential.client_secret.user_id
    else:
        config = session_defaults(
            instructions=settings.REALTIME_DEFAULT_INSTRUCTIONS,
            voice=settings.REALTIME_DEFAULT_VOICE,
        )
    if hs.query.get("model"):
        config["model"] = hs.query["model"][:200]
    character_id = None
    name = hs.query.get("characterName")
    if name:
        character = Character.objects.filter(slug=name, active=True).first()
        if character is None:
            raise Refused(f"Unknown characterName '{name[:64]}'.", "character_not_found")
        character_id = character.pk
        patch: dict[str, Any] = {}
        if character.persona:
            patch["instructions"] = character.persona
        if character.default_voice is not None:
            patch["audio"] = {"output": {"voice": character.default_voice.slug}}
        config = apply_patch(config, patch)
    if (
        license_open_sessions(license_id=license.pk, max_age_s=settings.REALTIME_MAX_SESSION_S)
        >= license.max_concurrent_sessions
    ):
        raise Refused(
            f"This license already has {license.max_concurrent_sessions} open sessions, its "
            "limit. Close one first.",
            "too_many_sessions",
            error_type="requests",
        )
    if license_quota_exhausted(license=license):
        raise Refused(
            "You exceeded your monthly audio quota for this license.",
            "insufficient_quota",
            error_type="insufficient_quota",
        )
    conversation_start(
        license_id=license.pk,
        transport="websocket",
        dialect=hs.dialect,
        user_id=user_id,
        character_id=character_id,
        model=str(config.get("model") or ""),
        conversation_id=session_id,
    )
    history = [
        ChatMessage(role=role, content=text)  # type: ignore[arg-type]
        for role, text in user_recent_messages(
            license_id=license.pk, user_id=user_id, limit=settings.REALTIME_HISTORY_MESSAGES
        )
    ]
    return Admitted(credential, config, user_id, character_id, history)


class RealtimeConsumer(AsyncWebsocketConsumer):
    """One realtime session over one WebSocket."""

    navtalk = False

    async def connect(self) -> None:
        """Authenticate, then accept and start the session (or refuse with an error event)."""
        self.session: RealtimeSession | None = None
        self.store: DatabaseStore | None = None
        self.outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=OUTBOX_EVENTS)
        self.closed = False
        hs = _handshake(self.scope, navtalk=self.navtalk)
        self.dialect: Dialect = hs.dialect
        self.session_id = new_session_id()
        subprotocol = "realtime" if hs.offered_realtime else None
        store = DatabaseStore(self.session_id)
        try:
            admitted = await _admit(hs, self.session_id)
            deps = SessionDeps(
                engines=await asyncio.get_running_loop().run_in_executor(None, runtime.engines),
                resolve_llm=runtime.resolve_llm,
                resolve_voice=runtime.voice_resolver(
                    license_id=admitted.credential.license.pk, user_id=admitted.user_id
                ),
                store=store,
                limits=runtime.limits(),
                history=admitted.history,
            )
            session = RealtimeSession(
                session_id=self.session_id,
                config=admitted.config,
                deps=deps,
                send=self._enqueue,
                close=self._close_from_session,
                sink_factory=WebSocketAudioSink,
                dialect=self.dialect,
            )
        except Refused as exc:
            await self._refuse(subprotocol, exc)
            return
        except UnknownName as exc:
            await self._end_conversation("error")
            await self._refuse(subprotocol, Refused(str(exc), "model_not_found"))
            return
        await self.accept(subprotocol=subprotocol)
        self.store = store
        store.start()
        self.sender = asyncio.ensure_future(self._sender())
        self.session = session
        try:
            await session.start()
        except UnknownName as exc:
            # The configured voice (a character's, a secret's) is not usable by this key.
            await session.error(ProtocolError(str(exc), None, "invalid_value"))
            await session.shutdown(reason="error")
            await self._close_from_session(4000, "invalid_session")
            return
        logger.info(
            "realtime session started",
            extra={"session_id": self.session_id, "dialect": self.dialect},
        )

    async def _refuse(self, subprotocol: str | None, exc: Refused) -> None:
        logger.info("realtime connection refused", extra={"code": exc.code})
        await self.accept(subprotocol=subprotocol)
        described = ProtocolError(exc.message, None, exc.code, type=exc.error_type)
        error = {
            "type": "error",
            "event_id": new_event_id(),
            "error": {**described.as_dict(), "event_id": None},
        }
        await self.send(text_data=json.dumps(error))
        self.closed = True
        await self.close(code=CLOSE_CODES.get(exc.code, 4000), reason=exc.code)

    # --- frames in ---------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Hand a frame to the session; oversized frames get an error and are dropped."""
        session = self.session
        if session is None or self.closed:
            return
        # Characters, not bytes, for text: events are JSON with base64 audio, i.e. ASCII.
        size = len(text_data) if text_data is not None else len(bytes_data or b"")
        if size > settings.REALTIME_MAX_EVENT_BYTES:
            await session.error(
                ProtocolError(
                    f"The event is {size} bytes; the limit is "
                    f"{settings.REALTIME_MAX_EVENT_BYTES} bytes. Send audio in smaller appends.",
                    None,
                    "event_too_large",
                )
            )
            return
        if text_data is not None:
            await session.receive_text(text_data)
        elif bytes_data:
            await session.receive_audio(bytes_data)

    # --- events out --------------------------------------------------------------------------

    async def _enqueue(self, event: dict[str, Any]) -> None:
        if not self.closed:
            await self.outbox.put(event)

    async def _sender(self) -> None:
        while (event := await self.outbox.get()) is not None:
            rendered = render_server_event(
                event,
                dialect=self.dialect,
                session_id=self.session_id,
                expires_at=self.session.expires_at if self.session else 0,
            )
            if rendered is None or self.closed:
                continue
            try:
                await self.send(text_data=json.dumps(rendered, ensure_ascii=False))
            except Exception:  # noqa: BLE001 - the socket went away; the session is closing
                logger.info("send failed; client gone", extra={"session_id": self.session_id})
                self.closed = True

    async def _drain_outbox(self) -> None:
        await self.outbox.put(None)
        await asyncio.gather(self.sender, return_exceptions=True)

    async def _close_from_session(self, code: int, reason: str) -> None:
        # Save and record the end before closing: once the socket is closed the application
        # instance may be torn down around this task.
        await self._drain_outbox()
        self.closed = True
        await self._finalize()
        await self.close(code=CLOSE_CODES.get(reason, code), reason=reason)

    async def disconnect(self, code: int) -> None:
        """Client gone: end the session, save what is left, mark the conversation ended."""
        self.closed = True
        await self._finalize()

    async def _finalize(self) -> None:
        """Once, however the session ends: stop it, flush its transcript, record the end."""
        session = self.session
        if session is None or getattr(self, "finalized", False):
            return
        self.finalized = True
        await session.shutdown(reason="client_closed")
        if not self.sender.done():
            self.sender.cancel()
        if self.store is not None:
            await self.store.close()
        await self._end_conversation(session.end_reason or "client_closed")

    async def _end_conversation(self, reason: str) -> None:
        await database_sync_to_async(conversation_end)(
            conversation_id=self.session_id, reason=reason
        )


class NavTalkConsumer(RealtimeConsumer):
    """``/api/realtime-api?license=…&characterName=…``: the same session, beta names."""

    navtalk = True
