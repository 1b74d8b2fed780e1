"""Browser-side measuring for the talk page's tests: what was heard, what moved, what arrived.

Everything here runs in the page through Playwright and reads the page from outside, the
way a person would notice: the level of the audio the page plays (an analyser on every
WebAudio node connected to the speakers, and on every media element's stream), the avatar's
mouth (pixels of the video read through a canvas), the realtime events the page received
(a tap on its WebSocket or ``oai-events`` data channel), and the transcript the page shows
(its read-only ``window.talk`` hook). ``install`` must run before the page loads.
"""

from __future__ import annotations

import re
import statistics
import time
import wave
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Installed before the page's own scripts: taps on what the page plays and receives.
INIT_SCRIPT = r"""
(() => {
  // Every WebAudio node connected to the speakers also feeds an analyser of ours.
  const connect = AudioNode.prototype.connect;
  window.__analysers = [];
  AudioNode.prototype.connect = function (target, ...rest) {
    const result = connect.call(this, target, ...rest);
    if (typeof AudioDestinationNode !== "undefined" && target instanceof AudioDestinationNode) {
      const analyser = this.context.createAnalyser();
      analyser.fftSize = 1024;
      connect.call(this, analyser);
      window.__analysers.push(analyser);
    }
    return result;
  };
  // The realtime events the page receives, and a way to send one (tests only).
  window.__events = [];
  const record = (data) => {
    if (typeof data !== "string") return;
    let e;
    try { e = JSON.parse(data); } catch { return; }
    window.__events.push({
      type: e.type, t: performance.now(),
      item_id: e.item_id || (e.item && e.item.id) || null,
      response_id: e.response_id || (e.response && e.response.id) || null,
      audio_end_ms: e.audio_end_ms === undefined ? null : e.audio_end_ms,
      status: (e.response && e.response.status) || null,
      code: (e.error && e.error.code) || null,
      transcript: typeof e.transcript === "string" ? e.transcript
        : e.item && e.item.content && e.item.content[0] && typeof e.item.content[0].transcript === "string"
          ? e.item.content[0].transcript : null,
    });
  };
  // When the fake microphone started: its sound file plays from there.
  window.__micStart = null;
  const getUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const stream = await getUserMedia(constraints);
    if (window.__micStart === null) window.__micStart = performance.now();
    return stream;
  };
  const NativeSocket = window.WebSocket;
  window.WebSocket = function (url, protocols) {
    const socket = protocols === undefined ? new NativeSocket(url) : new NativeSocket(url, protocols);
    if (String(url).includes("/v1/realtime")) {
      window.__rt = socket;
      socket.addEventListener("message", (m) => record(m.data));
    }
    return socket;
  };
  window.WebSocket.prototype = NativeSocket.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  const createDataChannel = RTCPeerConnection.prototype.createDataChannel;
  RTCPeerConnection.prototype.createDataChannel = function (label, options) {
    const channel = createDataChannel.call(this, label, options);
    if (label === "oai-events") {
      window.__rt = channel;
      channel.addEventListener("message", (m) => record(m.data));
    }
    return channel;
  };
  window.__rtSend = (event) => window.__rt.send(JSON.stringify(event));
})();
"""

# Every 100 ms: the mean luma change of the mouth's region since the previous sample, the
# level of what the page plays, and what the page says it is doing.
TRACE_SCRIPT = r"""
(box) => {
  if (window.__trace) return;
  const trace = (window.__trace = []);
  const canvas = document.createElement("canvas");
  const g = canvas.getContext("2d", { willReadFrequently: true });
  let previous = null;
  let probe = null;
  const streams = new Map();
  const rms = (analyser) => {
    const data = new Float32Array(analyser.fftSize);
    analyser.getFloatTimeDomainData(data);
    let sum = 0;
    for (let i = 0; i < data.length; i++) sum += data[i] * data[i];
    return Math.sqrt(sum / data.length);
  };
  const level = () => {
    let best = 0;
    for (const analyser of window.__analysers) best = Math.max(best, rms(analyser));
    for (const el of document.querySelectorAll("audio, video")) {
      const stream = el.srcObject;
      if (!stream || !stream.getAudioTracks || !stream.getAudioTracks().length) continue;
      if (!streams.has(stream)) {
        probe = probe || new AudioContext();
        const analyser = probe.createAnalyser();
        analyser.fftSize = 1024;
        probe.createMediaStreamSource(stream).connect(analyser);
        streams.set(stream, analyser);
      }
      best = Math.max(best, rms(streams.get(stream)));
    }
    return best;
  };
  setInterval(() => {
    const video = document.getElementById("talk-video");
    let mouth = null;
    if (video && video.videoWidth > 0 && video.readyState >= 2) {
      if (canvas.width !== video.videoWidth || canvas.height !== video.videoHeight) {
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        previous = null;
      }
      g.drawImage(video, 0, 0);
      const w = canvas.width, h = canvas.height;
      const px = g.getImageData(
        Math.round(w * box[0]), Math.round(h * box[1]), Math.round(w * box[2]), Math.round(h * box[3]),
      ).data;
      const luma = new Float32Array(px.length / 4);
      for (let i = 0; i < luma.length; i++) {
        luma[i] = 0.299 * px[4 * i] + 0.587 * px[4 * i + 1] + 0.114 * px[4 * i + 2];
      }
      if (previous && previous.length === luma.length) {
        let sum = 0;
        for (let i = 0; i < luma.length; i++) sum += Math.abs(luma[i] - previous[i]);
        mouth = sum / luma.length;
      }
      previous = luma;
    } else {
      previous = null;
    }
    const talk = window.talk;
    trace.push({
      t: performance.now(),
      mouth,
      level: level(),
      activity: talk ? talk.activity : null,
      state: talk ? talk.state : null,
      paused: video ? video.paused : null,
      time: video ? video.currentTime : null,
    });
  }, 100);
}
"""

