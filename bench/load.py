"""Load-test the realtime WebSocket server on the fake engines: event latency and idle memory.

    .venv/bin/python bench/load.py                      # 20 sessions x 30 s, 50 idle sessions
    .venv/bin/python bench/load.py --sessions 40 --duration-s 60 --idle-sessions 100

Starts its own Daphne on the test settings (FakeVad, FakeAsr, FakeTts, ScriptedLlm), then:

1. idle: opens N sessions that only wait for ``session.created``; server RSS per session;
2. load: M sessions stream PCM16 24 kHz in real time (20 ms appends on absolute deadlines,
   1.5 s of a loud tone then 2 s of silence, repeated) with server_vad, and measure probe
   round trips (an invalid event answered by an ``error``), speech end -> speech_stopped and
   speech_stopped -> first output audio delta.

Client and server share the machine. Results go to bench/results/load.json and the table in
bench/README.md; the server log is scanned for tracebacks, which are reported, not hidden.
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
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from pathlib import Path

import numpy as np
import websockets
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
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
SILENCE_DURATION_MS = 300
PROBE_EVERY_S = 0.25
TONE_HZ = 250  # 5 whole periods per 20 ms chunk, so consecutive chunks join without clicks
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20
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


def _append_event(samples: np.ndarray) -> str:
    audio = base64.b64encode(samples.astype("<i2").tobytes()).decode("ascii")
    return json.dumps({"type": "input_audio_buffer.append", "audio": audio})


_t = np.arange(CHUNK_SAMPLES) / RATE
TONE_APPEND = _append_event(0.3 * 32767 * np.sin(2 * np.pi * TONE_HZ * _t))  # about -13 dBFS
SILENCE_APPEND = _append_event(np.zeros(CHUNK_SAMPLES))


# --- server process ------------------------------------------------------------------------


class Server:
    """A Daphne on the test settings, its pid (for /proc) and its log file."""

    def __init__(self, var_dir: Path, max_sessions: int) -> None:
        self.var_dir = var_dir
        self.env = scripted_server_env(var_dir)
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
        return {
            "lines": text.count("\n"),
            "tracebacks": len(tracebacks),
            "error_lines": len(errors),
            "first_errors": errors[:5],
            "warning_lines": len(warnings),
            "first_warnings": warnings[:5],
            "first_tracebacks": [b[-4000:] for b in tracebacks[:2]],
        }


# --- clients -------------------------------------------------------------------------------


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


async def _open(url: str, key: str) -> tuple[websockets.ClientConnection, float]:
    """Connect and wait for ``session.created``; returns the socket and the seconds it took."""
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
    if first.get("type") != "session.created":
        await ws.close()
        raise RuntimeError(f"expected session.created, got {first}")
    return ws, time.perf_counter() - start


class LoadSession:
    """One streaming client: sender on a 20 ms schedule, receiver timing server events."""

    def __init__(self, index: int, lead_in_chunks: int, probe_phase_s: float) -> None:
        self.index = index
        self.lead_in_chunks = lead_in_chunks
        self.probe_phase_s = probe_phase_s
        self.ws: websockets.ClientConnection | None = None
        self.connect_s: float | None = None
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
        self._streaming = True
        self._settled = asyncio.Event()

    def _check_settled(self) -> None:
        """After streaming: set once no response, first audio or probe answer is awaited."""
        if not (self._streaming or self.open_responses or self._stopped_at or self.probes_sent):
            self._settled.set()

    async def run(self, url: str, key: str, start_at: float, cycles: int, drain_s: float):
        try:
            self.ws, self.connect_s = await _open(url, key)
            await self.ws.send(SESSION_UPDATE)
            receiver = asyncio.ensure_future(self._receive())
            await self._stream(start_at, cycles)
            # Let the last turn's response finish (the stream ends in a silence).
            self._streaming = False
            self._check_settled()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), drain_s)
            await self.ws.close()
            await asyncio.wait_for(receiver, 10)
        except Exception as exc:  # noqa: BLE001 - reported per session, the run goes on
            self.failure = f"{type(exc).__name__}: {exc}"
            if self.ws is not None:
                await self.ws.close()

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


async def _warm_up(url: str, key: str) -> None:
    """One short turn, so engines, the LLM and the code paths are loaded before measuring."""
    ws, _ = await _open(url, key)
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
    rng = random.Random(seed)
    cycles = max(1, round(duration_s * 1000 / (SPEECH_MS + SILENCE_MS)))
    sessions = [
        LoadSession(
            i,
            lead_in_chunks=i * CYCLE_CHUNKS // n,  # spread the turns evenly over a cycle
            probe_phase_s=rng.uniform(0, PROBE_EVERY_S),
        )
        for i in range(n)
    ]
    rss_samples: list[float] = []
    cpu_samples: list[tuple[float, float]] = []

    async def monitor(stop: asyncio.Event) -> None:
        while not stop.is_set():
            rss_samples.append(server.rss_mb())
            cpu_samples.append((time.perf_counter(), server.cpu_s()))
            await asyncio.sleep(1.0)

    # Everyone connects first, then all streams start on a shared clock a moment later.
    start_at = time.perf_counter() + 3.0 + n * 0.05
    stop = asyncio.Event()
    watcher = asyncio.ensure_future(monitor(stop))
    cpu0, wall0, client0, busy0 = server.cpu_s(), time.perf_counter(), os.times(), machine_busy_s()
    await asyncio.gather(*(s.run(server.url, server.key, start_at, cycles, 5.0) for s in sessions))
    cpu1, wall1, client1, busy1 = server.cpu_s(), time.perf_counter(), os.times(), machine_busy_s()
    stop.set()
    await watcher
    wall = wall1 - wall0
    streamed_s = (cycles * CYCLE_CHUNKS) * CHUNK_S

    def total(attr: str) -> list[float]:
        return [v for s in sessions for v in getattr(s, attr)]

    counts: Counter[str] = Counter()
    status: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for s in sessions:
        counts.update(s.counts)
        status.update(s.response_status)
        errors.update(s.errors)
    turns = sum(s.turns for s in sessions)
    anomalies = []
    for s in sessions:
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
    lateness = total("lateness")
    client_cpu = (client1.user - client0.user) + (client1.system - client0.system)
    # Per second of the run: probe round trips and server CPU, to see where the tail comes from.
    by_second: dict[int, list[float]] = {}
    for sent, rtt in total("probe_log"):
        by_second.setdefault(int(sent - start_at), []).append(rtt * 1000)
    cpu_by_second = {
        int(t1 - start_at): round(100 * (c1 - c0) / (t1 - t0), 1)
        for (t0, c0), (t1, c1) in zip(cpu_samples, cpu_samples[1:], strict=False)
    }
    timeline = [
        {
            "second": sec,
            "probes": len(v),
            "p50_ms": _r(pct(v, 50)),
            "max_ms": _r(max(v)),
            "server_cpu_percent": cpu_by_second.get(sec + 1),
        }
        for sec, v in sorted(by_second.items())
    ]
    return {
        "sessions": n,
        "cycles_per_session": cycles,
        "streamed_s_per_session": streamed_s,
        "wall_s": round(wall, 1),
        "sessions_failed": sum(1 for s in sessions if s.failure),
        "connect_to_session_created": summary_ms([s.connect_s for s in sessions if s.connect_s]),
        "probe_rtt": summary_ms(total("probe_rtt")),
        "probes_unanswered": sum(len(s.probes_sent) for s in sessions),
        "speech_end_to_speech_stopped": summary_ms(total("stop_latency")),
        "decisive_append_to_speech_stopped": summary_ms(total("stop_after_decisive")),
        "speech_stopped_to_first_audio": summary_ms(total("first_audio_latency")),
        "send_lateness": summary_ms(lateness),
        "send_lateness_over_20ms": sum(1 for v in lateness if v > CHUNK_S),
        "turns_sent": turns,
        "speech_started": counts["input_audio_buffer.speech_started"],
        "speech_stopped": counts["input_audio_buffer.speech_stopped"],
        "unexpected_speech_stopped": counts["unexpected_speech_stopped"],
        "responses_created": counts["response.created"],
        "responses_done": dict(status),
        "audio_deltas": counts["response.output_audio.delta"],
        "audio_received_s": round(sum(s.audio_bytes for s in sessions) / (2 * RATE), 1),
        "other_errors": dict(errors),
        "events_received": sum(counts.values()) - counts["unexpected_speech_stopped"],
        "server_cpu_percent": round(100 * (cpu1 - cpu0) / wall, 1),
        # Everything the server did in the phase, divided by the appends it was sent.
        "server_cpu_ms_per_append": round(1000 * (cpu1 - cpu0) / max(1, len(lateness)), 3),
        "client_cpu_percent": round(100 * client_cpu / wall, 1),
        # Anything else on the machine (another job would distort every figure here).
        "other_processes_cpu_percent": round(
            100 * ((busy1 - busy0) - (cpu1 - cpu0) - client_cpu) / wall, 1
        ),
        "server_rss_mb": {
            "start": round(rss_samples[0], 1) if rss_samples else None,
            "max": round(max(rss_samples), 1) if rss_samples else None,
            "end": round(rss_samples[-1], 1) if rss_samples else None,
        },
        "anomalies": anomalies,
        "timeline": timeline,
    }


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


async def _main(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="rt-load-") as tmp:
        server = Server(Path(tmp), max_sessions=args.sessions + args.idle_sessions + 10)
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
        "meta": {
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "websockets": websockets.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "loadavg_before": os.getloadavg(),
        },
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--duration-s", type=float, default=30.0)
    parser.add_argument("--idle-sessions", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-readme", action="store_true", help="Leave bench/README.md alone.")
    args = parser.parse_args()
    result = asyncio.run(_main(args))
    out = ROOT / "bench" / "results" / "load.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    table = _table(result)
    print(table)
    if result["load"]["anomalies"]:
        print("anomalies:", json.dumps(result["load"]["anomalies"][:5], indent=1))
    if result["server_log"]["tracebacks"]:
        print("server tracebacks:\n" + "\n".join(result["server_log"]["first_tracebacks"]))
    if args.no_readme:
        return
    write_readme_section("load", result["meta"], table)


if __name__ == "__main__":
    main()
