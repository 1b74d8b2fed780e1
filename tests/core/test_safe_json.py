"""The edge JSON reader/writer: bounded depth, finite numbers, no lone surrogates."""

from __future__ import annotations

import json

import pytest

from apps.core import safe_json
from apps.core.safe_json import MAX_NESTING_DEPTH, JsonRejected


def _arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


def _objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _rejected(raw: str | bytes, reason: str) -> JsonRejected:
    with pytest.raises(JsonRejected) as info:
        safe_json.loads(raw)
    assert info.value.reason == reason
    # The detail goes back to clients verbatim: it must be sendable whatever the input was.
    info.value.detail.encode("utf-8")
    return info.value


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "input_audio_buffer.append", "audio": "AAAA", "event_id": "e"}',
        '[1, -2.5, 1e300, true, false, null, "x", {"k": []}]',
        '"\\ud83d\\ude00 caf\\u00e9"',  # a surrogate *pair* is one character, not a lone one
        '"\\\\ud800"',  # an escaped backslash then "ud800": six ordinary characters
        json.dumps({"text": "[" * 5000 + "{" * 5000}),  # brackets inside strings do not nest
        json.dumps({"text": '\\"[[[[' * 200}),  # nor do they after an escaped quote
        json.dumps({"tools": [{"p": {"q": [1, 2, 3]}}] * 100}),  # many brackets, shallow
    ],
)
def test_ordinary_json_decodes_as_the_standard_library_does(text: str) -> None:
    assert safe_json.loads(text) == json.loads(text)
    assert safe_json.loads(text.encode("utf-8")) == json.loads(text)


@pytest.mark.parametrize("nest", [_arrays, _objects])
def test_nesting_is_bounded_at_exactly_the_limit(nest) -> None:
    assert safe_json.loads(nest(MAX_NESTING_DEPTH)) is not None
    _rejected(nest(MAX_NESTING_DEPTH + 1), "too_deep")


@pytest.mark.parametrize("depth", [2_000, 100_000])
@pytest.mark.parametrize("nest", [_arrays, _objects])
def test_deep_nesting_is_rejected_cleanly(nest, depth: int) -> None:
    # 2,000 passes the parser and is caught by the walk; 100,000 trips the parser's own
    # recursion guard. Either way: one JsonRejected, no RecursionError, no crash.
    error = _rejected(nest(depth), "too_deep")
    assert str(MAX_NESTING_DEPTH) in error.detail and error.document is None


def test_depth_counts_nesting_not_brackets() -> None:
    # 800,000 brackets in shallow siblings, then one branch exactly at (or one past) the limit.
    siblings = "[]," * 400_000
    inner = MAX_NESTING_DEPTH - 1
    assert safe_json.loads("[" + siblings + _arrays(inner) + "]") is not None
    _rejected("[" + siblings + _arrays(inner + 1) + "]", "too_deep")


@pytest.mark.parametrize(
    "literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" + "0" * 400 + ".0"]
)
def test_non_finite_numbers_are_rejected_with_the_id_readable(literal: str) -> None:
    error = _rejected(f'{{"event_id": "e", "x": [{literal}]}}', "non_finite_number")
    assert error.document["event_id"] == "e"  # still readable, to echo it


@pytest.mark.parametrize(
    ("text", "document"),
    [
        ('{"type": "\\ud800", "event_id": "e"}', {"type": "\ud800", "event_id": "e"}),
        ('{"\\udc00": 1}', {"\udc00": 1}),
        ('["ok", {"deep": ["\\uD83Dx"]}]', ["ok", {"deep": ["\ud83dx"]}]),
        ('"\\ude00\\ud83d"', "\ude00\ud83d"),  # a pair in the wrong order is two lone halves
    ],
)
def test_lone_surrogate_escapes_are_rejected(text: str, document) -> None:
    error = _rejected(text, "lone_surrogate")
    assert error.document == document


def test_lone_surrogate_characters_in_a_str_are_rejected() -> None:
    # Not reachable from a WebSocket (frames are UTF-8), but a str can carry one in-process.
    _rejected('{"a": "\ud800"}', "lone_surrogate")


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe{}",  # not UTF-8 (UTF-16 byte order mark)
        b'"\xed\xa0\x80"',  # a surrogate encoded as UTF-8 bytes is not UTF-8
        "{not json",
        "",
        "1" * 5000,  # over the interpreter's 4300-digit limit for int()
    ],
)
def test_undecodable_text_is_a_syntax_rejection(raw: str | bytes) -> None:
    assert _rejected(raw, "syntax").document is None


def test_a_utf8_byte_order_mark_is_ignored() -> None:
    assert safe_json.loads(b"\xef\xbb\xbf{}") == {}


def test_rejections_are_value_errors() -> None:
    # Code that already catches ValueError around json.loads keeps working.
    with pytest.raises(ValueError):
        safe_json.loads("NaN")


def test_dumps_is_valid_utf8_json() -> None:
    value = {"text": "café 😀", "nan": float("nan"), "inf": [float("-inf")], "bad": "a\ud800b"}
    text = safe_json.dumps(value)
    text.encode("utf-8")
    assert json.loads(text) == {"text": "café 😀", "nan": None, "inf": [None], "bad": "a\ufffdb"}
    assert "café" in text  # non-ASCII is sent as itself, not as \\u escapes


def test_dumps_matches_the_standard_library_for_clean_values() -> None:
    value = {"type": "response.output_audio.delta", "delta": "AAAA", "n": [1, 2.5, None, True]}
    assert safe_json.dumps(value) == json.dumps(value, ensure_ascii=False)
