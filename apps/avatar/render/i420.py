"""RGB ↔ I420 (BT.601, limited range) for pre-rendered layers; never run per frame."""

from __future__ import annotations

import numpy as np


def rgb_to_i420(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(h, w, 3) uint8 or float 0–255 RGB (even h and w) to Y, U, V uint8 planes."""
    data = np.asarray(rgb, dtype=np.float32)
    r, g, b = data[..., 0], data[..., 1], data[..., 2]
    y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    cb = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0
    cr = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0
    return (
        np.clip(np.rint(y), 0, 255).astype(np.uint8),
        np.clip(np.rint(_half(cb)), 0, 255).astype(np.uint8),
        np.clip(np.rint(_half(cr)), 0, 255).astype(np.uint8),
    )


def _half(plane: np.ndarray) -> np.ndarray:
    """2×2 box average (what 4:2:0 subsampling keeps)."""
    return 0.25 * (plane[0::2, 0::2] + plane[1::2, 0::2] + plane[0::2, 1::2] + plane[1::2, 1::2])


def half_alpha(alpha: np.ndarray) -> np.ndarray:
    """An alpha plane averaged down to chroma size."""
    return _half(np.asarray(alpha, dtype=np.float32))


def i420_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Y, U, V planes back to (h, w, 3) uint8 RGB (chroma upsampled by repetition)."""
    yf = (y.astype(np.float32) - 16.0) * (255.0 / 219.0)
    cb = np.repeat(np.repeat(u.astype(np.float32) - 128.0, 2, 0), 2, 1) * (255.0 / 224.0)
    cr = np.repeat(np.repeat(v.astype(np.float32) - 128.0, 2, 0), 2, 1) * (255.0 / 224.0)
    r = yf + 1.402 * cr
    g = yf - 0.344136 * cb - 0.714136 * cr
    b = yf + 1.772 * cb
    return np.clip(np.rint(np.stack([r, g, b], axis=-1)), 0, 255).astype(np.uint8)
