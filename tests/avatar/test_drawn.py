"""The drawn renderer: distinct characters, distinct mouths, closed in silence, blinks."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from apps.avatar.life import Animator, FrameState, HeadPose, Mode
from apps.avatar.lipsync import VisemeTrack
from apps.avatar.look import full_look
from apps.avatar.render.base import CharacterSpec, I420Frame
from apps.avatar.render.drawing import Geometry
from apps.avatar.render.drawn import DrawnRenderer, DrawnStream, mouth_key, prepare_character
from apps.avatar.visemes import POSES, REST, MouthPose, Viseme
from apps.web.management.commands.seed_demo import CHARACTERS

SIZE = 256
G = Geometry()


@pytest.fixture(scope="module")
def streams() -> dict[str, DrawnStream]:
    return {
        c["slug"]: DrawnStream(
            prepare_character(
                CharacterSpec(slug=c["slug"], look=full_look(c["look"])), width=SIZE, height=SIZE
            )
        )
        for c in CHARACTERS
    }


def _state(
    mouth: MouthPose = REST, *, eyes_closed: float = 0.0, mode: Mode = Mode.SPEAKING
) -> FrameState:
    return FrameState(
        t_ms=0.0,
        mouth=mouth,
        eyes_closed=eyes_closed,
        head=HeadPose(0.0, 0.0, 0.0),
        breath=0.0,
        mode=mode,
        gaze_x=0.0,
        gaze_y=0.0,
    )


def _copy(frame: I420Frame) -> I420Frame:
    return I420Frame(frame.y.copy(), frame.u.copy(), frame.v.copy())


def _region(frame: I420Frame, cy: float, half_w: float, half_h: float) -> np.ndarray:
    x0, x1 = int((G.cx - half_w) * SIZE), int((G.cx + half_w) * SIZE)
    y0, y1 = int((cy - half_h) * SIZE), int((cy + half_h) * SIZE)
    return frame.y[y0:y1, x0:x1].astype(np.int16)


def _mouth(frame: I420Frame) -> np.ndarray:
    return _region(frame, G.mouth_y, 0.1, 0.06)


def _eyes(frame: I420Frame) -> np.ndarray:
    return _region(frame, G.eye_y, 0.13, 0.03)


def test_frames_are_i420_of_the_asked_size(streams: dict[str, DrawnStream]) -> None:
    frame = streams["ava"].render(_state())
    assert frame.y.shape == (SIZE, SIZE) and frame.u.shape == frame.v.shape == (
        SIZE // 2,
        SIZE // 2,
    )
    assert frame.y.dtype == frame.u.dtype == np.uint8
    assert frame.to_rgb().shape == (SIZE, SIZE, 3)
    with pytest.raises(ValueError, match="even"):
        prepare_character(CharacterSpec(slug="x", look=full_look({})), width=255, height=256)


def test_the_seeded_characters_are_clearly_different(streams: dict[str, DrawnStream]) -> None:
    frames = {
        slug: _copy(stream.render(_state())).to_rgb().astype(np.int16)
        for slug, stream in streams.items()
    }
    for a, b in combinations(frames, 2):
        assert np.abs(frames[a] - frames[b]).mean() > 12, (a, b)


def test_each_viseme_gives_a_distinct_mouth(streams: dict[str, DrawnStream]) -> None:
    stream = streams["leo"]
    mouths = {
        v: _mouth(_copy(stream.render(_state(POSES[v])))) for v in Viseme if v is not Viseme.PP
    }
    for a, b in combinations(mouths, 2):
        assert np.abs(mouths[a] - mouths[b]).mean() > 0.8, (a, b)


def test_the_mouth_is_closed_in_every_silent_frame(streams: dict[str, DrawnStream]) -> None:
    stream = streams["girl2"]
    closed = _mouth(_copy(stream.render(_state(REST))))
    animator = Animator(seed=5)
    phonemes = [
        ("h", 0, 80),
        ("ə", 80, 90),
        ("l", 170, 70),
        ("ˈoʊ", 240, 160),
        (" ", 400, 500),
        ("w", 900, 80),
        ("ɜː", 980, 140),
        ("l", 1120, 60),
        ("d", 1180, 80),
        ("sil", 1260, 600),
    ]

    class P:
        def __init__(self, symbol: str, start_ms: float, duration_ms: float) -> None:
            self.symbol, self.start_ms, self.duration_ms = symbol, start_ms, duration_ms

    track = VisemeTrack([P(*p) for p in phonemes])
    animator.speak(track, start_ms=400)
    silent = 0
    for k in range(75):
        t_ms = k * 40.0
        local = t_ms - 400
        sounding = any(s.start_ms <= local < s.end_ms + 40 for s in track.spans)
        state = animator.state(t_ms)
        if sounding:
            continue
        silent += 1
        still = FrameState(**{**_fields(state), "head": HeadPose(0, 0, 0), "breath": 0.0})
        assert mouth_key(still.mouth)[0] == 0, t_ms
        assert np.array_equal(_mouth(stream.render(still)), closed), t_ms
    assert silent >= 30


def _fields(state: FrameState) -> dict[str, object]:
    return {name: getattr(state, name) for name in FrameState.__slots__}


def test_blinks_and_states_show_in_the_eyes(streams: dict[str, DrawnStream]) -> None:
    stream = streams["qiqi"]
    open_eyes = _eyes(_copy(stream.render(_state(eyes_closed=0.0))))
    shut = _eyes(_copy(stream.render(_state(eyes_closed=1.0))))
    listening = _region(
        _copy(stream.render(_state(mode=Mode.LISTENING))), G.eye_y - 0.05, 0.13, 0.04
    )
    speaking = _region(_copy(stream.render(_state(mode=Mode.SPEAKING))), G.eye_y - 0.05, 0.13, 0.04)
    assert np.abs(open_eyes - shut).mean() > 5
    assert np.abs(listening - speaking).mean() > 1  # brows raised while listening


def test_the_head_moves_with_idle_motion(streams: dict[str, DrawnStream]) -> None:
    stream = streams["wang-laoshi"]
    still = _copy(stream.render(_state()))
    moved_state = FrameState(**{**_fields(_state()), "head": HeadPose(6.0, -4.0, 0.0)})
    moved = _copy(stream.render(moved_state))
    assert not np.array_equal(still.y, moved.y)
    # The body stays: the bottom rows are the same.
    assert np.array_equal(still.y[-20:], moved.y[-20:])


def test_the_renderer_caches_prepared_characters() -> None:
    renderer = DrawnRenderer(cache_size=1)
    spec = CharacterSpec(slug="ava", look=full_look({}), version="1")
    first = renderer.prepared(spec, width=64, height=64)
    assert renderer.prepared(spec, width=64, height=64) is first
    changed = CharacterSpec(slug="ava", look=full_look({"hair": "#ff0000"}), version="2")
    assert renderer.prepared(changed, width=64, height=64) is not first
