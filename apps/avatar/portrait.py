"""Finding the face in an uploaded portrait: eyes and mouth, for the portrait renderer.

OpenCV's Haar cascades (shipped inside the ``opencv-python-headless`` wheel, so nothing is
downloaded) find the largest frontal face, then the eyes in its upper half. The mouth is
placed from the eyes by the face's usual proportions (the centre of the mouth lies about
one eye distance below the middle between the eyes), which is steadier than the cascades'
smile detector. Where no face or not both eyes are found, ``locate_face`` returns None and
the admin asks the operator to mark the eyes and the mouth.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image, ImageOps

from .render.base import FacePoints

# Images are searched at this size (longest side); points are returned in original pixels.
SEARCH_PX = 640
# The mouth centre is this many eye distances below the eyes' midpoint; its width this many.
MOUTH_BELOW_EYES = 1.0
MOUTH_WIDTH_EYES = 0.85

_cascades: dict[str, cv2.CascadeClassifier] = {}


def _cascade(name: str) -> cv2.CascadeClassifier:
    if name not in _cascades:
        classifier = cv2.CascadeClassifier(cv2.data.haarcascades + name)
        if classifier.empty():
            raise RuntimeError(f"OpenCV's {name} did not load")
        _cascades[name] = classifier
    return _cascades[name]


def load_portrait(path: str) -> Image.Image:
    """The image upright (EXIF orientation applied), in RGB."""
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


def locate_face(image: Image.Image) -> FacePoints | None:
    """Eyes and mouth of the largest frontal face, in pixels of ``image``; None if unsure."""
    scale = min(1.0, SEARCH_PX / max(image.size))
    small = image.resize((round(image.width * scale), round(image.height * scale)))
    gray = cv2.equalizeHist(np.asarray(small.convert("L")))
    min_face = max(40, min(gray.shape) // 8)
    faces = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_face, min_face)
    )
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    upper = gray[y : y + h * 5 // 8, x : x + w]
    eyes = _cascade("haarcascade_eye.xml").detectMultiScale(
        upper, scaleFactor=1.1, minNeighbors=5, minSize=(max(8, w // 10), max(8, w // 10))
    )
    centres = sorted(
        ((x + ex + ew / 2, y + ey + eh / 2) for ex, ey, ew, eh in eyes),
        key=lambda c: c[0],
    )
    # Both eyes: one in each half of the face, at about the same height.
    left = [c for c in centres if c[0] < x + w / 2]
    right = [c for c in centres if c[0] >= x + w / 2]
    if not left or not right:
        return None
    left_eye, right_eye = left[-1], right[0]
    distance = math.dist(left_eye, right_eye)
    if not (0.25 * w <= distance <= 0.7 * w) or abs(left_eye[1] - right_eye[1]) > 0.25 * distance:
        return None
    return face_points_from_eyes(
        (left_eye[0] / scale, left_eye[1] / scale), (right_eye[0] / scale, right_eye[1] / scale)
    )


def face_points_from_eyes(
    left_eye: tuple[float, float],
    right_eye: tuple[float, float],
    mouth: tuple[float, float] | None = None,
) -> FacePoints:
    """Face points from the eyes (and the mouth, when marked; else estimated)."""
    distance = math.dist(left_eye, right_eye)
    if mouth is None:
        mid_x, mid_y = (left_eye[0] + right_eye[0]) / 2, (left_eye[1] + right_eye[1]) / 2
        # Perpendicular to the eye line, downwards (a tilted head tilts the mouth too).
        dx, dy = (right_eye[0] - left_eye[0]) / distance, (right_eye[1] - left_eye[1]) / distance
        mouth = (
            mid_x - dy * distance * MOUTH_BELOW_EYES,
            mid_y + dx * distance * MOUTH_BELOW_EYES,
        )
    return FacePoints(
        left_eye=(float(left_eye[0]), float(left_eye[1])),
        right_eye=(float(right_eye[0]), float(right_eye[1])),
        mouth=(float(mouth[0]), float(mouth[1])),
        mouth_width=float(distance * MOUTH_WIDTH_EYES),
    )
