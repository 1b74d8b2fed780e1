"""WebRTC calls against a real Daphne (scripted engines) with a real aiortc client peer.

One server serves the module; every test opens its own calls. The client is what a browser
running OpenAI's WebRTC quickstart would be: a microphone track, a ``recvonly`` video
transceiver for the avatar and the ``oai-events`` data channel. The tests check what goes
over each: events (GA and beta spellings), the reply audio on the Opus track (its length
against what the server says it played, cut off on barge-in), the avatar's mouth moving
only while it speaks, hangup ending the call and its conversation row, and the HTTP
refusals of the SDP endpoints.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from apps.avatar.look import full_look
from apps.avatar.render.base import CharacterSpec
from apps.avatar.render.drawn import prepare_character
from tests.helpers import free_port, manage, scripted_server_env, start_daphne, wait_http
from tests.rtc.client import ClientPeer, HttpAnswer, multipart, post, tone

pytestmark = pytest.mark.asyncio(loop_scope="function")

MS_PER_CHAR = 60.0  # FakeTts
FRAME_S = 0.02  # the reply track's frames
LOUD_RMS = 300.0  # FakeTts's tone decodes at ~3,300 RMS; silence decodes at 0
AVATAR_SIZE = 512
MOUTH_PAD = 10  # head sway and breathing move the mouth a few pixels
CALL_ID = re.compile(r"^/v1/realtime/calls/(rtc_[A-Za-z0-9]+)$")
GA_ONLY_EVENTS = {
    "conversation.item.added",
    "conversation.item.done",
    "response.output_audio_transcript.delta",
    "response.output_audio_transcript.done",
    "response.output_audio.delta",
    "response.output_audio.done",
    "response.output_text.delta",
    "response.output_text.done",
}


class Server:
    """One Daphne process on the test settings (FakeVad/FakeAsr/FakeTts, scripted LLM)."""

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.env = scripted_server_env(var_dir)
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(mode="w+", suffix=".log", delete=False)
        self.proc: subprocess.Popen[str] | None = None
        self.key = ""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # One process for the three commands (each start costs seconds on a busy machine):
        # the schema, the voice catalogue, and a license whose key is the last line printed.
        setup = (
            "from django.core.management import call_command as c; "
            "c('migrate', interactive=False, verbosity=0); c('seed_demo'); "
            "c('createlicense', 'rtc-live', '--max-sessions', '20')"
        )
        self.key = manage(self.env, "shell", "-c", setup).stdout.splitlines()[-1].strip()
        assert self.key.startswith("lic_"), self.key
        self.proc = start_daphne(self.env, self.port, self.log)
        wait_http(self.base + "/healthz")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def output(self) -> str:
        return Path(self.log.name).read_text()

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.var_dir / "db.sqlite3") as db:
            return db.execute(sql, args).fetchall()

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("rtc-live"))
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        if os.environ.get("RTC_LIVE_SHOW_LOG"):
            print(srv.output()[-20_000:])
        os.unlink(srv.log.name)


class TimedPeer(ClientPeer):
    """A client peer that also notes when each event arrived (``arrivals[i]``)."""

    def __init__(self, *, video: bool = True, audio: bool = True) -> None:
        super().__init__(video=video, audio=audio)
        self.arrivals: list[float] = []
        # Registered after the base class's listener: event i has been appended by then.
        self.channel.on("message", lambda _message: self.arrivals.append(time.monotonic()))

    def index(self, kind: str, after: int = 0) -> int:
        """The index of the first ``kind`` event at ``after`` or later."""
        for i in range(after, len(self.events)):
            if self.events[i]["type"] == kind:
                return i
        raise AssertionError(f"no {kind} after {after}; got {self.kinds()}")

    def at(self, kind: str, after: int = 0) -> float:
        """When the first ``kind`` event at ``after`` or later arrived."""
        return self.arrivals[self.index(kind, after)]

    def loud(self, since: float, until: float) -> list[tuple[float, float]]:
        """(arrival, RMS) of the reply frames above silence that arrived in the window."""
        out = []
        for t, samples in list(self.received.audio):
            if since <= t <= until:
                rms = _rms(samples)
                if rms > LOUD_RMS:
                    out.append((t, rms))
        return out


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


async def until(check: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    """Wait for ``check`` to hold (data to arrive), failing with ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _request(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> HttpAnswer:
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return HttpAnswer(response.status, dict(response.headers), response.read().decode())
    except urllib.error.HTTPError as exc:
        return HttpAnswer(exc.code, dict(exc.headers), exc.read().decode())


async def request(
    method: str, url: str, body: bytes | str | None = None, headers: dict[str, str] | None = None
) -> HttpAnswer:
    data = body.encode() if isinstance(body, str) else body
    return await asyncio.to_thread(_request, method, url, data, headers or {})


def assert_error(answer: HttpAnswer, status: int, code: str | None = None) -> dict[str, Any]:
    """An OpenAI-shaped JSON error with CORS headers; returns its ``error`` object."""
    assert answer.status == status, (answer.status, answer.body)
    assert answer.headers.get("Content-Type", "").startswith("application/json"), answer.headers
    assert answer.headers.get("Access-Control-Allow-Origin") == "*", answer.headers
    body = answer.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"message", "type", "code", "param"} <= set(error), error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and error["type"], error
    if code is not None:
        assert error["code"] == code, error
    return error


