"""Sideband control of a WebRTC call (``/v1/realtime?call_id=…``) against a real Daphne.

A call is opened as a browser would (a real aiortc peer: microphone, ``recvonly`` video,
``oai-events``); a server-side app then attaches to it over a WebSocket with the license
key. The tests check that the sideband sees the call's ``session.created`` and its events,
that its client events steer the call (``session.update`` shows up on the call's data
channel; ``conversation.item.create`` + ``response.create`` make the avatar speak, heard on
the audio track and seen on the video's mouth), and the refusals: ephemeral secrets,
another license's call, an unknown call, and a call that was hung up.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator

import numpy as np
import pytest

from tests.rtc.client import ClientPeer, post
from tests.rtc.test_navtalk_live import (
    MOVING,
    EventSocket,
    Server,
    check_frames,
    motion_in,
    mouth_motion,
    until,
    user_says,
)

pytestmark = pytest.mark.asyncio(loop_scope="function")

CALL_ID = re.compile(r"^/v1/realtime/calls/(rtc_[A-Za-z0-9]+)$")
LOUD_RMS = 300.0  # FakeTts's tone decodes at ~3,300 RMS; silence decodes at 0
MS_PER_CHAR = 60.0  # FakeTts
# The sideband's refusal of a call it cannot attach to comes after the attach timeout (3 s).
ATTACH_TIMEOUT_S = 3.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("rtc-sideband"))
    try:
        srv.prepare()
        srv.start()
        yield srv
    finally:
        srv.close()


class TimedPeer(ClientPeer):
    """A client peer that also notes when each event arrived (``arrivals[i]``)."""

    def __init__(self, *, video: bool = True, audio: bool = True) -> None:
        super().__init__(video=video, audio=audio)
        self.arrivals: list[float] = []
        # Registered after the base class's listener: event i has been appended by then.
        self.channel.on("message", lambda _message: self.arrivals.append(time.monotonic()))

    def index(self, kind: str, after: int = 0) -> int:
        for i in range(after, len(self.events)):
            if self.events[i]["type"] == kind:
                return i
        raise AssertionError(f"no {kind} after {after}; got {self.kinds()}")


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


async def open_call(peer: ClientPeer, base: str, key: str) -> tuple[str, str]:
    """Open a call with ``key``; returns its call id and session id."""
    answer = await post(
        base + "/v1/realtime/calls",
        await peer.offer(),
        {"Authorization": f"Bearer {key}", "Content-Type": "application/sdp"},
    )
    assert answer.status == 201, (answer.status, answer.body)
    match = CALL_ID.match(answer.headers.get("Location", ""))
    assert match, answer.headers
    await peer.accept(answer.body)
    created = await peer.next_event("session.created", timeout_s=20)
    return match.group(1), str(created["session"]["id"])


async def sideband(server: Server, call_id: str, key: str | None = None) -> EventSocket:
    return await EventSocket.open(
        f"{server.ws}/v1/realtime?call_id={call_id}", server.auth(key or server.key)
    )


def in_order(kinds: list[str], *wanted: str) -> list[int]:
    """The index of each wanted kind, each after the previous one (fails if out of order)."""
    out, at = [], 0
    for kind in wanted:
        assert kind in kinds[at:], (kind, "missing or out of order", kinds)
        at = kinds.index(kind, at)
        out.append(at)
    return out


# --- 4. a sideband steers the call: config, and a reply heard and seen --------------------------


async def sideband_speaks(
    sb: EventSocket, peer: TimedPeer, session_id: str, label: str
) -> dict[str, float]:
    """Check ``session.created``, then make the call speak from the sideband; returns numbers.

    ``sb`` is attached to the call ``peer`` holds (whose video has been running a while).
    """
    created = await sb.next("session.created", timeout_s=10)
    assert sb.events[0] is created, sb.events[:3]
    assert created["session"]["id"] == session_id, created
    assert created["session"]["type"] == "realtime", created

    # A session.update from the sideband is the call's: both see session.updated.
    sb_after, peer_after = len(sb.events), len(peer.events)
    instructions = f"Answer briefly ({label})."
    await sb.send(
        {"type": "session.update", "session": {"type": "realtime", "instructions": instructions}}
    )
    updated = await sb.next("session.updated", after=sb_after)
    assert updated["session"]["instructions"] == instructions, updated
    on_call = await peer.next_event("session.updated", after=peer_after)
    assert on_call["session"]["instructions"] == instructions, on_call
    assert on_call["session"]["id"] == session_id

    # The reply, asked for by the sideband.
    sb_after, peer_after = len(sb.events), len(peer.events)
    asked_at = time.monotonic()
    await sb.send(user_says("Welcome aboard. The weather is calm"))
    await sb.send({"type": "response.create"})
    await peer.next_event("output_audio_buffer.stopped", after=peer_after, timeout_s=30)
    await sb.next("output_audio_buffer.stopped", after=sb_after, timeout_s=10)
    wanted = (
        "conversation.item.added",
        "response.created",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
    )
    sb_i = in_order(sb.kinds(sb_after), *wanted)
    peer_i = in_order(peer.kinds()[peer_after:], *wanted)
    for kinds in (sb.kinds(sb_after), peer.kinds()[peer_after:]):
        assert "response.done" in kinds and "error" not in kinds, kinds
    sb_created = sb.events[sb_after + sb_i[1]]
    peer_created = peer.events[peer_after + peer_i[1]]
    assert sb_created["response"]["id"] == peer_created["response"]["id"]
    done = await peer.next_event("response.done", after=peer_after)
    assert done["response"]["status"] == "completed", done
    assert done["response"]["id"] == sb_created["response"]["id"], done
    transcript = done["response"]["output"][0]["content"][0]["transcript"]
    assert transcript == "You said: Welcome aboard. The weather is calm", transcript
    started_at = peer.arrivals[peer_after + peer_i[2]]
    stopped_at = peer.arrivals[peer_after + peer_i[3]]

    # Then a second of the idle avatar and silence on both tracks.
    await until(lambda: peer.received.audio[-1][0] > stopped_at + 1.0, "audio after the reply")
    await until(lambda: peer.received.video[-1][0] > stopped_at + 1.3, "video after the reply")

    # The reply audio: loud only around started..stopped, as long as the transcript says.
    audio = list(peer.received.audio)
    loud = [(t, rms(a)) for t, a in audio if rms(a) > LOUD_RMS]
    assert loud, "no reply audio on the call's track"
    assert all(started_at - 0.2 <= t <= stopped_at + 0.6 for t, _ in loud), [
        round(t - started_at, 3) for t, _ in loud if not started_at - 0.2 <= t <= stopped_at + 0.6
    ]
    heard_s = 0.02 * len(loud)
    assert abs(heard_s - MS_PER_CHAR / 1000 * len(transcript)) <= 0.2, (heard_s, transcript)
    assert float(np.median([r for _, r in loud])) > 1000

    # The mouth: still before, moving with the audio, still after.
    video = list(peer.received.video)
    check_frames(video)
    motion = mouth_motion(video)
    first_audio = loud[0][0]
    last_audio = loud[-1][0]
    before = motion_in(motion, video[0][0] + 0.5, min(asked_at, first_audio - 0.3))
    speaking = motion_in(motion, first_audio, last_audio)
    after = motion_in(motion, last_audio + 0.4, float("inf"))
    assert len(before) >= 10 and len(after) >= 15 and len(speaking) >= 25, (
        len(before),
        len(after),
        len(speaking),
    )
    moving = [t for t, change in motion if change >= MOVING]
    assert moving, "the mouth never moved"
    numbers = {
        "onset_vs_first_loud_audio_s": moving[0] - first_audio,
        "stop_vs_last_loud_audio_s": moving[-1] - last_audio,
        "started_after_ask_s": started_at - asked_at,
        "speaking_mean": float(np.mean(speaking)),
        "quiet_max": max(before + after),
        "heard_s": heard_s,
    }
    print(f"\n[{label}] " + ", ".join(f"{k}={v:.3f}" for k, v in numbers.items()))
    assert max(before) < MOVING and max(after) < MOVING, numbers
    assert numbers["speaking_mean"] > 2.0, numbers
    # Video and audio leave on one media clock: the lips move with what is heard.
    assert abs(numbers["onset_vs_first_loud_audio_s"]) <= 0.2, numbers
    assert abs(numbers["stop_vs_last_loud_audio_s"]) <= 0.3, numbers
    return numbers


async def test_sideband_sees_the_call_and_makes_it_speak(server: Server) -> None:
    peer = TimedPeer()
    sb: EventSocket | None = None
    try:
        call_id, session_id = await open_call(peer, server.base, server.key)
        await until(lambda: len(peer.received.video) >= 40, "idle video frames", 20)
        await until(lambda: len(peer.received.audio) >= 25, "reply-track audio frames")
        sb = await sideband(server, call_id)
        await sideband_speaks(sb, peer, session_id, "sideband")
        assert not sb.closed.is_set()
    finally:
        if sb is not None:
            await sb.close()
        await peer.close()


# --- 5. refusals ------------------------------------------------------------------------------


def assert_ws_error(sock: EventSocket, code: str) -> None:
    assert sock.events, f"no error before the close ({sock.close_code})"
    error = sock.events[-1]
    assert error["type"] == "error", sock.events
    assert error["error"]["code"] == code, error
    assert "session.created" not in sock.kinds(), sock.events


async def refused_after(sock: EventSocket, timeout_s: float = 10.0) -> tuple[int | None, float]:
    started = time.monotonic()
    code = await sock.wait_closed(timeout_s)
    return code, time.monotonic() - started


async def test_sideband_refusals_and_hangup(server: Server) -> None:
    peer = TimedPeer(video=False)
    socks: list[EventSocket] = []
    try:
        call_id, _session_id = await open_call(peer, server.base, server.key)

        # An ephemeral secret of the call's own license is for browsers, not sidebands.
        minted = await post(
            server.base + "/v1/realtime/client_secrets",
            json.dumps({"session": {"type": "realtime"}}),
            {**server.auth(), "Content-Type": "application/json"},
        )
        assert minted.status == 200, minted.body
        secret = minted.json()["value"]
        assert secret.startswith("ek_"), secret

        ephemeral = await sideband(server, call_id, secret)
        other = await sideband(server, call_id, server.other_key)
        unknown = await sideband(server, "rtc_" + "N0such" * 4)
        malformed = await sideband(server, "not-a-call")
        no_key = await EventSocket.open(f"{server.ws}/v1/realtime?call_id={call_id}")
        socks += [ephemeral, other, unknown, malformed, no_key]
        results = await asyncio.gather(*(refused_after(s) for s in socks))
        (
            (eph_code, eph_s),
            (other_code, other_s),
            (unk_code, unk_s),
            (bad_code, bad_s),
            (
                none_code,
                _,
            ),
        ) = results
        print(
            f"\n[sideband refusals] ephemeral {eph_code} after {eph_s:.2f} s, other license "
            f"{other_code} after {other_s:.2f} s, unknown {unk_code} after {unk_s:.2f} s, "
            f"malformed {bad_code} after {bad_s:.2f} s"
        )
        assert eph_code == 4001 and none_code == 4001, results
        assert_ws_error(ephemeral, "invalid_api_key")
        assert_ws_error(no_key, "missing_api_key")
        assert (other_code, unk_code, bad_code) == (4004, 4004, 4004), results
        for sock in (other, unknown, malformed):
            assert_ws_error(sock, "call_not_found")
        # Another license's call is answered exactly as no call at all (after the timeout).
        assert other_s >= ATTACH_TIMEOUT_S - 0.5 and unk_s >= ATTACH_TIMEOUT_S - 0.5, results
        assert other_s < ATTACH_TIMEOUT_S + 2 and unk_s < ATTACH_TIMEOUT_S + 2, results

        # The call was not touched by any of them.
        assert "error" not in peer.kinds(), peer.events

        # An attached sideband is closed by the server when the call is hung up.
        attached = await sideband(server, call_id)
        socks.append(attached)
        await attached.next("session.created", timeout_s=10)
        hung_up_at = time.monotonic()
        answer = await post(
            server.base + f"/v1/realtime/calls/{call_id}/hangup", b"", server.auth()
        )
        assert answer.status == 200, answer.body
        code = await attached.wait_closed(10)
        print(f"[sideband hangup] closed {code} after {time.monotonic() - hung_up_at:.3f} s")
        assert code == 1000, code
        # Afterwards the call is gone for sidebands too.
        late = await sideband(server, call_id)
        socks.append(late)
        assert (await late.wait_closed(10)) == 4004
        assert_ws_error(late, "call_not_found")
    finally:
        for sock in socks:
            await sock.close()
        await peer.close()