# The drawn avatars' mouth, as fractions of the frame: x, y, width, height.
MOUTH_BOX = (0.35, 0.55, 0.30, 0.20)


def install(page: Any) -> None:
    """Tap the page's audio and realtime events; call before ``page.goto``."""
    page.add_init_script(INIT_SCRIPT)


def start_trace(page: Any, box: Sequence[float] = MOUTH_BOX) -> None:
    """Start sampling mouth motion, played level and activity every 100 ms."""
    page.evaluate(TRACE_SCRIPT, list(box))


def trace(page: Any) -> list[dict[str, Any]]:
    """The samples so far."""
    return list(page.evaluate("window.__trace || []"))


def events(page: Any) -> list[dict[str, Any]]:
    """The realtime events the page received so far (type, time and a few fields)."""
    return list(page.evaluate("window.__events"))


def now_ms(page: Any) -> float:
    """The page's clock (``performance.now()``), the one events and samples carry."""
    return float(page.evaluate("performance.now()"))


def send_event(page: Any, event: dict[str, Any]) -> None:
    """Send a client event on the page's realtime connection (as if the page had)."""
    page.evaluate("(event) => window.__rtSend(event)", event)


def wait_event(
    page: Any,
    kind: str,
    *,
    after: float = 0.0,
    item_id: str | None = None,
    timeout_s: float = 60.0,
) -> dict[str, Any]:
    """The first event of type ``kind`` (of ``item_id``) received after page time ``after``."""
    find = """([kind, after, item]) => window.__events.find(
        (e) => e.type === kind && e.t > after && (item === null || e.item_id === item))"""
    try:
        page.wait_for_function(find, arg=[kind, after, item_id], timeout=timeout_s * 1000)
    except Exception as exc:
        seen = [(e["type"], e["item_id"]) for e in events(page) if e["t"] > after]
        raise AssertionError(f"no {kind} for {item_id} after {after}: {seen[-60:]}") from exc
    return dict(page.evaluate(find, [kind, after, item_id]))


def has_event(page: Any, kind: str, item_id: str | None = None) -> bool:
    """Whether an event of type ``kind`` (of ``item_id``) was received."""
    return any(
        e["type"] == kind and (item_id is None or e["item_id"] == item_id) for e in events(page)
    )


def entries(page: Any) -> list[dict[str, Any]]:
    """The transcript the page shows (``window.talk.transcript``)."""
    return list(page.evaluate("window.talk.transcript"))


def wait_entry(
    page: Any,
    role: str,
    *,
    index: int = 0,
    statuses: Iterable[str] = ("done",),
    timeout_s: float = 90.0,
) -> dict[str, Any]:
    """Wait until the ``index``-th transcript entry of ``role`` has text and a final status."""
    wanted = list(statuses)
    try:
        page.wait_for_function(
            """([role, index, wanted]) => {
                 const mine = window.talk.transcript.filter((e) => e.role === role);
                 const e = mine[index];
                 return Boolean(e && e.text && wanted.includes(e.status));
               }""",
            arg=[role, index, wanted],
            timeout=timeout_s * 1000,
        )
    except Exception as exc:
        raise AssertionError(
            f"no finished {role} entry #{index}: transcript {entries(page)}, "
            f"state {page.evaluate('[window.talk.state, window.talk.lastError]')}, "
            f"events {[e['type'] for e in events(page)][-40:]}"
        ) from exc
    return [e for e in entries(page) if e["role"] == role][index]


_WORD = re.compile(r"[a-z0-9']+")
_CJK = re.compile(r"[\u3400-\u9fff]")


def similarity(heard: str, said: str) -> float:
    """How much of ``said`` shows in ``heard`` (0..1): words for English, characters for CJK.

    Whisper's base model mishears some words ("France" as "friends"); a loose share is what
    the tests can ask of a transcript.
    """
    if _CJK.search(said):
        expected = _CJK.findall(said)
        got = set(_CJK.findall(heard))
    else:
        expected = _WORD.findall(said.lower())
        got = set(_WORD.findall(heard.lower()))
    if not expected:
        return 0.0
    return sum(1 for token in expected if token in got) / len(expected)