async def ga_secret(server: Server, session: dict[str, Any] | None = None) -> str:
    answer = await post(
        server.base + "/v1/realtime/client_secrets",
        json.dumps({"session": {"type": "realtime", **(session or {})}}),
        {**server.auth(), "Content-Type": "application/json"},
    )
    assert answer.status == 200, answer.body
    value = answer.json()["value"]
    assert value.startswith("ek_"), value
    return str(value)


async def open_call(
    peer: ClientPeer,
    url: str,
    key: str,
    *,
    session: dict[str, Any] | None = None,
) -> HttpAnswer:
    """Offer, POST (raw SDP or, with ``session``, multipart), apply the answer."""
    offer = await peer.offer()
    if session is None:
        body: bytes = offer.encode()
        content_type = "application/sdp"
    else:
        body, content_type = multipart({"sdp": offer, "session": json.dumps(session)})
    answer = await post(url, body, {"Authorization": f"Bearer {key}", "Content-Type": content_type})
    assert answer.status == 201, (answer.status, answer.body)
    assert answer.headers.get("Content-Type", "").startswith("application/sdp"), answer.headers
    assert answer.body.startswith("v=0"), answer.body[:200]
    await peer.accept(answer.body)
    return answer


async def enable_transcription(peer: ClientPeer) -> None:
    after = len(peer.events)
    peer.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"transcription": {"model": "whisper-1"}}},
            },
        }
    )
    updated = await peer.next_event("session.updated", after=after)
    assert updated["session"]["audio"]["input"]["transcription"]["model"] == "whisper-1"


@pytest.fixture(scope="module")
def mouth() -> tuple[int, int, int, int]:
    """(left, top, right, bottom) around every mouth pose of the default drawn character.

    Drawn before a test's call opens: drawing takes seconds of CPU, which on the client's
    event loop would starve its ICE consent replies and get the call dropped.
    """
    character = prepare_character(
        CharacterSpec(slug="default", look=full_look({})), width=AVATAR_SIZE, height=AVATAR_SIZE
    )
    boxes = [
        (m.x, m.y, m.x + m.sprite.width, m.y + m.sprite.height) for m in character.mouths.values()
    ]
    return (
        max(0, min(b[0] for b in boxes) - MOUTH_PAD),
        max(0, min(b[1] for b in boxes) - MOUTH_PAD),
        min(AVATAR_SIZE, max(b[2] for b in boxes) + MOUTH_PAD),
        min(AVATAR_SIZE, max(b[3] for b in boxes) + MOUTH_PAD),
    )


def mouth_changes(
    video: list[tuple[float, int, np.ndarray]],
    box: tuple[int, int, int, int],
    since: float,
    until: float,
) -> list[float]:
    """Mean absolute luma change in ``box`` between consecutive frames in the window."""
    left, top, right, bottom = box
    out = []
    for (_, _, before), (t, _, after) in zip(video, video[1:], strict=False):
        if since <= t <= until:
            a = before[top:bottom, left:right].astype(np.int16)
            b = after[top:bottom, left:right].astype(np.int16)
            out.append(float(np.abs(b - a).mean()))
    return out


