"""Identify the serving worker process so its leftovers can be recognised after it dies.

A worker id is ``<host>:<pid>:<start token>``. The pid alone is not enough: after a crash the
kernel may hand the same pid to a new process (a restarted server often gets the very same
pid at boot), so the token records *which* process held it — its start time in clock ticks
since boot (``/proc/<pid>/stat`` field 22) and the boot it belongs to
(``/proc/sys/kernel/random/boot_id``). A row whose worker id names a pid that is gone, or one
whose current process started at another time or in another boot, belongs to a dead worker.

The host part must be unique per pid namespace among the processes sharing a database (the
host name is, unless containers are given the same host name).
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
# Host names are at most 64 bytes on Linux; the column is 128 characters.
MAX_HOST_CHARS = 64


@dataclass(frozen=True, slots=True)
class WorkerId:
    """A parsed worker id."""

    host: str
    pid: int
    token: str


def _boot_id() -> str:
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:12]
    except OSError:
        return "noboot"


def process_start_token(pid: int) -> str | None:
    """The start token of process ``pid`` right now; None if it does not exist.

    Without ``/proc`` (not Linux) the token is ``"?"``: liveness then rests on the pid alone.
    """
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return "?"
    # Field 2 (the command name) is in parentheses and may hold spaces or ")": split after
    # the last ")"; what follows starts at field 3, so field 22 is index 19.
    fields = stat.rpartition(")")[2].split()
    if len(fields) < 20:
        return "?"
    return f"{_boot_id()}.{fields[19]}"


def host_name() -> str:
    """This machine's host name as worker ids spell it (no colons)."""
    return socket.gethostname()[:MAX_HOST_CHARS].replace(":", "_") or "localhost"


@functools.lru_cache(maxsize=1)
def _current(pid: int) -> str:
    return f"{host_name()}:{pid}:{process_start_token(pid) or '?'}"


def current_worker_id() -> str:
    """The id of this process: ``f"{hostname}:{pid}:{start token}"``.

    Cached per pid, so a forked child computes its own.
    """
    return _current(os.getpid())


def parse_worker_id(value: str) -> WorkerId | None:
    """Split a worker id into its parts; None when it is not one."""
    host, sep, rest = value.partition(":")
    pid_text, sep2, token = rest.partition(":")
    if not (sep and sep2 and host and token) or not pid_text.isdigit():
        return None
    return WorkerId(host=host, pid=int(pid_text), token=token)


def worker_alive(worker: WorkerId) -> bool:
    """Whether the process a worker id names still runs (on this host).

    Only meaningful for ids of this host: pids are per machine (per pid namespace).
    """
    if worker.pid <= 0:
        return False
    try:
        os.kill(worker.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # It exists, under another user.
    current = process_start_token(worker.pid)
    if current is None:
        return False
    if "?" in (current, worker.token):
        # No /proc to tell processes apart: the pid's existence is all we know.
        return True
    return current == worker.token
