"""WebRTC across workers: two Daphne processes sharing PostgreSQL and Redis (scripted engines).

The avatar video of a NavTalk session and the sideband of a call are both reached over the
channel layer, so the socket a page or an app connects to may sit on another worker than
the session: ``/iwebrtc`` on worker B drives the avatar peer of a realtime session hosted
on worker A, and a sideband on worker B steers a call hosted on worker A.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rtc.client import post
from tests.rtc.test_navtalk_live import (
    SETTLE_S,
    EventSocket,
    Reply,
    Server,
    VideoPeer,
    lips_follow_the_reply,
    navtalk_session,
    until,
    user_says,
    watch,
)
from tests.rtc.test_sideband_live import TimedPeer, open_call, sideband, sideband_speaks

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.asyncio]


@pytest.fixture
def workers(
    tmp_path: Path, scratch_database: str, redis_url: str
) -> Iterator[tuple[Server, Server]]:
    """Workers A and B: one database, one Redis (channel layer and cache), two processes."""
    unique = f"rtc-{uuid.uuid4().hex[:10]}"
    extra = {
        "TEST_SERVER_DATABASE_URL": scratch_database,
        "REDIS_URL": redis_url,
        "CHANNEL_LAYER_PREFIX": unique,
        "CACHE_KEY_PREFIX": unique,
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = Server(tmp_path / "a", **extra), Server(tmp_path / "b", **extra)
    try:
        a.prepare()
        b.key, b.other_key = a.key, a.other_key
        a.start()
        b.start()
        yield a, b
    finally:
        for worker, name in ((a, "A"), (b, "B")):
            if worker.proc is not None and worker.proc.poll() is not None:
                print(f"worker {name} exited early:\n{worker.output()[-5000:]}")
        a.close()
        b.close()


def has_procfs() -> bool:
    """Whether sockets can be traced to processes here (Linux ``/proc``)."""
    return Path("/proc/net/udp").exists()


def udp_ports(pid: int) -> set[int]:
    """The UDP ports process ``pid`` has sockets bound to (Linux ``/proc``)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def candidate_ports(sdp: str) -> set[int]:
    """The ports of an SDP's ICE candidates."""
    return {int(line.split()[5]) for line in sdp.splitlines() if line.startswith("a=candidate:")}


# --- 6. NavTalk: the session on A, its /iwebrtc page on B ---------------------------------------


async def test_iwebrtc_on_another_worker_shows_the_sessions_avatar(
    workers: tuple[Server, Server],
) -> None:
    a, b = workers
    rt, session_id = await navtalk_session(a)
    page = await EventSocket.open(f"{b.ws}/iwebrtc?userId={b.key}")
    stranger = await EventSocket.open(f"{b.ws}/iwebrtc?userId={b.other_key}")
    peer: VideoPeer | None = None
    try:
        # Another license is refused across workers too (the host on A answers).
        refused = await stranger.reply({"type": "create", "targetSessionId": session_id})
        assert refused["type"] == "error" and refused["code"] == "session_not_found", refused

        # The offer comes through B; the peer behind it is A's (its ICE sockets are A's).
        peer, offer = await watch(page, session_id, timeout_s=20)
        ports = candidate_ports(offer["sdp"]["sdp"])
        assert a.proc is not None and b.proc is not None
        if has_procfs():
            assert ports and ports <= udp_ports(a.proc.pid), (ports, udp_ports(a.proc.pid))
            assert not ports & udp_ports(b.proc.pid)
        await until(lambda: len(peer.video) >= 50, "50 video frames from worker A", 20)
        assert peer.pc.connectionState == "connected", peer.pc.connectionState
        assert "error" not in page.kinds(), page.events

        # A's session speaks: the lips on the video follow its audio deltas.
        after = len(rt.events)
        asked_at = time.monotonic()
        await rt.send(user_says("Two workers. One avatar"))
        await rt.send({"type": "response.create"})
        done = await rt.next("response.done", after=after, timeout_s=30)
        assert done["response"]["status"] == "completed", done
        reply = Reply(rt, after, "response.audio.delta")
        await until(
            lambda: peer.video[-1][0] > reply.audio_end_at + SETTLE_S + 1.0,
            "video after the reply",
            reply.audio_s + 15,
        )
        lips_follow_the_reply(peer.video, reply, asked_at, "scale navtalk")

        # The session ends on A: the page on B is told and the video stops.
        after = len(page.events)
        await rt.close()
        ended = await page.next("error", after=after, timeout_s=10)
        assert ended["code"] == "session_ended", ended
        await until(
            lambda: peer.pc.connectionState == "closed" or peer.ended.is_set(),
            "the video peer to close",
            35,
        )
    finally:
        if peer is not None:
            await peer.close()
        for sock in (stranger, page, rt):
            await sock.close()


# --- 7. a call on A, its sideband on B ----------------------------------------------------------


async def test_sideband_on_another_worker_steers_the_call(
    workers: tuple[Server, Server],
) -> None:
    a, b = workers
    peer = TimedPeer()
    sb: EventSocket | None = None
    other: EventSocket | None = None
    try:
        call_id, session_id = await open_call(peer, a.base, a.key)
        await until(lambda: len(peer.received.video) >= 40, "idle video frames", 20)
        await until(lambda: len(peer.received.audio) >= 25, "reply-track audio frames")
        # Another license's key on B: the call on A stays silent, as for no call at all.
        other = await sideband(b, call_id, b.other_key)
        sb = await sideband(b, call_id)
        await sideband_speaks(sb, peer, session_id, "scale sideband")
        assert (await other.wait_closed(10)) == 4004
        assert other.events[-1]["error"]["code"] == "call_not_found", other.events

        # Hung up on A: the sideband on B is closed by the server.
        answer = await post(a.base + f"/v1/realtime/calls/{call_id}/hangup", b"", a.auth())
        assert answer.status == 200, answer.body
        assert (await sb.wait_closed(10)) == 1000
    finally:
        for sock in (sb, other):
            if sock is not None:
                await sock.close()
        await peer.close()