def conversation_row(server: Server, session_id: str) -> tuple[Any, ...]:
    rows = server.query(
        "SELECT ended_at, end_reason, transport, dialect, output_audio_ms "
        "FROM conversations_conversation WHERE id = ?",
        session_id,
    )
    assert len(rows) == 1, rows
    return rows[0]


# --- 1. GA, ephemeral secret: a spoken turn, the reply's audio and lips, hangup ---------------


async def test_ga_call_spoken_turn_audio_video_and_hangup(
    server: Server, mouth: tuple[int, int, int, int]
) -> None:
    secret = await ga_secret(server)
    peer = TimedPeer()
    try:
        answer = await open_call(peer, server.base + "/v1/realtime/calls", secret)
        location = answer.headers.get("Location", "")
        match = CALL_ID.match(location)
        assert match, answer.headers
        call_id = match.group(1)
        assert answer.headers.get("Access-Control-Allow-Origin") == "*"

        created = await peer.next_event("session.created")
        session_id = created["session"]["id"]
        assert created["session"]["type"] == "realtime"
        await enable_transcription(peer)

        # Silence first: two seconds of the idle avatar, and of the silent reply track.
        await until(lambda: len(peer.received.video) >= 50, "50 idle video frames")
        await until(lambda: len(peer.received.audio) >= 25, "reply-track audio frames")
        asked_at = time.monotonic()
        after = len(peer.events)
        peer.mic.say(tone(1.0))

        transcribed = await peer.next_event(
            "conversation.item.input_audio_transcription.completed", after=after, timeout_s=20
        )
        assert transcribed["transcript"] == "hello"
        stopped = await peer.next_event("output_audio_buffer.stopped", after=after, timeout_s=30)
        i_transcribed = peer.index("conversation.item.input_audio_transcription.completed", after)
        i_started = peer.index("output_audio_buffer.started", after)
        i_done = peer.index("response.done", after)
        i_stopped = peer.index("output_audio_buffer.stopped", after)
        # transcribed … started … done … stopped; started before done is asserted at the end
        # (the server has been seen to send it after done), so everything else is checked too.
        order = peer.kinds()[after:]
        assert i_transcribed < i_started < i_stopped and i_done < i_stopped, order
        done = peer.events[i_done]["response"]
        assert done["status"] == "completed", done
        assert stopped["response_id"] == done["id"] == peer.events[i_started]["response_id"]
        assert "response.output_audio.delta" not in peer.kinds()  # audio goes on the track
        reply = done["output"][0]
        transcript = reply["content"][0]["transcript"]
        assert transcript.startswith("You said:") and "hello" in transcript, reply
        started_at, stopped_at = peer.arrivals[i_started], peer.arrivals[i_stopped]

        # Let the tail of the reply and then some silence arrive over the tracks.
        await until(lambda: peer.received.audio[-1][0] > stopped_at + 1.0, "audio after the reply")
        await until(lambda: peer.received.video[-1][0] > stopped_at + 1.2, "video after the reply")

        # The reply on the track: loud only around started..stopped, as long as it said.
        before = [_rms(a) for t, a in peer.received.audio if t < asked_at]
        silence_rms = float(np.sqrt(np.mean(np.square(before))))
        loud = peer.loud(started_at - 0.2, stopped_at + 0.6)
        everywhere = peer.loud(0.0, float("inf"))
        assert len(loud) == len(everywhere), "reply audio outside the reply's window"
        reply_rms = float(np.median([r for _, r in loud]))
        assert reply_rms > 1000 and reply_rms > 20 * silence_rms, (reply_rms, silence_rms)
        heard_ms = 1000 * FRAME_S * len(loud)
        said_ms = MS_PER_CHAR * len(transcript)
        assert abs(heard_ms - said_ms) <= 150, (heard_ms, said_ms, transcript)

        # The avatar: 512x512 frames with increasing pts; lips move only while it speaks.
        video = list(peer.received.video)
        pts = [p for _, p, _ in video]
        assert all(b > a for a, b in zip(pts, pts[1:], strict=False)), pts[:50]
        assert video[0][2].shape == (AVATAR_SIZE, AVATAR_SIZE)
        first = video[0][0]
        speaking = mouth_changes(video, mouth, started_at, stopped_at)
        quiet = mouth_changes(video, mouth, first + 0.5, asked_at) + mouth_changes(
            video, mouth, stopped_at + 0.6, float("inf")
        )
        assert len(speaking) >= 10 and len(quiet) >= 40, (len(speaking), len(quiet))
        speaking_mean, quiet_mean = float(np.mean(speaking)), float(np.mean(quiet))
        assert float(np.median(quiet)) < 0.5, sorted(quiet)[-10:]
        assert speaking_mean > 2.0, speaking
        assert speaking_mean > 5 * quiet_mean, (speaking_mean, quiet_mean)

        # Hang up with the license key: the peer closes, the conversation row ends.
        hangup = server.base + f"/v1/realtime/calls/{call_id}/hangup"
        answer = await post(hangup, b"", server.auth())
        assert answer.status == 200, answer.body
        await until(
            lambda: peer.pc.connectionState in ("closed", "failed"), "the peer to close", 5.0
        )
        ended_at, end_reason, transport, dialect, output_audio_ms = conversation_row(
            server, session_id
        )
        assert ended_at is not None and end_reason == "client_closed", (ended_at, end_reason)
        assert (transport, dialect) == ("webrtc", "ga")
        # What the server counted as played is what came over the track.
        assert abs(heard_ms - output_audio_ms) <= 120, (heard_ms, output_audio_ms)
        assert_error(await post(hangup, b"", server.auth()), 404, "call_not_found")
        assert i_started < i_done, f"response.done before output_audio_buffer.started: {order}"
    finally:
        await peer.close()


