"""Property tests: fuzzed SDP offers and ``/iwebrtc`` signaling never hurt the server.

HTTP (``POST /v1/realtime/calls`` as ``application/sdp`` or multipart with a ``session``,
and the beta ``POST /v1/realtime``): every offer, however broken, is answered ``201`` with
an SDP answer or a 4xx OpenAI-shaped JSON error, never a 5xx. After each example the calls
it opened are ended, and then no call, live session or open conversation row is left,
every peer connection the server made is closed, no task is still running or failed
unobserved, and nothing was logged at ERROR.

WebSocket (``/iwebrtc?userId=<license key>``): every message, however broken, gets at most
one ``error`` reply (exactly one where the message is unusable at a glance, and
``session_not_found`` for a ``create`` naming no live session), the socket stays open, and
the consumer never raises. With a live realtime session on the same channel layer, a
``create`` gets its offer, fuzzed ``answer``/``iceCandidate`` messages get at most one
``error`` each, and the session's own socket keeps answering.

HTTP and plain signaling examples each run on an event loop of their own (the call
registry is per loop, so a failing example cannot leave calls to the next); the live
session's examples share one loop with the session, as pages of one worker do.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from collections.abc import Callable, Coroutine, Iterator
from functools import cache
from typing import Any
from urllib.parse import quote

import pytest
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from asgiref.sync import ThreadSensitiveContext
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import AsyncClient
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import apps.rtc.avatar_link
import apps.rtc.call
import apps.rtc.signaling
from apps.conversations.models import Conversation
from apps.realtime.live import live_sessions
from apps.rtc.avatar_link import candidates_of
from apps.rtc.registry import calls
from realtime_site.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

CALLS = "/v1/realtime/calls"
BETA = "/v1/realtime"
CALL_LOCATION = re.compile(r"^/v1/realtime/calls/(rtc_[A-Za-z0-9]+)$")
REPLY_TIMEOUT_S = 0.05
# The worker's own per-loop tasks, started by the first session and stopping on their own
# a while after the last one: not any call's to end.
WORKER_TASKS = {"LiveSessions._run_watch", "LiveSessions._measure_lag"}
# Hypothesis' settings for the examples here: each runs aiortc and the ORM for real.
FUZZ = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
}

# --- reference offers and answers (aiortc, built once) ---------------------------------------


async def _offer(
    *,
    audio: str | None = "sendrecv",
    video: str | None = None,
    data: bool = True,
    codecs: list[str] | None = None,
    audio_count: int = 1,
) -> str:
    pc = RTCPeerConnection()
    try:
        for _ in range(audio_count if audio else 0):
            transceiver = pc.addTransceiver("audio", direction=audio)
            if codecs:
                available = RTCRtpSender.getCapabilities("audio").codecs
                transceiver.setCodecPreferences(
                    [c for c in available if c.mimeType.split("/")[1] in codecs]
                )
        if video:
            pc.addTransceiver("video", direction=video)
        if data:
            pc.createDataChannel("oai-events")
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp
    finally:
        await pc.close()


async def _make_offers() -> dict[str, str]:
    return {
        "audio+data": await _offer(),
        "audio+video+data": await _offer(video="recvonly"),
        "audio+video sendrecv": await _offer(video="sendrecv", data=False),
        "audio only": await _offer(data=False),
        "audio recvonly": await _offer(audio="recvonly"),
        "audio sendonly": await _offer(audio="sendonly"),
        "audio inactive": await _offer(audio="inactive"),
        "two audio": await _offer(audio_count=2),
        "PCMU only": await _offer(codecs=["PCMU"]),
        "G722 only": await _offer(codecs=["G722"]),
        "opus only": await _offer(codecs=["opus"]),
        "video only": await _offer(audio=None, video="recvonly"),
        "data only": await _offer(audio=None),
    }


@cache
def offers() -> dict[str, str]:
    """Reference offers of a real aiortc client peer, one per shape."""
    return asyncio.run(_make_offers())


# --- offers --------------------------------------------------------------------------------

NASTY = [
    "",
    " ",
    "\t",
    "-1",
    "0",
    "65536",
    "4294967296",
    "18446744073709551616",
    "9" * 60,
    "1e999",
    "NaN",
    "\u2028",
    "\ufeff",
    "\x85",
    "é",
    "日本語",
    "\U0001f600",
    "\x00",
    "\ud800",
    ":",
    "::",
    "/",
    "a=b",
    "%s%n",
    "IN IP4",
    "IN IP6 ::1",
    "0.0.0.0",
    "256.256.256.256",
    "foo.local",
    "x" * 3000,
    "opus/48000/2",
    "UDP/TLS/RTP/SAVPF",
    "actpass",
    "sha-256 00:11",
]
nasty_text = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=30),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
    st.integers().map(str),
)
CANDIDATE = "a=candidate:{i} 1 udp {prio} 192.0.2.{host} {port} typ host"


def _add_candidates(lines: list[str], count: int) -> list[str]:
    at = next((i for i, line in enumerate(lines) if line.startswith("a=candidate:")), len(lines))
    extra = [
        CANDIDATE.format(i=i, prio=2130706431 - i, host=1 + i % 250, port=10_000 + i)
        for i in range(count)
    ]
    return lines[:at] + extra + lines[at:]


@st.composite
def mutated_offers(draw: st.DrawFn) -> str:
    """A real offer with lines deleted, repeated, reordered, rewritten or added."""
    return draw(mutated_sdp(offers()[draw(st.sampled_from(sorted(offers())))]))


@st.composite
def mutated_sdp(draw: st.DrawFn, sdp: str) -> str:
    """``sdp`` with lines deleted, repeated, reordered, rewritten or added."""
    lines = sdp.split("\r\n")
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        how = draw(
            st.sampled_from(
                [
                    "delete",
                    "duplicate",
                    "swap",
                    "shuffle",
                    "value",
                    "token",
                    "number",
                    "insert_text",
                    "insert_line",
                    "candidates",
                ]
            )
        )
        if not lines:
            lines = [""]
        i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        line = lines[i]
        if how == "delete":
            del lines[i]
        elif how == "duplicate":
            lines.insert(draw(st.integers(min_value=0, max_value=len(lines))), line)
        elif how == "swap":
            j = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            lines[i], lines[j] = lines[j], line
        elif how == "shuffle":
            random.Random(draw(st.integers(min_value=0, max_value=2**32))).shuffle(lines)
        elif how == "value":
            head, sep, _ = line.partition(":") if line.startswith("a=") else line.partition("=")
            lines[i] = head + (sep or "=") + draw(nasty_text)
        elif how == "token":
            tokens = line.split(" ")
            tokens[draw(st.integers(min_value=0, max_value=len(tokens) - 1))] = draw(nasty_text)
            lines[i] = " ".join(tokens)
        elif how == "number":
            numbers = list(re.finditer(r"\d+", line))
            if numbers:
                found = numbers[draw(st.integers(min_value=0, max_value=len(numbers) - 1))]
                huge = draw(
                    st.sampled_from(
                        ["0", "-1", "65536", "4294967296", "18446744073709551616", "9" * 400]
                    )
                )
                lines[i] = line[: found.start()] + huge + line[found.end() :]
        elif how == "insert_text":
            at = draw(st.integers(min_value=0, max_value=len(line)))
            lines[i] = line[:at] + draw(nasty_text) + line[at:]
        elif how == "insert_line":
            new = draw(
                st.one_of(
                    nasty_text,
                    st.tuples(st.sampled_from("vosctmabkiuepzr"), nasty_text).map("=".join),
                    nasty_text.map(lambda t: "a=" + t),
                    nasty_text.map(lambda t: "m=audio " + t),
                    nasty_text.map(lambda t: "m=video 9 " + t),
                )
            )
            lines.insert(i, new)
        else:
            lines = _add_candidates(lines, draw(st.sampled_from([1, 20, 60, 64, 65, 100, 300])))
    eol = draw(st.sampled_from(["\r\n", "\n", "\r", "\n\r", "\r\r\n"]))
    text = eol.join(lines)
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        text = text[: draw(st.integers(min_value=0, max_value=len(text)))]
    return text


def _only_codec(sdp: str, name: str) -> str:
    """Keep one audio codec (by rtpmap name), whatever the client offered."""
    keep = re.findall(rf"^a=rtpmap:(\d+) {name}/", sdp, flags=re.MULTILINE)
    out = []
    for line in sdp.split("\r\n"):
        if line.startswith("m=audio "):
            head = line.split(" ")[:3]
            line = " ".join(head + (keep or ["126"]))
        match = re.match(r"^a=(rtpmap|fmtp|rtcp-fb):(\d+)", line)
        if match and match.group(2) not in keep:
            continue
        out.append(line)
    return "\r\n".join(out)


ODD_EDITS: dict[str, Callable[[str], str]] = {
    "as is": lambda s: s,
    "codec renamed": lambda s: s.replace("opus/48000/2", "foo/48000/2"),
    "codec upper": lambda s: s.replace("opus/48000/2", "OPUS/48000/2"),
    "opus mono 16k": lambda s: s.replace("opus/48000/2", "opus/16000/1"),
    "only PCMA": lambda s: _only_codec(s, "PCMA"),
    "only G722": lambda s: _only_codec(s, "G722"),
    "no codec known": lambda s: _only_codec(s, "iLBC"),
    "inactive": lambda s: s.replace("a=sendrecv", "a=inactive"),
    "recvonly": lambda s: s.replace("a=sendrecv", "a=recvonly"),
    "no rtcp-mux": lambda s: s.replace("a=rtcp-mux\r\n", ""),
    "setup active": lambda s: s.replace("a=setup:actpass", "a=setup:active"),
    "setup passive": lambda s: s.replace("a=setup:actpass", "a=setup:passive"),
    "no fingerprint": lambda s: re.sub(r"a=fingerprint:[^\r]*\r\n", "", s),
    "bundle names a missing mid": lambda s: s.replace("a=group:BUNDLE 0", "a=group:BUNDLE 9"),
    "no bundle": lambda s: re.sub(r"a=group:BUNDLE[^\r]*\r\n", "", s),
    "no candidates": lambda s: re.sub(r"a=candidate:[^\r]*\r\n", "", s),
    "LF only": lambda s: s.replace("\r\n", "\n"),
    "leading blanks": lambda s: "\r\n \t" + s,
    "trailing junk": lambda s: s + "garbage after the offer",
}


@st.composite
def odd_offers(draw: st.DrawFn) -> str:
    """A valid offer of some shape, with odd codecs, directions or framing."""
    sdp = offers()[draw(st.sampled_from(sorted(offers())))]
    for name in draw(st.lists(st.sampled_from(sorted(ODD_EDITS)), min_size=1, max_size=2)):
        sdp = ODD_EDITS[name](sdp)
    return sdp


def _encoded(text: str) -> bytes:
    # Lone surrogates become bytes that are not UTF-8 (the "not UTF-8" refusal).
    return text.encode("utf-8", "surrogatepass")


sdp_lines = st.lists(
    st.one_of(
        st.tuples(st.sampled_from("vosctmab"), nasty_text).map("=".join),
        nasty_text.map(lambda t: "m=audio " + t),
        nasty_text,
    ),
    max_size=12,
)
garbage_offers = st.one_of(
    st.binary(max_size=2_000),
    st.text(max_size=500).map(_encoded),
    sdp_lines.map(lambda lines: _encoded("v=0\r\n" + "\r\n".join(lines))),
    st.sampled_from([b"", b"v=0", b"v=0\r\nm=audio ", b"\xef\xbb\xbfv=0\r\n", b"v=0\x00"]),
    st.integers(min_value=64 * 1024 - 10, max_value=300 * 1024).map(
        lambda n: b"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n" + b"a=x:" + b"y" * n
    ),
)
offer_bodies = st.one_of(
    garbage_offers,
    mutated_offers().map(_encoded),
    odd_offers().map(_encoded),
)

# --- session configs (multipart) -------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
SESSION_FIELDS = {
    "type": st.sampled_from(["realtime", "transcription", "", "x"]) | json_values,
    "model": st.sampled_from(["gpt-realtime", "scripted-echo", "nope"]) | json_values,
    "instructions": st.text(max_size=50) | json_values,
    "output_modalities": st.sampled_from([["audio"], ["text"], ["audio", "text"], []])
    | json_values,
    "audio": st.fixed_dictionaries(
        {},
        optional={
            "input": st.fixed_dictionaries(
                {},
                optional={
                    "format": st.sampled_from(
                        [{"type": "audio/pcm", "rate": 24000}, {"type": "audio/pcmu"}]
                    )
                    | json_values,
                    "turn_detection": st.sampled_from([None, {"type": "server_vad"}]) | json_values,
                    "transcription": json_values,
                },
            ),
            "output": st.fixed_dictionaries(
                {},
                optional={
                    "voice": st.sampled_from(["alloy", "coral", "龙婉", "nobody"]) | json_values,
                    "speed": st.floats(allow_nan=False) | json_values,
                },
            ),
        },
    )
    | json_values,
    "tools": json_values,
    "tool_choice": json_values,
    "max_output_tokens": st.sampled_from([1, 4096, "inf", 0, -1]) | json_values,
    "temperature": json_values,
    "tracing": json_values,
    "truncation": json_values,
    "include": json_values,
    "prompt": json_values,
    "bogus": json_values,
}
session_texts = st.one_of(
    st.fixed_dictionaries({}, optional=SESSION_FIELDS).map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=100),
    st.sampled_from(['{"type": NaN}', '{"a": 1e999}', '"\\ud800"', "[" * 200 + "]" * 200]),
)


@st.composite
def multipart_bodies(draw: st.DrawFn) -> tuple[bytes, str]:
    """A multipart body (well-formed or not) with an offer and maybe a session, and its type."""
    boundary = draw(st.sampled_from(["fuzzBoundary123", "x", "a" * 70]))
    fields: list[tuple[str, bytes, bool]] = []
    if draw(st.integers(min_value=0, max_value=9)):
        fields.append(("sdp", draw(offer_bodies), draw(st.booleans())))
    if draw(st.booleans()):
        fields.append(("session", _encoded(draw(session_texts)), draw(st.booleans())))
    if draw(st.integers(min_value=0, max_value=4)) == 0:
        fields.append((draw(st.text(max_size=8)), _encoded(draw(st.text(max_size=20))), False))
    fields = draw(st.permutations(fields))
    parts = []
    for name, value, as_file in fields:
        disposition = f'form-data; name="{name}"' + ('; filename="f"' if as_file else "")
        parts.append(
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode(
                "utf-8", "surrogatepass"
            )
            + value
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    content_type = f"multipart/form-data; boundary={boundary}"
    how = draw(st.integers(min_value=0, max_value=11))
    if how == 0:
        content_type = "multipart/form-data"  # no boundary
    elif how == 1:
        body = body[: draw(st.integers(min_value=0, max_value=len(body)))]
    elif how == 2:
        # Header values are ASCII on the wire (Django's test client refuses anything else).
        printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
        content_type = "multipart/form-data; boundary=" + draw(
            st.text(alphabet=printable, max_size=80)
        )
    return body, content_type


# --- what the server must not leave behind --------------------------------------------------


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class _TrackedPeer(RTCPeerConnection):
    """The server's peers (calls' and avatar links'), remembered until checked."""

    made: list[RTCPeerConnection] = []  # noqa: RUF012 - shared on purpose

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _TrackedPeer.made.append(self)


