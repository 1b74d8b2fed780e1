"""The renderer interface: a character and a frame state in, an I420 video frame out.

A renderer is loaded once per process from ``settings.AVATAR_RENDERER`` (dotted ``BACKEND``
plus ``OPTIONS``, like the voice engines), so a neural renderer on a GPU can replace the
default without touching callers. ``prepare`` does the expensive, per-character work once
(the default draws every layer and mouth shape ahead); ``stream`` hands out a cheap
per-call object whose ``render`` is called 25 times a second from a worker thread and must
stay well under a frame's time (the default's budget: 3 ms at 512×512).

Frames are I420 (YUV 4:2:0, BT.601 limited range), the layout the video encoders take
directly, so no colour conversion runs per frame. See ``docs/avatar.md`` for the timing
contract and how a renderer plugs in.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..life import FrameState


@dataclass(frozen=True, slots=True)
class I420Frame:
    """One video frame as three planes (Y full size, U and V half size)."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray

    @property
    def width(self) -> int:
        """Width in pixels."""
        return int(self.y.shape[1])

    @property
    def height(self) -> int:
        """Height in pixels."""
        return int(self.y.shape[0])

    def to_rgb(self) -> np.ndarray:
        """An (h, w, 3) uint8 RGB copy (for stills, previews and tests; not per frame)."""
        from .i420 import i420_to_rgb

        return i420_to_rgb(self.y, self.u, self.v)


@dataclass(frozen=True, slots=True)
class FacePoints:
    """Where a portrait's features are, in pixels of the uploaded image."""

    left_eye: tuple[float, float]
    right_eye: tuple[float, float]
    mouth: tuple[float, float]
    mouth_width: float


@dataclass(frozen=True, slots=True)
class CharacterSpec:
    """What a renderer needs to know about a character (no database access)."""

    slug: str
    look: dict[str, str]
    """Full look parameters (``apps.avatar.look.full_look``)."""
    portrait: Path | None = None
    face: FacePoints | None = None
    version: str = ""
    """Changes whenever the character's look or portrait changes (a cache key)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``portrait`` for a photo character, else ``drawn``."""
        return "portrait" if self.portrait is not None else "drawn"


class AvatarStream(ABC):
    """One character being rendered for one call. Not thread-safe: one caller at a time."""

    @abstractmethod
    def render(self, state: FrameState) -> I420Frame:
        """The frame for ``state``. The returned planes may be reused by the next call."""


class AvatarRenderer(ABC):
    """A loaded renderer, shared by the process."""

    #: Frames per second and size used when a caller does not say.
    default_fps: int = 25
    default_size: tuple[int, int] = (512, 512)

    @abstractmethod
    def stream(self, character: CharacterSpec, *, width: int, height: int) -> AvatarStream:
        """A stream of frames of ``character`` (prepares it first if needed)."""

    def describe(self) -> dict[str, object]:
        """What /healthz and the benchmarks report."""
        return {"renderer": type(self).__name__}
