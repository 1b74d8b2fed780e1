"""Animating a portrait photo: the same layers as a drawn character, made by image warping.

``prepare_portrait`` aligns the photo so its eyes sit where a drawn character's eyes are,
then builds, once: the still frame, the head (a feathered oval that idle motion moves), the
eyes for each blink stage and gaze (lids painted in the skin colour found above each eye,
irises moved by a local warp), and a mouth for each point of the mouth-pose grid: the jaw
and lower lip pulled down, the corners pulled in or out, the upper lip lifted a little, and
a drawn mouth interior (teeth, tongue) in the opening. The closed mouth is the photo's own.
Frames are then made exactly as for drawn characters (``drawn.DrawnStream``).
"""

from __future__ import annotations

import math
from itertools import product
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..portrait import load_portrait
from ..visemes import MouthPose
from .base import CharacterSpec, FacePoints
from .drawing import Geometry
from .sprites import Sprite, even_box

if TYPE_CHECKING:
    from .drawn import DrawnCharacter

# Where the eyes go in the frame (fractions of the width) and how far apart.
EYE_Y = Geometry().eye_y
EYE_DISTANCE = 0.17


def _feather(mask: np.ndarray, px: float) -> np.ndarray:
    size = max(3, int(px) * 2 + 1)
    return cv2.GaussianBlur(mask.astype(np.float32), (size, size), px / 2)


def _sprite(
    rgb: np.ndarray, alpha: np.ndarray, box: tuple[int, int, int, int]
) -> tuple[Sprite, int, int]:
    left, top, right, bottom = box
    rgba = np.concatenate(
        [rgb[top:bottom, left:right], alpha[top:bottom, left:right, None] * 255.0], axis=-1
    )
    return Sprite.from_rgba(rgba), left, top


def aligned(
    image: np.ndarray, face: FacePoints, width: int, height: int
) -> tuple[np.ndarray, FacePoints]:
    """The photo scaled, rotated and moved so the eyes are level at the drawn eye line."""
    (lx, ly), (rx, ry) = face.left_eye, face.right_eye
    angle = math.atan2(ry - ly, rx - lx)
    scale = EYE_DISTANCE * width / math.dist(face.left_eye, face.right_eye)
    cos, sin = math.cos(-angle) * scale, math.sin(-angle) * scale
    mid_x, mid_y = (lx + rx) / 2, (ly + ry) / 2
    target_x, target_y = width / 2, EYE_Y * width
    matrix = np.array(
        [
            [cos, -sin, target_x - (cos * mid_x - sin * mid_y)],
            [sin, cos, target_y - (sin * mid_x + cos * mid_y)],
        ],
        dtype=np.float64,
    )
    out = cv2.warpAffine(
        image,
        matrix,
        (width, height),
        flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REPLICATE,
    )

    def moved(point: tuple[float, float]) -> tuple[float, float]:
        x, y = point
        return (
            float(matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2]),
            float(matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]),
        )

    return out.astype(np.float32), FacePoints(
        left_eye=moved(face.left_eye),
        right_eye=moved(face.right_eye),
        mouth=moved(face.mouth),
        mouth_width=face.mouth_width * scale,
    )


