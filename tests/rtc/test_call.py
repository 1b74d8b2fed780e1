"""A ``Call`` without a server: what it does with a peer that misbehaves."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from apps.rtc import call as call_module
from apps.rtc.call import Call
from apps.rtc.sdp import SdpRefused

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def _offer(*, audio: bool = True) -> tuple[RTCPeerConnection, str]:
    client = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if audio:
        client.addTransceiver("audio")
    client.createDataChannel("oai-events")
    await client.setLocalDescription(await client.createOffer())
    return client, client.localDescription.sdp


async def test_a_peer_that_overruns_the_sctp_window_is_cut_off(monkeypatch) -> None:
    monkeypatch.setattr(call_module, "SCTP_CHECK_S", 0.01)
    client, offer = await _offer()
    call = Call(session_id="sess_x", dialect="ga", character=None, fps=25, ice_user="u")
    await call.answer(offer)
    assert call.pc.sctp is not None
    call.pc.sctp._advertised_rwnd = -(call_module.SCTP_OVERRUN_BYTES + 1)
    await asyncio.wait_for(call._watch(), 2)
    assert call.ended and call.pc.connectionState == "closed"
    await client.close()


async def test_an_offer_without_audio_is_refused_and_the_peer_can_be_closed() -> None:
    client, offer = await _offer(audio=False)
    call = Call(session_id="sess_y", dialect="ga", character=None, fps=25, ice_user="u")
    with pytest.raises(SdpRefused):
        await call.answer(offer)
    await call.end("error", None)
    assert call.pc.connectionState == "closed"
    await client.close()
