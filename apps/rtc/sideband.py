"""Sideband control: ``/v1/realtime?call_id=…`` over a WebSocket with a license key.

A server-side app keeps its tools and secrets off the browser by watching the call from
its own connection: it sees the call's server events (spelled for its own dialect) and may
send client events into it (``session.update`` with tools, ``response.create``, function
call outputs…). The call may live on another worker: attach, events and detach travel
over the channel layer (``rtc.call.<id>`` reaches the call; the call answers this
consumer's own channel). Only a license key of the call's license may attach; a call that
does not exist, has ended, or is another license's gets the same ``call_not_found``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from channels.db import DatabaseSyncToAsync
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.core.ids import event_id as new_event_id
from apps.core.tasks import fire_and_forget
from apps.realtime.admission import Refused, credential_check, handshake_parse
from apps.realtime.hosting import inbound_limits
from apps.realtime.inbound import InboundBudget, Verdict
from apps.realtime.protocol.codec import dump_server_event, render_server_event

logger = logging.getLogger(__name__)

ATTACH_TIMEOUT_S = 3.0
_CALL_ID = re.compile(r"rtc_[0-9A-Za-z]{1,64}")


def call_group(call_id: str) -> str:
    """The channel-layer group that reaches a call from any worker."""
    return f"rtc.call.{call_id}"


class SidebandConsumer(AsyncWebsocketConsumer):
    """One server-side app watching and steering one call."""

    async def connect(self) -> None:
        """Authenticate (license keys only), then attach to the call or refuse."""
        hs = handshake_parse(self.scope, navtalk=False)
        self.dialect = hs.dialect
        self.call_id = hs.query.get("call_id", "")
        self.call_channel: str | None = None
        self.session_id = ""
        self.expires_at = 0
        self._attached = asyncio.Event()
        self._attach_timer: asyncio.TimerHandle | None = None
        self.budget = InboundBudget(inbound_limits(), now_s=time.monotonic())
        await self.accept(subprotocol="realtime" if hs.offered_realtime else None)
        try:
            credential = await DatabaseSyncToAsync(credential_check)(hs)
        except Refused as exc:
            await self._refuse(exc.code, exc.message, 4001 if "api_key" in exc.code else 4003)
            return
        if credential.kind != "license":
            await self._refuse(
                "invalid_api_key",
                "Sideband connections need a license key; ephemeral secrets are for browsers.",
                4001,
            )
            return
        if not _CALL_ID.fullmatch(self.call_id):
            await self._refuse("call_not_found", "No live call with this call_id.", 4004)
            return
        await self.channel_layer.group_send(
            call_group(self.call_id),
            {
                "type": "sideband.attach",
                "reply_to": self.channel_name,
                "license_id": int(credential.license.pk),
            },
        )
        # Not awaited here: the reply is a channel-layer message, which this consumer can
        # only handle once connect() has returned.
        self._attach_timer = asyncio.get_running_loop().call_later(
            ATTACH_TIMEOUT_S, lambda: fire_and_forget(self._not_attached(), name="sideband")
        )

    async def _not_attached(self) -> None:
        if not self._attached.is_set():
            await self._refuse("call_not_found", "No live call with this call_id.", 4004)

    async def _refuse(self, code: str, message: str, close_code: int) -> None:
        await self._send_error(code, message)
        await self.close(code=close_code)

    async def _send_error(self, code: str, message: str) -> None:
        error = {
            "type": "error",
            "event_id": new_event_id(),
            "error": {
                "type": "invalid_request_error",
                "code": code,
                "message": message,
                "param": None,
                "event_id": None,
            },
        }
        await self.send(text_data=dump_server_event(error))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """A client event for the call (metered like any realtime client's)."""
        if self.call_channel is None:
            return
        text = text_data if text_data is not None else None
        size = len(text or bytes_data or b"")
        verdict = self.budget.admit(size, now_s=time.monotonic())
        if verdict is Verdict.CLOSE:
            await self._refuse("rate_limit_exceeded", "Too many events; closed.", 1008)
            return
        if verdict is not Verdict.ACCEPT:
            if verdict is Verdict.DROP_AND_TELL:
                await self._send_error("rate_limit_exceeded", "Too many events; dropped.")
            return
        if text is None:
            await self._send_error("invalid_event", "Send events as JSON text.")
            return
        await self.channel_layer.send(
            self.call_channel, {"type": "sideband.client_event", "text": text}
        )

    # --- from the call --------------------------------------------------------------------

    async def sideband_attached(self, message: dict[str, Any]) -> None:
        """The call took us: say ``session.created`` with its current config."""
        if self._attach_timer is not None:
            self._attach_timer.cancel()
        self.call_channel = message["call_channel"]
        self.session_id = message["session_id"]
        self.expires_at = int(message.get("expires_at") or 0)
        self._attached.set()
        await self.sideband_event({"event": message["created"]})

    async def sideband_refused(self, message: dict[str, Any]) -> None:
        """Not this license's call: answered as no call at all (the timeout says so)."""

    async def sideband_event(self, message: dict[str, Any]) -> None:
        """One of the call's server events, spelled for this connection's dialect."""
        rendered = render_server_event(
            message["event"],
            dialect=self.dialect,
            session_id=self.session_id,
            expires_at=self.expires_at,
        )
        if rendered is not None:
            await self.send(text_data=dump_server_event(rendered))

    async def sideband_ended(self, message: dict[str, Any]) -> None:
        """The call ended: so does this connection."""
        self.call_channel = None
        await self.close(code=1000)

    async def disconnect(self, code: int) -> None:
        """Detach from the call."""
        if self._attach_timer is not None:
            self._attach_timer.cancel()
        if self.call_channel is not None:
            try:
                await self.channel_layer.send(
                    self.call_channel, {"type": "sideband.detach", "reply_to": self.channel_name}
                )
            except Exception:  # noqa: BLE001 - the call may be gone already
                logger.info("could not detach a sideband connection")
