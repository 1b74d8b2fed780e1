"""NavTalk's ``/iwebrtc?userId=<license>``: signaling for a realtime session's avatar video.

The page sends ``{"type": "create", "targetSessionId": <session.id>}`` naming a live realtime
WebSocket session; the server answers ``{"type": "offer", "targetSessionId", "sdp": {"type":
"offer", "sdp"}}`` (plus its candidates as ``iceCandidate`` messages, which are also in the
SDP), takes ``{"type": "answer", ...}`` and the page's trickled ``iceCandidate`` messages.

The session may live on another worker: every message is routed over the channel layer to
the session's group (``rt.session.<id>``), whose host (the realtime consumer) answers via
``AvatarLinks``. A session of another license, or none, gets an ``error`` message and no
offer (the two cases are answered alike). Bad messages get an ``error`` and the socket
stays open.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from typing import Any

from channels.db import DatabaseSyncToAsync
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.core import safe_json
from apps.realtime.admission import Refused, credential_check, handshake_parse

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 64 * 1024
# How long the session's host has to answer a routed message before the page is told.
REPLY_TIMEOUT_S = 5.0
_SESSION_ID = re.compile(r"sess_[0-9A-Za-z]{1,64}")


class IWebRtcConsumer(AsyncWebsocketConsumer):
    """One page's signaling socket."""

    async def connect(self) -> None:
        """Authenticate the license in ``userId`` (the rules of every realtime edge)."""
        self.license_id: int | None = None
        self.target: str | None = None
        self._waiting: asyncio.TimerHandle | None = None
        hs = handshake_parse(self.scope, navtalk=True)
        key = hs.query.get("userId") or hs.key
        hs = dataclasses.replace(
            hs,
            key=key,
            key_source="query" if hs.query.get("userId") else hs.key_source,
            key_from_browser=hs.key_from_browser or bool(hs.origin),
        )
        await self.accept()
        try:
            credential = await DatabaseSyncToAsync(credential_check)(hs)
        except Refused as exc:
            await self._error(exc.code, exc.message)
            await self.close(code=4001 if "api_key" in exc.code else 4003)
            return
        self.license_id = int(credential.license.pk)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """One signaling message from the page."""
        if self.license_id is None:
            return
        if text_data is None or len(text_data) > MAX_MESSAGE_CHARS:
            await self._error("invalid_message", "Send JSON text messages under 64 KiB.")
            return
        try:
            message = safe_json.loads(text_data)
        except safe_json.JsonRejected as exc:
            await self._error("invalid_json", f"The message is not valid JSON: {exc.detail}")
            return
        if not isinstance(message, dict):
            await self._error("invalid_message", "A message must be a JSON object.")
            return
        kind = message.get("type")
        target = message.get("targetSessionId")
        if not isinstance(target, str) or not _SESSION_ID.fullmatch(target):
            await self._error(
                "invalid_target", "'targetSessionId' must be a realtime session id (sess_…)."
            )
            return
        if kind == "create":
            if self.target is not None and self.target != target:
                await self._route({"type": "avatar.close"})
            self.target = target
            await self._route({"type": "avatar.create"})
            self._expect_reply()
        elif target != self.target:
            await self._error("invalid_target", "Send 'create' for this session first.")
        elif kind == "answer":
            sdp = message.get("sdp")
            text = sdp.get("sdp") if isinstance(sdp, dict) else sdp
            if not isinstance(text, str):
                await self._error("invalid_sdp", "'sdp' must be {type: 'answer', sdp: '…'}.")
                return
            await self._route({"type": "avatar.answer", "sdp": text})
        elif kind == "iceCandidate":
            await self._route({"type": "avatar.candidate", "candidate": message.get("candidate")})
        else:
            await self._error(
                "invalid_type", "'type' must be one of 'create', 'answer', 'iceCandidate'."
            )

    async def _route(self, message: dict[str, Any]) -> None:
        layer = self.channel_layer
        assert self.target is not None
        await layer.group_send(
            f"rt.session.{self.target}",
            {**message, "reply_to": self.channel_name, "license_id": self.license_id},
        )

    def _expect_reply(self) -> None:
        if self._waiting is not None:
            self._waiting.cancel()
        loop = asyncio.get_running_loop()
        target = self.target
        self._waiting = loop.call_later(
            REPLY_TIMEOUT_S, lambda: asyncio.ensure_future(self._no_session(target))
        )

    async def _no_session(self, target: str | None) -> None:
        self._waiting = None
        if target == self.target:
            await self._not_found()

    async def _not_found(self) -> None:
        await self._error(
            "session_not_found",
            "No live realtime session with this id belongs to this license.",
        )

    async def _error(self, code: str, message: str) -> None:
        await self.send(
            text_data=safe_json.dumps(
                {
                    "type": "error",
                    "targetSessionId": getattr(self, "target", None),
                    "code": code,
                    "message": message,
                }
            )
        )

    # --- replies routed back from the session's host ---------------------------------------

    def _replied(self) -> None:
        if self._waiting is not None:
            self._waiting.cancel()
            self._waiting = None

    async def avatar_offer(self, message: dict[str, Any]) -> None:
        """The host's offer: forward it (and its candidates) to the page."""
        self._replied()
        await self.send(
            text_data=safe_json.dumps(
                {
                    "type": "offer",
                    "targetSessionId": self.target,
                    "sdp": {"type": "offer", "sdp": message["sdp"]},
                }
            )
        )
        for candidate in message.get("candidates") or []:
            await self.send(
                text_data=safe_json.dumps(
                    {"type": "iceCandidate", "targetSessionId": self.target, "candidate": candidate}
                )
            )

    async def avatar_refused(self, message: dict[str, Any]) -> None:
        """The session is not this license's: the same answer as no session at all."""
        self._replied()
        await self._not_found()

    async def avatar_error(self, message: dict[str, Any]) -> None:
        """The host could not use what the page sent."""
        await self._error(str(message.get("code")), str(message.get("message")))

    async def avatar_ended(self, message: dict[str, Any]) -> None:
        """The session ended: so does its video."""
        await self._error("session_ended", "The realtime session ended.")

    async def disconnect(self, code: int) -> None:
        """The page left: its video peer is closed."""
        if self._waiting is not None:
            self._waiting.cancel()
        if self.target is not None and self.license_id is not None:
            try:
                await self._route({"type": "avatar.close"})
            except Exception:  # noqa: BLE001 - best effort; the link closes with its session
                logger.info("could not route the close of an avatar link")
