"""What a server process does for its sessions when it starts and when it stops.

Start (``server_started``, called by ``realtime_site.asgi``):

* fix glibc's malloc thresholds, so the memory of a burst goes back to the system;
* end the rows that workers of this host left open when they died (SIGKILL, OOM), so
  their licenses' slots are free at once instead of after the heartbeat goes stale;
* warn when Daphne runs without the WebSocket size limits the server relies on;
* under Daphne, hook the reactor's shutdown: SIGTERM then closes every live session with
  an ``error`` and 1001, saving its partial item and usage, before the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any

from apps.conversations.services import conversation_end_dead_workers
from apps.core.memory import tune_malloc
from apps.core.workers import host_name

from .live import shutdown_sessions

logger = logging.getLogger(__name__)

# The flags Daphne needs for the server's own limits to answer (its 1 MiB defaults reset
# bigger frames with no close and no error event).
DAPHNE_SIZE_FLAGS = ("--websocket-max-message-size", "--websocket-max-frame-size")


def daphne_flags_missing(argv: Sequence[str]) -> list[str]:
    """Which size flags a ``daphne`` command line lacks ([] if it is not Daphne's)."""
    program = " ".join(argv[:1])
    if "daphne" not in program:
        return []
    given = {arg.split("=", 1)[0] for arg in argv}
    return [flag for flag in DAPHNE_SIZE_FLAGS if flag not in given]


# Close codes RFC 6455 / IANA define for a server to send, which autobahn's sendClose
# refuses (it allows 1000 and 3000–4999 only): going away, policy violation, internal
# error, service restart, try again later.
SERVER_CLOSE_CODES = frozenset({1001, 1008, 1011, 1012, 1013})


def _allow_server_close_codes() -> bool:
    """Let Daphne's autobahn protocol send the standard server close codes.

    Without this, ``close(code=1013)`` from a consumer raises inside Daphne and the client
    sees the TCP connection drop with no close frame at all.
    """
    protocol_module = sys.modules.get("autobahn.websocket.protocol")
    if protocol_module is None:
        return False
    cls = protocol_module.WebSocketProtocol
    original = cls.sendClose
    if getattr(original, "allows_server_codes", False):
        return True

    def send_close(self: Any, code: int | None = None, reason: str | None = None) -> None:
        if code in SERVER_CLOSE_CODES:
            self.sendCloseFrame(code=code, reasonUtf8=None, isReply=False)
        else:
            original(self, code, reason)

    send_close.allows_server_codes = True  # type: ignore[attr-defined]
    cls.sendClose = send_close
    return True


async def _shutdown_logged() -> None:
    # Twisted discards what its triggers raise (Daphne silences its log): log it here.
    try:
        await shutdown_sessions()
    except Exception:
        logger.exception("closing live sessions at shutdown failed")


def _hook_reactor_shutdown() -> bool:
    # Only when Daphne (or its runserver) already installed Twisted's reactor: importing
    # it here would install a reactor of its own into any other process.
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None:
        return False
    from twisted.internet.defer import Deferred

    def on_shutdown() -> Deferred:
        # The reactor waits for the returned Deferred before it stops. Daphne's own
        # trigger, which cancels every application, is not enough: it raises (and so cancels
        # nothing) while a finished HTTP request is still in its connection table, which is
        # always the case for the request a WebSocket was upgraded from.
        return Deferred.fromFuture(asyncio.ensure_future(_shutdown_logged()))

    # Registered at import, before Daphne registers its trigger, so this one runs first.
    reactor.addSystemEventTrigger("before", "shutdown", on_shutdown)  # type: ignore[attr-defined]
    return True


# How long a thread may hold the GIL while another waits for it (Python's default: 5 ms).
GIL_SWITCH_INTERVAL_S = 0.001


def tune_thread_switching() -> None:
    """Let the event loop's thread get the GIL back sooner from busy executor threads.

    The loop gives the GIL up in every ``select`` and then waits for it; with executor
    threads encoding or scoring audio it waited up to the whole switch interval each time,
    several times per event, which added up to 50–80 ms for a probe while large items were
    encoded (``bench/load.py --scenario large``). A 1 ms interval costs the busy threads a
    few more switches.
    """
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


def server_started(argv: Sequence[str] | None = None) -> None:
    """Run once per server process, when the ASGI application is loaded."""
    argv = list(sys.argv if argv is None else argv)
    tune_malloc()
    tune_thread_switching()
    missing = daphne_flags_missing(argv)
    if missing:
        logger.warning(
            "daphne runs without %s: frames over 1 MiB will be reset with no error event; "
            "start it with both limits (see README, Operations)",
            " and ".join(missing),
        )
    _hook_reactor_shutdown()
    _allow_server_close_codes()
    try:
        ended = conversation_end_dead_workers(host=host_name())
    except Exception as exc:  # noqa: BLE001 - a database not up (or migrated) yet must not stop start-up
        logger.warning(
            "could not end sessions left open by dead workers",
            extra={"error": f"{type(exc).__name__}: {exc}"},
        )
        return
    if ended:
        logger.info("ended sessions left open by dead workers", extra={"count": ended})
