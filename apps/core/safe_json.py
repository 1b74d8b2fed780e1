r"""JSON in and out at the edges (WebSocket frames, HTTP bodies), safe for untrusted input.

The standard library parser accepts things that later hurt the server:

- nesting thousands of levels deep, which raises ``RecursionError`` in the parser or in
  whatever walks the result next (pydantic, ``json.dumps``, the database's JSON functions);
- ``NaN``/``Infinity``/``-Infinity`` literals and numbers such as ``1e999`` that overflow to
  infinity, none of which is JSON: echoed back they make invalid JSON, stored they break
  SQLite's ``JSON_VALID`` check;
- ``"\ud800"`` escapes that decode to a lone UTF-16 surrogate, a string that cannot be
  encoded as UTF-8, so the first attempt to send or store it fails far from its cause.

``loads`` rejects all three with a ``JsonRejected`` that says which, before any caller
sees the value. The C parser guards its own recursion (past the interpreter's limit it
raises ``RecursionError``, caught here, never a crash); one iterative walk of the result
then enforces the much lower ``MAX_NESTING_DEPTH`` and looks for lone surrogates. Parsing
first is deliberate: a pre-scan of the text for brackets outside strings would cost every
8 MiB audio append ~50 ms of extra passes (and a crafted unterminated string over a second
of regex work), where the walk of an append's one object costs nothing. ``dumps`` is the
matching writer: its output is always valid JSON and always encodable as UTF-8.

Duplicate keys keep the last value, as the standard library (and most JSON parsers) do.
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import Any, Literal

logger = logging.getLogger(__name__)

#: Deepest nesting of arrays/objects accepted. OpenAI-shaped events and session configs
#: nest under 10 levels (a tool's JSON schema a little more); 64 leaves ample room while
#: staying far below the interpreter's recursion limit (1000) for every later walk.
MAX_NESTING_DEPTH = 64

RejectReason = Literal["syntax", "too_deep", "non_finite_number", "lone_surrogate"]

_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_UTF8_BOM = b"\xef\xbb\xbf"


class JsonRejected(ValueError):
    """Input that is not acceptable JSON.

    Attributes:
        detail: What is wrong, phrased to follow "The body is not valid JSON: " (no client
            text is quoted, so the detail is always safe to send back).
        reason: ``syntax`` (including not UTF-8), ``too_deep``, ``non_finite_number`` or
            ``lone_surrogate``.
        document: For ``non_finite_number`` and ``lone_surrogate``, what the text decoded to,
            offending values and all, only so that a caller can still read a harmless field
            such as an ``event_id``; None when the text could not be decoded at all (syntax)
            or is too deep to hand out.
    """

    def __init__(self, detail: str, *, reason: RejectReason, document: Any = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reason: RejectReason = reason
        self.document = document


def _decode(raw: str | bytes | bytearray | memoryview) -> str:
    if isinstance(raw, str):
        return raw
    data = bytes(raw)
    if data.startswith(_UTF8_BOM):
        # RFC 8259 §8.1 lets a parser ignore a byte order mark; json.loads(bytes) does too.
        data = data[len(_UTF8_BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonRejected(
            f"it is not UTF-8 (byte {exc.start} is invalid)", reason="syntax"
        ) from None


def _too_deep(max_depth: int) -> JsonRejected:
    return JsonRejected(
        f"it nests arrays and objects deeper than {max_depth} levels", reason="too_deep"
    )


def has_lone_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone UTF-16 surrogate, i.e. cannot be encoded as UTF-8."""
    return not text.isascii() and _SURROGATE_RE.search(text) is not None


def _inspect(document: Any, max_depth: int) -> RejectReason | None:
    """The first problem of a decoded value: too deep, a non-finite number, a lone surrogate.

    One breadth-first pass, level by level: no recursion, no per-node tuples, and lists are
    expanded with C-level ``extend``, so the walk costs a fraction of the parse even for a
    frame of millions of tiny values.
    """
    non_finite = surrogate = False
    values: list[Any] = [document]
    level = 0
    while values:
        level += 1
        children: list[Any] = []
        container_seen = False
        for value in values:
            kind = type(value)  # json.loads builds exact types, never subclasses
            if kind is str:
                surrogate = surrogate or has_lone_surrogate(value)
            elif kind is list:
                container_seen = True
                children.extend(value)
            elif kind is dict:
                container_seen = True
                children.extend(value.values())
                for key in value:
                    surrogate = surrogate or has_lone_surrogate(key)
            elif kind is float:
                non_finite = non_finite or not math.isfinite(value)
        if container_seen and level > max_depth:
            return "too_deep"
        values = children
    if non_finite:
        return "non_finite_number"
    return "lone_surrogate" if surrogate else None


def loads(raw: str | bytes | bytearray | memoryview, *, max_depth: int = MAX_NESTING_DEPTH) -> Any:
    """Decode untrusted JSON text, refusing what would hurt the server later.

    Args:
        raw: The text, or UTF-8 bytes (an optional byte order mark is ignored).
        max_depth: Deepest nesting of arrays and objects accepted.

    Returns:
        The decoded value: only finite floats, only strings that encode as UTF-8.

    Raises:
        JsonRejected: Not UTF-8, not JSON, nested deeper than ``max_depth``, a non-finite
            number, or a lone surrogate anywhere (keys included).
    """
    text = _decode(raw)
    literals: list[str] = []

    def constant(name: str) -> None:
        literals.append(name)

    try:
        # 1e999 parses to inf here (the walk catches it): a parse_float hook would run Python
        # code for every number and more than double the cost of a float-heavy frame.
        document = json.loads(text, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise JsonRejected(
            f"{exc.msg} (line {exc.lineno}, column {exc.colno})", reason="syntax"
        ) from None
    except RecursionError:
        # The C parser's own guard (about 1000 levels): a clean exception, not a crash.
        raise _too_deep(max_depth) from None
    except ValueError:
        # int() refuses integer literals over sys.get_int_max_str_digits() (4300) digits.
        raise JsonRejected("a number has too many digits", reason="syntax") from None
    problem = _inspect(document, max_depth)
    if problem == "too_deep":
        # No document: a value this deep is not handed to anything, not even to read an id.
        raise _too_deep(max_depth)
    if literals:
        problem = "non_finite_number"
    if problem == "non_finite_number":
        detail = (
            f"{literals[0]} is not a JSON number"
            if literals
            else "a number is too large for a 64-bit float"
        )
        raise JsonRejected(detail, reason="non_finite_number", document=document)
    if problem == "lone_surrogate":
        raise JsonRejected(
            "it contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not a character",
            reason="lone_surrogate",
            document=document,
        )
    return document


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def dumps(value: Any) -> str:
    r"""Encode a server-built value as JSON text that is valid JSON and valid UTF-8.

    Non-ASCII characters are kept as they are (smaller frames than ``\uXXXX``). Should a
    non-finite float or a lone surrogate slip into a server value anyway (a bug: inputs are
    checked by ``loads``), the float becomes ``null`` and the surrogate U+FFFD, with a
    warning, instead of an exception in the middle of a send.

    Raises:
        TypeError: ``value`` holds something JSON cannot represent (a programming error).
        ValueError: ``value`` contains itself (a programming error).
    """
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        if "Circular" in str(exc):
            raise
        logger.warning("non-finite float in outgoing JSON; sent as null")
        text = json.dumps(_finite(value), ensure_ascii=False, allow_nan=False)
    if has_lone_surrogate(text):
        logger.warning("lone surrogate in outgoing JSON; sent as U+FFFD")
        text = _SURROGATE_RE.sub("\ufffd", text)
    return text
