"""Opening and hanging up calls: the service behind the SDP endpoints.

The edges (``views``) parse the request into a ``CallRequest`` and map the exceptions to
HTTP statuses; everything between is here: the worker's headroom, admission (the same
rules as a WebSocket connection: credential, origin, end user, license limits), the
character whose avatar the call shows, the peer's answer and the session's start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from channels.db import DatabaseSyncToAsync
from django.conf import settings

from apps.avatar.look import full_look
from apps.avatar.models import Character
from apps.avatar.render.base import AvatarStream, CharacterSpec
from apps.avatar.renderers import get_renderer
from apps.avatar.services import character_spec
from apps.core.ids import session_id as new_session_id
from apps.core.workers import current_worker_id
from apps.realtime.admission import Admitted, Handshake, Refused, realtime_admit
from apps.realtime.live import headroom_check, live_sessions
from apps.realtime.protocol.session_config import apply_patch

from .call import Call
from .registry import calls
from .sdp import SdpRefused, offer_check

logger = logging.getLogger(__name__)

DEFAULT_CHARACTER = "default"


@dataclass(frozen=True, slots=True)
class CallRequest:
    """An SDP offer and what its sender presented."""

    offer_sdp: str
    handshake: Handshake
    session_patch: dict[str, Any] | None = None
    """A validated GA session config patch sent with the offer (multipart ``session``)."""


def _character_spec(character_id: int | None) -> CharacterSpec:
    """The call's character, or the default drawn one (runs in a worker thread: ORM)."""
    if character_id is not None:
        character = Character.objects.filter(pk=character_id).first()
        if character is not None:
            return character_spec(character)
    return CharacterSpec(slug=DEFAULT_CHARACTER, look=full_look({}))


def _avatar_stream(character_id: int | None) -> AvatarStream:
    """Prepare the character for this call's video (the renderer caches per character)."""
    spec = _character_spec(character_id)
    size = settings.AVATAR_SIZE
    return get_renderer().stream(spec, width=size, height=size)


async def avatar_stream_prepare(character_id: int | None) -> AvatarStream:
    """The character's avatar stream, prepared off the event loop (database + renderer)."""
    return await DatabaseSyncToAsync(_avatar_stream, thread_sensitive=False)(character_id)


async def call_open(request: CallRequest) -> tuple[Call, str]:
    """Admit the caller, answer the offer and start the call's session.

    Returns:
        The call and the SDP answer.

    Raises:
        Refused: Not admitted (the code says why), or the session could not start.
        SdpRefused: The offer is unusable (checked before and while aiortc parses it).
    """
    offer_check(request.offer_sdp)
    headroom_check()
    live = live_sessions()
    session_id = new_session_id()
    # Hold a place among the worker's sessions while admitting (as the WebSocket edge does).
    live.admitting += 1
    try:
        admitted: Admitted = await DatabaseSyncToAsync(realtime_admit)(
            request.handshake,
            session_id=session_id,
            transport="webrtc",
            worker_id=current_worker_id(),
        )
    finally:
        live.admitting -= 1
    if request.session_patch:
        admitted.config = apply_patch(admitted.config, request.session_patch)
    wants_video = "\nm=video " in request.offer_sdp.replace("\r\n", "\n")
    stream = None
    if wants_video:
        try:
            # Off the loop: a database read, and the renderer's first preparation of a
            # character takes a while (it is cached for the calls after).
            stream = await avatar_stream_prepare(admitted.character_id)
        except Exception:
            logger.exception("preparing the avatar failed; the call goes on without video")
    call = Call(
        session_id=session_id,
        dialect=request.handshake.dialect,
        character=stream,
        fps=settings.AVATAR_FPS,
        ice_user=admitted.user_id or session_id,
    )
    call.admitted = True
    calls().add(call)
    try:
        await call.prepare(admitted)
        answer = await call.answer(request.offer_sdp)
        await call.start()
    except (SdpRefused, Refused):
        await call.end("error", None)
        raise
    except Exception:
        logger.exception("opening a call failed", extra={"session_id": session_id})
        await call.end("error", None)
        raise Refused(
            "The server could not start the call.", "server_error", error_type="server_error"
        ) from None
    return call, answer


async def call_hangup(*, call_id: str, license_id: int) -> bool:
    """End a call of this license hosted here; False when there is none (or not theirs)."""
    call = calls().get(call_id)
    if call is None or call.license_id != license_id:
        return False
    await call.end("client_closed", None)
    return True