# --- 2. multipart offer with a session config ------------------------------------------------


async def test_multipart_offer_applies_its_session_config(server: Server) -> None:
    session = {
        "type": "realtime",
        "instructions": "Answer like a ship's captain.",
        "audio": {
            "input": {"transcription": {"model": "whisper-1"}},
            "output": {"voice": "echo"},
        },
    }
    peer = TimedPeer(video=False)
    try:
        answer = await open_call(
            peer, server.base + "/v1/realtime/calls", server.key, session=session
        )
        assert CALL_ID.match(answer.headers.get("Location", "")), answer.headers
        created = (await peer.next_event("session.created"))["session"]
        assert created["instructions"] == "Answer like a ship's captain.", created
        assert created["audio"]["output"]["voice"] == "echo", created["audio"]
        assert created["audio"]["input"]["transcription"]["model"] == "whisper-1", created
        # The config is live, not only echoed: the spoken turn is transcribed.
        peer.mic.say(tone(0.6))
        transcribed = await peer.next_event(
            "conversation.item.input_audio_transcription.completed", timeout_s=20
        )
        assert transcribed["transcript"] == "hello"
    finally:
        await peer.close()


async def test_an_offer_posted_before_gathering_connects_by_the_browsers_checks(
    server: Server,
) -> None:
    # OpenAI's quickstart posts its offer without waiting for ICE gathering: the offer has
    # no candidates, and the server learns the browser's address from its checks
    # (peer-reflexive candidates).
    peer = TimedPeer(video=False)
    try:
        offer = await peer.offer()
        bare = "\r\n".join(
            line
            for line in offer.split("\r\n")
            if not line.startswith(("a=candidate:", "a=end-of-candidates"))
        )
        assert "a=candidate" not in bare
        answer = await post(
            server.base + "/v1/realtime/calls",
            bare,
            {"Authorization": f"Bearer {server.key}", "Content-Type": "application/sdp"},
        )
        assert answer.status == 201, answer.body
        await peer.accept(answer.body)
        assert (await peer.next_event("session.created"))["session"]["id"].startswith("sess_")
    finally:
        await peer.close()