class Watch:
    """Everything an example's server side started, to check that it all ended cleanly."""

    def __init__(self) -> None:
        # Strong references: a failed task is checked here, not whenever it is collected.
        self.tasks: list[asyncio.Task[Any]] = []
        self.baseline: set[asyncio.Task[Any]] = set()
        self.unhandled: list[dict[str, Any]] = []
        self.errors = _Errors()

    def install(self) -> None:
        """Watch the running loop: its tasks, its unhandled exceptions, and ERROR logs."""
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: self.unhandled.append(context))
        tasks = self.tasks

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
            task = asyncio.Task(coro, loop=loop, **kwargs)
            tasks.append(task)
            return task

        loop.set_task_factory(factory)
        logging.getLogger().addHandler(self.errors)

    def uninstall(self) -> None:
        logging.getLogger().removeHandler(self.errors)

    def reset(self) -> None:
        """Start an example: what runs now (the test's own tasks) is not its doing."""
        self.baseline = {t for t in self.tasks if not t.done()}
        self.tasks[:] = list(self.baseline)
        self.unhandled.clear()
        self.errors.records.clear()
        _TrackedPeer.made.clear()

    async def settled(self, *, alive: frozenset[str] = frozenset()) -> list[str]:
        """What is still running, failed unobserved or was logged as an error, once the
        example's work is done."""
        deadline = time.monotonic() + 3.0
        while True:
            running = [
                t
                for t in self.tasks
                if not t.done()
                and t not in self.baseline
                and t.get_coro().__qualname__ not in WORKER_TASKS | alive  # type: ignore[union-attr]
            ]
            opened = [pc for pc in _TrackedPeer.made if pc.connectionState != "closed"]
            if (not running and not opened) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        problems = [f"task still running: {t.get_name()} {t.get_coro()!r}" for t in running]
        for task in self.tasks:
            # Done with an exception nobody retrieved (asyncio would log "Task exception
            # was never retrieved" whenever it is collected); retrieved now, so only once.
            if task.done() and not task.cancelled() and task._log_traceback:  # type: ignore[attr-defined]
                problems.append(f"task failed unobserved: {task!r} {task.exception()!r}")
        problems += [
            f"peer not closed: {pc.connectionState}"
            for pc in _TrackedPeer.made
            if pc.connectionState != "closed"
        ]
        problems += [
            f"unhandled: {c.get('message')} {c.get('exception')!r} in {c.get('future')!r}"
            for c in self.unhandled
        ]
        problems += [
            f"logged {r.levelname} {r.name}: {r.getMessage()} {r.exc_info and r.exc_info[1]!r}"
            for r in self.errors.records
        ]
        return problems