def mouth_rgb(
    photo: np.ndarray, face: FacePoints, pose: MouthPose, box: tuple[int, int, int, int]
) -> np.ndarray:
    """The mouth box of ``photo`` warped into ``pose``, with a drawn mouth interior."""
    left, top, right, bottom = box
    patch = photo[top:bottom, left:right]
    h, w = patch.shape[:2]
    eyes = math.dist(face.left_eye, face.right_eye)
    mx, my = face.mouth[0] - left, face.mouth[1] - top
    drop = pose.open * 0.38 * eyes * (1 + 0.2 * pose.round)
    lift = 0.12 * drop
    sx = pose.width * (1 - 0.22 * pose.round)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    chin = my + 0.75 * eyes
    # Below the lip line the lower lip and jaw move down as one, fading out under the chin;
    # above it the upper lip lifts a little. Everything fades to nothing at the box's sides.
    lower = np.clip((ys - (my - 3.0)) / 6.0, 0, 1)
    lower = lower * lower * (3 - 2 * lower)
    fade_down = np.clip((h - 1 - ys) / max(1.0, h - 1 - chin), 0, 1)
    upper = (1 - lower) * np.exp(-(((my - ys) / (0.3 * eyes)) ** 2))
    horizontal = np.clip(1 - ((xs - mx) / (0.9 * eyes)) ** 2, 0, 1) ** 2
    map_y = ys - drop * lower * fade_down * horizontal + lift * upper * horizontal
    near = np.exp(-(((ys - my) / (0.35 * eyes)) ** 2)) * horizontal
    map_x = xs - (xs - mx) * (1 - 1 / sx) * near
    warped = cv2.remap(patch, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if pose.open > 0.02:
        half_w = 0.5 * face.mouth_width * sx * 0.86
        gap_top, gap_bottom = my - lift, my + drop
        cy = (gap_top + gap_bottom) / 2
        half_h = max(0.5, (gap_bottom - gap_top) / 2)
        inside = (((xs - mx) / half_w) ** 2 + ((ys - cy) / half_h) ** 2) <= 1.0
        alpha = _feather(inside, max(1.0, 0.06 * face.mouth_width))[..., None]
        interior = np.empty_like(warped)
        interior[:] = (58.0, 18.0, 24.0)
        teeth_h = min(0.45 * (gap_bottom - gap_top), 0.09 * eyes) * min(1.0, pose.teeth * 1.3)
        teeth = (ys < gap_top + teeth_h) & inside
        interior[teeth] = (240.0, 236.0, 228.0)
        tongue = (
            ((xs - mx) / (0.6 * half_w)) ** 2 + ((ys - gap_bottom) / (0.5 * half_h + 1)) ** 2
        ) <= 1.0
        interior[tongue & inside & (pose.open > 0.3)] = (176.0, 80.0, 90.0)
        warped = warped * (1 - alpha) + interior * alpha
    return warped


def raised_brows(
    photo: np.ndarray, face: FacePoints, amount: float
) -> tuple[np.ndarray, np.ndarray]:
    """The photo with the brows lifted by ``amount`` (0–1; listening), and where it changed.

    The skin between the eye and the brow is stretched upwards; the eye opening itself and
    the forehead above stay where they are.
    """
    out = photo.copy()
    changed = np.zeros(photo.shape[:2], np.float32)
    if amount <= 0:
        return out, changed
    eyes = math.dist(face.left_eye, face.right_eye)
    height, width = photo.shape[:2]
    lift = amount * 0.07 * eyes
    for ex, ey in (face.left_eye, face.right_eye):
        left, top, right, bottom = even_box(
            ex, ey - 0.3 * eyes, 0.42 * eyes, 0.3 * eyes, width, height
        )
        ys, xs = np.mgrid[top:bottom, left:right].astype(np.float32)
        brow_y = ey - 0.32 * eyes
        # Full lift at the brow line, none at the eye opening or the box's edges.
        weight = np.exp(-(((ys - brow_y) / (0.12 * eyes)) ** 2)) * np.clip(
            1 - ((xs - ex) / (0.42 * eyes)) ** 2, 0, 1
        )
        weight *= np.clip((ey - 0.1 * eyes - ys) / (0.12 * eyes), 0, 1)
        map_y = ys - top + lift * weight
        out[top:bottom, left:right] = cv2.remap(
            photo[top:bottom, left:right],
            xs - left,
            map_y,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        changed[top:bottom, left:right] = np.maximum(
            changed[top:bottom, left:right], np.clip(weight * 4, 0, 1)
        )
    return out, changed


def eyes_rgb(
    photo: np.ndarray, face: FacePoints, *, closed: float, gaze: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """The photo with lids lowered by ``closed`` and irises moved by ``gaze``.

    Returns:
        The changed photo, and a 0–1 map of where it changed (the eye sprite's alpha).
    """
    out = photo.copy()
    changed = np.zeros(photo.shape[:2], np.float32)
    eyes = math.dist(face.left_eye, face.right_eye)
    rw, rh = 0.28 * eyes, 0.12 * eyes
    height, width = photo.shape[:2]
    for ex, ey in (face.left_eye, face.right_eye):
        box = even_box(ex, ey, rw * 1.6, rh * 3.2, width, height)
        left, top, right, bottom = box
        ys, xs = np.mgrid[top:bottom, left:right].astype(np.float32)
        u = np.clip((xs - ex) / rw, -1, 1)
        arch = np.sqrt(1 - u * u)
        ellipse = ((xs - ex) / rw) ** 2 + ((ys - ey) / rh) ** 2 <= 1.0
        region = out[top:bottom, left:right]
        if gaze != (0.0, 0.0):
            shift_x, shift_y = gaze[0] * 0.35 * rw, -gaze[1] * 0.35 * rh
            inside = _feather(ellipse, 2.0)
            map_x = xs - left - shift_x * inside
            map_y = ys - top - shift_y * inside
            region[:] = cv2.remap(
                photo[top:bottom, left:right],
                map_x,
                map_y,
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            changed[top:bottom, left:right] = np.maximum(changed[top:bottom, left:right], inside)
        if closed > 0.02:
            # The lid's own skin, just above the opening, gives it its colour.
            band = photo[
                int(max(0, ey - 1.9 * rh)) : int(max(1, ey - 1.3 * rh)),
                int(ex - rw * 0.4) : int(ex + rw * 0.4),
            ]
            skin = (
                band.reshape(-1, 3).mean(axis=0) if band.size else np.array([180.0, 140.0, 120.0])
            )
            # The lid's edge goes from the eye's upper contour (open) to a soft curve below
            # the middle (shut), as on a drawn character.
            edge = (1 - closed) * (ey - rh * arch) + closed * (ey + 0.55 * rh + 0.15 * rh * arch)
            cover = (((xs - ex) / (rw * 1.08)) ** 2 + ((ys - ey) / (rh * 1.15)) ** 2 <= 1.0) & (
                ys <= edge
            )
            lid_alpha = _feather(cover, 1.2)[..., None]
            depth = np.clip((ys - (ey - rh)) / (2 * rh), 0, 1)[..., None]
            lid = skin * (1.02 - 0.1 * depth)
            region[:] = region * (1 - lid_alpha) + lid * lid_alpha
            lash = (np.abs(ys - edge) <= 1.0) & (
                ((xs - ex) / (rw * 1.05)) ** 2 + ((ys - ey) / (rh * 1.6)) ** 2 <= 1.0
            )
            lash_alpha = _feather(lash, 0.8)[..., None] * 0.85
            region[:] = region * (1 - lash_alpha) + np.array([38.0, 28.0, 24.0]) * lash_alpha
            changed[top:bottom, left:right] = np.maximum(
                changed[top:bottom, left:right],
                _feather(np.abs(xs - ex) / rw <= 1.15, 2.0)
                * _feather(np.abs(ys - ey) / rh <= 2.0, 2.0),
            )
    return out, changed


def prepare_portrait(character: CharacterSpec, *, width: int, height: int) -> DrawnCharacter:
    """Every layer of a portrait character, as a ``drawn.DrawnCharacter``."""
    from .drawn import BROWS, GAZES, LID_LEVELS, DrawnCharacter, Placed, mouth_grid

    # (Imported here: drawn imports this module for portrait characters.)

    if character.portrait is None or character.face is None:
        raise ValueError("a portrait character needs its image and face points")
    if width % 2 or height % 2:
        raise ValueError("I420 frames need an even width and height")
    source = np.asarray(load_portrait(str(character.portrait)), dtype=np.uint8)
    photo, face = aligned(source, character.face, width, height)
    base = Sprite.from_rgba(
        np.concatenate([photo, np.full((height, width, 1), 255.0, np.float32)], -1)
    )
    eyes_px = math.dist(face.left_eye, face.right_eye)
    centre_x = (face.left_eye[0] + face.right_eye[0] + face.mouth[0]) / 3
    centre_y = (face.left_eye[1] + face.right_eye[1] + face.mouth[1]) / 3
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    oval = ((xs - centre_x) / (1.25 * eyes_px)) ** 2 + (
        (ys - centre_y) / (1.7 * eyes_px)
    ) ** 2 <= 1.0
    head_box = even_box(centre_x, centre_y, 1.5 * eyes_px, 2.0 * eyes_px, width, height)
    head_sprite, hx, hy = _sprite(photo, _feather(oval, 0.25 * eyes_px), head_box)
    head = Placed(head_sprite, hx, hy)
    mouth_box = even_box(
        face.mouth[0], face.mouth[1] + 0.3 * eyes_px, 0.95 * eyes_px, 0.85 * eyes_px, width, height
    )
    left, top, right, bottom = mouth_box
    edge = np.zeros((bottom - top, right - left), np.float32)
    edge[2:-2, 2:-2] = 1.0
    # Each pose only changes the mouth box: its sprite is made from the box alone.
    alpha = _feather(edge, 3.0)[..., None] * 255.0
    mouths = {}
    for key, pose in mouth_grid():
        rgba = np.concatenate([mouth_rgb(photo, face, pose, mouth_box), alpha], axis=-1)
        mouths[key] = Placed(Sprite.from_rgba(rgba), left, top)
    eyes = {}
    eyes_box = even_box(
        (face.left_eye[0] + face.right_eye[0]) / 2,
        (face.left_eye[1] + face.right_eye[1]) / 2,
        0.95 * eyes_px,
        0.55 * eyes_px,
        width,
        height,
    )
    for brow in range(len(BROWS)):
        browed, brow_changed = raised_brows(photo, face, BROWS[brow])
        for lid, gaze in product(range(len(LID_LEVELS)), range(len(GAZES))):
            rgb, changed = eyes_rgb(browed, face, closed=LID_LEVELS[lid], gaze=GAZES[gaze])
            sprite, x, y = _sprite(rgb, np.maximum(changed, brow_changed), eyes_box)
            eyes[(lid, gaze, brow)] = Placed(sprite, x, y)
    return DrawnCharacter(
        width=width,
        height=height,
        base=(base.y, base.u, base.v),
        head=head,
        eyes=eyes,
        mouths=mouths,
        overlay=None,
    )
