"""Log lines keep their extra fields (session id first), in plain text or one JSON per line."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import RequestFactory

from apps.core.logging import JsonFormatter, PlainFormatter, json_safe


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO, logging.StreamHandler]]:
    """A private logger writing to a string, whose formatter each test sets."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("tests.core.logging")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    yield logger, stream, handler
    logger.handlers = []
    logger.propagate = True


def test_plain_lines_append_extras_with_the_session_id_first(capture) -> None:
    logger, stream, handler = capture
    handler.setFormatter(PlainFormatter())
    logger.info(
        "realtime connection refused",
        extra={"code": "invalid_api_key", "session_id": "sess_abc", "attempts": 3},
    )
    line = stream.getvalue()
    assert line.count("\n") == 1
    assert line.rstrip("\n").endswith(
        "INFO tests.core.logging realtime connection refused "
        "session_id=sess_abc code=invalid_api_key attempts=3"
    )


def test_plain_values_that_could_break_the_line_are_quoted(capture) -> None:
    logger, stream, handler = capture
    handler.setFormatter(PlainFormatter())
    logger.warning(
        "odd values",
        extra={
            "text": 'two words\nINFO forged line key="x"',
            "flags": {"a": [1, 2.5, None]},
            "ratio": float("nan"),
        },
    )
    line = stream.getvalue()
    # One line only: a client-supplied newline cannot forge a second log entry.
    assert line.count("\n") == 1
    assert r'text="two words\nINFO forged line key=\"x\""' in line
    assert 'flags={"a":[1,2.5,null]}' in line
    assert 'ratio="nan"' in line


def test_plain_line_without_extras_is_unchanged_and_keeps_the_traceback(capture) -> None:
    logger, stream, handler = capture
    handler.setFormatter(PlainFormatter())
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("it failed", extra={"session_id": "sess_1"})
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith("ERROR tests.core.logging it failed session_id=sess_1")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: boom"


def test_json_lines_carry_the_core_fields_extras_and_the_traceback(capture) -> None:
    logger, stream, handler = capture
    handler.setFormatter(JsonFormatter())

    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque>"

    try:
        raise RuntimeError("kaput")
    except RuntimeError:
        logger.error(
            "response %s failed",
            "resp_1",
            exc_info=True,
            extra={
                "reason": "timeout",
                "session_id": "sess_9",
                "obj": Opaque(),
                "numbers": (1, float("inf")),
                "level": "shadowed",
            },
        )
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert list(entry)[:5] == ["ts", "level", "logger", "message", "session_id"]
    assert entry["ts"].endswith("Z") and "T" in entry["ts"]
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "tests.core.logging"
    assert entry["message"] == "response resp_1 failed"
    assert entry["reason"] == "timeout"
    assert entry["obj"] == "<Opaque>"
    assert entry["numbers"] == [1, "inf"]
    # An extra named like a core field does not overwrite it.
    assert entry["extra_level"] == "shadowed"
    assert entry["exc_info"].startswith("Traceback (most recent call last):")
    assert entry["exc_info"].endswith("RuntimeError: kaput")


def test_a_django_request_is_logged_without_its_query_string(capture) -> None:
    logger, stream, handler = capture
    request = RequestFactory().get("/v1/realtime?license=lic_secret_value")
    for formatter in (PlainFormatter(), JsonFormatter()):
        handler.setFormatter(formatter)
        logger.warning("Not Found: /v1/realtime", extra={"status_code": 404, "request": request})
    out = stream.getvalue()
    assert "lic_secret_value" not in out
    assert 'request="GET /v1/realtime"' in out
    assert '"request":"GET /v1/realtime"' in out


def test_json_safe_bounds_depth_and_survives_a_broken_repr() -> None:
    nested: list = []
    nested.append(nested)  # a list that contains itself
    assert json.dumps(json_safe(nested))  # no RecursionError

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError

    assert json_safe(Broken()) == "<unrepresentable Broken>"
    assert json_safe({1: {2}}) == {"1": [2]}


def test_settings_pick_the_format_from_LOG_FORMAT() -> None:
    assert settings.LOGGING["handlers"]["console"]["formatter"] == "plain"
    script = (
        "import django, logging;"
        "django.setup();"
        "logging.getLogger('x').warning('hello', extra={'session_id': 'sess_7'})"
    )

    def run(log_format: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "realtime_site.settings.test",
            "LOG_FORMAT": log_format,
        }
        return subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=settings.BASE_DIR,
        )

    as_json = run("json")
    assert as_json.returncode == 0, as_json.stderr
    entry = json.loads(as_json.stderr.strip().splitlines()[-1])
    assert entry["message"] == "hello" and entry["session_id"] == "sess_7"
    plain = run("plain")
    assert plain.stderr.strip().splitlines()[-1].endswith("WARNING x hello session_id=sess_7")
    wrong = run("xml")
    assert wrong.returncode != 0 and "LOG_FORMAT must be plain or json" in wrong.stderr
