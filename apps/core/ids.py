"""Prefixed random identifiers (``sess_…``, ``item_…``, ``resp_…``, ``event_…``, ``call_…``).

The prefix tells a reader what an id names; the random part is URL-safe base62 so ids survive
copy/paste, logs and query strings unchanged.
"""

from __future__ import annotations

import secrets
import string

BASE62_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
# Bytes below 248 (= 4 x 62) map onto the alphabet uniformly; the rest are discarded.
_UNIFORM_BELOW = 248


def random_base62(length: int) -> str:
    """Return ``length`` characters drawn uniformly from the base62 alphabet.

    One ``os.urandom`` read per id (rejection sampling) instead of one per character: every
    server event carries a fresh id, so this runs thousands of times a second under load.
    """
    chars: list[str] = []
    while len(chars) < length:
        for byte in secrets.token_bytes(length + length // 4 + 2):
            if byte < _UNIFORM_BELOW:
                chars.append(BASE62_ALPHABET[byte % 62])
                if len(chars) == length:
                    break
    return "".join(chars)


def prefixed_id(prefix: str, length: int = 22) -> str:
    """Return ``<prefix>_<length base62 chars>``; 22 chars carry ~131 bits."""
    return f"{prefix}_{random_base62(length)}"


def session_id() -> str:
    """A new realtime session id."""
    return prefixed_id("sess")


def item_id() -> str:
    """A new conversation item id."""
    return prefixed_id("item")


def response_id() -> str:
    """A new response id."""
    return prefixed_id("resp")


def event_id() -> str:
    """A new server event id."""
    return prefixed_id("event")


def call_id() -> str:
    """A new function call id."""
    return prefixed_id("call")
