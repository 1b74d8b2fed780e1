"""Base64 for large audio payloads, in pieces the GIL can change hands between.

``binascii`` holds the GIL for a whole call: decoding an 8 MiB append is one 30–50 ms call,
and even in an executor thread it stops the event loop's thread for that long. Working in
pieces of about a megabyte (1–3 ms each) lets the interpreter switch threads between them,
so the loop waits for one piece at most (each piece ends with a ``time.sleep(0)``, which
hands the GIL over at once instead of after the switch interval). Results are the same as
``base64``'s strict functions; small inputs take the single call.
"""

from __future__ import annotations

import base64
import binascii
import time

# Characters per decode call (a multiple of 4) and bytes per encode call (a multiple of 3).
DECODE_PIECE_CHARS = 1024 * 1024
ENCODE_PIECE_BYTES = 3 * 256 * 1024


def b64decode_strict(text: str) -> bytes:
    """Strict base64 (standard alphabet, padding required) to bytes.

    Raises:
        binascii.Error: Not valid base64 (also for non-ASCII text).
    """
    if len(text) <= DECODE_PIECE_CHARS:
        try:
            return base64.b64decode(text, validate=True)
        except ValueError as exc:  # non-ASCII str
            raise binascii.Error(str(exc)) from None
    if len(text) % 4 or not text.isascii():
        raise binascii.Error("not valid base64")
    last = len(text) - DECODE_PIECE_CHARS
    pieces = []
    for start in range(0, len(text), DECODE_PIECE_CHARS):
        piece = text[start : start + DECODE_PIECE_CHARS]
        # Padding may only close the last piece; strict mode refuses it anywhere else.
        if start < last and piece.endswith("="):
            raise binascii.Error("not valid base64")
        pieces.append(binascii.a2b_base64(piece, strict_mode=True))
        time.sleep(0)  # hand the GIL to whoever waits (the event loop), not after 1 ms
    return b"".join(pieces)


def b64encode_text(data: bytes) -> str:
    """``base64.b64encode(data).decode("ascii")``, in pieces for large data."""
    if len(data) <= ENCODE_PIECE_BYTES:
        return base64.b64encode(data).decode("ascii")
    view = memoryview(data)
    pieces = []
    for start in range(0, len(data), ENCODE_PIECE_BYTES):
        pieces.append(base64.b64encode(view[start : start + ENCODE_PIECE_BYTES]).decode("ascii"))
        time.sleep(0)  # as in b64decode_strict
    return "".join(pieces)