def between(
    samples: Sequence[dict[str, Any]], start: float, end: float, *, activity: str | None = None
) -> list[dict[str, Any]]:
    """Samples taken in ``[start, end)`` (page ms), optionally only in one activity."""
    return [
        s
        for s in samples
        if start <= s["t"] < end and (activity is None or s["activity"] == activity)
    ]


def mouth_figures(samples: Sequence[dict[str, Any]]) -> float:
    """Mean mouth motion of samples (those with a video frame)."""
    values = [s["mouth"] for s in samples if s["mouth"] is not None]
    return statistics.mean(values) if values else 0.0


def level_figures(samples: Sequence[dict[str, Any]]) -> tuple[float, float]:
    """(peak, mean) played RMS level of samples."""
    values = [s["level"] for s in samples]
    return (max(values), statistics.mean(values)) if values else (0.0, 0.0)


def wait_quiet(page: Any, seconds: float, *, timeout_s: float = 60.0) -> None:
    """Wait until the page has been idle (nothing playing, nothing pending) for ``seconds``."""
    deadline = time.monotonic() + timeout_s
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        idle = page.evaluate("window.talk.activity === 'idle'")
        now = time.monotonic()
        if idle:
            quiet_since = quiet_since or now
            if now - quiet_since >= seconds:
                return
        else:
            quiet_since = None
        page.wait_for_timeout(100)
    raise AssertionError(f"the page did not stay idle for {seconds} s: {entries(page)}")


def voiced_spans(wav: Path, *, gap_s: float = 0.6) -> list[tuple[float, float]]:
    """Where a fake-microphone WAV speaks: (start, end) seconds of each utterance.

    Pauses shorter than ``gap_s`` (between words) do not split an utterance.
    """
    with wave.open(str(wav)) as source:
        rate = source.getframerate()
        samples = np.frombuffer(source.readframes(source.getnframes()), dtype="<i2")
    step = rate // 50  # 20 ms blocks
    blocks = samples[: len(samples) // step * step].reshape(-1, step).astype(np.int32)
    loud = np.abs(blocks).max(axis=1) > 300
    spans: list[tuple[float, float]] = []
    for index in np.flatnonzero(loud):
        start, end = index * step / rate, (index + 1) * step / rate
        if spans and start - spans[-1][1] < gap_s:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def mic_started(page: Any) -> float:
    """Page time (ms) the fake microphone started playing its file."""
    page.wait_for_function("window.__micStart !== null", timeout=30_000)
    return float(page.evaluate("window.__micStart"))


# RMS of a played reply is around 0.05-0.2; silence is 0.
AUDIBLE = 0.01


def open_talk(browser: Any, server: dict[str, Any], path: str, viewport: dict[str, int]) -> Any:
    """A talk page in a fresh context of ``browser``, tapped (``install``) and loaded."""
    page = browser.new_context(viewport=viewport).new_page()
    install(page)
    page.goto(server["base"] + path)
    page.wait_for_function("window.talk !== undefined", timeout=30_000)
    return page


def connect(page: Any, button: str = "#talk-connect") -> None:
    """Press Connect (or ``button``) and wait until the page is connected."""
    page.click(button)
    page.wait_for_function("window.talk.connected || window.talk.state === 'error'", timeout=60_000)
    assert page.evaluate("window.talk.connected"), page.evaluate("window.talk.lastError")


def av_figures(samples: list[dict[str, Any]], rest_from: float) -> dict[str, float]:
    """Level and mouth motion while the avatar spoke (audibly) and in the rest after."""
    speaking = [s for s in samples if s["activity"] == "speaking" and s["level"] > AUDIBLE]
    rest = [s for s in samples if s["t"] >= rest_from and s["activity"] == "idle"]
    assert len(speaking) >= 5, f"only {len(speaking)} samples of audible speech"
    assert len(rest) >= 10, f"only {len(rest)} samples of rest"
    peak, mean = level_figures(speaking)
    rest_peak, _ = level_figures(rest)
    return {
        "speaking_level_peak": round(peak, 4),
        "speaking_level_mean": round(mean, 4),
        "rest_level_peak": round(rest_peak, 5),
        "speaking_mouth": round(mouth_figures(speaking), 3),
        "rest_mouth": round(mouth_figures(rest), 3),
        "speaking_samples": len(speaking),
        "rest_samples": len(rest),
    }


def check_av(samples: list[dict[str, Any]], figures: dict[str, float]) -> None:
    """The reply was audible, silence was silent, the video played and the mouth moved."""
    # The reply was heard, and nothing plays in the rest.
    assert figures["speaking_level_mean"] > 2 * AUDIBLE, figures
    assert figures["rest_level_peak"] < AUDIBLE / 2, figures
    # The video plays (its clock runs) and the mouth moves while speaking, far more than
    # at rest (a blink or a breath may move a few pixels now and then).
    times = [s["time"] for s in samples if s["time"] is not None and s["paused"] is False]
    assert times and times[-1] - times[0] > 5, "the avatar's video did not play"
    assert figures["speaking_mouth"] > 3 * figures["rest_mouth"] + 0.5, figures
