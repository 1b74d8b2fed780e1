"""The format of license keys and ephemeral client secrets, and how they are stored.

A key is ``<kind prefix><32 random base62 chars><6 char CRC32 checksum>``, for example
``lic_3kTq…Zp0aB1c9``:

* 32 base62 characters carry ~190 bits from ``secrets`` (ASVS 6.5.2 allows a plain SHA-256
  for secrets of ≥ 112 bits, so no slow password hash is needed).
* The checksum (GitHub token style) lets scanners and our own parser reject typos and
  look-alikes offline, before any database lookup.
* The kind prefix plus the first 8 random characters form the *lookup prefix*, stored in
  clear and indexed; the whole key is stored only as its SHA-256 digest.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import zlib
from dataclasses import dataclass

from apps.core.ids import BASE62_ALPHABET, random_base62

LICENSE_PREFIX = "lic_"
CLIENT_SECRET_PREFIX = "ek_"
RANDOM_CHARS = 32
CHECKSUM_CHARS = 6
LOOKUP_CHARS = 8
# Compared against when no stored key matches, so a miss costs the same as a mismatch.
DUMMY_DIGEST = hashlib.sha256(b"no such key").hexdigest()

_KEY_RE = re.compile(
    rf"^(lic_|ek_)([0-9A-Za-z]{{{RANDOM_CHARS}}})([0-9A-Za-z]{{{CHECKSUM_CHARS}}})$"
)


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    """A freshly generated key: the clear value (shown once) and what gets stored."""

    value: str
    """The full key. Show it to its owner once; never store or log it."""
    lookup_prefix: str
    """Kind prefix + first random characters; stored in clear for lookup and display."""
    digest: str
    """Hex SHA-256 of the full key; the only form that is stored."""


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        chars.append(BASE62_ALPHABET[rem])
    return "".join(reversed(chars))


def checksum(body: str) -> str:
    """Return the 6-character base62 CRC32 of ``body`` (kind prefix + random part)."""
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_CHARS)


def key_digest(value: str) -> str:
    """Return the hex SHA-256 of a key, the form in which keys are stored."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def lookup_prefix(value: str) -> str:
    """Return the stored lookup prefix of a well-formed key."""
    kind = CLIENT_SECRET_PREFIX if value.startswith(CLIENT_SECRET_PREFIX) else LICENSE_PREFIX
    return value[: len(kind) + LOOKUP_CHARS]


def generate_key(kind_prefix: str) -> GeneratedKey:
    """Generate a new key of the given kind (``lic_`` or ``ek_``)."""
    if kind_prefix not in (LICENSE_PREFIX, CLIENT_SECRET_PREFIX):
        raise ValueError(f"unknown key kind {kind_prefix!r}")
    body = kind_prefix + random_base62(RANDOM_CHARS)
    value = body + checksum(body)
    return GeneratedKey(value=value, lookup_prefix=lookup_prefix(value), digest=key_digest(value))


def key_kind(value: str) -> str | None:
    """Return ``"license"`` or ``"client_secret"`` for a well-formed key, else ``None``.

    Well-formed means the right alphabet and length *and* a matching checksum.
    """
    match = _KEY_RE.match(value)
    if match is None:
        return None
    prefix, random_part, check = match.groups()
    if not hmac.compare_digest(checksum(prefix + random_part), check):
        return None
    return "license" if prefix == LICENSE_PREFIX else "client_secret"


def digests_match(stored_digest: str, presented_digest: str) -> bool:
    """Compare two hex digests in constant time."""
    return hmac.compare_digest(stored_digest.encode("ascii"), presented_digest.encode("ascii"))


def masked(prefix: str) -> str:
    """Return a display form that identifies a key without revealing it."""
    return f"{prefix}…"