@pytest.fixture
def watch(monkeypatch: pytest.MonkeyPatch) -> Iterator[Watch]:
    monkeypatch.setattr(apps.rtc.call, "RTCPeerConnection", _TrackedPeer)
    monkeypatch.setattr(apps.rtc.avatar_link, "RTCPeerConnection", _TrackedPeer)
    # A refused call's session-created event waits for a data channel that never opens.
    monkeypatch.setattr(apps.rtc.call, "DRAIN_TIMEOUT_S", 0.05)
    # Load shedding is not under test: a busy fuzz loop must not be answered 503.
    monkeypatch.setattr(django_settings, "REALTIME_MAX_LOOP_LAG_MS", 10**9)
    monkeypatch.setattr(django_settings, "REALTIME_MAX_LOOP_BUSY_PERCENT", 10**9)
    offers()  # built before the first example (outside its time)
    yield Watch()
    _TrackedPeer.made.clear()


def _open_conversations() -> int:
    return Conversation.objects.filter(ended_at__isnull=True).count()


# --- 1. HTTP ---------------------------------------------------------------------------------


# Offers once answered 500 or accepted although they can never connect (kept as examples).
_FINGERPRINT = "a=fingerprint:sha-256 " + ":".join(["AB"] * 32)
_AUDIO = [
    "m=audio 9 UDP/TLS/RTP/SAVPF 0",
    "a=sendrecv",
    "a=rtcp-mux",
    "a=rtpmap:0 PCMU/8000",
    "a=ice-ufrag:abcd",
    "a=ice-pwd:abcdefghijklmnopqrstuv",
    "a=setup:actpass",
    "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host",
    "a=end-of-candidates",
]
# The audio section has no a=mid, so BUNDLE's first tag names no section: aiortc's data
# channel gets no transport (createAnswer and then close() raise AttributeError).
OFFER_BUNDLE_TAG_MISSING = "\r\n".join(
    [
        "v=0",
        "a=group:BUNDLE 0 1",
        *_AUDIO,
        _FINGERPRINT,
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "a=mid:1",
        "a=sctp-port:5000",
        *_AUDIO[4:],
        _FINGERPRINT,
        "",
    ]
)
# No a=fingerprint: answered, but the peer's connect task dies on an assert in DTLS.
OFFER_WITHOUT_FINGERPRINT = "\r\n".join(["v=0", *_AUDIO, ""])