# --- 3. beta: /v1/realtime/sessions key, POST /v1/realtime?model= -----------------------------


async def test_beta_sdp_post_speaks_beta_event_names(server: Server) -> None:
    models = await request("GET", server.base + "/v1/models", headers=server.auth())
    assert models.status == 200, models.body
    model = models.json()["data"][0]["id"]
    minted = await post(
        server.base + "/v1/realtime/sessions",
        json.dumps({"model": model, "input_audio_transcription": {"model": "whisper-1"}}),
        {**server.auth(), "Content-Type": "application/json"},
    )
    assert minted.status == 200, minted.body
    secret = minted.json()["client_secret"]["value"]

    peer = TimedPeer(video=False)
    try:
        await open_call(peer, f"{server.base}/v1/realtime?model={model}", secret)
        created = (await peer.next_event("session.created"))["session"]
        assert created["object"] == "realtime.session", created
        assert created["model"] == model and "modalities" in created, created
        assert created["input_audio_transcription"]["model"] == "whisper-1", created
        peer.mic.say(tone(1.0))
        transcribed = await peer.next_event(
            "conversation.item.input_audio_transcription.completed", timeout_s=20
        )
        assert transcribed["transcript"] == "hello"
        await peer.next_event("output_audio_buffer.stopped", timeout_s=30)
        kinds = peer.kinds()
        for kind in (
            "conversation.item.created",
            "response.audio_transcript.delta",
            "response.audio_transcript.done",
            "output_audio_buffer.started",
            "response.done",
        ):
            assert kind in kinds, (kind, kinds)
        assert not GA_ONLY_EVENTS & set(kinds), GA_ONLY_EVENTS & set(kinds)
        assert "response.audio.delta" not in kinds  # the audio is on the track
        done = peer.events[peer.index("response.done")]["response"]
        assert done["status"] == "completed" and "modalities" in done, done
        assert done["output"][0]["content"][0]["type"] == "audio", done["output"]
        assert done["output"][0]["content"][0]["transcript"].startswith("You said:")
        assert peer.loud(0.0, float("inf")), "no reply audio on the track"
    finally:
        await peer.close()


# --- 4. barge-in over the track ----------------------------------------------------------------


async def test_barge_in_truncates_to_what_was_played(server: Server) -> None:
    question = ("tell me a long story about the sea " * 12).strip()
    peer = TimedPeer(video=False)
    try:
        await open_call(peer, server.base + "/v1/realtime/calls", server.key)
        await peer.next_event("session.created")
        after = len(peer.events)
        peer.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": question}],
                },
            }
        )
        peer.send({"type": "response.create"})
        started = await peer.next_event("output_audio_buffer.started", after=after, timeout_s=20)
        started_at = peer.at("output_audio_buffer.started", after)
        # About a second of the reply heard, then the user talks over it.
        await until(lambda: len(peer.loud(started_at, float("inf"))) >= 50, "1 s of the reply")
        peer.mic.say(tone(0.8))

        await peer.next_event("input_audio_buffer.speech_started", after=after, timeout_s=10)
        cleared = await peer.next_event("output_audio_buffer.cleared", after=after)
        truncated = await peer.next_event("conversation.item.truncated", after=after)
        done = await peer.next_event("response.done", after=after)
        assert cleared["response_id"] == started["response_id"] == done["response"]["id"]
        assert done["response"]["status"] == "cancelled", done["response"]
        cleared_at = peer.at("output_audio_buffer.cleared", after)
        assert peer.index("input_audio_buffer.speech_started", after) < peer.index(
            "output_audio_buffer.cleared", after
        )

        # The follow-up turn (the 0.8 s tone) starts a new reply later; look before it.
        await until(lambda: peer.received.audio[-1][0] > cleared_at + 1.0, "audio after clear")
        i_cleared = peer.index("output_audio_buffer.cleared", after)
        later = [
            peer.arrivals[i]
            for i in range(i_cleared, len(peer.events))
            if peer.events[i]["type"] == "output_audio_buffer.started"
        ]
        window_end = min([cleared_at + 1.0, *later])
        heard = peer.loud(started_at - 0.2, window_end)
        assert heard[-1][0] <= cleared_at + 0.3, (heard[-1][0] - cleared_at, "s after cleared")
        heard_ms = 1000 * FRAME_S * len(heard)

        full_ms = MS_PER_CHAR * len("You said: " + question)
        end_ms = truncated["audio_end_ms"]
        assert truncated["content_index"] == 0
        assert 900 <= end_ms < full_ms / 3, (end_ms, full_ms)
        assert abs(end_ms - heard_ms) <= 300, (end_ms, heard_ms)

        # The item holds only what was heard.
        peer.send({"type": "conversation.item.retrieve", "item_id": truncated["item_id"]})
        item = (await peer.next_event("conversation.item.retrieved", after=after))["item"]
        transcript = item["content"][0]["transcript"]
        full_text = "You said: " + question
        assert full_text.startswith(transcript) and len(transcript) < len(full_text) / 3, item
        # Whole words up to audio_end_ms (60 ms a character; a cut word is dropped).
        assert MS_PER_CHAR * len(transcript) <= end_ms + 2 * MS_PER_CHAR, (transcript, end_ms)
        assert MS_PER_CHAR * len(transcript) >= end_ms - 12 * MS_PER_CHAR, (transcript, end_ms)
    finally:
        await peer.close()


