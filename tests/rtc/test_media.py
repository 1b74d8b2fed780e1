"""The reply track, the avatar track and the sink that feeds them (no network)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import av
import numpy as np
import pytest

from apps.avatar.life import Animator
from apps.avatar.look import full_look
from apps.avatar.render.base import CharacterSpec
from apps.avatar.render.drawn import DrawnRenderer
from apps.rtc.call import mono_int16
from apps.rtc.media import (
    AUDIO_RATE,
    FRAME_SAMPLES,
    AvatarVideoTrack,
    MediaClock,
    ReplyAudioTrack,
)
from apps.rtc.sink import TrackAudioSink
from tests.realtime.fakes import Harness

pytestmark = pytest.mark.asyncio(loop_scope="function")

POOL = ThreadPoolExecutor(2)


def _decode(packets: list[av.Packet]) -> np.ndarray:
    decoder = av.CodecContext.create("libopus", "r")
    decoder.sample_rate = AUDIO_RATE
    out = []
    for packet in packets:
        for frame in decoder.decode(packet):
            out.append(mono_int16(frame))
    return np.concatenate(out) if out else np.zeros(0, np.int16)


async def test_the_reply_track_plays_what_is_pushed_then_silence_on_the_clock() -> None:
    clock = MediaClock()
    played: list[tuple[object, int]] = []
    track = ReplyAudioTrack(clock, on_played=lambda tag, n: played.append((tag, n)))
    tone = (0.3 * 32767 * np.sin(np.arange(AUDIO_RATE // 5) * 0.05)).astype(np.int16)
    start_ms = track.push(tone, "a")
    assert start_ms == pytest.approx(0.0, abs=5.0)
    packets = []
    started = time.monotonic()
    for _ in range(20):
        packets.append(await track.recv())
    elapsed = time.monotonic() - started
    # 20 frames of 20 ms are paced on the clock, not sent at once.
    assert elapsed > 0.3
    assert sum(n for tag, n in played if tag == "a") == len(tone)
    assert track.queued_ms == 0
    # RTP time advances by one frame per packet.
    pts = [int(p.pts) for p in packets]
    assert all(b - a == FRAME_SAMPLES for a, b in zip(pts, pts[1:], strict=False))
    audio = _decode(packets)
    loud = np.sqrt(np.mean(audio[: AUDIO_RATE // 10].astype(float) ** 2))
    quiet = np.sqrt(np.mean(audio[-AUDIO_RATE // 10 :].astype(float) ** 2))
    assert loud > 2000 and quiet < 50
    track.stop()


async def test_clearing_drops_what_is_queued_and_next_play_starts_now() -> None:
    clock = MediaClock()
    track = ReplyAudioTrack(clock)
    track.push(np.ones(AUDIO_RATE, np.int16), "a")
    await track.recv()
    assert track.queued_ms > 900
    dropped = track.clear()
    assert dropped["a"] > AUDIO_RATE * 0.9
    assert track.queued_ms == 0
    assert track.next_play_ms() == pytest.approx(clock.now_ms(), abs=25)
    track.stop()


async def test_a_producer_waits_for_room_within_its_lead() -> None:
    track = ReplyAudioTrack(MediaClock())
    track.push(np.zeros(AUDIO_RATE // 2, np.int16), "a")  # 500 ms queued
    waiter = asyncio.ensure_future(track.wait_for_room(200))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    for _ in range(16):  # play 320 ms
        await track.recv()
    await asyncio.wait_for(waiter, 1)
    track.stop()


async def test_the_video_track_stamps_frames_from_the_media_clock_and_skips_late_ones() -> None:
    clock = MediaClock()
    stream = DrawnRenderer().stream(
        CharacterSpec(slug="t", look=full_look({})), width=128, height=128
    )
    track = AvatarVideoTrack(clock, Animator(1), stream, fps=25, executor=POOL)
    first = await track.recv()
    second = await track.recv()
    assert isinstance(first, av.VideoFrame) and first.width == 128
    assert second.pts - first.pts == 3600  # 40 ms at 90 kHz
    await asyncio.sleep(0.3)  # the loop was busy: frames in between are skipped, not queued
    third = await track.recv()
    assert third.pts - second.pts >= 3600 * 5
    track.encode_vp8()
    packet = await track.recv()
    assert isinstance(packet, av.Packet) and packet.pts > third.pts
    track.stop()


async def test_the_sink_places_lips_where_the_audio_plays_and_reports_the_buffer() -> None:
    harness = Harness()
    session = harness.session
    clock = MediaClock()
    track = ReplyAudioTrack(clock)
    animator = Animator(3)
    sink = TrackAudioSink(session, track, animator)
    track.on_played = sink._played  # as the constructor wires it
    from apps.realtime.session.conversation import Item
    from apps.realtime.session.sink import AudioTarget
    from apps.voice.tts.base import Phoneme

    item = Item(type="message", id="item_1", role="assistant", status="in_progress")
    item.content = [{"type": "output_audio", "transcript": ""}]
    target = AudioTarget("resp_1", item, 0, 0, {"type": "audio/pcm", "rate": 24000})
    # Something is already playing: the new part starts where the queue ends.
    track.push(np.zeros(AUDIO_RATE // 4, np.int16), "earlier")
    samples = np.full(24_000 // 2, 8000, np.int16)  # 500 ms at 24 kHz
    await sink.play(samples, 24_000, target, (Phoneme("a", 0.0, 250.0), Phoneme("o", 250.0, 250.0)))
    assert item.audio_ms == pytest.approx(500, abs=1)
    # The mouth is open 250 ms in (the queued 250 ms first), closed before.
    assert animator.mouth(100.0).open < 0.05
    assert animator.mouth(250.0 + 150.0).open > 0.2
    await sink.finish(target)
    frames = 0
    while track.queued_ms > 0 or frames < 40:
        await track.recv()
        frames += 1
    await asyncio.sleep(0.05)
    kinds = [e["type"] for e in harness.events]
    assert kinds.count("output_audio_buffer.started") == 1
    assert kinds.count("output_audio_buffer.stopped") == 1
    assert kinds.index("output_audio_buffer.started") < kinds.index("output_audio_buffer.stopped")
    track.stop()
    await session.shutdown()


async def test_clearing_truncates_the_item_to_what_was_played() -> None:
    harness = Harness()
    session = harness.session
    track = ReplyAudioTrack(MediaClock())
    sink = TrackAudioSink(session, track, None)
    from apps.realtime.session.conversation import Item, Spoken
    from apps.realtime.session.sink import AudioTarget

    item = Item(type="message", id="item_2", role="assistant", status="in_progress")
    item.content = [{"type": "output_audio", "transcript": "one two three four"}]
    item.spoken = [Spoken(0, 1000, "one two three four")]
    session.conversation.add(item)
    target = AudioTarget("resp_2", item, 0, 0, {"type": "audio/pcm", "rate": 24000})
    await sink.play(np.full(24_000, 4000, np.int16), 24_000, target)  # 1 s queued
    for _ in range(15):  # 300 ms played
        await track.recv()
    await sink.clear()
    truncated = next(e for e in harness.events if e["type"] == "conversation.item.truncated")
    assert 260 <= truncated["audio_end_ms"] <= 340
    assert item.truncated_at_ms == truncated["audio_end_ms"]
    assert item.content[0]["transcript"] and item.content[0]["transcript"] != "one two three four"
    assert [e["type"] for e in harness.events].count("output_audio_buffer.cleared") == 1
    assert track.queued_ms == 0
    track.stop()
    await session.shutdown()


async def test_mono_int16_downmixes_packed_and_planar_frames() -> None:
    left = np.arange(960, dtype=np.int16)
    right = -left
    packed = np.stack([left, right], axis=1).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(packed, format="s16", layout="stereo")
    assert np.array_equal(mono_int16(frame), np.zeros(960, np.int16))
    planar = av.AudioFrame.from_ndarray(np.stack([left, left]), format="s16p", layout="stereo")
    assert np.array_equal(mono_int16(planar), left)
    floats = av.AudioFrame.from_ndarray(
        np.full((1, 480), 0.5, np.float32), format="flt", layout="mono"
    )
    assert int(mono_int16(floats)[0]) == 16383
