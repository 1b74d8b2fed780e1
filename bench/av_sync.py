"""WebRTC calls: lip sync (audio-to-mouth offset and its drift), setup time, CPU per call.

``.venv/bin/python bench/av_sync.py [--sync-s 120] [--calls 4] [--cpu-s 30]``

Sync (a server on the embedded engines, Piper's real phoneme timings): one call with the
avatar's video asks for an utterance (``tts_text``, so no model is involved) every few
seconds. The client is a real aiortc peer; it keeps every RTCP sender report, which maps
each stream's RTP time to the sender's clock exactly as a browser uses them to line audio
and video up. On that timeline, per utterance, the audio's loudness envelope is
cross-correlated with the mouth's opening in the video (the share of dark pixels inside the
mouth box), and the lag at the peak is compared with the same measure on the same utterance
rendered offline (``avatar.services.render_speech``: audio and frames aligned by
construction), because a mouth pose and loudness do not peak at the same instant even when
perfectly in sync (the offline lag is 40–125 ms depending on the sentence, and stable to
±10 ms whatever the video frames' phase). Offset = live lag - offline lag (positive: the mouth is late). Drift is
the slope of the offsets over the run (ms per 10 minutes); ``--sync-s 600`` runs 10 min.

Setup and CPU (a server on the test settings' fake engines, so what is measured is the call
itself): peer setup = POST sent → the client's connection is ``connected`` (and
``session.created`` arrived over ``oai-events``); first video frame after connect. Then
``--calls`` concurrent calls each speak continuously for ``--cpu-s`` seconds: the server
process's CPU time (user + system from /proc) minus its idle rate, per call, as a share of
one core (render + VP8 + Opus + events + session).

Results: ``results/av_sync.json`` and the ``av_sync`` section of ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_site.settings.test")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from aiortc.rtcdtlstransport import RTCDtlsTransport  # noqa: E402
from aiortc.rtp import RtcpPacket, RtcpSrPacket  # noqa: E402

from apps.avatar.look import full_look  # noqa: E402
from apps.avatar.render.base import CharacterSpec  # noqa: E402
from apps.avatar.render.drawn import DrawnRenderer, prepare_character  # noqa: E402
from apps.avatar.services import render_speech, speech_from_chunks  # noqa: E402
from bench.common import write_readme_section  # noqa: E402
from tests.helpers import (  # noqa: E402
    free_port,
    manage,
    project_env,
    scripted_server_env,
    start_daphne,
    wait_http,
)
from tests.rtc.client import ClientPeer, post  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SIZE = 512
FPS = 25
GRID_MS = 5.0
MAX_LAG_MS = 300.0
SMOOTH_MS = 40.0
DARK_LUMA = 90
SENTENCES = [
    "Hello there, how are you doing today?",
    "The quick brown fox jumps over the lazy dog.",
    "Please remember to bring an umbrella this afternoon.",
    "We will meet by the old bridge at seven.",
    "Many people enjoy a quiet walk in the park.",
    "Could you pass me the salt and the pepper?",
]

# --- RTCP sender reports, as a browser would use them -------------------------------------

_reports: dict[int, list[tuple[float, int]]] = {}
_original_rtcp = RTCDtlsTransport._handle_rtcp_data


async def _recording_rtcp(self: RTCDtlsTransport, data: bytes) -> None:
    # Read at the transport: aiortc routes a sender report to a receiver only when it knows
    # the SSRC from the SDP, and the server's video SSRC is not announced there.
    try:
        for packet in RtcpPacket.parse(data):
            if isinstance(packet, RtcpSrPacket):
                ntp = packet.sender_info.ntp_timestamp
                seconds = (ntp >> 32) + (ntp & 0xFFFFFFFF) / 2**32
                entry = (seconds, packet.sender_info.rtp_timestamp)
                _reports.setdefault(packet.ssrc, []).append(entry)
    except ValueError:
        pass
    await _original_rtcp(self, data)


RTCDtlsTransport._handle_rtcp_data = _recording_rtcp  # type: ignore[method-assign]


def sender_time(reports: list[tuple[float, int]], rtp: int, rate: int) -> float:
    """The sender's clock (NTP seconds) for an RTP timestamp, from its nearest report."""
    best = min(reports, key=lambda r: abs(((rtp - r[1] + 2**31) % 2**32) - 2**31))
    delta = ((rtp - best[1] + 2**31) % 2**32) - 2**31
    return best[0] + delta / rate


