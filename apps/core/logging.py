"""Log formatters that keep the ``extra`` fields callers attach (session id first).

``logger.info("realtime session ended", extra={"session_id": sid, "reason": "client"})``

* :class:`PlainFormatter` (the default) writes ``2026-01-01 12:00:00,000 INFO
  apps.realtime.session realtime session ended session_id=sess_1 reason=client`` (one line).
* :class:`JsonFormatter` (``LOG_FORMAT=json``) writes one JSON object per line:
  ``{"ts": …, "level": …, "logger": …, "message": …, "session_id": …, "reason": …}``, with a
  traceback as the string ``exc_info``.

Extra values are made JSON-safe (anything else becomes its ``repr``), and string values are
escaped so a client-supplied value can never start a new log line.

This module is imported by ``logging.config.dictConfig`` before Django's apps are ready, so it
must import nothing from Django or the project.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Put first when present: the field an operator greps a session's lines by.
LEADING_FIELDS = ("session_id",)
# Nested containers deeper than this are logged as their repr (guards self-references).
MAX_DEPTH = 6
# Plain-format values made only of these characters are written without quotes.
_BARE_VALUE = re.compile(r"[\w.:/@+\-]+")

# Every attribute a LogRecord has before `extra` is applied; anything else came from `extra`.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    # Added by Python 3.12; listed so records from newer interpreters do not leak it.
    "taskName",
}
# Keys of the JSON object itself; an extra field with one of these names is written as extra_<name>.
_JSON_CORE = ("ts", "level", "logger", "message", "exc_info", "stack_info")


def extra_fields(record: logging.LogRecord) -> Iterator[tuple[str, Any]]:
    """The record's ``extra`` fields, ``session_id`` first, then in the order they were given.

    Args:
        record: A log record.

    Yields:
        ``(name, value)`` pairs; private attributes (leading ``_``) are skipped.
    """
    fields = {
        key: value
        for key, value in vars(record).items()
        if key not in _RESERVED and not key.startswith("_")
    }
    for key in LEADING_FIELDS:
        if key in fields:
            yield key, fields.pop(key)
    yield from fields.items()


def json_safe(value: Any, *, _depth: int = 0) -> Any:
    """``value`` as something ``json.dumps(..., allow_nan=False)`` accepts.

    Strings, booleans, ``None``, integers and finite floats pass through; lists, tuples, sets
    and dicts are converted item by item (dict keys become strings); a Django request becomes
    ``"METHOD /path"`` (never its query string); a non-finite float and anything else becomes
    its ``repr``.

    Args:
        value: Any object attached to a log record.

    Returns:
        A JSON-serialisable equivalent.
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if _depth >= MAX_DEPTH:
        return repr(value)
    if isinstance(value, dict):
        return {str(key): json_safe(item, _depth=_depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item, _depth=_depth + 1) for item in value]
    if all(hasattr(value, name) for name in ("META", "method", "path")):
        # Django attaches the request to its own log records (``django.request``); its repr
        # holds the query string, where a NavTalk client may put its license key. Method and
        # path only.
        return f"{value.method} {value.path}"
    try:
        return repr(value)
    except Exception:  # a broken __repr__ must not lose the log line
        return f"<unrepresentable {type(value).__name__}>"


def _dumps(value: Any) -> str:
    return json.dumps(json_safe(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def plain_value(value: Any) -> str:
    """How one extra value is written in a plain line.

    Simple tokens (ids, numbers, codes) stay bare; anything with spaces, quotes, ``=`` or
    control characters is written as a JSON string, so the line stays one line and parses.

    Args:
        value: An extra field's value.

    Returns:
        The text after ``key=``.
    """
    if isinstance(value, str):
        return value if _BARE_VALUE.fullmatch(value) else _dumps(value)
    return _dumps(value)


class PlainFormatter(logging.Formatter):
    """The classic one-line format, followed by the record's extra fields as ``key=value``."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None) -> None:
        """Use ``fmt`` (default: time, level, logger, message) and ``datefmt``."""
        super().__init__(fmt or DEFAULT_FORMAT, datefmt)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        """The formatted line without the traceback, extras appended."""
        line = super().formatMessage(record)
        pairs = " ".join(f"{key}={plain_value(value)}" for key, value in extra_fields(record))
        return f"{line} {pairs}" if pairs else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, extras, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialise ``record`` as a single line of JSON."""
        entry: dict[str, Any] = {
            # UTC with milliseconds, ISO 8601, so lines from several hosts sort together.
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in extra_fields(record):
            entry[f"extra_{key}" if key in _JSON_CORE else key] = json_safe(value)
        if record.exc_info:
            # Cached on the record as the stdlib formatter does, for other handlers.
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
