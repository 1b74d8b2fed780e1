"""Look parameters of a character: the knobs the avatar renderer reads.

Kept as plain data (JSON in the database) so operators can add looks without code. Colours
are ``#rrggbb``; the other keys are small enumerations the renderer knows how to draw.
"""

from __future__ import annotations

import re
from typing import Any

COLOR_KEYS = ("skin", "hair", "eyes", "lips", "shirt", "background")
CHOICE_KEYS: dict[str, tuple[str, ...]] = {
    "hair_style": ("short", "long", "bob", "bun", "curly", "bald"),
    "face_shape": ("oval", "round", "square", "heart"),
    "accessory": ("none", "glasses", "earrings", "headphones", "hat"),
}
DEFAULT_LOOK: dict[str, str] = {
    "skin": "#e0b89a",
    "hair": "#3b2a20",
    "eyes": "#4a3426",
    "lips": "#b5545c",
    "shirt": "#2f5d8a",
    "background": "#dfe7ef",
    "hair_style": "short",
    "face_shape": "oval",
    "accessory": "none",
}
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def look_errors(look: Any) -> list[str]:
    """Return human-readable problems with a look dict (empty when it is valid)."""
    if not isinstance(look, dict):
        return ["The look must be a JSON object."]
    errors: list[str] = []
    for key, value in look.items():
        if key in COLOR_KEYS:
            if not (isinstance(value, str) and _COLOR_RE.match(value)):
                errors.append(f"{key}: expected a colour like #a1b2c3, got {value!r}")
        elif key in CHOICE_KEYS:
            if value not in CHOICE_KEYS[key]:
                errors.append(
                    f"{key}: expected one of {', '.join(CHOICE_KEYS[key])}, got {value!r}"
                )
        else:
            errors.append(f"unknown look parameter {key!r}")
    return errors


def full_look(look: dict[str, str]) -> dict[str, str]:
    """The look with defaults filled in for every parameter it leaves out."""
    return {**DEFAULT_LOOK, **look}
