"""Base64 in pieces: the same results and the same strictness as the standard library."""

from __future__ import annotations

import base64
import binascii
import os

import pytest

from apps.core import b64

SIZES = [0, 1, 2, 3, 100, b64.ENCODE_PIECE_BYTES, b64.ENCODE_PIECE_BYTES + 1, 2_000_001]


@pytest.mark.parametrize("size", SIZES)
def test_round_trips_as_the_standard_library_does(size: int) -> None:
    data = os.urandom(size)
    text = base64.b64encode(data).decode("ascii")
    assert b64.b64encode_text(data) == text
    assert b64.b64decode_strict(text) == data


LARGE = base64.b64encode(os.urandom(3_000_000)).decode("ascii")
PIECE = b64.DECODE_PIECE_CHARS


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(LARGE[:-1] + "!", id="bad-character"),
        pytest.param(LARGE + "A", id="bad-length"),
        pytest.param(LARGE[: PIECE - 4] + "AA==" + LARGE[PIECE:], id="padding-at-a-piece-end"),
        pytest.param(LARGE[:10] + "=" + LARGE[11:], id="padding-inside-a-piece"),
        pytest.param("é" * 2_000_000, id="not-ascii"),
        pytest.param("é", id="not-ascii-small"),
        pytest.param("YQ", id="missing-padding-small"),
    ],
)
def test_what_the_standard_library_refuses_is_refused(text: str) -> None:
    with pytest.raises((binascii.Error, ValueError)):
        base64.b64decode(text, validate=True)
    with pytest.raises(binascii.Error):
        b64.b64decode_strict(text)
