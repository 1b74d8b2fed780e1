"""Helpers for tests that run the project as real processes (CLI, Daphne)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def project_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a dev-settings process with its own state directory and SQLite file."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="realtime_site.settings.dev",
        VAR_DIR=str(var_dir),
        DATABASE_URL=f"sqlite:///{var_dir / 'db.sqlite3'}",
        PYTHONUNBUFFERED="1",
        # Share the models `make` assembled rather than needing them in every temp state dir.
        VOICE_MODEL_CACHE=str(ROOT / "var" / "models"),
        DEBUG="false",
    )
    env.update(extra)
    return env


def manage(
    env: Mapping[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )


def wait_http(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# Daphne's default 1 MiB message cap closes the socket with no error event; the server runs
# with a larger cap so the app's own REALTIME_MAX_EVENT_BYTES answers oversized events.
DAPHNE_MAX_MESSAGE_BYTES = 16 * 1024 * 1024


def start_daphne(env: Mapping[str, str], port: int, log: IO[str]) -> subprocess.Popen[str]:
    """Start the server as ``make run`` does (``realtime_site.serve``, Daphne) on loopback.

    Its output goes to ``log``.
    """
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "realtime_site.serve",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "--websocket-max-message-size",
            str(DAPHNE_MAX_MESSAGE_BYTES),
            "--websocket-max-frame-size",
            str(DAPHNE_MAX_MESSAGE_BYTES),
        ],
        cwd=ROOT,
        env=dict(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


@contextmanager
def daphne(env: Mapping[str, str], port: int) -> Iterator[str]:
    """Run ``daphne realtime_site.asgi:application`` and yield its base URL.

    Its output goes to a temporary file (a pipe nobody reads would fill and stall it) and
    is shown if it fails to start.
    """
    log = tempfile.TemporaryFile(mode="w+")
    proc = start_daphne(env, port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_http(base + "/healthz")
        except Exception:
            proc.kill()
            proc.wait(timeout=10)
            log.seek(0)
            raise RuntimeError(f"daphne did not start:\n{log.read()}") from None
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def scripted_server_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a server process on the test settings: scripted LLM, fake engines."""
    env = project_env(var_dir, **extra)
    env["DJANGO_SETTINGS_MODULE"] = "realtime_site.settings.test"
    env["TEST_SERVER_VAR_DIR"] = str(var_dir)
    return env
