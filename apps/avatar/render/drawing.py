"""Drawing a character from its look: layers in RGBA, anti-aliased and softly shaded.

Runs once per character and size (``DrawnRenderer`` caches the result), so clarity beats
speed here. Shapes are drawn with Pillow at ``SUPERSAMPLE`` times the size and scaled down
(anti-aliasing); shading and blush are numpy gradients. Geometry is in fractions of the
frame width (both axes) so any size works. ``base_layer`` and ``head_layer`` return
full-frame RGBA images; the small, numerous layers (eyes, mouths, glasses) are drawn in a
box around their feature and return it with its position (``Layer``); ``drawn`` crops all
of them to their visible pixels.

Layers, back to front: ``base`` (background, back hair, shoulders and shirt, neck), ``head``
(ears, face, nose, front hair, earrings, headphones, hat), ``eyes`` (both eyes with lids and
brows, one per blink/gaze/brow variant), ``mouth`` (one per mouth pose on a grid) and
``overlay`` (glasses, which sit over the eyes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from ..visemes import MouthPose
from .sprites import even_box

SUPERSAMPLE = 3
RGBA = tuple[int, int, int, int]


def hex_rgb(color: str) -> tuple[int, int, int]:
    """``#rrggbb`` to an RGB tuple."""
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def shade(color: tuple[int, int, int], factor: float, alpha: int = 255) -> RGBA:
    """``color`` darkened (factor < 1) or lightened (> 1), with ``alpha``."""
    if factor <= 1:
        r, g, b = (round(c * factor) for c in color)
    else:
        r, g, b = (round(c + (255 - c) * (factor - 1)) for c in color)
    return (max(0, min(255, r)), max(0, min(255, g)), max(0, min(255, b)), alpha)


@dataclass(frozen=True, slots=True)
class Geometry:
    """Where the features are, in fractions of the frame (x of width, y of height)."""

    cx: float = 0.5
    cy: float = 0.43
    face_w: float = 0.185
    face_h: float = 0.235
    eye_dx: float = 0.073
    eye_y: float = 0.425
    eye_w: float = 0.036
    eye_h: float = 0.021
    mouth_y: float = 0.555
    mouth_w: float = 0.056
    mouth_open_h: float = 0.07


