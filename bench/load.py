"""Load-test the realtime WebSocket server on the fake engines: latency, memory, abuse.

    .venv/bin/python bench/load.py                      # 20 sessions x 30 s, 50 idle sessions
    .venv/bin/python bench/load.py --sessions 40 --duration-s 60 --idle-sessions 100
    .venv/bin/python bench/load.py --scenario flood     # 10 sessions + one client flooding
    .venv/bin/python bench/load.py --scenario capacity  # 2 x the per-worker session cap
    .venv/bin/python bench/load.py --scenario large     # 8 MiB appends + 2-minute retrieves

Starts its own Daphne on the test settings (FakeVad, FakeAsr, FakeTts, ScriptedLlm), then
runs one scenario:

* ``load`` (the default):
  1. idle: opens N sessions that only wait for ``session.created``; server RSS per session;
  2. load: M sessions stream PCM16 24 kHz in real time (20 ms appends on absolute deadlines,
     1.5 s of a loud tone then 2 s of silence, repeated) with server_vad, and measure probe
     round trips (an invalid event answered by an ``error``), speech end -> speech_stopped
     and speech_stopped -> first output audio delta.
  The server's admission limits are lifted for it: it measures what sessions cost.
* ``flood``: K streaming sessions as in ``load`` while one more connection sends appends
  flat out for 20 s (``appends``: 1 s appends of 64 KB; ``tiny``: 2-byte appends, i.e. many
  tiny events). Server RSS before, at the peak and 10/20/30 s after the flooder left; how
  the flooder ended; the other sessions' probe round trips during the flood.
* ``capacity``: 2 x ``REALTIME_MAX_SESSIONS_PER_WORKER`` streaming sessions try to connect,
  one every 250 ms; admitted vs refused (``server_busy``, close 1013) and the admitted
  sessions' probe round trips.
* ``large``: one session sends seven ~8 MiB appends back to back, another holds a 2-minute
  user audio item and retrieves it over and over, a third streams and measures probe
  round trips.

The flooder, the large sender and the retriever each run in a process of their own (this
script with ``--worker``), so their CPU work does not delay the measuring clients' event
loop. Client and server share the machine. Results go to bench/results/load[-scenario].json
and a section of bench/README.md; the server log is scanned for tracebacks, which are
reported, not hidden.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import pct, write_readme_section  # noqa: E402
from tests.helpers import (  # noqa: E402
    free_port,
    manage,
    scripted_server_env,
    start_daphne,
    wait_http,
)

MODEL = "scripted-echo"
RATE = 24_000
CHUNK_MS = 20
CHUNK_S = CHUNK_MS / 1000
CHUNK_SAMPLES = RATE * CHUNK_MS // 1000  # 480
SPEECH_MS = 1_500
SILENCE_MS = 2_000
SPEECH_CHUNKS = SPEECH_MS // CHUNK_MS
CYCLE_CHUNKS = (SPEECH_MS + SILENCE_MS) // CHUNK_MS
CYCLE_S = CYCLE_CHUNKS * CHUNK_S
SILENCE_DURATION_MS = 300
PROBE_EVERY_S = 0.25
TONE_HZ = 250  # 5 whole periods per 20 ms chunk, so consecutive chunks join without clicks
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20
MONITOR_EVERY_S = 0.25
LOG_LINE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d [\d:]+,\d+) (?P<level>[A-Z]+) (?P<logger>\S+) (?P<message>.*)$"
)
LOG_FIELDS = re.compile(r"( \w+=\S+)+$")
KEEP_LOGS_IN: Path | None = None  # --keep-logs: copy each server log there
MAX_LOG_EVENTS = 2_000


def _log_time(stamp: str) -> float:
    """Epoch seconds of a log timestamp (``2026-01-01 12:00:00,123``, local time)."""
    whole, _, ms = stamp.partition(",")
    return time.mktime(time.strptime(whole, "%Y-%m-%d %H:%M:%S")) + int(ms) / 1000


SESSION_UPDATE = json.dumps(
    {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "audio": {
                "input": {
                    "turn_detection": {
                        "type": "server_vad",
                        "silence_duration_ms": SILENCE_DURATION_MS,
                    }
                }
            },
        },
    }
)
# The retriever commits by hand: no turn detection, so its 2 minutes stay one item.
MANUAL_TURNS_UPDATE = json.dumps(
    {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
    }
)

# --- scenario defaults (the figures are for these) ---------------------------------
FLOOD_SESSIONS = 10
FLOOD_S = 20.0
FLOOD_PRE_S = 6.0
FLOOD_RECOVERY_S = 30.0
FLOOD_APPEND_MS = 1_000  # 48,000 bytes of PCM16 = 64,000 characters of base64 per event
CAPACITY_CAP = 20  # the server's REALTIME_MAX_SESSIONS_PER_WORKER default
CAPACITY_RAMP_S = 0.25
CAPACITY_DURATION_S = 20.0
# REALTIME_MAX_EVENT_BYTES is 8 MiB: 6,291,000 bytes of PCM16 (131 s at 24 kHz) make
# 8,388,000 characters of base64, 8,388,047 with the event around them, just under it.
LARGE_PCM_BYTES = 6_291_000
LARGE_APPENDS = 7
LARGE_ITEM_S = 120  # REALTIME_MAX_INPUT_BUFFER_MS is 2 minutes
LARGE_DURATION_S = 40.0
SCENARIO_DURATION_S = {"load": 30.0, "capacity": CAPACITY_DURATION_S, "large": LARGE_DURATION_S}


def _append_event(samples: np.ndarray) -> str:
    audio = base64.b64encode(samples.astype("<i2").tobytes()).decode("ascii")
    return json.dumps({"type": "input_audio_buffer.append", "audio": audio})


_t = np.arange(CHUNK_SAMPLES) / RATE
TONE_APPEND = _append_event(0.3 * 32767 * np.sin(2 * np.pi * TONE_HZ * _t))  # about -13 dBFS
SILENCE_APPEND = _append_event(np.zeros(CHUNK_SAMPLES))


def _silence_append(pcm_bytes: int) -> str:
    """An ``input_audio_buffer.append`` of ``pcm_bytes`` bytes of silent PCM16."""
    return json.dumps(
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(bytes(pcm_bytes)).decode()}
    )


# --- server process ------------------------------------------------------------------------


class Server:
    """A Daphne on the test settings, its pid (for /proc) and its log file."""

    def __init__(
        self, var_dir: Path, max_sessions: int, extra_env: dict[str, str] | None = None
    ) -> None:
        self.var_dir = var_dir
        self.env = scripted_server_env(var_dir, **(extra_env or {}))
        manage(self.env, "migrate", "--noinput", "-v0")
        manage(self.env, "seed_demo")  # the voice catalogue (the default voice is "alloy")
        out = manage(self.env, "createlicense", "load-bench", "--max-sessions", str(max_sessions))
        self.key = out.stdout.strip().splitlines()[-1]
        self.port = free_port()
        self.log_path = var_dir / "daphne.log"
        self._log = self.log_path.open("w")
        self.proc = start_daphne(self.env, self.port, self._log)
        try:
            wait_http(f"http://127.0.0.1:{self.port}/healthz")
        except Exception:
            self.stop()
            raise RuntimeError(f"daphne did not start:\n{self.log_path.read_text()}") from None
        self.url = f"ws://127.0.0.1:{self.port}/v1/realtime?model={MODEL}"

    def rss_mb(self) -> float:
        return int(Path(f"/proc/{self.proc.pid}/statm").read_text().split()[1]) * PAGE_MB

    def status(self, field: str) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024 if "kB" in line else int(line.split()[1])
        return 0.0

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def log_report(self) -> dict:
        text = self.log_path.read_text(errors="replace")
        blocks = re.split(r"\n(?=\S)", text)
        tracebacks = [b for b in blocks if "Traceback (most recent call last)" in b]
        errors = [ln for ln in text.splitlines() if re.search(r"\b(ERROR|CRITICAL)\b", ln)]
        warnings = [ln for ln in text.splitlines() if re.search(r"\bWARNING\b", ln)]
        # What the server said, without timestamps and key=value fields: e.g. how often it
        # refused a connect or dropped input over a budget.
        said: Counter[str] = Counter()
        events: list[dict] = []  # the application's lines, to place them in time
        for line in text.splitlines():
            if m := LOG_LINE.match(line):
                message = LOG_FIELDS.sub("", m["message"])[:120]
                said[f"{m['level']} {m['logger']}: {message}"] += 1
                if m["logger"].startswith("apps.") and len(events) < MAX_LOG_EVENTS:
                    sid = re.search(r"session_id=(\S+)", m["message"])
                    events.append(
                        {
                            "at": _log_time(m["ts"]),
                            "level": m["level"],
                            "message": message,
                            "session_id": sid[1] if sid else None,
                        }
                    )
        if KEEP_LOGS_IN is not None:
            KEEP_LOGS_IN.mkdir(parents=True, exist_ok=True)
            (KEEP_LOGS_IN / f"daphne-{time.strftime('%H%M%S')}-{self.port}.log").write_text(text)
        return {
            "lines": text.count("\n"),
            "tracebacks": len(tracebacks),
            "error_lines": len(errors),
            "first_errors": errors[:5],
            "warning_lines": len(warnings),
            "first_warnings": warnings[:5],
            "first_tracebacks": [b[-4000:] for b in tracebacks[:2]],
            "messages": dict(said.most_common(15)),
            "events": events,
        }


# --- measuring -----------------------------------------------------------------------------


def machine_busy_s() -> float:
    """CPU seconds all processes have used since boot (every core; /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK  # less idle and iowait


def summary_ms(values_s: list[float]) -> dict:
    ms = [v * 1000 for v in values_s]
    return {
        "count": len(ms),
        "p50_ms": _r(pct(ms, 50)),
        "p95_ms": _r(pct(ms, 95)),
        "p99_ms": _r(pct(ms, 99)),
        "max_ms": _r(max(ms) if ms else None),
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


@dataclass(frozen=True, slots=True)
class CpuMark:
    """CPU seconds used so far by the server, this client (and its reaped workers), everyone."""

    wall_s: float
    server_s: float
    client_s: float
    machine_s: float

    @classmethod
    def now(cls, server: Server) -> CpuMark:
        t = os.times()
        return cls(
            wall_s=time.perf_counter(),
            server_s=server.cpu_s(),
            client_s=t.user + t.system + t.children_user + t.children_system,
            machine_s=machine_busy_s(),
        )


def cpu_report(start: CpuMark, end: CpuMark) -> dict:
    """CPU use between two marks, in percent of one core (the machine has ``os.cpu_count()``)."""
    wall = max(1e-9, end.wall_s - start.wall_s)
    server = end.server_s - start.server_s
    client = end.client_s - start.client_s
    return {
        "wall_s": round(wall, 1),
        "server_cpu_percent": round(100 * server / wall, 1),
        "client_cpu_percent": round(100 * client / wall, 1),
        # Anything else on the machine (another job would distort every figure).
        "other_processes_cpu_percent": round(
            100 * ((end.machine_s - start.machine_s) - server - client) / wall, 1
        ),
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
    }


class Monitor:
    """Samples the server's RSS and CPU time every ``MONITOR_EVERY_S`` in the background."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.samples: list[tuple[float, float, float]] = []  # (perf_counter, RSS MB, CPU s)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin sampling."""
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop sampling (the samples stay)."""
        self._stop.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):  # the server may have just exited
                self.samples.append(
                    (time.perf_counter(), self.server.rss_mb(), self.server.cpu_s())
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), MONITOR_EVERY_S)

    def rss_between(self, t0: float, t1: float) -> list[float]:
        """RSS samples (MB) taken in ``[t0, t1)``."""
        return [rss for t, rss, _ in self.samples if t0 <= t < t1]

    def rss_at(self, t: float) -> float | None:
        """The first RSS sample taken at or after ``t`` (None if sampling stopped before)."""
        return next((rss for at, rss, _ in self.samples if at >= t), None)

    def cpu_percent_by_second(self, origin: float) -> dict[int, float]:
        """Server CPU % in each whole second from ``origin`` (negative: before it)."""
        out: dict[int, float] = {}
        firsts: dict[int, tuple[float, float]] = {}
        for t, _, cpu in self.samples:
            firsts.setdefault(math.floor(t - origin), (t, cpu))
        for sec, (t0, c0) in firsts.items():
            if sec + 1 in firsts:
                t1, c1 = firsts[sec + 1]
                out[sec] = round(100 * (c1 - c0) / max(1e-9, t1 - t0), 1)
        return out


# --- clients -------------------------------------------------------------------------------


class Refusal(Exception):
    """The server answered the connect with an ``error`` event and closed (it refused)."""

    def __init__(self, error: dict, close_code: int | None, close_reason: str, after_s: float):
        super().__init__(f"{error.get('code')}: {error.get('message')} (close {close_code})")
        self.info = {
            "code": error.get("code"),
            "type": error.get("type"),
            "message": error.get("message"),
            "close_code": close_code,
            "close_reason": close_reason,
            "after_s": round(after_s, 3),
        }


async def _open(url: str, key: str) -> tuple[ClientConnection, float, str]:
    """Connect and wait for ``session.created``.

    Returns:
        The socket, the seconds it took and the session's id.

    Raises:
        Refusal: The server sent an ``error`` instead and closed the connection.
    """
    start = time.perf_counter()
    ws = await connect(
        url,
        additional_headers={"Authorization": f"Bearer {key}"},
        compression=None,
        max_size=None,
        open_timeout=60,
        close_timeout=5,
    )
    first = json.loads(await asyncio.wait_for(ws.recv(), 60))
    if first.get("type") == "session.created":
        return ws, time.perf_counter() - start, (first.get("session") or {}).get("id", "")
    if first.get("type") == "error":
        # A refused connect: the error comes first, the close right after it.
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            async with asyncio.timeout(10):
                async for _ in ws:
                    pass
        await ws.close()
        raise Refusal(
            first.get("error") or {},
            ws.close_code,
            ws.close_reason or "",
            time.perf_counter() - start,
        )
    await ws.close()
    raise RuntimeError(f"expected session.created, got {first}")


class LoadSession:
    """One streaming client: sender on a 20 ms schedule, receiver timing server events."""

    def __init__(self, index: int, lead_in_chunks: int, probe_phase_s: float) -> None:
        self.index = index
        self.lead_in_chunks = lead_in_chunks
        self.probe_phase_s = probe_phase_s
        self.ws: websockets.ClientConnection | None = None
        self.connect_s: float | None = None
        self.session_id = ""
        self.refusal: dict | None = None
        self.lateness: list[float] = []
        self.sent_at: list[float] = []
        self.probes_sent: dict[str, float] = {}
        self.probe_rtt: list[float] = []
        self.probe_log: list[tuple[float, float]] = []  # (sent at, round trip)
        self.turns = 0
        self.silence_starts: deque[float] = deque()
        self.stop_latency: list[float] = []
        self.stop_after_decisive: list[float] = []
        self.first_audio_latency: list[float] = []
        self._stopped_at: float | None = None
        self.counts: Counter[str] = Counter()
        self.response_status: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.audio_bytes = 0
        self.open_responses: set[str] = set()
        self.failure: str | None = None
        self.close_code: int | None = None
        self._streaming = True
        self._settled = asyncio.Event()

    def _check_settled(self) -> None:
        """After streaming: set once no response, first audio or probe answer is awaited."""
        if not (self._streaming or self.open_responses or self._stopped_at or self.probes_sent):
            self._settled.set()

    async def run(
        self,
        url: str,
        key: str,
        start_at: float | None,
        cycles: int | None,
        drain_s: float,
        *,
        end_at: float | None = None,
    ) -> None:
        """Connect, stream and probe, then let the last turn finish and close.

        Args:
            url: The server's realtime URL.
            key: The license key.
            start_at: When the first append is due (``perf_counter``); None: on connecting.
            cycles: Speech + silence cycles to stream; None: as many as end by ``end_at``.
            drain_s: How long to wait for outstanding answers after streaming.
            end_at: The streaming deadline used when ``cycles`` is None.
        """
        try:
            self.ws, self.connect_s, self.session_id = await _open(url, key)
            await self.ws.send(SESSION_UPDATE)
            receiver = asyncio.ensure_future(self._receive())
            if start_at is None:
                start_at = time.perf_counter() + 0.1
            if cycles is None:
                assert end_at is not None
                stream_s = end_at - start_at - self.lead_in_chunks * CHUNK_S
                cycles = max(1, int(stream_s // CYCLE_S))
            await self._stream(start_at, cycles)
            # Let the last turn's response finish (the stream ends in a silence).
            self._streaming = False
            self._check_settled()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), drain_s)
            await self.ws.close()
            await asyncio.wait_for(receiver, 10)
            self.close_code = self.ws.close_code
        except Refusal as exc:
            self.refusal = exc.info
        except Exception as exc:  # noqa: BLE001 - reported per session, the run goes on
            self.failure = f"{type(exc).__name__}: {exc}"
            if self.ws is not None:
                await self.ws.close()
                self.close_code = self.ws.close_code

    async def _stream(self, start_at: float, cycles: int) -> None:
        assert self.ws is not None
        total = self.lead_in_chunks + cycles * CYCLE_CHUNKS
        next_probe = start_at + self.probe_phase_s
        probe_n = 0
        for k in range(total):
            deadline = start_at + k * CHUNK_S
            now = time.perf_counter()
            if deadline > now:
                await asyncio.sleep(deadline - now)
                now = time.perf_counter()
            self.lateness.append(now - deadline)
            pos = (k - self.lead_in_chunks) % CYCLE_CHUNKS if k >= self.lead_in_chunks else -1
            speech = 0 <= pos < SPEECH_CHUNKS
            await self.ws.send(TONE_APPEND if speech else SILENCE_APPEND)
            self.sent_at.append(now)
            if pos == 0:
                self.turns += 1
            elif pos == SPEECH_CHUNKS:
                self.silence_starts.append(now)
            if now >= next_probe:
                probe_id = f"probe_{self.index}_{probe_n}"
                probe_n += 1
                self.probes_sent[probe_id] = time.perf_counter()
                await self.ws.send(
                    json.dumps(
                        {
                            "type": "conversation.item.retrieve",
                            "item_id": "item_missing",
                            "event_id": probe_id,
                        }
                    )
                )
                next_probe += PROBE_EVERY_S

    async def _receive(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            now = time.perf_counter()
            event = json.loads(message)
            kind = event.get("type", "")
            self.counts[kind] += 1
            if kind == "error":
                error = event.get("error") or {}
                sent = self.probes_sent.pop(error.get("event_id") or "", None)
                if sent is not None:
                    self.probe_rtt.append(now - sent)
                    self.probe_log.append((sent, now - sent))
                else:
                    self.errors[f"{error.get('code')}: {error.get('message')}"] += 1
            elif kind == "input_audio_buffer.speech_stopped":
                # Match the latest turn whose silence had started; older unmatched ones missed.
                matched = None
                while self.silence_starts and self.silence_starts[0] <= now:
                    matched = self.silence_starts.popleft()
                if matched is None:
                    self.counts["unexpected_speech_stopped"] += 1
                else:
                    self.stop_latency.append(now - matched - SILENCE_DURATION_MS / 1000)
                    # audio_end_ms is where the server's silence ran out: the append holding it
                    # is the first that allowed the decision.
                    decisive = math.ceil(event.get("audio_end_ms", 0) / CHUNK_MS) - 1
                    if 0 <= decisive < len(self.sent_at):
                        self.stop_after_decisive.append(now - self.sent_at[decisive])
                    self._stopped_at = now
            elif kind == "response.created":
                self.open_responses.add(event["response"]["id"])
            elif kind == "response.output_audio.delta":
                self.audio_bytes += len(event.get("delta", "")) * 3 // 4
                if self._stopped_at is not None:
                    self.first_audio_latency.append(now - self._stopped_at)
                    self._stopped_at = None
            elif kind == "response.done":
                response = event.get("response") or {}
                self.open_responses.discard(response.get("id"))
                self.response_status[str(response.get("status"))] += 1
            self._check_settled()


def _spread_sessions(n: int, seed: int, offset: int = 0) -> list[LoadSession]:
    """``n`` streaming clients whose turns are spread evenly over a cycle."""
    rng = random.Random(seed)
    return [
        LoadSession(
            offset + i,
            lead_in_chunks=i * CYCLE_CHUNKS // n,
            probe_phase_s=rng.uniform(0, PROBE_EVERY_S),
        )
        for i in range(n)
    ]


def probe_window(sessions: list[LoadSession], t0: float, t1: float) -> dict:
    """Probe round trips of the probes sent in ``[t0, t1)``, and how many were never answered."""
    rtts = [rtt for s in sessions for sent, rtt in s.probe_log if t0 <= sent < t1]
    unanswered = sum(1 for s in sessions for sent in s.probes_sent.values() if t0 <= sent < t1)
    return {
        **summary_ms(rtts),
        "sent": len(rtts) + unanswered,
        "unanswered": unanswered,
        "over_50_ms": sum(1 for v in rtts if v > 0.050),
    }


def probe_timeline(sessions: list[LoadSession], origin: float, monitor: Monitor) -> list[dict]:
    """Per second after ``origin``: probes sent, their p50/max, unanswered, server CPU and RSS."""
    by_second: dict[int, list[float]] = {}
    lost: Counter[int] = Counter()
    for s in sessions:
        for sent, rtt in s.probe_log:
            by_second.setdefault(math.floor(sent - origin), []).append(rtt * 1000)
        for sent in s.probes_sent.values():
            lost[math.floor(sent - origin)] += 1
            by_second.setdefault(math.floor(sent - origin), [])
    cpu = monitor.cpu_percent_by_second(origin)
    return [
        {
            "second": sec,
            "probes": len(v) + lost[sec],
            "unanswered": lost[sec],
            "p50_ms": _r(pct(v, 50)),
            "max_ms": _r(max(v) if v else None),
            "server_cpu_percent": cpu.get(sec),
            "server_rss_mb": _r(monitor.rss_at(origin + sec)),
        }
        for sec, v in sorted(by_second.items())
    ]


def session_anomalies(sessions: list[LoadSession]) -> list[dict]:
    """Per admitted session: failures, missed turns or responses, unanswered probes."""
    anomalies = []
    for s in sessions:
        if s.refusal:
            continue
        problems = []
        if s.failure:
            problems.append(s.failure)
        if s.counts["input_audio_buffer.speech_stopped"] < s.turns:
            problems.append(
                f"{s.turns} turns but {s.counts['input_audio_buffer.speech_stopped']} speech_stopped"
            )
        if s.response_status["completed"] < s.turns:
            problems.append(f"{s.turns} turns but {s.response_status['completed']} completed")
        if s.open_responses:
            problems.append(f"responses never done: {sorted(s.open_responses)}")
        if s.probes_sent:
            problems.append(f"{len(s.probes_sent)} probes unanswered")
        if problems:
            anomalies.append({"session": s.index, "problems": problems})
    return anomalies


def _rate_limited(s: LoadSession) -> int:
    """How many ``rate_limit_exceeded`` errors a session received."""
    return sum(n for key, n in s.errors.items() if key.startswith("rate_limit_exceeded"))


def sessions_summary(sessions: list[LoadSession]) -> dict:
    """What the streaming clients saw, all together."""
    counts: Counter[str] = Counter()
    status: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for s in sessions:
        counts.update(s.counts)
        status.update(s.response_status)
        errors.update(s.errors)
    lateness = [v for s in sessions for v in s.lateness]
    return {
        "turns_sent": sum(s.turns for s in sessions),
        "speech_stopped": counts["input_audio_buffer.speech_stopped"],
        "responses_done": dict(status),
        "other_errors": dict(errors),
        "send_lateness": summary_ms(lateness),
        "sessions_failed": sum(1 for s in sessions if s.failure),
        "failures": Counter(s.failure for s in sessions if s.failure),
        "anomalies": session_anomalies(sessions),
    }


async def _warm_up(url: str, key: str) -> None:
    """One short turn, so engines, the LLM and the code paths are loaded before measuring."""
    ws, _, _ = await _open(url, key)
    await ws.send(SESSION_UPDATE)
    for _ in range(25):
        await ws.send(TONE_APPEND)
    for _ in range(30):
        await ws.send(SILENCE_APPEND)
    try:
        async with asyncio.timeout(15):
            async for message in ws:
                if json.loads(message).get("type") == "response.done":
                    break
    finally:
        await ws.close()


async def _sleep_until(t: float) -> None:
    delay = t - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


# --- scenario: idle + load (the default) ---------------------------------------------------


async def bench_idle(server: Server, n: int) -> dict:
    await asyncio.sleep(1.0)
    before = server.rss_mb()
    results = await asyncio.gather(
        *(_open(server.url, server.key) for _ in range(n)), return_exceptions=True
    )
    sockets = [r[0] for r in results if not isinstance(r, BaseException)]
    failures = Counter(f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException))
    connect_s = [r[1] for r in results if not isinstance(r, BaseException)]
    await asyncio.sleep(3.0)
    samples = []
    for _ in range(3):
        samples.append(server.rss_mb())
        await asyncio.sleep(0.5)
    after = samples[-1]
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    await asyncio.sleep(3.0)
    closed = server.rss_mb()
    opened = len(sockets)
    return {
        "sessions_requested": n,
        "sessions_open": opened,
        "open_failures": dict(failures),
        "connect_to_session_created": summary_ms(connect_s),
        "rss_before_mb": round(before, 1),
        "rss_open_mb": round(after, 1),
        "rss_open_samples_mb": [round(s, 1) for s in samples],
        "rss_after_close_mb": round(closed, 1),
        "mb_per_idle_session": round((after - before) / opened, 3) if opened else None,
        "threads_open": server.status("Threads"),
    }


async def bench_load(server: Server, n: int, duration_s: float, seed: int) -> dict:
    cycles = max(1, round(duration_s * 1000 / (SPEECH_MS + SILENCE_MS)))
    sessions = _spread_sessions(n, seed)
    monitor = Monitor(server)
    # Everyone connects first, then all streams start on a shared clock a moment later.
    start_at = time.perf_counter() + 3.0 + n * 0.05
    monitor.start()
    mark0 = CpuMark.now(server)
    await asyncio.gather(*(s.run(server.url, server.key, start_at, cycles, 5.0) for s in sessions))
    mark1 = CpuMark.now(server)
    await monitor.stop()
    cpu = cpu_report(mark0, mark1)
    streamed_s = (cycles * CYCLE_CHUNKS) * CHUNK_S

    def total(attr: str) -> list[float]:
        return [v for s in sessions for v in getattr(s, attr)]

    counts: Counter[str] = Counter()
    for s in sessions:
        counts.update(s.counts)
    summary = sessions_summary(sessions)
    lateness = total("lateness")
    rss = [rss for _, rss, _ in monitor.samples]
    return {
        "sessions": n,
        "cycles_per_session": cycles,
        "streamed_s_per_session": streamed_s,
        "wall_s": cpu["wall_s"],
        "sessions_failed": summary["sessions_failed"],
        "connect_to_session_created": summary_ms([s.connect_s for s in sessions if s.connect_s]),
        "probe_rtt": summary_ms(total("probe_rtt")),
        "probes_unanswered": sum(len(s.probes_sent) for s in sessions),
        "speech_end_to_speech_stopped": summary_ms(total("stop_latency")),
        "decisive_append_to_speech_stopped": summary_ms(total("stop_after_decisive")),
        "speech_stopped_to_first_audio": summary_ms(total("first_audio_latency")),
        "send_lateness": summary_ms(lateness),
        "send_lateness_over_20ms": sum(1 for v in lateness if v > CHUNK_S),
        "turns_sent": summary["turns_sent"],
        "speech_started": counts["input_audio_buffer.speech_started"],
        "speech_stopped": counts["input_audio_buffer.speech_stopped"],
        "unexpected_speech_stopped": counts["unexpected_speech_stopped"],
        "responses_created": counts["response.created"],
        "responses_done": summary["responses_done"],
        "audio_deltas": counts["response.output_audio.delta"],
        "audio_received_s": round(sum(s.audio_bytes for s in sessions) / (2 * RATE), 1),
        "other_errors": summary["other_errors"],
        "events_received": sum(counts.values()) - counts["unexpected_speech_stopped"],
        "server_cpu_percent": cpu["server_cpu_percent"],
        # Everything the server did in the phase, divided by the appends it was sent.
        "server_cpu_ms_per_append": round(
            1000 * (mark1.server_s - mark0.server_s) / max(1, len(lateness)), 3
        ),
        "client_cpu_percent": cpu["client_cpu_percent"],
        "other_processes_cpu_percent": cpu["other_processes_cpu_percent"],
        "server_rss_mb": {
            "start": round(rss[0], 1) if rss else None,
            "max": round(max(rss), 1) if rss else None,
            "end": round(rss[-1], 1) if rss else None,
        },
        "anomalies": summary["anomalies"],
        "timeline": probe_timeline(sessions, start_at, monitor),
    }


# --- client roles in their own processes ---------------------------------------------------


class Worker:
    """A client role run by this script with ``--worker`` in a process of its own.

    It speaks JSON lines on stdout (``ready``, then ``result``) and takes ``go`` and
    ``stop`` on stdin. Its clock is ``perf_counter`` too, CLOCK_MONOTONIC on Linux, which
    every process shares, so its timestamps compare with this process's.
    """

    def __init__(self, role: str, proc: asyncio.subprocess.Process) -> None:
        self.role = role
        self.proc = proc
        self.ready: dict = {}

    @classmethod
    async def start(cls, role: str, url: str, key: str, params: dict, ready_s: float) -> Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(SCRIPT),
            "--worker",
            role,
            "--url",
            url,
            "--key",
            key,
            "--worker-params",
            json.dumps(params),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        worker = cls(role, proc)
        worker.ready = await worker._expect("ready", ready_s)
        return worker

    async def _expect(self, event: str, timeout_s: float) -> dict:
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout_s):
            while line := await self.proc.stdout.readline():
                with contextlib.suppress(ValueError):  # not one of ours: ignore it
                    message = json.loads(line)
                    if isinstance(message, dict) and message.get("event") == event:
                        return message
        raise RuntimeError(
            f"worker {self.role} exited before '{event}' (rc {self.proc.returncode})"
        )

    async def tell(self, word: str) -> None:
        """Send ``go`` or ``stop`` (ignored once the worker has exited)."""
        assert self.proc.stdin is not None
        with contextlib.suppress(ConnectionError):
            self.proc.stdin.write(word.encode() + b"\n")
            await self.proc.stdin.drain()

    async def result(self, timeout_s: float) -> dict:
        """Wait for the worker's result and its exit (a ``failure`` if it gave none)."""
        try:
            result = await self._expect("result", timeout_s)
        except (TimeoutError, RuntimeError) as exc:
            await self.kill()
            return {"event": "result", "failure": f"{type(exc).__name__}: {exc}"}
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        await self.proc.wait()
        return result

    async def kill(self) -> None:
        """End the process (when it failed or the scenario did)."""
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


def _emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class _Commands:
    """``go`` / ``stop`` lines from the parent on stdin, read in a thread."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.stop = asyncio.Event()
        # A daemon thread, not the loop's executor: asyncio.run would wait for it at exit,
        # and it blocks on stdin until the parent closes it.
        threading.Thread(target=self._read, args=(asyncio.get_running_loop(),), daemon=True).start()

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        # RuntimeError: the loop closed already (the worker finished before stdin did).
        with contextlib.suppress(RuntimeError):
            for line in sys.stdin:
                word = line.strip()
                if word == "go":
                    loop.call_soon_threadsafe(self.go.set)
                elif word == "stop":
                    loop.call_soon_threadsafe(self.stop.set)
            loop.call_soon_threadsafe(self.stop.set)  # the parent went away


def _close_info(ws: ClientConnection) -> dict:
    """Who closed the connection, with what code and reason."""
    rcvd, sent = ws.protocol.close_rcvd, ws.protocol.close_sent
    return {
        "server_close_code": rcvd.code if rcvd else None,
        "server_close_reason": rcvd.reason if rcvd else None,
        "client_close_code": sent.code if sent else None,
        "server_closed_first": bool(ws.protocol.close_rcvd_then_sent),
    }


def _tally(event: dict, counts: Counter[str]) -> None:
    kind = event.get("type", "")
    if kind == "error":
        counts[f"error:{(event.get('error') or {}).get('code')}"] += 1
    else:
        counts[kind] += 1


async def worker_flood(url: str, key: str, params: dict) -> dict:
    """Send one append after another, as fast as the socket takes them, for ``flood_s``."""
    kind = params["kind"]
    message = _silence_append(2 if kind == "tiny" else params["append_ms"] * RATE * 2 // 1000)
    commands = _Commands()
    ws, _, session_id = await _open(url, key)
    _emit({"event": "ready", "message_chars": len(message), "session_id": session_id})
    await commands.go.wait()
    counts: Counter[str] = Counter()
    first_error_at: float | None = None
    closed_at: float | None = None

    async def receive() -> None:
        nonlocal first_error_at, closed_at
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                event = json.loads(raw)
                _tally(event, counts)
                if event.get("type") == "error" and first_error_at is None:
                    first_error_at = time.perf_counter()
        closed_at = time.perf_counter()

    receiver = asyncio.ensure_future(receive())
    started = time.perf_counter()
    started_wall = time.time()  # to place the server's log lines
    sent = 0
    ended_by = "flood_s elapsed; the client closed"
    try:
        while time.perf_counter() - started < params["flood_s"]:
            await ws.send(message)
            sent += 1
            if sent % 32 == 0:
                await asyncio.sleep(0)  # let the receiver see an error or the close
    except ConnectionClosed:
        ended_by = "the server closed the connection"
    stopped_sending = time.perf_counter()
    await ws.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(receiver, 10)
    left = time.perf_counter()
    return {
        "kind": kind,
        "message_chars": len(message),
        "frames_sent": sent,
        "mb_sent": round(sent * len(message) / 1e6, 1),
        "started_at": started,
        "started_wall": started_wall,
        "stopped_sending_at": stopped_sending,
        "left_at": left,
        "server_closed_at": closed_at if ended_by.startswith("the server") else None,
        "first_error_after_s": _r(first_error_at - started) if first_error_at else None,
        "sending_s": round(stopped_sending - started, 2),
        "frames_per_s": round(sent / max(1e-9, stopped_sending - started)),
        "ended_by": ended_by,
        **_close_info(ws),
        "events_received": dict(counts),
    }


async def worker_large(url: str, key: str, params: dict) -> dict:
    """Send ``count`` appends of ~8 MiB back to back, then listen until told to stop."""
    message = _silence_append(params["pcm_bytes"])
    commands = _Commands()
    ws, _, session_id = await _open(url, key)
    _emit({"event": "ready", "message_chars": len(message), "session_id": session_id})
    await commands.go.wait()
    counts: Counter[str] = Counter()

    async def receive() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                _tally(json.loads(raw), counts)

    receiver = asyncio.ensure_future(receive())
    started = time.perf_counter()
    send_s: list[float] = []
    failure = None
    try:
        for _ in range(params["count"]):
            t = time.perf_counter()
            await ws.send(message)
            send_s.append(time.perf_counter() - t)
            if params["gap_s"]:
                await asyncio.sleep(params["gap_s"])
    except ConnectionClosed as exc:
        failure = f"closed while sending: {exc}"
    sent_all = time.perf_counter()
    stop = asyncio.ensure_future(commands.stop.wait())
    await asyncio.wait([receiver, stop], timeout=300, return_when=asyncio.FIRST_COMPLETED)
    stop.cancel()
    await ws.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(receiver, 10)
    return {
        "message_chars": len(message),
        "appends_sent": len(send_s),
        "send_s": [round(v, 3) for v in send_s],
        "sending_s": round(sent_all - started, 2),
        "failure": failure,
        **_close_info(ws),
        "events_received": dict(counts),
    }


async def worker_retrieve(url: str, key: str, params: dict) -> dict:
    """Hold one long user audio item (manual commit), then retrieve it until told to stop."""
    commands = _Commands()
    ws, _, session_id = await _open(url, key)
    setup: Counter[str] = Counter()

    async def next_event(*types: str) -> dict:
        async for raw in ws:
            event = json.loads(raw)
            _tally(event, setup)
            if event.get("type") in types:
                return event
        raise RuntimeError("closed")

    await ws.send(MANUAL_TURNS_UPDATE)
    await asyncio.wait_for(next_event("session.updated"), 30)
    chunk = _silence_append(RATE * 2)  # 1 s, 64,000 characters: under the off-loop threshold
    upload_started = time.perf_counter()
    for _ in range(params["item_s"]):
        await ws.send(chunk)
        await asyncio.sleep(params["chunk_every_s"])  # well under every inbound limit
    await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
    committed = await asyncio.wait_for(next_event("input_audio_buffer.committed"), 60)
    item_id = committed["item_id"]
    _emit(
        {
            "event": "ready",
            "item_id": item_id,
            "session_id": session_id,
            "upload_s": round(time.perf_counter() - upload_started, 1),
            "setup_events": dict(setup),
        }
    )
    await commands.go.wait()
    counts: Counter[str] = Counter()
    rtts: list[float] = []
    audio_chars: Counter[int] = Counter()
    failure = None
    n = 0
    try:
        while not commands.stop.is_set():
            event_id = f"retrieve_{n}"
            n += 1
            sent = time.perf_counter()
            await ws.send(
                json.dumps(
                    {"type": "conversation.item.retrieve", "item_id": item_id, "event_id": event_id}
                )
            )
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 60))
                _tally(event, counts)
                if event.get("type") == "conversation.item.retrieved":
                    content = (event.get("item") or {}).get("content") or [{}]
                    audio_chars[len(content[0].get("audio") or "")] += 1
                    break
                if event.get("type") == "error":
                    break
            rtts.append(time.perf_counter() - sent)
    except (ConnectionClosed, TimeoutError) as exc:
        failure = f"{type(exc).__name__}: {exc}"
    await ws.close()
    return {
        "item_id": item_id,
        "retrieves": len(rtts),
        "retrieve_rtt": summary_ms(rtts),
        # Base64 characters of audio per retrieved item: 2 minutes at 24 kHz PCM16 is 7.68 M.
        "audio_chars": {str(k): v for k, v in audio_chars.items()},
        "failure": failure,
        **_close_info(ws),
        "events_received": dict(counts),
    }


WORKERS = {"flood": worker_flood, "large": worker_large, "retrieve": worker_retrieve}


async def _worker_main(args: argparse.Namespace) -> None:
    params = json.loads(args.worker_params)
    started = os.times()
    result = await WORKERS[args.worker](args.url, args.key, params)
    ended = os.times()
    result["cpu_s"] = round((ended.user - started.user) + (ended.system - started.system), 2)
    _emit({"event": "result", **result})


# --- scenario: flood -----------------------------------------------------------------------


async def bench_flood(server: Server, kind: str, args: argparse.Namespace) -> dict:
    """K streaming sessions; one more connection floods appends for ``FLOOD_S``."""
    k = args.flood_sessions
    sessions = _spread_sessions(k, args.seed)
    flooder = await Worker.start(
        "flood",
        server.url,
        server.key,
        {"kind": kind, "append_ms": args.flood_append_ms, "flood_s": args.flood_s},
        ready_s=60,
    )
    start_at = time.perf_counter() + 3.0
    flood_at = start_at + FLOOD_PRE_S
    # Long enough for RSS +30 s after a flooder that floods the whole time and then leaves.
    stream_end = flood_at + args.flood_s + FLOOD_RECOVERY_S + 5.0
    cycles = math.ceil((stream_end - start_at) / CYCLE_S)
    monitor = Monitor(server)
    monitor.start()
    mark0 = CpuMark.now(server)

    async def flood() -> dict:
        await _sleep_until(flood_at)
        await flooder.tell("go")
        return await flooder.result(timeout_s=args.flood_s + 120)

    *_, fl = await asyncio.gather(
        *(s.run(server.url, server.key, start_at, cycles, 5.0) for s in sessions), flood()
    )
    mark1 = CpuMark.now(server)
    left_at = fl.get("server_closed_at") or fl.get("left_at") or stream_end
    await _sleep_until(left_at + FLOOD_RECOVERY_S + 0.5)  # in case the flooder left late
    await monitor.stop()
    baseline = monitor.rss_between(flood_at - 4.0, flood_at)
    base = statistics.median(baseline) if baseline else None
    peak = max(monitor.rss_between(flood_at, left_at + FLOOD_RECOVERY_S + 0.5), default=None)
    after = {f"+{s}s": _r(monitor.rss_at(left_at + s)) for s in (10, 20, 30)}
    flood_end = flood_at + args.flood_s
    return {
        "kind": kind,
        "sessions": k,
        "flooder": {
            key: value
            for key, value in fl.items()
            if key not in ("started_at", "stopped_sending_at", "left_at", "server_closed_at")
        }
        | {
            "session_id": flooder.ready.get("session_id"),
            "left_after_s": _r(left_at - fl["started_at"]) if "started_at" in fl else None,
            "start_delay_s": _r(fl["started_at"] - flood_at) if "started_at" in fl else None,
        },
        "server_rss_mb": {
            "baseline": _r(base),
            "peak": _r(peak),
            "peak_minus_baseline": _r(peak - base) if peak is not None and base else None,
            "after_flooder_left": after,
            "plus_30s_minus_baseline": _r(after["+30s"] - base)
            if after["+30s"] is not None and base
            else None,
        },
        "probes": {
            "before_flood": probe_window(sessions, start_at, flood_at),
            "during_flood": probe_window(sessions, flood_at, flood_end),
            "after_flood": probe_window(sessions, flood_end, stream_end),
            "whole_run": probe_window(sessions, 0, math.inf),
        },
        "sessions_summary": sessions_summary(sessions),
        # Innocent sessions told they were over the inbound budget.
        "normal_sessions_rate_limited": {
            "sessions": sum(1 for s in sessions if _rate_limited(s)),
            "errors": sum(_rate_limited(s) for s in sessions),
        },
        "machine": cpu_report(mark0, mark1),
        "timeline": probe_timeline(sessions, flood_at, monitor),
        "rss_samples_mb": [
            [round(t - flood_at, 2), round(rss, 1)] for t, rss, _ in monitor.samples[::2]
        ],
    }


# --- scenario: capacity --------------------------------------------------------------------


async def bench_capacity(server: Server, args: argparse.Namespace) -> dict:
    """Twice the per-worker cap of streaming sessions try to connect, one every 250 ms."""
    attempts = args.attempts or 2 * args.cap
    sessions = _spread_sessions(attempts, args.seed)
    first_at = time.perf_counter() + 1.0
    last_at = first_at + (attempts - 1) * CAPACITY_RAMP_S
    end_at = last_at + args.duration_s
    monitor = Monitor(server)
    monitor.start()
    mark0 = CpuMark.now(server)

    async def attempt(i: int, s: LoadSession) -> None:
        await _sleep_until(first_at + i * CAPACITY_RAMP_S)
        await s.run(server.url, server.key, None, None, 5.0, end_at=end_at)

    await asyncio.gather(*(attempt(i, s) for i, s in enumerate(sessions)))
    mark1 = CpuMark.now(server)
    await monitor.stop()
    admitted = [s for s in sessions if s.connect_s is not None]
    refused = [s for s in sessions if s.refusal]
    failed = [s for s in sessions if s.connect_s is None and not s.refusal]
    return {
        "cap": args.cap,
        "attempts": attempts,
        "ramp_s": CAPACITY_RAMP_S,
        "admitted": len(admitted),
        "refused": len(refused),
        "failed_to_connect": len(failed),
        "refusals": dict(
            Counter(f"{s.refusal['code']} / close {s.refusal['close_code']}" for s in refused)
        ),
        "refused_attempts": [s.index for s in refused],
        "refusal_messages": dict(Counter(s.refusal["message"] for s in refused)),
        "time_to_refusal": summary_ms([s.refusal["after_s"] for s in refused]),
        "connect_to_session_created": summary_ms([s.connect_s for s in admitted]),
        "failures": dict(Counter(s.failure for s in failed if s.failure)),
        "probes": {
            "whole_run": probe_window(admitted, 0, math.inf),
            "after_last_attempt": probe_window(admitted, last_at, math.inf),
        },
        "sessions_summary": sessions_summary(admitted),
        "machine": cpu_report(mark0, mark1),
        "server_rss_mb_max": _r(max((r for _, r, _ in monitor.samples), default=None)),
        "timeline": probe_timeline(admitted, first_at, monitor),
    }


# --- scenario: large events ----------------------------------------------------------------


async def bench_large(server: Server, args: argparse.Namespace) -> dict:
    """8 MiB appends and 2-minute retrieves in two sessions; a third measures probes.

    ``--large-appends 0`` leaves out the large sender and ``--no-retrieve`` the retriever,
    to tell which of the two costs the third session what.
    """
    roles = {
        "retriever": (
            "retrieve",
            {"item_s": LARGE_ITEM_S, "chunk_every_s": 0.05},
            not args.no_retrieve,
        ),
        "large_sender": (
            "large",
            {
                "pcm_bytes": args.large_pcm_bytes,
                "count": args.large_appends,
                "gap_s": args.large_gap_s,
            },
            args.large_appends > 0,
        ),
    }
    workers: dict[str, Worker] = {}
    try:
        for name, (role, params, wanted) in roles.items():
            if wanted:
                workers[name] = await Worker.start(role, server.url, server.key, params, 120)
    except BaseException:
        await asyncio.gather(*(w.kill() for w in workers.values()))
        raise
    (probe,) = _spread_sessions(1, args.seed)
    start_at = time.perf_counter() + 2.0
    go_at = start_at + 3.0
    cycles = max(1, math.ceil((args.duration_s + 3.0) / CYCLE_S))
    stream_end = start_at + cycles * CYCLE_S
    monitor = Monitor(server)
    monitor.start()
    mark0 = CpuMark.now(server)

    async def drive() -> list[dict]:
        await _sleep_until(go_at)
        await asyncio.gather(*(w.tell("go") for w in workers.values()))
        await _sleep_until(stream_end)
        await asyncio.gather(*(w.tell("stop") for w in workers.values()))
        return await asyncio.gather(*(w.result(120) for w in workers.values()))

    _, results = await asyncio.gather(
        probe.run(server.url, server.key, start_at, cycles, 5.0), drive()
    )
    mark1 = CpuMark.now(server)
    await monitor.stop()
    by_name = {
        name: result | {"ready": w.ready}
        for (name, w), result in zip(workers.items(), results, strict=True)
    }
    return {
        "large_sender": by_name.get("large_sender"),
        "retriever": by_name.get("retriever"),
        "probes": {
            "before": probe_window([probe], start_at, go_at),
            "during": probe_window([probe], go_at, stream_end),
        },
        "sessions_summary": sessions_summary([probe]),
        "machine": cpu_report(mark0, mark1),
        "server_rss_mb_max": _r(max((r for _, r, _ in monitor.samples), default=None)),
        "timeline": probe_timeline([probe], go_at, monitor),
    }


# --- tables --------------------------------------------------------------------------------

PROBE_HEADER = [
    "| probe round trip | probes | p50 ms | p95 ms | p99 ms | max ms | unanswered | target |",
    "|---|---|---|---|---|---|---|---|",
]


def _probe_row(name: str, w: dict, target: str = "") -> str:
    return (
        f"| {name} | {w['sent']} | {w['p50_ms']} | {w['p95_ms']} | {w['p99_ms']} | "
        f"{w['max_ms']} | {w['unanswered']} | {target} |"
    )


def _machine_line(m: dict, meta: dict) -> str:
    line = (
        f"Machine during the run: server CPU {m['server_cpu_percent']}%, clients "
        f"{m['client_cpu_percent']}%, other processes {m['other_processes_cpu_percent']}% "
        f"(100% = one core of {meta['cpus']}); load average {meta['loadavg_before'][0]:.2f} "
        f"before, {m['loadavg_end'][0]:.2f} after."
    )
    if m["other_processes_cpu_percent"] > 10 or meta["loadavg_before"][0] > 2.5:
        line += " **The machine was busy with other work: the figures are distorted.**"
    return line


def _log_line(log: dict) -> str:
    line = f"Server log: {log['tracebacks']} tracebacks, {log['error_lines']} ERROR lines"
    if log["first_errors"]:
        line += f" (first: `{log['first_errors'][0][:200]}`)"
    return line + "."


def _table(res: dict) -> str:
    load, idle = res["load"], res["idle"]
    p = res["parameters"]

    def row(name: str, s: dict, target: str = "") -> str:
        return f"| {name} | {s['count']} | {s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} | {s['max_ms']} | {target} |"

    lines = [
        f"Load: {p['sessions']} sessions streaming {load['streamed_s_per_session']:.1f} s each "
        f"({load['turns_sent']} turns), server CPU {load['server_cpu_percent']}%, client CPU "
        f"{load['client_cpu_percent']}%, other processes {load['other_processes_cpu_percent']}% "
        f"(100% = one core), server CPU per append {load['server_cpu_ms_per_append']} ms, "
        f"server RSS max {load['server_rss_mb']['max']} MB.",
        "",
        "| latency | count | p50 ms | p95 ms | p99 ms | max ms | target |",
        "|---|---|---|---|---|---|---|",
        row("probe round trip (event latency)", load["probe_rtt"], "p99 ≤ 50 ms"),
        row("speech end → speech_stopped (minus 300 ms)", load["speech_end_to_speech_stopped"]),
        row("deciding append sent → speech_stopped", load["decisive_append_to_speech_stopped"]),
        row("speech_stopped → first audio delta", load["speech_stopped_to_first_audio"]),
        row("client send lateness (20 ms schedule)", load["send_lateness"]),
        row("connect → session.created", load["connect_to_session_created"]),
        "",
        f"Responses done: {load['responses_done']}; speech_stopped {load['speech_stopped']} of "
        f"{load['turns_sent']} turns; other errors: {load['other_errors'] or 'none'}; "
        f"sessions with anomalies: {len(load['anomalies'])}; server log tracebacks: "
        f"{res['server_log']['tracebacks']}.",
    ]
    if load["other_processes_cpu_percent"] > 10:
        lines += [
            "",
            f"**Warning**: other processes used {load['other_processes_cpu_percent']}% of a core "
            "during the load phase; the figures above are distorted, run again on a quiet machine.",
        ]
    if idle:
        lines += [
            "",
            f"Idle: {idle['sessions_open']} of {idle['sessions_requested']} sessions open, server RSS "
            f"{idle['rss_before_mb']} → {idle['rss_open_mb']} MB = **{idle['mb_per_idle_session']} "
            f"MB per idle session** (target ≤ 5 MB); {idle['rss_after_close_mb']} MB after closing.",
        ]
    return "\n".join(lines)


def _flood_table(res: dict) -> str:
    lines = [f"Command: `{res['command']}`"]
    for run in res["runs"]:
        f, rss, pr = run["flooder"], run["server_rss_mb"], run["probes"]
        after = rss["after_flooder_left"]
        if f.get("failure"):
            lines += ["", f"**{run['kind']}**: the flooder failed: {f['failure']}"]
            continue
        how = (
            f"closed by the server with {f['server_close_code']} "
            f"({f['server_close_reason'] or 'no reason'}) {f['left_after_s']} s after it started"
            if f["server_closed_first"]
            else f"not closed by the server; it left after {f['left_after_s']} s"
        )
        lines += [
            "",
            f"**Flood `{run['kind']}`** ({f['message_chars']:,}-character appends): the flooder "
            f"sent {f['frames_sent']:,} frames ({f['mb_sent']} MB, {f['frames_per_s']:,}/s) and "
            f"was {how}; it received {f['events_received'] or 'nothing'}.",
            _server_view_line(run),
            f"Server RSS: baseline {rss['baseline']} MB, peak {rss['peak']} MB "
            f"(**+{rss['peak_minus_baseline']} MB**, target ≤ 50), after the flooder left: "
            f"+10 s {after['+10s']}, +20 s {after['+20s']}, +30 s {after['+30s']} MB "
            f"(**{rss['plus_30s_minus_baseline']:+} MB** against the baseline, target within 10)."
            if rss["plus_30s_minus_baseline"] is not None
            else f"Server RSS: baseline {rss['baseline']} MB, peak {rss['peak']} MB, after: {after}.",
            "",
            *PROBE_HEADER,
            _probe_row(f"{run['sessions']} sessions, before the flood", pr["before_flood"]),
            _probe_row(
                f"{run['sessions']} sessions, during the flood (20 s)",
                pr["during_flood"],
                "p99 ≤ 50 ms",
            ),
            _probe_row(f"{run['sessions']} sessions, after the flood", pr["after_flood"]),
            "",
            f"Other errors the {run['sessions']} sessions received: "
            f"{_short_errors(run['sessions_summary']['other_errors'])}; responses "
            f"{run['sessions_summary']['responses_done']} for "
            f"{run['sessions_summary']['turns_sent']} turns.",
            _machine_line(run["machine"], run["meta"]) + " " + _log_line(run["server_log"]),
        ]
    return "\n".join(lines)


def _short_errors(errors: dict[str, int]) -> str:
    """``{"code: message": n}`` as ``code ×n, …`` (or "none")."""
    by_code: Counter[str] = Counter()
    for key, n in errors.items():
        by_code[key.split(":", 1)[0]] += n
    return ", ".join(f"`{code}` ×{n}" for code, n in by_code.most_common()) or "none"


def _server_view_line(run: dict) -> str:
    v = run.get("server_view") or {}
    if v.get("first_drop_after_s") is None:
        first = "The server log shows no input of the flooder dropped over the budget"
    else:
        first = (
            f"The server first dropped the flooder's input {v['first_drop_after_s']} s after "
            "the flood began"
        )
    close = (
        f", and decided to close it at {v['flood_close_after_s']} s"
        if v.get("flood_close_after_s") is not None
        else ""
    )
    return (
        f"{first}{close}; it dropped input of {v.get('other_sessions_with_drops', 0)} "
        f"of the {run['sessions']} normal sessions too ({v.get('other_sessions_drop_episodes', 0)}"
        " log lines)."
    )


def _capacity_table(res: dict) -> str:
    c = res["capacity"]
    s = c["sessions_summary"]
    return "\n".join(
        [
            f"Command: `{res['command']}`",
            "",
            f"{c['attempts']} streaming sessions tried to connect, one every {c['ramp_s']} s, "
            f"against a per-worker cap of {c['cap']}: **{c['admitted']} admitted, "
            f"{c['refused']} refused** ({c['refusals'] or 'none'}; first refused attempt: "
            f"{c['refused_attempts'][0] if c['refused_attempts'] else '–'}, refusal after "
            f"{c['time_to_refusal']['p50_ms']} ms median), {c['failed_to_connect']} failed "
            f"otherwise. Admitted sessions: {s['turns_sent']} turns, responses {s['responses_done']}, "
            f"other errors {_short_errors(s['other_errors'])}, sessions with anomalies "
            f"{len(s['anomalies'])}.",
            "",
            *PROBE_HEADER,
            _probe_row("admitted sessions, whole run", c["probes"]["whole_run"], "p99 ≤ 50 ms"),
            _probe_row(
                "admitted sessions, after the last attempt", c["probes"]["after_last_attempt"]
            ),
            "",
            _machine_line(c["machine"], res["meta"]) + " " + _log_line(res["server_log"]),
        ]
    )


def _gap_words(res: dict) -> str:
    gap_s = res.get("parameters", {}).get("large_gap_s") or 0
    return f"{gap_s} s apart" if gap_s else "back to back"


def _large_table(res: dict) -> str:
    g = res["large"]
    a, r = g["large_sender"], g["retriever"]
    if a is None:
        a_line = "No large sender (session A) in this run."
    else:
        a_line = (
            f"Session A sent {a.get('appends_sent')} appends of {a.get('message_chars', 0):,} "
            f"characters {_gap_words(res)} in {a.get('sending_s')} s; the server answered "
            f"{a.get('events_received') or 'nothing'}"
            + (
                f" and closed it with {a['server_close_code']}"
                if a.get("server_closed_first")
                else ""
            )
            + "."
        )
    if r is None:
        r_line = "No retriever (session B) in this run."
    else:
        rr = r.get("retrieve_rtt") or {}
        r_line = (
            f"Session B holds a {LARGE_ITEM_S} s user audio item and retrieved it "
            f"{r.get('retrieves')} times (round trip p50 {rr.get('p50_ms')} ms, max "
            f"{rr.get('max_ms')} ms; audio characters per item {r.get('audio_chars')})."
        )
    return "\n".join(
        [
            f"Command: `{res['command']}`",
            "",
            f"{a_line} {r_line}",
            "",
            *PROBE_HEADER,
            _probe_row("session C, before", g["probes"]["before"]),
            _probe_row(
                "session C, during A's appends and B's retrieves",
                g["probes"]["during"],
                "p99 ≤ 50 ms",
            ),
            "",
            f"Other errors session C received: "
            f"{_short_errors(g['sessions_summary']['other_errors'])}.",
            _machine_line(g["machine"], res["meta"]) + " " + _log_line(res["server_log"]),
        ]
    )


# --- main ----------------------------------------------------------------------------------


def _meta() -> dict:
    return {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "websockets": websockets.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "loadavg_before": os.getloadavg(),
        "tree": str(ROOT),
    }


async def _main_load(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="rt-load-") as tmp:
        # This scenario measures what sessions cost, not admission: lift the worker's limits.
        lifted = {
            "REALTIME_MAX_SESSIONS_PER_WORKER": str(args.sessions + args.idle_sessions + 10),
            "REALTIME_MAX_LOOP_LAG_MS": "60000",
        }
        server = Server(Path(tmp), args.sessions + args.idle_sessions + 10, lifted)
        try:
            rss_start = server.rss_mb()
            await _warm_up(server.url, server.key)
            rss_warm = server.rss_mb()
            idle = await bench_idle(server, args.idle_sessions) if args.idle_sessions else None
            load = await bench_load(server, args.sessions, args.duration_s, args.seed)
            await asyncio.sleep(1.0)
            rss_end = server.rss_mb()
        finally:
            server.stop()
            log = server.log_report()
    return {
        "meta": _meta() | {"loadavg_before": args.loadavg_before},
        "parameters": {
            "sessions": args.sessions,
            "duration_s": args.duration_s,
            "idle_sessions": args.idle_sessions,
            "chunk_ms": CHUNK_MS,
            "speech_ms": SPEECH_MS,
            "silence_ms": SILENCE_MS,
            "silence_duration_ms": SILENCE_DURATION_MS,
            "probe_every_s": PROBE_EVERY_S,
            "model": MODEL,
            "settings": "realtime_site.settings.test (fake engines)",
            "server_env": lifted,
        },
        "server_rss_mb": {
            "started": round(rss_start, 1),
            "after_warm_up": round(rss_warm, 1),
            "end": round(rss_end, 1),
        },
        "idle": idle,
        "load": load,
        "server_log": log,
    }


async def _with_server(max_sessions: int, extra_env: dict[str, str], body: Any) -> tuple[Any, dict]:
    """Start a server, warm it up, run ``body(server)``, stop it; returns (result, log report)."""
    with tempfile.TemporaryDirectory(prefix="rt-load-") as tmp:
        server = Server(Path(tmp), max_sessions, extra_env)
        try:
            await _warm_up(server.url, server.key)
            await asyncio.sleep(1.0)
            result = await body(server)
        finally:
            server.stop()
            log = server.log_report()
    return result, log


async def _main_flood(args: argparse.Namespace) -> dict:
    kinds = ["appends", "tiny"] if args.flood_kind == "both" else [args.flood_kind]
    runs = []
    for i, kind in enumerate(kinds):
        meta = _meta() | ({"loadavg_before": args.loadavg_before} if i == 0 else {})
        run, log = await _with_server(
            args.flood_sessions + 10, {}, lambda server, kind=kind: bench_flood(server, kind, args)
        )
        runs.append(run | {"meta": meta, "server_log": log, "server_view": _flood_seen(run, log)})
    return {"meta": runs[0]["meta"], "runs": runs}


def _flood_seen(run: dict, log: dict) -> dict:
    """What the server log says: when the server first dropped the flooder's input and when
    it closed it (seconds after the flood began), and whose input it dropped besides."""
    flooder = run["flooder"]
    sid, t0 = flooder.get("session_id"), flooder.get("started_wall")
    events = log["events"]

    def first(text: str) -> float | None:
        ats = [e["at"] for e in events if e["session_id"] == sid and text in e["message"]]
        return round(min(ats) - t0, 2) if ats and t0 else None

    others = Counter(
        e["session_id"]
        for e in events
        if e["session_id"] != sid and "over the session's budget" in e["message"]
    )
    return {
        "first_drop_after_s": first("over the session's budget"),
        "flood_close_after_s": first("closing a client that floods"),
        "other_sessions_with_drops": len(others),
        "other_sessions_drop_episodes": sum(others.values()),
    }


async def _main_capacity(args: argparse.Namespace) -> dict:
    attempts = args.attempts or 2 * args.cap
    env = {"REALTIME_MAX_SESSIONS_PER_WORKER": str(args.cap)}
    capacity, log = await _with_server(
        attempts + 10, env, lambda server: bench_capacity(server, args)
    )
    return {
        "meta": _meta() | {"loadavg_before": args.loadavg_before},
        "server_env": env,
        "capacity": capacity,
        "server_log": log,
    }


async def _main_large(args: argparse.Namespace) -> dict:
    large, log = await _with_server(10, {}, lambda server: bench_large(server, args))
    return {
        "meta": _meta() | {"loadavg_before": args.loadavg_before},
        "parameters": {
            "large_appends": args.large_appends,
            "large_pcm_bytes": args.large_pcm_bytes,
            "large_gap_s": args.large_gap_s,
            "retrieve": not args.no_retrieve,
            "duration_s": args.duration_s,
        },
        "large": large,
        "server_log": log,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--scenario", choices=["load", "flood", "capacity", "large"], default="load"
    )
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument(
        "--duration-s",
        type=float,
        default=None,
        help="load: streaming time (30); capacity: after the last attempt (20); large: 40.",
    )
    parser.add_argument("--idle-sessions", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--flood-kind", choices=["appends", "tiny", "both"], default="both")
    parser.add_argument("--flood-sessions", type=int, default=FLOOD_SESSIONS)
    parser.add_argument("--flood-s", type=float, default=FLOOD_S)
    parser.add_argument("--flood-append-ms", type=int, default=FLOOD_APPEND_MS)
    parser.add_argument(
        "--cap",
        type=int,
        default=CAPACITY_CAP,
        help="capacity: REALTIME_MAX_SESSIONS_PER_WORKER given to the server.",
    )
    parser.add_argument("--attempts", type=int, default=0, help="capacity: default 2 x --cap.")
    parser.add_argument("--large-appends", type=int, default=LARGE_APPENDS)
    parser.add_argument("--large-pcm-bytes", type=int, default=LARGE_PCM_BYTES)
    parser.add_argument(
        "--large-gap-s",
        type=float,
        default=0.0,
        help="large: pause after each append (0: back to back; 8.5 keeps within 1 MiB/s).",
    )
    parser.add_argument("--no-retrieve", action="store_true", help="large: no session B.")
    parser.add_argument("--out", type=Path, default=None, help="Results file (JSON).")
    parser.add_argument("--no-readme", action="store_true", help="Leave bench/README.md alone.")
    parser.add_argument("--keep-logs", type=Path, default=None, help="Copy server logs here.")
    # A client role in its own process (see Worker); not for direct use.
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--worker-params", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(_worker_main(args))
        return
    global KEEP_LOGS_IN  # noqa: PLW0603 - read by Server.log_report
    KEEP_LOGS_IN = args.keep_logs
    if args.duration_s is None:
        args.duration_s = SCENARIO_DURATION_S.get(args.scenario, 0.0)
    args.loadavg_before = os.getloadavg()
    name = "load" if args.scenario == "load" else f"load-{args.scenario}"
    if args.scenario == "large" and args.large_gap_s:
        name += "-paced"
    out = args.out or ROOT / "bench" / "results" / f"{name}.json"
    # The command that reproduces the figures (where logs were kept does not matter).
    shown = list(sys.argv[1:])
    if "--keep-logs" in shown:
        at = shown.index("--keep-logs")
        del shown[at : at + 2]
    command = "python bench/load.py " + " ".join(shown)
    if args.scenario == "load":
        result = asyncio.run(_main_load(args))
        table = _table(result)
    else:
        runner = {"flood": _main_flood, "capacity": _main_capacity, "large": _main_large}
        result = asyncio.run(runner[args.scenario](args)) | {"command": command.strip()}
        tables = {"flood": _flood_table, "capacity": _capacity_table, "large": _large_table}
        table = tables[args.scenario](result)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n")
    print(table)
    logs = [r["server_log"] for r in result.get("runs", [result])]
    for log in logs:
        if log["tracebacks"]:
            print("server tracebacks:\n" + "\n".join(log["first_tracebacks"]))
    if args.scenario == "load" and result["load"]["anomalies"]:
        print("anomalies:", json.dumps(result["load"]["anomalies"][:5], indent=1))
    if args.no_readme:
        return
    write_readme_section(name, result["meta"], table)


if __name__ == "__main__":
    main()
