"""Pre-rendered I420 layers with alpha, and compositing them into a frame (per frame, cheap).

A ``Sprite`` is drawn once in RGBA (anti-aliased, shaded: cost does not matter then) and
converted to Y/U/V planes plus alpha at luma and chroma size. ``blit`` blends it into a
frame's planes at an integer position in integer arithmetic: for the few small regions an
avatar frame changes (head, eyes, mouth) that is well under a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .i420 import half_alpha, rgb_to_i420


@dataclass(frozen=True, slots=True)
class Sprite:
    """An I420 image with alpha; ``alpha`` is 0–256 (uint16) so a blend is one shift."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    alpha_y: np.ndarray
    alpha_uv: np.ndarray

    @property
    def width(self) -> int:
        """Width in luma pixels (even)."""
        return int(self.y.shape[1])

    @property
    def height(self) -> int:
        """Height in luma pixels (even)."""
        return int(self.y.shape[0])

    @classmethod
    def from_rgba(cls, rgba: np.ndarray) -> Sprite:
        """Convert an (h, w, 4) RGBA image (uint8 or float 0–255; h and w even)."""
        data = np.asarray(rgba, dtype=np.float32)
        y, u, v = rgb_to_i420(data[..., :3])
        alpha = data[..., 3] / 255.0
        return cls(
            y=y,
            u=u,
            v=v,
            alpha_y=np.rint(alpha * 256).astype(np.uint16),
            alpha_uv=np.rint(half_alpha(alpha) * 256).astype(np.uint16),
        )

    def cropped(self) -> tuple[Sprite, int, int]:
        """The sprite cut to its visible pixels (even bounds), and where that cut starts."""
        rows = np.flatnonzero(self.alpha_y.any(axis=1))
        cols = np.flatnonzero(self.alpha_y.any(axis=0))
        if not len(rows):
            return self, 0, 0
        top, left = int(rows[0]) & ~1, int(cols[0]) & ~1
        bottom = min(self.height, (int(rows[-1]) + 2) & ~1)
        right = min(self.width, (int(cols[-1]) + 2) & ~1)
        return (
            Sprite(
                y=self.y[top:bottom, left:right].copy(),
                u=self.u[top // 2 : bottom // 2, left // 2 : right // 2].copy(),
                v=self.v[top // 2 : bottom // 2, left // 2 : right // 2].copy(),
                alpha_y=self.alpha_y[top:bottom, left:right].copy(),
                alpha_uv=self.alpha_uv[top // 2 : bottom // 2, left // 2 : right // 2].copy(),
            ),
            left,
            top,
        )


def even_box(
    cx: float, cy: float, half_w: float, half_h: float, width: int, height: int
) -> tuple[int, int, int, int]:
    """A box around ``(cx, cy)`` in pixels, with even edges (chroma-aligned), inside the frame."""
    left = max(0, int(cx - half_w) & ~1)
    top = max(0, int(cy - half_h) & ~1)
    right = min(width, (int(cx + half_w) + 2) & ~1)
    bottom = min(height, (int(cy + half_h) + 2) & ~1)
    return left, top, right, bottom


def _blend(dst: np.ndarray, src: np.ndarray, alpha: np.ndarray) -> None:
    # dst = (src * a + dst * (256 - a)) >> 8, in uint16 without temporaries per pixel type.
    acc = src * alpha
    acc += dst * (256 - alpha)
    acc >>= 8
    dst[...] = acc


def blit(planes: tuple[np.ndarray, np.ndarray, np.ndarray], sprite: Sprite, x: int, y: int) -> None:
    """Blend ``sprite`` into ``planes`` (Y, U, V) with its top-left at luma ``(x, y)``.

    Parts outside the frame are clipped. Chroma goes to ``(x // 2, y // 2)``: an odd
    position moves the colour half a pixel, which no one sees.
    """
    frame_y, frame_u, frame_v = planes
    height, width = frame_y.shape
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(width, x + sprite.width), min(height, y + sprite.height)
    if x0 < x1 and y0 < y1:
        sx, sy = x0 - x, y0 - y
        _blend(
            frame_y[y0:y1, x0:x1],
            sprite.y[sy : sy + y1 - y0, sx : sx + x1 - x0].astype(np.uint16),
            sprite.alpha_y[sy : sy + y1 - y0, sx : sx + x1 - x0],
        )
    cx, cy = x // 2, y // 2
    c_height, c_width = frame_u.shape
    cx0, cy0 = max(0, cx), max(0, cy)
    cx1 = min(c_width, cx + sprite.u.shape[1])
    cy1 = min(c_height, cy + sprite.u.shape[0])
    if cx0 < cx1 and cy0 < cy1:
        sx, sy = cx0 - cx, cy0 - cy
        alpha = sprite.alpha_uv[sy : sy + cy1 - cy0, sx : sx + cx1 - cx0]
        for dst, src in ((frame_u, sprite.u), (frame_v, sprite.v)):
            _blend(
                dst[cy0:cy1, cx0:cx1],
                src[sy : sy + cy1 - cy0, sx : sx + cx1 - cx0].astype(np.uint16),
                alpha,
            )