def _assert_error_body(response: Any) -> None:
    assert response["Content-Type"].startswith("application/json"), (
        response.status_code,
        response["Content-Type"],
        response.content[:300],
    )
    body = json.loads(response.content)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error.get("message"), str) and error["message"], body
    assert isinstance(error.get("type"), str) and error["type"], body


async def _post_once(watch: Watch, key: str, path: str, body: bytes, content_type: str) -> None:
    watch.reset()
    open_before = await database_sync_to_async(_open_conversations)()
    client = AsyncClient(raise_request_exception=False)
    # As Django's ASGIHandler (Daphne) does and its AsyncClient does not: the request's sync
    # middleware gets a thread of its own, not the one the call's ORM work runs in.
    async with ThreadSensitiveContext():
        response = await client.generic(
            "POST",
            path,
            body,
            content_type=content_type,
            headers={"Authorization": f"Bearer {key}"},
        )
    status = response.status_code
    if status == 201:
        assert response["Content-Type"] == "application/sdp"
        assert response.content.startswith(b"v=0"), response.content[:200]
        match = CALL_LOCATION.match(response["Location"])
        assert match, response["Location"]
        call = calls().get(match.group(1))
        assert call is not None, "201 for a call that is not in the registry"
        await asyncio.sleep(0.05)  # let the peer start connecting to what the offer said
        await call.end("client_closed", None)
        event("201")
    else:
        assert 400 <= status < 500, (status, response.content[:500])
        _assert_error_body(response)
        event(f"{status} {json.loads(response.content)['error'].get('code')}")
    assert len(calls()) == 0, calls().all()
    assert live_sessions().count() == 0
    problems = await watch.settled()
    open_after = await database_sync_to_async(_open_conversations)()
    assert open_after == open_before, "a conversation was left open (never ended)"
    assert not problems, problems