class Canvas:
    """A supersampled RGBA drawing surface: the whole frame, or a box of it.

    Coordinates are fractions of the frame *width* on both axes (so shapes keep their
    proportions); ``box`` is ``(left, top, right, bottom)`` in frame pixels, even.
    """

    def __init__(
        self, width: int, height: int, box: tuple[int, int, int, int] | None = None
    ) -> None:
        self.frame_width = width
        self.left, self.top, right, bottom = box or (0, 0, width, height)
        self.width, self.height = right - self.left, bottom - self.top
        self.image = Image.new(
            "RGBA", (self.width * SUPERSAMPLE, self.height * SUPERSAMPLE), (0, 0, 0, 0)
        )
        self.draw = ImageDraw.Draw(self.image)

    def xy(self, x: float, y: float) -> tuple[float, float]:
        """Fractions of the frame width to supersampled pixels of this canvas."""
        return (
            (x * self.frame_width - self.left) * SUPERSAMPLE,
            (y * self.frame_width - self.top) * SUPERSAMPLE,
        )

    def px(self, length: float) -> float:
        """A length given as a fraction of the frame width, in supersampled pixels."""
        return length * self.frame_width * SUPERSAMPLE

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel centres of this canvas as fractions of the frame width: (xs, ys)."""
        ys, xs = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32)
        return (xs + self.left) / self.frame_width, (ys + self.top) / self.frame_width

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: RGBA) -> None:
        """A filled ellipse (centre and radii as fractions of the width)."""
        x, y = self.xy(cx, cy)
        self.draw.ellipse(
            (x - self.px(rx), y - self.px(ry), x + self.px(rx), y + self.px(ry)), fill=fill
        )

    def polygon(self, points: list[tuple[float, float]], fill: RGBA) -> None:
        """A filled polygon (points as fractions)."""
        self.draw.polygon([self.xy(x, y) for x, y in points], fill=fill)

    def line(self, points: list[tuple[float, float]], fill: RGBA, width: float) -> None:
        """A polyline with round joints (width as a fraction of the frame width)."""
        pixels = max(1, round(self.px(width)))
        self.draw.line([self.xy(x, y) for x, y in points], fill=fill, width=pixels, joint="curve")

    def rgba(self) -> np.ndarray:
        """The layer at frame size, (h, w, 4) float32, premultiplied-free RGBA."""
        small = self.image.resize((self.width, self.height), Image.Resampling.LANCZOS)
        return np.asarray(small, dtype=np.float32)


def _superellipse(
    cx: float,
    cy: float,
    rx: float,
    ry: float,
    *,
    lower_n: float,
    upper_n: float = 2.0,
    chin: float = 0.0,
    steps: int = 96,
) -> list[tuple[float, float]]:
    points = []
    for i in range(steps):
        t = 2 * math.pi * i / steps
        c, s = math.cos(t), math.sin(t)
        n = lower_n if s > 0 else upper_n
        x = math.copysign(abs(c) ** (2 / n), c)
        y = math.copysign(abs(s) ** (2 / n), s)
        if s > 0 and chin:
            x *= 1 - chin * s**2  # narrower towards the chin (heart)
        points.append((cx + rx * x, cy + ry * y))
    return points


def face_outline(geometry: Geometry, face_shape: str) -> list[tuple[float, float]]:
    """The face contour for a face shape."""
    g = geometry
    rx, ry = g.face_w, g.face_h
    if face_shape == "round":
        return _superellipse(g.cx, g.cy, rx * 1.07, ry * 0.93, lower_n=2.1)
    if face_shape == "square":
        return _superellipse(g.cx, g.cy, rx * 1.02, ry * 0.97, lower_n=3.4, upper_n=2.4)
    if face_shape == "heart":
        return _superellipse(g.cx, g.cy, rx * 1.06, ry, lower_n=1.9, chin=0.38)
    return _superellipse(g.cx, g.cy, rx, ry, lower_n=1.8)


def radial_shading(
    grid: tuple[np.ndarray, np.ndarray], cx: float, cy: float, rx: float, ry: float, strength: float
) -> np.ndarray:
    """A multiplier: 1 at a point up and left of centre, darker towards the edges."""
    xs, ys = grid
    dx = (xs - (cx - 0.3 * rx)) / (rx * 1.6)
    dy = (ys - (cy - 0.35 * ry)) / (ry * 1.6)
    return np.clip(1.0 - strength * (dx * dx + dy * dy), 1.0 - 2 * strength, 1.0)


def soft_spot(
    grid: tuple[np.ndarray, np.ndarray], cx: float, cy: float, rx: float, ry: float
) -> np.ndarray:
    """A Gaussian blob 0–1 (blush, shadows); all as fractions of the frame width."""
    xs, ys = grid
    dx = (xs - cx) / rx
    dy = (ys - cy) / ry
    return np.exp(-(dx * dx + dy * dy))


def _box(
    width: int, height: int, cx: float, cy: float, half_w: float, half_h: float
) -> tuple[int, int, int, int]:
    """An even-aligned pixel box around a point given in fractions of the width."""
    return even_box(cx * width, cy * width, half_w * width, half_h * width, width, height)


Layer = tuple[np.ndarray, int, int]
"""An RGBA image and the frame pixel where its top-left corner goes."""


def mouth_layer(
    width: int, height: int, geometry: Geometry, pose: MouthPose, look: dict[str, str]
) -> Layer:
    """RGBA of the mouth alone in a ``pose``, in a box around the mouth."""
    g = geometry
    canvas = Canvas(
        width, height, _box(width, height, g.cx, g.mouth_y, g.mouth_w * 1.6, g.mouth_open_h * 1.1)
    )
    lips = hex_rgb(look["lips"])
    cx, cy = g.cx, g.mouth_y
    half_w = g.mouth_w * pose.width * (1 - 0.28 * pose.round)
    open_h = g.mouth_open_h * pose.open * (1 + 0.25 * pose.round)
    lip_top = 0.011 + 0.006 * pose.round
    lip_bottom = 0.014 + 0.006 * pose.round
    corner = half_w * (1 - 0.25 * pose.round)
    steps = 24
    upper_outer, upper_inner, lower_inner, lower_outer = [], [], [], []
    for i in range(steps + 1):
        s = -1 + 2 * i / steps  # -1 … 1 across the mouth
        x = cx + corner * s
        bow = 0.004 * math.exp(-((abs(s) - 0.22) ** 2) / 0.02) - 0.003 * math.exp(-(s**2) / 0.01)
        edge = math.sqrt(max(0.0, 1 - s * s))
        upper_outer.append((x, cy - open_h * 0.45 * edge - lip_top * edge**0.6 - bow))
        upper_inner.append((x, cy - open_h * 0.45 * edge))
        lower_inner.append((x, cy + open_h * 0.55 * edge))
        lower_outer.append((x, cy + open_h * 0.55 * edge + lip_bottom * edge**0.7))
    if pose.open > 0.02:
        interior = upper_inner + lower_inner[::-1]
        canvas.polygon(interior, (58, 18, 24, 255))
        if pose.open > 0.3:
            canvas.ellipse(cx, cy + open_h * 0.42, corner * 0.55, open_h * 0.25, (186, 84, 96, 255))
        if pose.teeth > 0.05:
            teeth_h = min(open_h * 0.9, 0.012 + 0.004 * pose.open) * min(1.0, pose.teeth * 1.3)
            teeth = [(x, y) for x, y in upper_inner] + [
                (x, y + teeth_h * math.sqrt(max(0.0, 1 - ((x - cx) / max(corner, 1e-6)) ** 2)))
                for x, y in upper_inner[::-1]
            ]
            canvas.polygon(teeth, (246, 243, 236, 255))
        canvas.polygon(upper_outer + upper_inner[::-1], shade(lips, 0.92))
        canvas.polygon(lower_inner + lower_outer[::-1], shade(lips, 1.0))
    else:
        canvas.polygon(upper_outer + lower_outer[::-1], shade(lips, 0.97))
        canvas.line(upper_inner, shade(lips, 0.55), 0.0035)
    rgba = canvas.rgba()
    # A soft highlight on the lower lip.
    shine = soft_spot(
        canvas.grid(), cx, cy + open_h * 0.55 + lip_bottom * 0.5, half_w * 0.35, 0.006
    )
    rgba[..., :3] += (shine[..., None] * 40.0) * (rgba[..., 3:4] / 255.0)
    return np.clip(rgba, 0, 255), canvas.left, canvas.top


def eyes_layer(
    width: int,
    height: int,
    geometry: Geometry,
    look: dict[str, str],
    *,
    closed: float,
    gaze: tuple[float, float],
    brows_up: float,
) -> Layer:
    """RGBA of both eyes and brows: lids ``closed`` 0–1, ``gaze`` (x, y) -1…1."""
    g = geometry
    canvas = Canvas(
        width, height, _box(width, height, g.cx, g.eye_y - 0.03, g.eye_dx + 0.07, 0.065)
    )
    skin = hex_rgb(look["skin"])
    iris = hex_rgb(look["eyes"])
    hair = hex_rgb(look["hair"])
    ey = g.eye_y
    for side in (-1, 1):
        ex = g.cx + side * g.eye_dx
        w, h = g.eye_w, g.eye_h
        outline = [
            (ex + w * math.cos(t), ey + h * (0.8 if math.sin(t) < 0 else 0.65) * math.sin(t))
            for t in np.linspace(0, 2 * math.pi, 48, endpoint=False)
        ]
        canvas.polygon(outline, (250, 248, 245, 255))
        ix, iy = ex + gaze[0] * w * 0.35, ey - gaze[1] * h * 0.35
        canvas.ellipse(ix, iy, h * 0.78, h * 0.78, shade(iris, 1.0))
        canvas.ellipse(ix, iy, h * 0.62, h * 0.62, shade(iris, 0.75))
        canvas.ellipse(ix, iy, h * 0.33, h * 0.33, (20, 16, 14, 255))
        canvas.ellipse(ix - h * 0.25, iy - h * 0.25, h * 0.14, h * 0.14, (255, 255, 255, 235))
        # The upper lid comes down over the eye by ``closed``: its edge moves from the
        # eye's upper contour (open) to a soft downward curve below the middle (shut).
        ts = np.linspace(0, math.pi, 25)
        edge = [
            (
                ex + w * 1.04 * math.cos(t),
                (1 - closed) * (ey - h * 0.86 * math.sin(t))
                + closed * (ey + h * 0.45 + h * 0.12 * math.sin(t)),
            )
            for t in ts
        ]
        above = [(ex + w * 1.12 * math.cos(t), ey - h * 1.25 * math.sin(t)) for t in ts[::-1]]
        if closed > 0.02:
            canvas.polygon(edge + above, shade(skin, 0.95))
        canvas.line(edge, (35, 26, 22, 255), 0.0045)
        # Lower lid and a crease above the eye.
        below = [
            (ex + w * math.cos(t), ey + h * 0.66 * math.sin(t))
            for t in np.linspace(0.3, math.pi - 0.3, 12)
        ]
        canvas.line(below, shade(skin, 0.78, 150), 0.0018)
        crease = [
            (ex + w * 0.9 * math.cos(t), ey - h * 1.25 - h * 0.35 * math.sin(t))
            for t in np.linspace(0.2, math.pi - 0.2, 12)
        ]
        canvas.line(crease, shade(skin, 0.8, 120), 0.0018)
        brow_y = ey - h * 2.35 - brows_up * h * 0.7
        brow = [
            (
                ex + side * w * 1.25 * u - side * w * 0.1,
                brow_y - h * 0.45 * math.sin(math.pi * (u + 0.55) / 1.7),
            )
            for u in np.linspace(-0.55, 1.1, 14)
        ]
        canvas.line(brow, shade(hair, 0.95), 0.011)
    return canvas.rgba(), canvas.left, canvas.top


def glasses_layer(width: int, height: int, geometry: Geometry) -> Layer:
    """RGBA of a pair of glasses over the eyes."""
    g = geometry
    canvas = Canvas(width, height, _box(width, height, g.cx, g.eye_y, g.eye_dx + 0.09, 0.06))
    ey = g.eye_y
    frame = (28, 28, 34, 255)
    for side in (-1, 1):
        ex = g.cx + side * g.eye_dx
        x0, y0 = canvas.xy(ex - g.eye_w * 1.65, ey - g.eye_h * 1.9)
        x1, y1 = canvas.xy(ex + g.eye_w * 1.65, ey + g.eye_h * 2.0)
        canvas.draw.rounded_rectangle(
            (x0, y0, x1, y1),
            radius=canvas.px(0.018),
            outline=frame,
            width=round(canvas.px(0.006)),
            fill=(200, 225, 240, 38),
        )
        canvas.line(
            [
                (ex + side * g.eye_w * 1.65, ey - g.eye_h * 0.9),
                (ex + side * g.eye_w * 2.6, ey - g.eye_h * 1.2),
            ],
            frame,
            0.005,
        )
    canvas.line(
        [
            (g.cx - g.eye_dx + g.eye_w * 1.65, ey - g.eye_h * 0.5),
            (g.cx, ey - g.eye_h * 0.9),
            (g.cx + g.eye_dx - g.eye_w * 1.65, ey - g.eye_h * 0.5),
        ],
        frame,
        0.005,
    )
    return canvas.rgba(), canvas.left, canvas.top


def base_layer(width: int, height: int, geometry: Geometry, look: dict[str, str]) -> np.ndarray:
    """RGB(A) of what does not move with the head: background, back hair, body, neck."""
    g = geometry
    background = np.array(hex_rgb(look["background"]), dtype=np.float32)
    ys = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    rgb = background * (1.06 - 0.14 * ys)  # lighter at the top
    rgb = np.broadcast_to(rgb, (height, width, 3)).copy()
    canvas = Canvas(width, height)
    vignette = soft_spot(canvas.grid(), 0.5, 0.45, 0.75, 0.75)
    rgb *= (0.9 + 0.1 * vignette)[..., None]
    hair = hex_rgb(look["hair"])
    skin = hex_rgb(look["skin"])
    shirt = hex_rgb(look["shirt"])
    style = look["hair_style"]
    top = g.cy
    if style in ("long", "bob", "curly"):
        bottom = {"long": 0.86, "bob": 0.6, "curly": 0.62}[style]
        reach = {"long": 1.38, "bob": 1.3, "curly": 1.5}[style]
        canvas.draw.rounded_rectangle(
            (
                *canvas.xy(g.cx - g.face_w * reach, top - g.face_h * 0.8),
                *canvas.xy(g.cx + g.face_w * reach, bottom),
            ),
            radius=canvas.px(0.12),
            fill=shade(hair, 0.82),
        )
        if style == "curly":
            for i in range(26):
                t = math.pi * (0.9 + 1.2 * i / 25)
                canvas.ellipse(
                    g.cx + g.face_w * 1.35 * math.cos(t),
                    top + 0.05 + g.face_h * 1.0 * math.sin(t),
                    0.05,
                    0.05,
                    shade(hair, 0.85),
                )
    neck_top, neck_bottom = (g.cy + 0.16), 0.86
    canvas.polygon(
        [
            (g.cx - 0.068, neck_top),
            (g.cx + 0.068, neck_top),
            (g.cx + 0.078, neck_bottom),
            (g.cx - 0.078, neck_bottom),
        ],
        shade(skin, 0.93),
    )
    shoulder_y = 0.8
    body = [(0.06, 1.02), (0.1, shoulder_y + 0.06)]
    for i in range(21):
        t = math.pi * (1 + i / 20)
        body.append((0.5 + 0.4 * math.cos(t), shoulder_y + 0.08 + 0.08 * math.sin(t)))
    body += [(0.9, shoulder_y + 0.06), (0.94, 1.02)]
    canvas.polygon(body, shade(shirt, 1.0))
    collar = [
        (g.cx - 0.095, shoulder_y - 0.005),
        (g.cx, shoulder_y + 0.085),
        (g.cx + 0.095, shoulder_y - 0.005),
    ]
    canvas.polygon(collar, shade(skin, 0.93))
    canvas.line(collar, shade(shirt, 0.7), 0.008)
    layer = canvas.rgba()
    # Shirt folds and the shadow the head casts on the neck.
    body_mask = layer[..., 3:4] / 255.0
    light = radial_shading(canvas.grid(), 0.5, 0.9, 0.45, 0.2, 0.18)
    layer[..., :3] *= light[..., None]
    shadow = soft_spot(canvas.grid(), g.cx, (g.cy + 0.2), 0.09, 0.035)
    layer[..., :3] *= (1 - 0.28 * shadow)[..., None]
    out = rgb * (1 - body_mask) + layer[..., :3] * body_mask
    alpha = np.full((height, width, 1), 255.0, dtype=np.float32)
    return np.concatenate([np.clip(out, 0, 255), alpha], axis=-1)


def head_layer(width: int, height: int, geometry: Geometry, look: dict[str, str]) -> np.ndarray:
    """RGBA of the head without eyes and mouth: ears, face, nose, hair, head-worn things."""
    g = geometry
    canvas = Canvas(width, height)
    skin = hex_rgb(look["skin"])
    hair = hex_rgb(look["hair"])
    lips = hex_rgb(look["lips"])
    style, accessory = look["hair_style"], look["accessory"]
    cy = g.cy
    for side in (-1, 1):
        canvas.ellipse(g.cx + side * g.face_w * 0.98, cy + 0.012, 0.03, 0.05, shade(skin, 0.9))
        canvas.ellipse(g.cx + side * g.face_w * 0.99, cy + 0.012, 0.015, 0.03, shade(skin, 0.8))
    if style == "bun":
        canvas.ellipse(g.cx, cy - g.face_h * 1.12, 0.075, 0.065, shade(hair, 0.9))
    if style != "bald":
        # The hair cap behind the face's top.
        canvas.ellipse(g.cx, cy - 0.045, g.face_w * 1.1, g.face_h * 0.9, shade(hair, 0.92))
    canvas.polygon(face_outline(g, look["face_shape"]), shade(skin, 1.0))
    layer = canvas.rgba()
    face_mask = layer[..., 3] > 0
    grid = canvas.grid()
    light = radial_shading(grid, g.cx, cy, g.face_w, g.face_h, 0.16)
    layer[..., :3] *= np.where(face_mask, light, 1.0)[..., None]
    blush = sum(soft_spot(grid, g.cx + side * 0.085, cy + 0.07, 0.04, 0.026) for side in (-1, 1))
    tint = np.array(lips, dtype=np.float32) - layer[..., :3]
    layer[..., :3] += 0.22 * blush[..., None] * tint * (layer[..., 3:4] / 255.0)
    # Front hair, nose and what is worn on the head, drawn over the shaded face.
    front = Canvas(width, height)
    nose_y = cy + 0.075
    front.line(
        [
            (g.cx + 0.006, cy + 0.015),
            (g.cx + 0.012, nose_y - 0.005),
            (g.cx + 0.004, nose_y + 0.006),
        ],
        shade(skin, 0.78, 140),
        0.004,
    )
    for side in (-1, 1):
        front.ellipse(g.cx + side * 0.014, nose_y + 0.008, 0.007, 0.004, shade(skin, 0.62, 170))
    hairline = cy - g.face_h * 0.55
    if style in ("short", "long", "bob", "bun", "curly"):
        fringe = []
        for i in range(33):
            t = math.pi * (1 + i / 32)
            fringe.append(
                (g.cx + g.face_w * 1.04 * math.cos(t), cy - 0.03 + g.face_h * 0.93 * math.sin(t))
            )
        depth = {"short": 0.02, "long": 0.05, "bob": 0.07, "bun": 0.01, "curly": 0.04}[style]
        for i in range(33):
            u = -1 + 2 * (32 - i) / 32
            wave = 0.012 * math.sin(u * 9) if style in ("long", "bob") else 0.0
            fringe.append((g.cx + g.face_w * 1.0 * u, hairline + depth * (1 - u * u) + wave))
        front.polygon(fringe, shade(hair, 1.0))
        if style == "curly":
            for i in range(14):
                u = -1 + 2 * i / 13
                front.ellipse(
                    g.cx + g.face_w * 0.95 * u,
                    hairline + 0.02 * (1 - u * u),
                    0.028,
                    0.026,
                    shade(hair, 1.05),
                )
        if style == "long":
            for side in (-1, 1):
                front.polygon(
                    [
                        (g.cx + side * g.face_w * 1.02, hairline),
                        (g.cx + side * g.face_w * 1.18, cy + 0.05),
                        (g.cx + side * g.face_w * 1.1, cy + 0.22),
                        (g.cx + side * g.face_w * 0.92, cy + 0.12),
                    ],
                    shade(hair, 0.96),
                )
    if accessory == "earrings":
        for side in (-1, 1):
            front.ellipse(
                g.cx + side * g.face_w * 1.0, cy + 0.07, 0.011, 0.011, (222, 184, 84, 255)
            )
    if accessory == "headphones":
        band = [
            (g.cx + g.face_w * 1.18 * math.cos(t), cy - 0.01 + g.face_h * 1.08 * math.sin(t))
            for t in np.linspace(math.pi * 1.02, math.pi * 1.98, 30)
        ]
        front.line(band, (48, 52, 60, 255), 0.022)
        for side in (-1, 1):
            front.ellipse(g.cx + side * g.face_w * 1.08, cy + 0.01, 0.038, 0.06, (58, 62, 72, 255))
            front.ellipse(g.cx + side * g.face_w * 1.08, cy + 0.01, 0.022, 0.04, (90, 96, 110, 255))
    if accessory == "hat":
        front.ellipse(
            g.cx, hairline - 0.005, g.face_w * 1.6, 0.03, shade(hex_rgb(look["shirt"]), 0.7)
        )
        front.draw.rounded_rectangle(
            (
                *front.xy(g.cx - g.face_w * 0.95, hairline - 0.15),
                *front.xy(g.cx + g.face_w * 0.95, hairline),
            ),
            radius=front.px(0.04),
            fill=shade(hex_rgb(look["shirt"]), 0.75),
        )
    over = front.rgba()
    a = over[..., 3:4] / 255.0
    layer[..., :3] = layer[..., :3] * (1 - a) + over[..., :3] * a
    layer[..., 3:4] = np.maximum(layer[..., 3:4], over[..., 3:4])
    return np.clip(layer, 0, 255)