# --- 5. HTTP refusals ---------------------------------------------------------------------------


async def test_http_refusals_are_openai_shaped(server: Server) -> None:
    calls = server.base + "/v1/realtime/calls"
    peer, video_only = ClientPeer(), ClientPeer(audio=False)
    try:
        offer = await peer.offer()
        no_audio = await video_only.offer()
    finally:
        await peer.close()
        await video_only.close()
    sdp = {"Content-Type": "application/sdp"}
    assert "m=audio" not in no_audio and "m=video" in no_audio
    rows_before = server.query("SELECT COUNT(*) FROM conversations_conversation")

    assert_error(await post(calls, offer, sdp), 401, "missing_api_key")
    assert_error(await post(calls, offer, {**sdp, **server.auth("sk-wrong")}), 401)
    garbage = await post(calls, "this is not an offer", {**sdp, **server.auth()})
    assert assert_error(garbage, 400, "invalid_offer")["param"] == "sdp"
    padding = "".join(f"a=x-pad-{i}:{'x' * 100}\r\n" for i in range(700))
    assert len(offer) + len(padding) > 64 * 1024
    huge = await post(calls, offer + padding, {**sdp, **server.auth()})
    assert_error(huge, 400, "offer_too_large")
    assert_error(await post(calls, no_audio, {**sdp, **server.auth()}), 400, "invalid_offer")
    plain = await post(calls, offer, {"Content-Type": "text/plain", **server.auth()})
    assert_error(plain, 400, "unsupported_content_type")
    body, content_type = multipart({"session": json.dumps({"type": "realtime"})})
    no_sdp = await post(calls, body, {"Content-Type": content_type, **server.auth()})
    assert assert_error(no_sdp, 400)["param"] == "sdp"
    body, content_type = multipart({"sdp": offer, "session": "{not json"})
    bad_session = await post(calls, body, {"Content-Type": content_type, **server.auth()})
    assert assert_error(bad_session, 400)["param"] == "session"
    assert_error(await request("GET", calls, headers=server.auth()), 405)

    preflight = await request(
        "OPTIONS",
        calls,
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status == 204, preflight
    assert preflight.headers.get("Access-Control-Allow-Origin") == "*"
    assert preflight.headers.get("Access-Control-Expose-Headers") == "Location"
    assert "POST" in preflight.headers.get("Access-Control-Allow-Methods", "")
    allowed = preflight.headers.get("Access-Control-Allow-Headers", "").lower()
    assert "authorization" in allowed and "content-type" in allowed, allowed

    hangup = calls + "/rtc_doesnotexist/hangup"
    assert_error(await post(hangup, b"", server.auth()), 404, "call_not_found")
    assert_error(await post(hangup, b"", {}), 401, "missing_api_key")
    # Nothing refused got as far as a session.
    assert server.query("SELECT COUNT(*) FROM conversations_conversation") == rows_before