def _run(watch: Watch, work: Coroutine[Any, Any, Any]) -> Any:
    """Run an example on a loop of its own: a failure cannot leave calls to the next one."""

    async def main() -> Any:
        watch.install()
        try:
            return await work
        finally:
            watch.uninstall()

    return asyncio.run(main())


def _check_post(watch: Watch, key: str, path: str, body: bytes, content_type: str) -> None:
    _run(watch, _post_once(watch, key, path, body, content_type))


@settings(max_examples=90, **FUZZ)
@given(body=offer_bodies)
@example(body=OFFER_BUNDLE_TAG_MISSING.encode())
@example(body=OFFER_WITHOUT_FINGERPRINT.encode())
def test_fuzzed_sdp_offers_get_201_or_a_4xx_and_leave_nothing(
    watch: Watch, issued: Any, voices: Any, body: bytes
) -> None:
    _check_post(watch, issued.key, CALLS, body, "application/sdp")


@settings(max_examples=60, **FUZZ)
@given(case=multipart_bodies())
@example(
    case=(
        b"--x\r\nContent-Disposition: form-data; name=sdp\r\n\r\nv=0\r\n--x--\r\n",
        "multipart/form-data",
    )
)
def test_fuzzed_multipart_offers_and_sessions_get_201_or_a_4xx(
    watch: Watch, issued: Any, voices: Any, case: tuple[bytes, str]
) -> None:
    body, content_type = case
    _check_post(watch, issued.key, CALLS, body, content_type)


@settings(max_examples=15, **FUZZ)
@given(
    body=offer_bodies,
    model=st.sampled_from(["", "gpt-4o-realtime-preview", "scripted-echo"]) | st.text(max_size=20),
)
def test_fuzzed_beta_offers_get_201_or_a_4xx(
    watch: Watch, issued: Any, voices: Any, body: bytes, model: str
) -> None:
    path = f"{BETA}?model={quote(model)}" if model else BETA
    _check_post(watch, issued.key, path, body, "application/sdp")


# --- 2. WebSocket signaling (/iwebrtc) -------------------------------------------------------

SESSION_ID = re.compile(r"sess_[0-9A-Za-z]{1,64}")
MAX_MESSAGE_CHARS = 64 * 1024
# Sent after each fuzzed message: its error (always the same) marks where that message's
# replies end, since the consumer answers in order.
SENTINEL = b"\x00sentinel"
SENTINEL_REPLY = ("invalid_message", "Send JSON text messages under 64 KiB.")

session_ids = st.one_of(
    st.just("sess_A"),
    st.sampled_from(["sess_A", "sess_B"]),
    st.from_regex(r"^sess_[0-9A-Za-z]{1,64}$"),  # may end in a newline, as "$" allows
    st.text(max_size=20),
    json_values,
)


def _mostly(session_id: str) -> st.SearchStrategy[Any]:
    """This session's id three times in four, else any target."""
    return st.integers(min_value=0, max_value=3).flatmap(
        lambda i: st.just(session_id) if i else session_ids
    )


