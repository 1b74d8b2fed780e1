"""Portrait characters: the face is found in a photo, and the photo talks and blinks."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from apps.avatar.life import FrameState, HeadPose, Mode
from apps.avatar.look import full_look
from apps.avatar.portrait import face_points_from_eyes, load_portrait, locate_face
from apps.avatar.render.base import CharacterSpec, I420Frame
from apps.avatar.render.drawn import DrawnRenderer, DrawnStream
from apps.avatar.render.portrait import prepare_portrait
from apps.avatar.visemes import POSES, REST, MouthPose, Viseme

PHOTO = Path(__file__).resolve().parent.parent / "data" / "portrait-astronaut.jpg"
SIZE = 256


def test_the_face_is_found_in_a_photo() -> None:
    face = locate_face(load_portrait(str(PHOTO)))
    assert face is not None
    (lx, ly), (rx, ry), (mx, my) = face.left_eye, face.right_eye, face.mouth
    # Hand-checked positions in this 320x370 photo, within a few pixels.
    assert abs(lx - 132) < 8 and abs(ly - 126) < 8
    assert abs(rx - 186) < 8 and abs(ry - 129) < 8
    assert lx < mx < rx and my > max(ly, ry) + 30


def test_no_face_means_none_so_the_operator_marks_it() -> None:
    assert locate_face(Image.new("RGB", (400, 400), (200, 170, 150))) is None
    noise = np.random.default_rng(1).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    assert locate_face(Image.fromarray(noise)) is None


def test_marked_eyes_place_the_mouth_below_them_even_when_tilted() -> None:
    level = face_points_from_eyes((100, 100), (160, 100))
    assert level.mouth == (130.0, 160.0)
    tilted = face_points_from_eyes((100, 100), (160, 130))
    assert tilted.mouth[0] < 130  # perpendicular to the eye line
    marked = face_points_from_eyes((100, 100), (160, 100), (131.0, 170.0))
    assert marked.mouth == (131.0, 170.0)


@pytest.fixture(scope="module")
def stream() -> DrawnStream:
    face = locate_face(load_portrait(str(PHOTO)))
    spec = CharacterSpec(slug="astro", look=full_look({}), portrait=PHOTO, face=face)
    return DrawnStream(prepare_portrait(spec, width=SIZE, height=SIZE))


def _state(mouth: MouthPose = REST, closed: float = 0.0) -> FrameState:
    return FrameState(
        t_ms=0.0,
        mouth=mouth,
        eyes_closed=closed,
        head=HeadPose(0.0, 0.0, 0.0),
        breath=0.0,
        mode=Mode.SPEAKING,
        gaze_x=0.0,
        gaze_y=0.0,
    )


def _copy(frame: I420Frame) -> np.ndarray:
    return frame.y.astype(np.int16).copy()


def test_the_closed_mouth_is_the_photos_own(stream: DrawnStream) -> None:
    rest = _copy(stream.render(_state()))
    photo = stream.character.base[0].astype(np.int16)
    # Only the feathered seams of the layers may differ from the aligned photo.
    assert np.abs(rest - photo).mean() < 1.0


def test_each_viseme_moves_the_photos_mouth_differently(stream: DrawnStream) -> None:
    frames = {
        v: _copy(stream.render(_state(POSES[v])))
        for v in Viseme
        if v not in (Viseme.PP, Viseme.SIL)
    }
    rest = _copy(stream.render(_state()))
    mouth = (slice(int(SIZE * 0.5), int(SIZE * 0.75)), slice(int(SIZE * 0.3), int(SIZE * 0.7)))
    for v, frame in frames.items():
        assert np.abs(frame[mouth] - rest[mouth]).mean() > 2, v
    for a, b in combinations(frames, 2):
        assert np.abs(frames[a][mouth] - frames[b][mouth]).mean() > 0.5, (a, b)


def test_the_photo_blinks(stream: DrawnStream) -> None:
    open_eyes = _copy(stream.render(_state()))
    shut = _copy(stream.render(_state(closed=1.0)))
    eyes = (slice(int(SIZE * 0.36), int(SIZE * 0.48)), slice(int(SIZE * 0.3), int(SIZE * 0.7)))
    assert np.abs(open_eyes[eyes] - shut[eyes]).mean() > 3
    outside = (slice(int(SIZE * 0.6), SIZE), slice(0, SIZE))
    assert np.array_equal(open_eyes[outside], shut[outside])


def test_the_default_renderer_animates_portraits_too() -> None:
    face = locate_face(load_portrait(str(PHOTO)))
    spec = CharacterSpec(slug="astro", look=full_look({}), portrait=PHOTO, face=face, version="1")
    frame = DrawnRenderer().stream(spec, width=128, height=128).render(_state(POSES[Viseme.AA]))
    assert frame.y.shape == (128, 128)


def test_the_photo_raises_its_brows_while_listening(stream: DrawnStream) -> None:
    speaking = _copy(stream.render(_state()))
    listening_state = FrameState(
        **{**{n: getattr(_state(), n) for n in FrameState.__slots__}, "mode": Mode.LISTENING}
    )
    listening = _copy(stream.render(listening_state))
    brows = (slice(int(SIZE * 0.28), int(SIZE * 0.4)), slice(int(SIZE * 0.3), int(SIZE * 0.7)))
    assert np.abs(listening[brows] - speaking[brows]).mean() > 0.5
    mouth = (slice(int(SIZE * 0.5), SIZE), slice(0, SIZE))
    assert np.array_equal(listening[mouth], speaking[mouth])
