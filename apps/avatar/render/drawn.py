"""The default renderer: drawn characters on one CPU core, straight into I420 planes.

``prepare`` draws everything a character can show once (``drawing``): the still body, the
head, eyes for each blink stage, gaze and brow, and a mouth for each point of a grid of
mouth poses. A frame is then a copy of the body plus four small blends (head at its idle
offset, eyes, mouth, glasses): no drawing and no colour conversion per frame.

Prepared characters are kept in a small LRU cache keyed by slug, look version and size,
so every call with the same character shares them (read-only).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import product

import numpy as np

from ..life import FrameState, Mode
from ..visemes import MouthPose
from . import drawing
from .base import AvatarRenderer, AvatarStream, CharacterSpec, I420Frame
from .sprites import Sprite, blit

# The mouth pose grid; a frame shows the nearest point.
OPEN_LEVELS = (0.0, 0.12, 0.25, 0.4, 0.55, 0.72, 0.9)
WIDTH_LEVELS = (0.72, 0.86, 1.0, 1.15, 1.3)
ROUND_LEVELS = (0.0, 0.5, 1.0)
TEETH_LEVELS = (0.0, 0.5, 0.9)
# Eyes: lid stages, gaze (ahead, thinking: up and aside) and brows (rest, raised).
LID_LEVELS = (0.0, 0.35, 0.7, 1.0)
GAZES = ((0.0, 0.0), (0.45, 0.35))
BROWS = (0.0, 1.0)


def _nearest(levels: tuple[float, ...], value: float) -> int:
    return min(range(len(levels)), key=lambda i: abs(levels[i] - value))


def mouth_key(pose: MouthPose) -> tuple[int, int, int, int]:
    """The grid point a mouth pose is drawn with."""
    # Closed (or all but) is drawn closed; any real opening shows at least the first level.
    open_index = max(1, _nearest(OPEN_LEVELS, pose.open)) if pose.open >= 0.06 else 0
    return (
        open_index,
        _nearest(WIDTH_LEVELS, pose.width),
        _nearest(ROUND_LEVELS, pose.round),
        _nearest(TEETH_LEVELS, pose.teeth),
    )


def mouth_grid() -> Iterator[tuple[tuple[int, int, int, int], MouthPose]]:
    """Every point of the mouth-pose grid: its ``mouth_key`` and its pose."""
    for key in product(
        range(len(OPEN_LEVELS)),
        range(len(WIDTH_LEVELS)),
        range(len(ROUND_LEVELS)),
        range(len(TEETH_LEVELS)),
    ):
        o, w, r, t = key
        yield (
            key,
            MouthPose(
                open=OPEN_LEVELS[o],
                width=WIDTH_LEVELS[w],
                round=ROUND_LEVELS[r],
                teeth=TEETH_LEVELS[t],
            ),
        )


@dataclass(frozen=True, slots=True)
class Placed:
    """A sprite and where its top-left sits when the head is at rest."""

    sprite: Sprite
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class DrawnCharacter:
    """Everything one character shows at one size, ready to blend."""

    width: int
    height: int
    base: tuple[np.ndarray, np.ndarray, np.ndarray]
    head: Placed
    eyes: dict[tuple[int, int, int], Placed]
    mouths: dict[tuple[int, int, int, int], Placed]
    overlay: Placed | None


def _placed(layer: drawing.Layer) -> Placed:
    rgba, left, top = layer
    sprite, x, y = Sprite.from_rgba(rgba).cropped()
    return Placed(sprite, left + x, top + y)


def prepare_character(character: CharacterSpec, *, width: int, height: int) -> DrawnCharacter:
    """Draw every layer and variant of ``character`` (takes a second or so; cache it)."""
    if width % 2 or height % 2:
        raise ValueError("I420 frames need an even width and height")
    look = character.look
    geometry = drawing.Geometry()
    base_rgba = drawing.base_layer(width, height, geometry, look)
    base = Sprite.from_rgba(base_rgba)
    head = _placed((drawing.head_layer(width, height, geometry, look), 0, 0))
    eyes = {
        (lid, gaze, brow): _placed(
            drawing.eyes_layer(
                width,
                height,
                geometry,
                look,
                closed=LID_LEVELS[lid],
                gaze=GAZES[gaze],
                brows_up=BROWS[brow],
            )
        )
        for lid, gaze, brow in product(range(len(LID_LEVELS)), range(len(GAZES)), range(len(BROWS)))
    }
    mouths = {
        key: _placed(drawing.mouth_layer(width, height, geometry, pose, look))
        for key, pose in mouth_grid()
    }
    overlay = (
        _placed(drawing.glasses_layer(width, height, geometry))
        if look.get("accessory") == "glasses"
        else None
    )
    return DrawnCharacter(
        width=width,
        height=height,
        base=(base.y, base.u, base.v),
        head=head,
        eyes=eyes,
        mouths=mouths,
        overlay=overlay,
    )


class DrawnStream(AvatarStream):
    """Frames of one prepared character; reuses one set of planes."""

    def __init__(self, character: DrawnCharacter) -> None:
        self.character = character
        self._planes = tuple(plane.copy() for plane in character.base)

    def render(self, state: FrameState) -> I420Frame:
        """Body, then head, eyes, mouth and glasses at the head's idle offset."""
        c = self.character
        planes = self._planes
        for dst, src in zip(planes, c.base, strict=True):
            np.copyto(dst, src)
        scale = c.width / 512.0
        dx = round(state.head.dx * scale)
        dy = round((state.head.dy - 0.8 * state.breath) * scale)
        blit(planes, c.head.sprite, c.head.x + dx, c.head.y + dy)
        lid = _nearest(LID_LEVELS, state.eyes_closed)
        gaze = 1 if state.gaze_x or state.gaze_y else 0
        brow = 1 if state.mode is Mode.LISTENING else 0
        eyes = c.eyes[(lid, gaze, brow)]
        blit(planes, eyes.sprite, eyes.x + dx, eyes.y + dy)
        mouth = c.mouths[mouth_key(state.mouth)]
        blit(planes, mouth.sprite, mouth.x + dx, mouth.y + dy)
        if c.overlay is not None:
            blit(planes, c.overlay.sprite, c.overlay.x + dx, c.overlay.y + dy)
        return I420Frame(*planes)


class DrawnRenderer(AvatarRenderer):
    """The default, CPU-only renderer.

    Drawn characters come from their look parameters; portrait photos are animated by
    warping (``portrait``).
    """

    def __init__(self, cache_size: int = 8) -> None:
        self._cache: OrderedDict[tuple[str, str, int, int], DrawnCharacter] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def prepared(self, character: CharacterSpec, *, width: int, height: int) -> DrawnCharacter:
        """The prepared character, drawn now if not cached (blocking: call off the loop)."""
        key = (
            character.slug,
            character.version or repr(sorted(character.look.items())),
            width,
            height,
        )
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
        if character.kind == "portrait":
            from .portrait import prepare_portrait

            drawn = prepare_portrait(character, width=width, height=height)
        else:
            drawn = prepare_character(character, width=width, height=height)
        with self._lock:
            self._cache[key] = drawn
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return drawn

    def stream(self, character: CharacterSpec, *, width: int, height: int) -> AvatarStream:
        """A stream of ``character`` (prepares it first if needed)."""
        return DrawnStream(self.prepared(character, width=width, height=height))