# --- signals -------------------------------------------------------------------------------


def mouth_box() -> tuple[int, int, int, int]:
    """Where the default character's mouth can be (every pose), padded for head motion."""
    drawn = prepare_character(
        CharacterSpec(slug="default", look=full_look({})), width=SIZE, height=SIZE
    )
    boxes = []
    for placed in drawn.mouths.values():
        h, w = placed.sprite.y.shape[:2]
        boxes.append((placed.x, placed.y, placed.x + w, placed.y + h))
    pad = 8
    return (
        max(0, min(b[0] for b in boxes) - pad),
        max(0, min(b[1] for b in boxes) - pad),
        min(SIZE, max(b[2] for b in boxes) + pad),
        min(SIZE, max(b[3] for b in boxes) + pad),
    )


def envelope(samples: np.ndarray, rate: int, t0_ms: float, grid: np.ndarray) -> np.ndarray:
    """RMS loudness of ``samples`` (starting at ``t0_ms``) sampled on ``grid`` (ms)."""
    audio = samples.astype(np.float32) / 32768.0
    step = int(rate * GRID_MS / 1000)
    bins = len(audio) // step
    rms = np.sqrt(np.mean(audio[: bins * step].reshape(bins, step) ** 2, axis=1))
    times = t0_ms + np.arange(bins) * GRID_MS
    return np.interp(grid, times, rms, left=0.0, right=0.0)


def openness(luma: list[np.ndarray], times_ms: list[float], box: Any, grid: np.ndarray) -> Any:
    """How open the mouth is per frame (share of dark pixels in the mouth box), on ``grid``.

    The drawn mouth's inside is dark, lips and skin are not: the share of pixels under
    ``DARK_LUMA`` grows with the opening and ignores the head's small motions.
    """
    x0, y0, x1, y1 = box
    values = np.asarray([float(np.mean(frame[y0:y1, x0:x1] < DARK_LUMA)) for frame in luma])
    # A frame is shown from its time until the next: hold it (zero-order).
    index = np.searchsorted(np.asarray(times_ms), grid, side="right") - 1
    return values[np.clip(index, 0, len(values) - 1)]


def best_lag_ms(audio: np.ndarray, mouth: np.ndarray) -> float:
    """The lag (ms) at which the mouth's opening best follows the audio's loudness.

    Loudness is smoothed over ``SMOOTH_MS`` (a syllable's vowel, not single periods).
    """
    kernel = np.ones(int(SMOOTH_MS / GRID_MS)) / int(SMOOTH_MS / GRID_MS)
    a = np.convolve(audio, kernel, mode="same")
    m = mouth
    a = (a - a.mean()) / (a.std() + 1e-9)
    m = (m - m.mean()) / (m.std() + 1e-9)
    lags = np.arange(-int(MAX_LAG_MS / GRID_MS), int(MAX_LAG_MS / GRID_MS) + 1)
    scores = []
    for lag in lags:
        if lag >= 0:
            score = float(np.dot(a[: len(a) - lag], m[lag:])) / max(1, len(a) - lag)
        else:
            score = float(np.dot(a[-lag:], m[: len(m) + lag])) / max(1, len(a) + lag)
        scores.append(score)
    return float(lags[int(np.argmax(scores))] * GRID_MS)


def offline_lags(texts: list[str], box: Any) -> dict[str, float]:
    """Each sentence's lag rendered offline with the real voice (perfect sync)."""
    from apps.voice.tts.base import VoiceSpec
    from apps.voice.tts.piper import PiperTts

    # The server's voice for "alloy" (seed_demo): Piper's joe-medium at its own pace.
    voice = VoiceSpec(engine_voice="en_US-joe-medium")
    tts = PiperTts(cache_dir=str(ROOT / "var" / "models"))
    stream = DrawnRenderer().stream(
        CharacterSpec(slug="default", look=full_look({})), width=SIZE, height=SIZE
    )
    lags = {}
    for text in texts:
        speech = speech_from_chunks(list(tts.synthesize(text, voice)))
        lead_ms = 400.0
        frames = [f.y.copy() for f in render_speech(stream, speech, fps=FPS, lead_ms=lead_ms)]
        times = [1000.0 * k / FPS for k in range(len(frames))]
        grid = np.arange(0.0, times[-1], GRID_MS)
        audio = envelope(speech.samples, speech.sample_rate, lead_ms, grid)
        lags[text] = best_lag_ms(audio, openness(frames, times, box, grid))
    return lags


