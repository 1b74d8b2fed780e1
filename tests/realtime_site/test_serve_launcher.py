"""``realtime_site.serve``: Daphne's command line with the project's limits and a key-free log."""

from __future__ import annotations

import io
from datetime import datetime

from apps.realtime.lifecycle import daphne_flags_missing
from realtime_site.serve import APPLICATION, RedactingAccessLog, daphne_arguments


def test_both_size_limits_and_the_application_are_added_when_missing() -> None:
    args = daphne_arguments(["-b", "127.0.0.1", "-p", "8000"])
    assert args[args.index("--websocket-max-message-size") + 1] == str(16 * 1024 * 1024)
    assert args[args.index("--websocket-max-frame-size") + 1] == str(16 * 1024 * 1024)
    assert args[-1] == APPLICATION
    assert daphne_flags_missing(["/venv/bin/daphne", *args]) == []


def test_given_options_and_application_are_kept() -> None:
    given = ["--websocket-max-frame-size=1000", "-b", "::1", "other.asgi:app"]
    args = daphne_arguments(given)
    assert "--websocket-max-frame-size" not in args  # given in its = form
    assert args.count("--websocket-max-message-size") == 1
    assert args[-1] == "other.asgi:app" and APPLICATION not in args


def test_plain_daphne_without_the_limits_is_detected() -> None:
    assert daphne_flags_missing(["/venv/bin/daphne", "realtime_site.asgi:application"]) == [
        "--websocket-max-message-size",
        "--websocket-max-frame-size",
    ]
    assert daphne_flags_missing(["/venv/bin/daphne", "--websocket-max-message-size", "9"]) == [
        "--websocket-max-frame-size"
    ]
    assert daphne_flags_missing(["manage.py", "test"]) == []


def test_the_access_log_never_writes_a_query_string() -> None:
    stream = io.StringIO()
    log = RedactingAccessLog(stream)
    now = datetime(2026, 11, 30)
    log.write_entry("1.2.3.4:5", now, "GET /v1/models?api_key=lic_secret", 401, 10)
    log.write_entry("1.2.3.4:5", now, "WSCONNECT /api/realtime-api?license=lic_secret")
    log.write_entry("1.2.3.4:5", now, "GET /healthz", 200, 16)
    written = stream.getvalue()
    assert "lic_secret" not in written and "?" not in written
    assert '"GET /v1/models"' in written and '"WSCONNECT /api/realtime-api"' in written
    assert '"GET /healthz"' in written
