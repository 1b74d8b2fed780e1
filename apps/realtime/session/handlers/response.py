"""``response.create`` / ``response.cancel``, and the interrupt used by barge-in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...protocol.session_config import apply_patch
from ..conversation import Item
from ..deps import UnknownName
from ..errors import ClientError
from ..response import ResponseRunner, ResponseSpec
from .conversation import item_from_client
from .registry import handles

if TYPE_CHECKING:
    from ...protocol.client_events import ResponseParams
    from ...protocol.codec import ParsedEvent
    from ..session import RealtimeSession


def _input_items(session: RealtimeSession, params: ResponseParams) -> list[Item] | None:
    if params.input is None:
        return None
    items: list[Item] = []
    for index, raw in enumerate(params.input):
        if raw.type == "item_reference":
            found = session.conversation.get(raw.id or "")
            if found is None:
                raise ClientError(
                    f"Item with id '{raw.id}' not found in the conversation.",
                    code="invalid_value",
                    param=f"response.input[{index}].id",
                )
            items.append(found)
        else:
            items.append(item_from_client(raw))
    return items


async def _spec(session: RealtimeSession, params: ResponseParams | None) -> ResponseSpec:
    config = session.config
    voice = session.voice
    if params is not None:
        overrides: dict[str, Any] = {
            key: getattr(params, key)
            for key in (
                "instructions",
                "output_modalities",
                "tools",
                "tool_choice",
                "max_output_tokens",
                "temperature",
            )
            if getattr(params, key) is not None
        }
        if "tools" in overrides:
            overrides["tools"] = [t.model_dump() for t in params.tools or []]
        output = params.audio.output if params.audio is not None else None
        if output is not None:
            audio_out: dict[str, Any] = {}
            if output.format is not None:
                audio_out["format"] = output.format.model_dump()
            if output.voice is not None:
                audio_out["voice"] = (
                    output.voice if isinstance(output.voice, str) else output.voice.model_dump()
                )
            overrides["audio"] = {"output": audio_out}
        config = apply_patch(config, overrides)
        if config["audio"]["output"]["voice"] != session.config["audio"]["output"]["voice"]:
            try:
                voice = await session.resolve_voice(config)
            except UnknownName as exc:
                raise ClientError(
                    str(exc), code="invalid_value", param="response.audio.output.voice"
                ) from None
    choice = config["tool_choice"]
    if isinstance(choice, dict) and choice["name"] not in {t["name"] for t in config["tools"]}:
        raise ClientError(
            f"tool_choice names function '{choice['name']}', which is not in tools.",
            code="invalid_value",
            param="response.tool_choice",
        )
    in_conversation = params is None or params.conversation != "none"
    output = config["audio"]["output"]
    return ResponseSpec(
        instructions=config["instructions"] or "",
        modalities=list(config["output_modalities"]),
        voice_name=output["voice"],
        voice=voice,
        format=output["format"],
        tools=config["tools"] or [],
        tool_choice=choice,
        max_output_tokens=config["max_output_tokens"],
        temperature=config.get("temperature"),
        metadata=params.metadata if params is not None else None,
        in_conversation=in_conversation,
        input_items=_input_items(session, params) if params is not None else None,
        llm=session.llm,
    )


async def start_response(
    session: RealtimeSession, *, params: ResponseParams | None, event_id: str | None
) -> ResponseRunner | None:
    """Create and start a response (client ``response.create`` or a finished turn).

    Raises:
        ClientError: A default-conversation response is already active, the per-minute
            budget is used up, or an override is invalid.
    """
    spec = await _spec(session, params)
    if spec.in_conversation and session.default_response is not None:
        if event_id is None and params is None:
            # A turn ended while an uninterruptible response plays: that reply covers it.
            return None
        raise ClientError(
            "Conversation already has an active response in progress: "
            f"{session.default_response.id}. Wait until the response is finished before "
            "creating a new one.",
            code="conversation_already_has_active_response",
        )
    if not session.take_response_slot():
        raise ClientError(
            "Too many responses in the last minute for this session; wait a moment.",
            code="rate_limit_exceeded",
        )
    runner = ResponseRunner(session, spec)
    session.responses[runner.id] = runner
    if spec.in_conversation:
        session.default_response = runner
        session.input.cancel_idle()
    runner.start()
    return runner


async def interrupt(session: RealtimeSession, *, reason: str = "turn_detected") -> None:
    """Barge-in: cancel the default response and drop the audio not yet sent."""
    runner = session.default_response
    if runner is None:
        if session.sink.reports_playback:
            # A finished response's audio may still be playing from the sink's buffer.
            await session.sink.clear()
        return
    runner.cancel(reason)
    await session.sink.clear()
    await runner.wait()


@handles("response.create")
async def create(session: RealtimeSession, parsed: ParsedEvent) -> None:
    """Start a response with the event's overrides."""
    await start_response(session, params=parsed.event.response, event_id=parsed.event.event_id)


@handles("response.cancel")
async def cancel(session: RealtimeSession, parsed: ParsedEvent) -> None:
    """Cancel the active (or the named) response; an error when there is none."""
    response_id = parsed.event.response_id
    runner = session.responses.get(response_id) if response_id else session.default_response
    if runner is None:
        raise ClientError(
            "Cancellation failed: no active response found.",
            code="response_cancel_not_active",
            param="response_id" if response_id else None,
        )
    runner.cancel("client_cancelled")
    await runner.wait()