# --- servers -------------------------------------------------------------------------------


class Server:
    """A Daphne process for the bench."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        self.proc: Any = None

    def start(self, key_command: tuple[str, ...]) -> str:
        manage(self.env, "migrate", "--noinput")
        demo_key = manage(self.env, "seed_demo").stdout.splitlines()[-1]
        out = manage(self.env, *key_command).stdout.splitlines()[-1] if key_command else demo_key
        self.proc = start_daphne(self.env, self.port, self.log)
        wait_http(f"http://127.0.0.1:{self.port}/healthz", timeout_s=120)
        return out

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


async def open_call(port: int, key: str) -> tuple[ClientPeer, dict[str, float]]:
    """A call with video; its setup times (ms)."""
    peer = ClientPeer(video=True)
    connected = asyncio.Event()

    def state() -> None:
        if peer.pc.connectionState == "connected":
            connected.set()

    peer.pc.on("connectionstatechange", state)
    sdp = await peer.offer()
    t0 = time.monotonic()
    answer = await post(
        f"http://127.0.0.1:{port}/v1/realtime/calls",
        sdp,
        {"Authorization": f"Bearer {key}", "Content-Type": "application/sdp"},
    )
    if answer.status != 201:
        raise RuntimeError(f"call refused: {answer.status} {answer.body}")
    t_answer = time.monotonic()
    await peer.accept(answer.body)
    await asyncio.wait_for(connected.wait(), 10)
    t_connected = time.monotonic()
    await peer.next_event("session.created")
    t_created = time.monotonic()
    while not peer.received.video:  # noqa: ASYNC110 - polling the reader's list is simplest
        await asyncio.sleep(0.005)
    t_video = peer.received.video[0][0]
    return peer, {
        "answer_ms": (t_answer - t0) * 1000,
        "connected_ms": (t_connected - t0) * 1000,
        "session_created_ms": (t_created - t0) * 1000,
        "first_video_after_connect_ms": (t_video - t_connected) * 1000,
    }


def say(peer: ClientPeer, text: str) -> None:
    """Ask for ``text`` spoken as is (xStar ``tts_text``: no model involved)."""
    peer.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "tts_text", "text": text}],
            },
        }
    )
    peer.send({"type": "response.create"})


# --- the runs ------------------------------------------------------------------------------


async def run_sync(seconds: float) -> dict[str, Any]:
    """Offsets per utterance on the real voice, over ``seconds``."""
    var = Path(tempfile.mkdtemp(prefix="bench-av-"))
    server = Server(project_env(var, VOICE_WARM_UP="true"))
    key = server.start(())
    box = mouth_box()
    try:
        await asyncio.sleep(5)  # engines warm up
        peer, setup = await open_call(server.port, key)
        started = time.monotonic()
        windows: list[tuple[str, float, float]] = []  # text, started, stopped (monotonic)
        k = 0
        while time.monotonic() - started < seconds:
            text = SENTENCES[k % len(SENTENCES)]
            k += 1
            after = len(peer.events)
            say(peer, text)
            await peer.next_event("output_audio_buffer.started", after=after, timeout_s=30)
            t_start = time.monotonic()
            await peer.next_event("output_audio_buffer.stopped", after=after, timeout_s=60)
            t_stop = time.monotonic()
            windows.append((text, t_start, t_stop))
            await asyncio.sleep(1.0)
        await peer.close()
    finally:
        server.stop()
    return analyse_sync(peer, windows, box, setup)


def analyse_sync(
    peer: ClientPeer, windows: list[tuple[str, float, float]], box: Any, setup: dict[str, float]
) -> dict[str, Any]:
    """Cross-correlate each utterance on the sender-report timeline."""
    # Each stream's reports advance at its RTP clock: 48 kHz audio, 90 kHz video.
    rates = {}
    for ssrc, reports in _reports.items():
        if len(reports) >= 2:
            (n0, r0), (n1, r1) = reports[0], reports[-1]
            rates[ssrc] = ((r1 - r0) % 2**32) / max(n1 - n0, 1e-9)
    audio_ssrc = min(rates, key=lambda s: abs(rates[s] - 48_000))
    video_ssrc = min(rates, key=lambda s: abs(rates[s] - 90_000))
    a_reports, v_reports = _reports[audio_ssrc], _reports[video_ssrc]
    # aiortc's receiver counts frame timestamps from each stream's first packet: add that
    # origin back to get the RTP time the sender reports speak of.
    origin = {
        receiver.track.kind: receiver._RTCRtpReceiver__timestamp_mapper._origin  # type: ignore[attr-defined]
        for receiver in peer.pc.getReceivers()
    }
    audio = [
        (sender_time(a_reports, (pts + origin["audio"]) % 2**32, 48_000), s, t)
        for t, pts, s in peer.received.audio_rtp
    ]
    video = [
        (sender_time(v_reports, (pts + origin["video"]) % 2**32, 90_000), y, t)
        for t, pts, y in peer.received.video
    ]
    texts = [w[0] for w in windows]
    reference = offline_lags(sorted(set(texts)), box)
    offsets, arrival_offsets, at = [], [], []
    for text, t_start, t_stop in windows:
        for use_arrival in (False, True):
            sel_a = [x for x in audio if t_start - 0.5 <= x[2] <= t_stop + 0.5]
            sel_v = [x for x in video if t_start - 0.5 <= x[2] <= t_stop + 0.7]
            if len(sel_a) < 10 or len(sel_v) < 10:
                continue
            key = 2 if use_arrival else 0
            origin = sel_a[0][key]
            grid = np.arange(0.0, (sel_a[-1][key] - origin) * 1000, GRID_MS)
            env = np.zeros_like(grid)
            for x in sel_a:
                env += envelope(x[1], 48_000, (x[key] - origin) * 1000, grid)
            mouth = openness(
                [x[1] for x in sel_v], [(x[key] - origin) * 1000 for x in sel_v], box, grid
            )
            offset = best_lag_ms(env, mouth) - reference[text]
            (arrival_offsets if use_arrival else offsets).append(offset)
            if not use_arrival:
                at.append(t_start - windows[0][1])
    slope = float(np.polyfit(at, offsets, 1)[0]) * 600 if len(at) >= 3 else None
    return {
        "utterances": len(offsets),
        "offset_ms_median": statistics.median(offsets) if offsets else None,
        "offset_ms_p10_p90": [float(np.percentile(offsets, 10)), float(np.percentile(offsets, 90))]
        if offsets
        else None,
        "offset_ms_all": offsets,
        "arrival_offset_ms_median": statistics.median(arrival_offsets) if arrival_offsets else None,
        "drift_ms_per_10_min": slope,
        "offline_lag_ms": reference,
        "run_s": (windows[-1][2] - windows[0][1]) if windows else 0,
        "setup": setup,
    }


async def run_cpu(calls: int, seconds: float) -> dict[str, Any]:
    """Setup times, then the server's CPU per continuously speaking call."""
    var = Path(tempfile.mkdtemp(prefix="bench-cpu-"))
    server = Server(scripted_server_env(var))
    key = server.start(("createlicense", "bench", "--max-sessions", "50"))
    setups: list[dict[str, float]] = []
    try:
        # Setup time: a few calls one after another (the first also loads the engines).
        for _ in range(6):
            peer, setup = await open_call(server.port, key)
            setups.append(setup)
            await peer.close()
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)
        idle_from, idle_cpu = time.monotonic(), server.cpu_s()
        await asyncio.sleep(5)
        idle_rate = (server.cpu_s() - idle_cpu) / (time.monotonic() - idle_from)
        peers = []
        for _ in range(calls):
            peer, _setup = await open_call(server.port, key)
            peers.append(peer)
        long_text = "This is a long answer that keeps the avatar talking for a while. " * 6

        async def talk(peer: ClientPeer, until: float) -> None:
            while time.monotonic() < until:
                after = len(peer.events)
                say(peer, long_text)
                await peer.next_event("response.done", after=after, timeout_s=60)

        await asyncio.sleep(1)
        until = time.monotonic() + seconds + 2
        talkers = [asyncio.ensure_future(talk(p, until)) for p in peers]
        await asyncio.sleep(2)  # every call is speaking
        t0, cpu0 = time.monotonic(), server.cpu_s()
        await asyncio.sleep(seconds)
        busy_rate = (server.cpu_s() - cpu0) / (time.monotonic() - t0)
        for task in talkers:
            task.cancel()
        await asyncio.gather(*talkers, return_exceptions=True)
        video_fps = []
        for peer in peers:
            frames = [t for t, _, _ in peer.received.video if t0 <= t <= t0 + seconds]
            video_fps.append(len(frames) / seconds)
            await peer.close()
    finally:
        server.stop()
    later = setups[1:]
    per_call = (busy_rate - idle_rate) / calls
    return {
        "setup_first": setups[0],
        "setup_median": {k: statistics.median(s[k] for s in later) for k in later[0]},
        "idle_core_share": idle_rate,
        "calls": calls,
        "core_share_per_call": per_call,
        "calls_per_core": 1.0 / per_call if per_call > 0 else None,
        "received_fps_median": statistics.median(video_fps),
    }


