"""Avatar costs: render ms/frame per character, VP8 and Opus encode, one stream's CPU share.

``.venv/bin/python bench/avatar.py [--seconds 10] [--size 512] [--fps 25]``

For each seeded character (drawn kind): the time to prepare it (draw every layer and mouth
once), then frames of it speaking (a phoneme track cycling through every viseme, blinks and
idle motion on): render time per frame, and VP8 encode time of that output (libvpx through
PyAV, real-time settings: what a WebRTC sender does). Then one whole stream paced at the
frame rate for ``--seconds`` (render + VP8 + 20 ms Opus packets of speech): its CPU share of
one core and so the streams one core holds. Results: ``results/avatar.json`` and the
``avatar`` section of ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_site.settings.test")

import django  # noqa: E402

django.setup()

import av  # noqa: E402
import numpy as np  # noqa: E402

from apps.avatar.life import Animator  # noqa: E402
from apps.avatar.lipsync import VisemeTrack  # noqa: E402
from apps.avatar.look import full_look  # noqa: E402
from apps.avatar.portrait import load_portrait, locate_face  # noqa: E402
from apps.avatar.render.base import CharacterSpec  # noqa: E402
from apps.avatar.render.drawn import DrawnStream, prepare_character  # noqa: E402
from apps.avatar.render.portrait import prepare_portrait  # noqa: E402
from apps.avatar.webm import i420_video_frame  # noqa: E402
from apps.voice.tts.base import Phoneme  # noqa: E402
from apps.web.management.commands.seed_demo import CHARACTERS  # noqa: E402
from bench.common import pct, write_readme_section  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "avatar.json"
PHOTO = ROOT / "tests" / "data" / "portrait-astronaut.jpg"
SYMBOLS = "h ə l ˈoʊ w ɜː l d m æ f θ ʃ iː uː ɑː b s".split()


def speaking_animator(seconds: float) -> Animator:
    """An animator talking for ``seconds``: 90 ms phonemes, a pause every 12."""
    phonemes, t = [], 0.0
    index = 0
    while t < seconds * 1000:
        if index % 12 == 11:
            t += 300
        phonemes.append(Phoneme(SYMBOLS[index % len(SYMBOLS)], t, 90.0))
        t += 90
        index += 1
    animator = Animator(seed=11)
    animator.speak(VisemeTrack(phonemes), start_ms=0.0)
    return animator


def vp8_encoder(size: int, fps: int) -> av.CodecContext:
    """libvpx VP8 with real-time settings (as a WebRTC sender runs it)."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width = codec.height = size
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, fps)
    codec.framerate = Fraction(fps, 1)
    codec.bit_rate = 1_000_000
    # A key frame only every 10 s (WebRTC asks for one when it needs it): FFmpeg's default
    # group of 12 frames would make every 12th frame a costly key frame.
    codec.gop_size = fps * 10
    codec.thread_count = 1
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    codec.open()
    return codec


def opus_encoder() -> av.CodecContext:
    """libopus at 48 kHz mono, 20 ms packets."""
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = 48_000
    codec.layout = "mono"
    codec.format = "s16"
    codec.bit_rate = 32_000
    codec.open()
    return codec


def portrait_spec() -> CharacterSpec:
    """The test portrait (a public-domain photo), its face found as at upload."""
    face = locate_face(load_portrait(str(PHOTO)))
    assert face is not None
    return CharacterSpec(slug="portrait", look=full_look({}), portrait=PHOTO, face=face)


def prepare(spec: CharacterSpec, size: int) -> Any:
    """A drawn or portrait character, prepared."""
    if spec.kind == "portrait":
        return prepare_portrait(spec, width=size, height=size)
    return prepare_character(spec, width=size, height=size)