candidate_lines = st.one_of(
    st.just("candidate:1 1 udp 2130706431 192.0.2.7 40000 typ host"),
    st.tuples(st.sampled_from(["candidate:", "a=candidate:", "", "cand"]), nasty_text).map("".join),
    st.lists(nasty_text, min_size=1, max_size=10).map(lambda ts: "candidate:" + " ".join(ts)),
    st.sampled_from(
        [
            "candidate:1 1 udp 1 foo.local 9 typ host",
            "candidate:1 1 udp 1 example.invalid 9 typ host",
            "candidate:1 1 tcp 1 192.0.2.1 9 typ host tcptype active",
            "candidate:1 1 udp 1 192.0.2.1 9 typ relay raddr 0.0.0.0 rport 0",
            "candidate:1 1 udp 1 ::1 9 typ host",
            "candidate:1 1 udp 99999999999999999999 192.0.2.1 99999 typ host",
            "candidate:1 1 udp 1 192.0.2.1 9 typ srflx",
            "candidate:1 1 udp 1 192.0.2.1 -9 typ host",
            "candidate:1\n1 udp 1 192.0.2.1 9 typ host",
            "candidate:" + "x" * 1100,
        ]
    ),
)
candidates = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"candidate": candidate_lines | json_values},
        optional={
            "sdpMid": st.sampled_from([None, "0", "1", "9", ""]) | json_values,
            "sdpMLineIndex": st.sampled_from([None, 0, 1, -1, 2**70, True, "0"]),
            "usernameFragment": st.text(max_size=10) | json_values,
        },
    ),
)


def _signals(
    targets: st.SearchStrategy[Any], sdps: st.SearchStrategy[Any], *, creates: bool
) -> Any:
    """Signaling frames: messages with fuzzed fields, other JSON, text, binary, huge ones."""

    def message(kinds: st.SearchStrategy[Any], **required: Any) -> st.SearchStrategy[str]:
        optional = {"sdp": sdps, "candidate": candidates, "extra": json_values}
        return st.fixed_dictionaries(
            {"type": kinds, "targetSessionId": targets, **required},
            optional={k: v for k, v in optional.items() if k not in required},
        ).map(json.dumps)

    known = ["create", "answer", "iceCandidate"] if creates else ["answer", "iceCandidate"]
    odd = (st.sampled_from(["offer", "Create", "", "error"]) | json_values).filter(
        lambda kind: creates or kind != "create"
    )
    answers = message(st.just("answer"), sdp=sdps)
    trickles = message(st.just("iceCandidate"), candidate=candidates)
    return st.one_of(
        answers,
        answers,
        answers,
        trickles,
        trickles,
        trickles,
        message(st.sampled_from(known)),
        message(odd),
        json_values.map(json.dumps),
        st.text(max_size=100).filter(lambda t: creates or '"create"' not in t),
        st.binary(max_size=100),
        st.sampled_from(
            [
                '{"type": "create", "targetSessionId": NaN}',
                '{"type": "answer", "targetSessionId": "sess_A", "sdp": Infinity}',
                '{"type": "create", "targetSessionId": "sess_\\ud800"}',
                '{"type": "create", "targetSessionId": "sess_A", "type": "answer"}',
                "[" * 100 + "]" * 100,
                "",
            ]
        ),
        st.integers(min_value=MAX_MESSAGE_CHARS - 40, max_value=MAX_MESSAGE_CHARS + 40).map(
            lambda n: json.dumps({"type": "answer", "targetSessionId": "sess_A", "sdp": "v" * n})
        ),
        st.just("x" * (1024 * 1024)),
    )


no_session_sdps = st.one_of(
    json_values,
    st.text(max_size=50),
    st.text(max_size=50).map(lambda t: "v=0\r\n" + t),
    st.fixed_dictionaries({"type": st.sampled_from(["answer", "offer"]), "sdp": st.text()}),
)


def _routed_to(frame: str | bytes, target: str | None) -> tuple[str, str | None]:
    """What the signaling consumer should do with a frame, given its current target.

    ``error``: answer with an error at once; ``create``: route a create (the page hears
    ``offer`` or, with no such session, ``session_not_found``); ``answer``/``candidate``:
    route it to the session's host; and the target afterwards.
    """
    if isinstance(frame, bytes) or len(frame) > MAX_MESSAGE_CHARS:
        return "error", target
    try:
        message = json.loads(frame)
    except (ValueError, RecursionError):
        return "error", target
    if not isinstance(message, dict) or _unsafe(message):
        return "error", target
    kind, to = message.get("type"), message.get("targetSessionId")
    if not isinstance(to, str) or not SESSION_ID.fullmatch(to):
        return "error", target
    if kind == "create":
        return "create", to
    if to != target:
        return "error", target
    if kind == "answer":
        sdp = message.get("sdp")
        text = sdp.get("sdp") if isinstance(sdp, dict) else sdp
        return ("answer" if isinstance(text, str) else "error"), target
    if kind == "iceCandidate":
        return "candidate", target
    return "error", target