def main() -> None:
    """Run, print, and record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sync-s", type=float, default=120.0)
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--cpu-s", type=float, default=30.0)
    parser.add_argument("--skip-sync", action="store_true")
    parser.add_argument("--skip-cpu", action="store_true")
    args = parser.parse_args()
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_before": os.getloadavg(),
    }
    # Each part keeps its last figures when only the other one is run.
    path = RESULTS / "av_sync.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    results["meta"] = meta
    if not args.skip_cpu:
        results["cpu"] = asyncio.run(run_cpu(args.calls, args.cpu_s))
        print(json.dumps(results["cpu"], indent=2))
    if not args.skip_sync:
        results["sync"] = asyncio.run(run_sync(args.sync_s))
        printable = {k: v for k, v in results["sync"].items() if k != "offset_ms_all"}
        print(json.dumps(printable, indent=2))
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    write_readme_section("av_sync", meta, table(results))


def _fmt(value: Any, digits: int = 0) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table(results: dict[str, Any]) -> str:
    """The README rows."""
    rows = ["| measure | value | target |", "|---|---|---|"]
    sync = results.get("sync")
    if sync:
        p10, p90 = sync["offset_ms_p10_p90"] or (None, None)
        rows += [
            f"| audio-to-mouth offset, median of {sync['utterances']} utterances "
            f"(sender reports; p10–p90) | {_fmt(sync['offset_ms_median'])} ms "
            f"({_fmt(p10)} – {_fmt(p90)}) | ≤ 40 ms |",
            f"| the same on arrival times | {_fmt(sync['arrival_offset_ms_median'])} ms | |",
            f"| drift over the run ({sync['run_s']:.0f} s), per 10 min "
            f"| {_fmt(sync['drift_ms_per_10_min'], 1)} ms | ~0 |",
        ]
    cpu = results.get("cpu")
    if cpu:
        setup = cpu["setup_median"]
        rows += [
            f"| peer setup: POST → connected (median of later calls) "
            f"| {_fmt(setup['connected_ms'])} ms (answer {_fmt(setup['answer_ms'])} ms) "
            "| ≤ 300 ms |",
            f"| first call (loads engines and prepares the character) "
            f"| {_fmt(cpu['setup_first']['connected_ms'])} ms | |",
            f"| session.created after POST | {_fmt(setup['session_created_ms'])} ms | |",
            f"| first video frame after connect | "
            f"{_fmt(setup['first_video_after_connect_ms'])} ms | |",
            f"| CPU per speaking call ({cpu['calls']} at once; render + VP8 + Opus + session) "
            f"| {100 * cpu['core_share_per_call']:.1f} % of a core "
            f"({_fmt(cpu['calls_per_core'], 1)} calls per core) | ≤ 20 % |",
            f"| video frames received per second per call | "
            f"{_fmt(cpu['received_fps_median'], 1)} | 25 |",
        ]
    return "\n".join(rows)


if __name__ == "__main__":
    main()
