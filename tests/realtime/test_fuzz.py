"""Property test: malformed and mutated client events never hurt the session.

Each example starts a session, sends one bad frame, then a probe. The bad frame must get
exactly one ``error`` (echoing its ``event_id`` when it had a usable one), the probe must
still be answered, the session must stay open, and no task may fail unobserved.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import logging
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .fakes import Harness

SILENCE = base64.b64encode(bytes(960)).decode()
TEMPLATES: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    # event -> (a valid instance, its required keys)
    "session.update": ({"session": {"type": "realtime", "instructions": "x"}}, ("session",)),
    "input_audio_buffer.append": ({"audio": SILENCE}, ("audio",)),
    "conversation.item.create": (
        {
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hi"}],
            }
        },
        ("item",),
    ),
    "conversation.item.retrieve": ({"item_id": "item_x"}, ("item_id",)),
    "conversation.item.truncate": (
        {"item_id": "item_x", "content_index": 0, "audio_end_ms": 0},
        ("item_id", "content_index", "audio_end_ms"),
    ),
    "conversation.item.delete": ({"item_id": "item_x"}, ("item_id",)),
    "response.create": (
        {"response": {"instructions": "x", "metadata": {"k": "v"}, "max_output_tokens": 5}},
        (),
    ),
    "response.cancel": ({"response_id": "resp_x"}, ()),
}
WRONG_FOR = {
    str: [1, 2.5, True, [], {}, ["x"]],
    int: ["1", 1.5, [], {}, "x"],
    dict: ["x", 1, [], True],
    list: ["x", 1, {}, True],
}


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [path] if path else []
    if isinstance(value, dict):
        for key, child in value.items():
            paths.extend(_leaves(child, (*path, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths.extend(_leaves(child, (*path, index)))
    return paths


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


def _set(value: Any, path: tuple[Any, ...], new: Any) -> None:
    for key in path[:-1]:
        value = value[key]
    value[path[-1]] = new


@st.composite
def mutated_events(draw: st.DrawFn) -> tuple[str, str | None]:
    """A frame that is certainly invalid, and the event_id the error should echo."""
    kind = draw(st.sampled_from(sorted(TEMPLATES)))
    body, required = TEMPLATES[kind]
    event = {"type": kind, "event_id": "bad_1", **copy.deepcopy(body)}
    how = draw(st.sampled_from(["wrong_type", "drop", "extra", "type"]))
    if how == "drop" and required:
        del event[draw(st.sampled_from(required))]
    elif how == "type":
        event["type"] = draw(st.text(max_size=40).filter(lambda t: t not in TEMPLATES))
    elif how == "extra" or (how == "drop" and not required):
        # metadata is a free-form map: an extra string key there is still valid.
        paths = [()] + [
            p for p in _leaves(body) if isinstance(_get(body, p), dict) and p[-1] != "metadata"
        ]
        target = _get(event, draw(st.sampled_from(paths)))
        target[draw(st.sampled_from(["bogus", "zz_unknown", "Type"]))] = draw(
            st.one_of(st.integers(), st.text(max_size=5))
        )
    else:
        paths = [p for p in _leaves(body) if type(_get(body, p)) in WRONG_FOR]
        path = draw(st.sampled_from(paths))
        _set(event, path, draw(st.sampled_from(WRONG_FOR[type(_get(body, path))])))
    return json.dumps(event), "bad_1"


LONE_SURROGATES = st.integers(min_value=0xD800, max_value=0xDFFF).map(chr)


def _with_lone_surrogate(draw: st.DrawFn) -> str:
    # Default text never holds surrogates, so the one inserted cannot pair up with a neighbour.
    return draw(st.text(max_size=4)) + draw(LONE_SURROGATES) + draw(st.text(max_size=4))


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@st.composite
def hostile_events(draw: st.DrawFn) -> tuple[str, str | None]:
    """Frames that once silenced or killed a session, and the event_id the error echoes.

    Lone surrogates (in ``type``, a value, a key, or ``event_id``), nesting past the depth
    limit, ``NaN``/``Infinity`` literals, and keys sent twice (the last one counts).
    """
    kind = draw(st.sampled_from(sorted(TEMPLATES)))
    body, _required = TEMPLATES[kind]
    event: dict[str, Any] = {"type": kind, "event_id": "bad_1", **copy.deepcopy(body)}
    spots = [("type",), ("event_id",), *_leaves(body)]
    spot = draw(st.sampled_from(spots))
    how = draw(st.sampled_from(["surrogate", "surrogate_key", "deep", "non_finite"]))
    echo: str | None = "bad_1"
    marker = "\x00hostile\x00"
    raw_value = ""
    if how == "surrogate":
        _set(event, spot, _with_lone_surrogate(draw))
        echo = None if spot == ("event_id",) else echo
    elif how == "surrogate_key":
        parent = _get(event, spot[:-1])
        if not isinstance(parent, dict):
            parent = event
        parent[_with_lone_surrogate(draw)] = 1
    elif how == "deep":
        _set(event, spot, marker)
        # Whatever depth the spot has, this is past the 64-level limit; too deep to decode,
        # so there is no event_id to echo.
        raw_value = _nested(draw(st.integers(min_value=64, max_value=5_000)))
        echo = None
    else:
        raw_value = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e400"]))
        _set(event, spot, marker)
        echo = None if spot == ("event_id",) else echo
    frame = json.dumps(event)
    if raw_value:
        frame = frame.replace(json.dumps(marker), raw_value)
    if draw(st.booleans()) and echo is not None:
        # The same key twice: the first event_id is overridden by the last.
        frame = '{"event_id": "overridden", ' + frame[1:]
    return frame, echo


garbage = st.one_of(
    st.text(max_size=200).filter(lambda t: not t.strip().startswith("{")),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda children: st.lists(children, max_size=3),
        max_leaves=8,
    ).map(json.dumps),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3)
    .filter(lambda d: "type" not in d)
    .map(json.dumps),
).map(lambda frame: (frame, None))


class _Failures(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def _one(frame: str | bytes, echo: str | None) -> None:
    loop = asyncio.get_running_loop()
    unobserved: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: unobserved.append(context))
    failures = _Failures()
    logging.getLogger("apps.realtime").addHandler(failures)
    try:
        h = await Harness().start()
        if isinstance(frame, bytes):
            await h.session.receive_audio(frame)
        else:
            await h.send(frame)
        await h.send({"type": "input_audio_buffer.clear", "event_id": "probe"})
        await h.wait_for("input_audio_buffer.cleared", timeout_s=5)
        errors = h.of("error")
        assert len(errors) == 1, (frame, errors)
        for event in h.events:
            # What the consumer sends: must be valid JSON and encode as UTF-8.
            json.dumps(event, ensure_ascii=False, allow_nan=False).encode("utf-8")
        assert errors[0]["error"]["type"] == "invalid_request_error"
        assert errors[0]["error"]["event_id"] == echo
        assert h.closed is None and not h.session.closed
        await h.close()
    finally:
        logging.getLogger("apps.realtime").removeHandler(failures)
    assert not failures.records, [r.getMessage() for r in failures.records]
    assert not unobserved, unobserved


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.one_of(mutated_events(), garbage))
def test_malformed_events_get_one_error_and_keep_the_session(case: tuple[str, str | None]) -> None:
    frame, echo = case
    asyncio.run(_one(frame, echo))


@settings(max_examples=50, deadline=None)
@given(data=st.binary(min_size=1, max_size=999).filter(lambda b: len(b) % 2 == 1))
def test_odd_binary_audio_gets_one_error(data: bytes) -> None:
    asyncio.run(_one(data, None))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=hostile_events())
def test_hostile_frames_get_one_sendable_error_and_keep_the_session(
    case: tuple[str, str | None],
) -> None:
    frame, echo = case
    asyncio.run(_one(frame, echo))