def measure_character(spec: CharacterSpec, *, size: int, fps: int, frames: int) -> dict[str, Any]:
    """Prepare time, render and VP8 encode ms per frame for one character."""
    started = time.perf_counter()
    drawn = prepare(spec, size)
    prepare_s = time.perf_counter() - started
    stream = DrawnStream(drawn)
    animator = speaking_animator(frames / fps + 1)
    encoder = vp8_encoder(size, fps)
    render_ms, encode_ms, sizes = [], [], []
    for k in range(frames):
        state = animator.state(1000.0 * k / fps)
        t0 = time.perf_counter()
        frame = stream.render(state)
        t1 = time.perf_counter()
        video_frame = i420_video_frame(frame)
        video_frame.pts = k
        packets = encoder.encode(video_frame)
        t2 = time.perf_counter()
        render_ms.append((t1 - t0) * 1000)
        encode_ms.append((t2 - t1) * 1000)
        sizes.append(sum(p.size for p in packets))
    return {
        "prepare_s": round(prepare_s, 2),
        "render_ms": {
            "p50": round(statistics.median(render_ms), 3),
            "p95": round(pct(render_ms, 95) or 0, 3),
        },
        "vp8_ms": {
            "p50": round(statistics.median(encode_ms), 3),
            "p95": round(pct(encode_ms, 95) or 0, 3),
        },
        "kbit_per_s": round(sum(sizes) * 8 / (frames / fps) / 1000, 1),
    }


def stream_share(spec: CharacterSpec, *, size: int, fps: int, seconds: float) -> dict[str, Any]:
    """One stream paced at ``fps``: render + VP8 + Opus; CPU seconds per wall second."""
    stream = DrawnStream(prepare(spec, size))
    animator = speaking_animator(seconds + 1)
    video, audio = vp8_encoder(size, fps), opus_encoder()
    tone = (0.2 * 32767 * np.sin(2 * np.pi * 220 * np.arange(960) / 48_000)).astype(np.int16)
    frames = int(seconds * fps)
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    audio_pts = 0
    for k in range(frames):
        deadline = wall_before + k / fps
        delay = deadline - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        frame = i420_video_frame(stream.render(animator.state(1000.0 * k / fps)))
        frame.pts = k
        video.encode(frame)
        # Two 20 ms Opus packets per 40 ms video frame.
        for _ in range(2):
            packet = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="s16", layout="mono")
            packet.sample_rate = 48_000
            packet.pts = audio_pts
            audio_pts += 960
            audio.encode(packet)
    wall = time.perf_counter() - wall_before
    cpu = time.process_time() - cpu_before
    share = cpu / wall
    return {
        "seconds": round(wall, 2),
        "cpu_share_of_one_core": round(share, 4),
        "streams_per_core": round(1 / share, 1),
    }


def main() -> None:
    """Run and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cpus": os.cpu_count(),
        "loadavg_before": os.getloadavg(),
        "python": platform.python_version(),
        "size": args.size,
        "fps": args.fps,
    }
    specs = {
        f"{c['slug']} (drawn)": CharacterSpec(slug=c["slug"], look=full_look(c["look"]))
        for c in CHARACTERS
    }
    specs["astronaut photo (portrait)"] = portrait_spec()
    characters = {
        name: measure_character(spec, size=args.size, fps=args.fps, frames=args.frames)
        for name, spec in specs.items()
    }
    shares = {
        kind: stream_share(spec, size=args.size, fps=args.fps, seconds=args.seconds)
        for kind, spec in (
            ("drawn", specs[next(iter(specs))]),
            ("portrait", specs["astronaut photo (portrait)"]),
        )
    }
    results = {"meta": meta, "characters": characters, "streams": shares}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    rows = [
        "| character | prepare s | render ms/frame p50 / p95 | VP8 encode ms/frame p50 / p95 | VP8 kbit/s |",
        "|---|---|---|---|---|",
    ]
    for slug, r in characters.items():
        rows.append(
            f"| {slug} | {r['prepare_s']} | {r['render_ms']['p50']} / {r['render_ms']['p95']} | "
            f"{r['vp8_ms']['p50']} / {r['vp8_ms']['p95']} | {r['kbit_per_s']} |"
        )
    body = (
        f"Command: `python bench/avatar.py --size {args.size} --fps {args.fps}`; {args.frames} frames "
        "per character, speaking (every viseme), blinking, moving.\n\n"
        + "\n".join(rows)
        + f"\n\nOne stream paced at {args.fps} fps for {args.seconds:g} s (render + VP8 + two 20 ms "
        "Opus packets per frame, one process), as a share of one core (target ≤ 20 %): "
        + "; ".join(
            f"{kind} **{r['cpu_share_of_one_core'] * 100:.1f} %**, about **{r['streams_per_core']} "
            "streams per core**"
            for kind, r in shares.items()
        )
        + "."
    )
    print(body)
    if not args.no_readme:
        write_readme_section("avatar", meta, "## Avatar (`bench/avatar.py`)\n\n" + body)


if __name__ == "__main__":
    main()
