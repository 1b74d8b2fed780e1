"""Validate server events against the ``openai`` package's own types (GA and beta unions).

The SDK's models accept unknown fields, so on top of validation this also rejects any
field the SDK's model does not declare: an event we send must be exactly what the SDK
knows, not merely parseable by it.
"""

from __future__ import annotations

import copy
from typing import Any

from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEvent
from openai.types.realtime import RealtimeServerEvent as GaServerEvent
from pydantic import BaseModel, TypeAdapter

# OpenAI's servers send these on session objects although the SDK's models omit them;
# clients read them (the session id above all), so we send them too.
_KNOWN_EXTRAS = {"session.id", "session.object", "session.expires_at"}
_ADAPTERS = {"ga": TypeAdapter(GaServerEvent), "beta": TypeAdapter(BetaServerEvent)}


def _extras(model: Any, path: str) -> list[str]:
    found: list[str] = []
    if isinstance(model, BaseModel):
        for key in (model.model_extra or {}).keys():
            found.append(f"{path}.{key}")
        for name in type(model).model_fields:
            found.extend(_extras(getattr(model, name), f"{path}.{name}"))
    elif isinstance(model, list):
        for index, value in enumerate(model):
            found.extend(_extras(value, f"{path}[{index}]"))
    return found


def validate_event(event: dict[str, Any], dialect: str) -> BaseModel:
    """Validate one event; raises AssertionError naming undeclared fields."""
    data = copy.deepcopy(event)
    if dialect == "beta" and isinstance(data.get("session"), dict):
        # The beta types pin session.model to OpenAI's model names (a Literal).
        data["session"]["model"] = "gpt-4o-realtime-preview"
    model = _ADAPTERS[dialect].validate_python(data)
    extras = [
        path
        for path in _extras(model, event["type"])
        if path[len(event["type"]) + 1 :] not in _KNOWN_EXTRAS
    ]
    assert not extras, f"fields the SDK does not know: {extras}"
    return model


def validate_all(events: list[dict[str, Any]], dialect: str) -> None:
    """Validate every event (raises on the first bad one, naming it)."""
    for event in events:
        try:
            validate_event(event, dialect)
        except Exception as exc:
            raise AssertionError(f"{event['type']} does not conform ({dialect}): {exc}") from exc