def _unsafe(value: Any, depth: int = 0) -> bool:
    """JSON the edges refuse: non-finite numbers, lone surrogates, nesting over 64."""
    if depth > 64:
        return True
    if isinstance(value, float):
        return value != value or value in (float("inf"), float("-inf"))
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(_unsafe(k, depth + 1) or _unsafe(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_unsafe(v, depth + 1) for v in value)
    return False


@pytest.fixture
def quick_replies(monkeypatch: pytest.MonkeyPatch) -> None:
    """No session answers here: the page hears ``session_not_found`` sooner."""
    monkeypatch.setattr(apps.rtc.signaling, "REPLY_TIMEOUT_S", REPLY_TIMEOUT_S)


class Page:
    """An ``/iwebrtc`` signaling socket and what it was sent."""

    def __init__(
        self,
        key: str,
        *,
        sentinel: str | bytes = SENTINEL,
        sentinel_reply: tuple[str, str] = SENTINEL_REPLY,
    ) -> None:
        app = URLRouter(websocket_urlpatterns)
        self.comm = WebsocketCommunicator(app, f"/iwebrtc?userId={key}")
        self.sentinel = sentinel
        self.sentinel_reply = sentinel_reply

    async def connect(self) -> None:
        connected, _ = await self.comm.connect(timeout=10)
        assert connected

    async def send(self, frame: str | bytes) -> None:
        # As ASGI has it (send_to refuses empty frames, which a client may send).
        key = "bytes" if isinstance(frame, bytes) else "text"
        await self.comm.send_input({"type": "websocket.receive", key: frame})

    async def reply(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """The next message to the page; the socket must not have closed."""
        output = await self.comm.receive_output(timeout=timeout_s)
        assert output["type"] == "websocket.send", f"the socket was closed: {output}"
        assert output.get("text") is not None, output
        message = json.loads(output["text"])
        assert isinstance(message, dict), message
        return message

    async def replies_until_sentinel(self, sentinels: int = 1) -> list[dict[str, Any]]:
        """Send the sentinel and collect the replies before its own (``sentinels`` of the
        sentinel's reply are expected in all: more when the fuzzed frame looks like it)."""
        await self.send(self.sentinel)
        got: list[dict[str, Any]] = []
        seen = 0
        while seen < sentinels:
            message = await self.reply()
            if (message.get("code"), message.get("message")) == self.sentinel_reply:
                seen += 1
                if seen < sentinels:
                    got.append(message)
            else:
                got.append(message)
        return got


def _like_sentinel(frame: str | bytes, does: str) -> bool:
    """Whether the consumer answers this frame as it answers the sentinel."""
    return does == "error" and (isinstance(frame, bytes) or len(frame) > MAX_MESSAGE_CHARS)


def _assert_errors(replies: list[dict[str, Any]], frame: str | bytes) -> None:
    for message in replies:
        assert message.get("type") == "error", (frame[:200], message)
        assert isinstance(message.get("code"), str) and message["code"], message
        assert isinstance(message.get("message"), str) and message["message"], message
        event(f"error {message['code']}")


async def _signal_once(watch: Watch, key: str, frames: list[str | bytes]) -> None:
    watch.reset()
    page = Page(key)
    await page.connect()
    target: str | None = None
    for frame in frames:
        await page.send(frame)
        does, target = _routed_to(frame, target)
        event(does)
        looks_like_sentinel = _like_sentinel(frame, does)
        replies = await page.replies_until_sentinel(2 if looks_like_sentinel else 1)
        if does == "create":
            # Nobody hosts the session: the page hears so after the reply timeout.
            late = [m for m in replies if m.get("code") == "session_not_found"]
            if not late:
                late.append(await page.reply(timeout_s=5.0))
                replies.append(late[0])
            assert [m.get("code") for m in replies] == ["session_not_found"], (frame, replies)
        elif does == "error":
            assert len(replies) == 1, (frame[:200], replies)
        else:
            # Routed to a session nobody hosts: nothing comes back.
            assert replies == [], (frame[:200], replies)
        _assert_errors(replies, frame)
    assert await page.comm.receive_nothing(timeout=0.1), "a late reply"
    await page.comm.disconnect()
    problems = await watch.settled()
    assert not problems, problems


@settings(max_examples=80, **FUZZ)
@given(
    create=st.booleans(),
    frames=st.lists(
        _signals(_mostly("sess_A"), no_session_sdps, creates=True), min_size=1, max_size=4
    ),
)
# "$" lets a trailing newline through: not a session id, yet routed as one.
@example(create=True, frames=['{"type": "create", "targetSessionId": "sess_B\\n"}'])
def test_fuzzed_signaling_gets_errors_and_keeps_the_socket(
    watch: Watch, issued: Any, quick_replies: None, create: bool, frames: list[str | bytes]
) -> None:
    if create:  # so that answers and candidates for sess_A are routed, not refused
        frames = [json.dumps({"type": "create", "targetSessionId": "sess_A"}), *frames]
    _run(watch, _signal_once(watch, issued.key, frames))


# --- 3. Signaling for a live realtime session ---------------------------------------------


SESSION_WAITS = frozenset({"Queue.get", "InMemoryChannelLayer.receive"})


class Live:
    """A realtime WebSocket session, whose avatar pages signal for on the same loop."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.session = WebsocketCommunicator(
            URLRouter(websocket_urlpatterns),
            "/v1/realtime",
            headers=[(b"authorization", f"Bearer {key}".encode())],
        )
        self.session_id = ""
        self.answer = ""
        self.pages: list[Page] = []

    def page(self) -> Page:
        """A new page; its sentinel goes the way its answers and candidates go (routed to
        the session's host and answered by it, in order)."""
        page = Page(
            self.key,
            sentinel=json.dumps(
                {"type": "iceCandidate", "targetSessionId": self.session_id, "candidate": 0}
            ),
            sentinel_reply=("invalid_candidate", "'candidate' must be an object."),
        )
        self.pages.append(page)
        return page

    async def start(self) -> None:
        connected, _ = await self.session.connect(timeout=10)
        assert connected
        created = json.loads(await self.session.receive_from(timeout=10))
        assert created["type"] == "session.created", created
        self.session_id = created["session"]["id"]
        page = self.page()
        await page.connect()
        offer = await self.create(page)
        # A real answer to mutate: a browser's, as aiortc makes it.
        pc = RTCPeerConnection()
        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            self.answer = pc.localDescription.sdp
        finally:
            await pc.close()
        await page.comm.disconnect()

    async def create(self, page: Page) -> str:
        """Ask for the avatar's offer (a link of the page's own); its SDP."""
        await page.send(json.dumps({"type": "create", "targetSessionId": self.session_id}))
        offer = await page.reply(timeout_s=20)
        assert offer["type"] == "offer", offer
        assert offer["targetSessionId"] == self.session_id
        sdp = offer["sdp"]["sdp"]
        for _ in candidates_of(sdp):
            candidate = await page.reply()
            assert candidate["type"] == "iceCandidate", candidate
        return sdp

    async def probe(self) -> None:
        """The session still answers its own socket."""
        update = {"type": "session.update", "session": {"type": "realtime", "instructions": "x"}}
        await self.session.send_to(text_data=json.dumps(update))
        while True:
            output = await self.session.receive_output(timeout=5)
            assert output["type"] == "websocket.send", f"the session's socket closed: {output}"
            if json.loads(output["text"])["type"] == "session.updated":
                return


@pytest.fixture
def live(watch: Watch, issued: Any, voices: Any) -> Iterator[tuple[asyncio.Runner, Live]]:
    """One live session for the whole test (each example is a page of its own)."""
    with asyncio.Runner() as runner:
        session = Live(issued.key)

        async def start() -> None:
            watch.install()
            watch.reset()
            await session.start()

        runner.run(start())
        try:
            yield runner, session
        finally:

            async def stop() -> list[str]:
                watch.reset()
                watch.baseline = {asyncio.current_task()}  # type: ignore[arg-type]
                for page in session.pages:  # those of failed examples are still open
                    await page.comm.disconnect()
                await session.session.disconnect()
                return await watch.settled()

            problems = runner.run(stop())
            watch.uninstall()
            assert not problems, problems


def _live_signals(session_id: str, answer: str) -> Any:
    answers = st.one_of(
        mutated_sdp(answer),
        st.just(answer),
        st.text(max_size=100),
        st.text(max_size=100).map(lambda t: "v=0\r\n" + t),
        json_values,
    )
    sdps = st.one_of(answers, st.fixed_dictionaries({"type": st.just("answer"), "sdp": answers}))
    return _signals(_mostly(session_id), sdps, creates=False)


async def _live_once(watch: Watch, live: Live, frames: list[str | bytes]) -> None:
    watch.reset()
    page = live.page()
    await page.connect()
    await live.create(page)
    target: str | None = live.session_id
    for frame in frames:
        await page.send(frame)
        does, target = _routed_to(frame, target)
        assert does != "create"
        event(does)
        candidate = json.loads(frame).get("candidate") if does == "candidate" else None
        # An unusable candidate gets the very error the sentinel gets.
        looks_like_sentinel = does == "candidate" and not isinstance(candidate, dict)
        replies = await page.replies_until_sentinel(2 if looks_like_sentinel else 1)
        if looks_like_sentinel or does == "error":
            assert len(replies) == 1, (frame[:200], replies)
        else:
            # Routed to the session's avatar links: an error when they cannot use it.
            assert len(replies) <= 1, (frame[:200], replies)
            event(f"{does} {'refused' if replies else 'taken'}")
        _assert_errors(replies, frame)
    await live.probe()
    assert await page.comm.receive_nothing(timeout=0.1), "a late reply"
    await page.comm.disconnect()  # the page's link (and its peer) is closed with it
    # The session's consumer goes on: it waits for its next frame and channel message in
    # tasks started for them.
    problems = await watch.settled(alive=SESSION_WAITS)
    assert not problems, problems


@settings(max_examples=30, **FUZZ)
@given(data=st.data())
def test_fuzzed_answers_and_candidates_for_a_live_session_get_errors(
    live: tuple[asyncio.Runner, Live], watch: Watch, data: st.DataObject
) -> None:
    runner, session = live
    signals = _live_signals(session.session_id, session.answer)
    frames = data.draw(st.lists(signals, min_size=1, max_size=4), label="frames")
    runner.run(_live_once(watch, session, frames))
