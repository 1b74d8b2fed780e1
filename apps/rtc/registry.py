"""The calls this worker process hosts, by call id and by session id."""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .call import Call


class Calls:
    """The live calls of one event loop."""

    def __init__(self) -> None:
        self._by_id: dict[str, Call] = {}

    def add(self, call: Call) -> None:
        """Track a call from the moment its peer exists."""
        self._by_id[call.id] = call

    def remove(self, call: Call) -> None:
        """Forget an ended call."""
        if self._by_id.get(call.id) is call:
            del self._by_id[call.id]

    def get(self, call_id: str) -> Call | None:
        """The live call with this id, if this process hosts it."""
        return self._by_id.get(call_id)

    def by_session(self, session_id: str) -> Call | None:
        """The live call carrying this session, if any."""
        return next((c for c in self._by_id.values() if c.session_id == session_id), None)

    def __len__(self) -> int:
        return len(self._by_id)

    def all(self) -> list[Call]:
        """Every live call."""
        return list(self._by_id.values())


_registries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Calls] = (
    weakref.WeakKeyDictionary()
)


def calls() -> Calls:
    """The registry of the running event loop."""
    loop = asyncio.get_running_loop()
    registry = _registries.get(loop)
    if registry is None:
        registry = _registries[loop] = Calls()
    return registry
