"""The session engine driven directly with scripted engines: one test per behaviour."""

from __future__ import annotations

import asyncio
import base64
import threading

import numpy as np
import pytest

from apps.agent.providers.scripted import ScriptedLlm
from apps.core.audio_codecs import make_decoder
from apps.realtime.session.deps import Limits

from .audio import append, silence, tone
from .conformance import validate_all
from .fakes import Harness

pytestmark = pytest.mark.asyncio

USER_TEXT = {
    "type": "conversation.item.create",
    "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
}
TEXT_ONLY = {
    "type": "session.update",
    "session": {"type": "realtime", "output_modalities": ["text"]},
}
MANUAL = {
    "type": "session.update",
    "session": {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
}
TRANSCRIBE = {
    "type": "session.update",
    "session": {
        "type": "realtime",
        "audio": {"input": {"transcription": {"model": "whisper-1"}}},
    },
}


async def harness(**kwargs: object) -> Harness:
    return await Harness(**kwargs).start()  # type: ignore[arg-type]


async def test_text_turn_in_documented_order() -> None:
    h = await harness()
    await h.send(TEXT_ONLY)
    await h.send(USER_TEXT)
    await h.send({"type": "response.create"})
    done = await h.wait_for("response.done")
    assert done["response"]["status"] == "completed"
    assert h.types() == [
        "session.created",
        "session.updated",
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
        "rate_limits.updated",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    text = "".join(e["delta"] for e in h.of("response.output_text.delta"))
    assert text == "You said: hi"
    assert done["response"]["output"][0]["content"][0] == {"type": "output_text", "text": text}
    validate_all(h.events, "ga")
    await h.close()


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_audio_turn_streams_transcript_and_audio(dialect: str) -> None:
    h = await harness(dialect=dialect)
    await h.send(USER_TEXT)
    await h.send({"type": "response.create"})
    done = await h.wait_for("response.done")
    prefix = "response.output_audio" if dialect == "ga" else "response.audio"
    deltas = h.of(f"{prefix}.delta")
    pcm = b"".join(base64.b64decode(e["delta"]) for e in deltas)
    # FakeTts: 60 ms per character at 24 kHz, 16-bit, for the pieces "You said:" and "hi"
    # (the chunker releases the first clause early so speech starts sooner).
    assert len(pcm) == pytest.approx(2 * 24 * 60 * len("You said:hi"), rel=0.02)
    transcript = "".join(e["delta"] for e in h.of(f"{prefix}_transcript.delta"))
    assert transcript == "You said: hi"
    assert h.of(f"{prefix}_transcript.done")[0]["transcript"] == transcript
    item = done["response"]["output"][0]
    assert item["content"][0]["transcript"] == transcript
    assert item["content"][0]["type"] == ("output_audio" if dialect == "ga" else "audio")
    validate_all(h.events, dialect)
    await h.close()


async def test_beta_names_and_flat_session() -> None:
    h = await harness(dialect="beta")
    await h.send(
        {"type": "session.update", "session": {"voice": "echo", "output_audio_format": "g711_ulaw"}}
    )
    updated = await h.wait_for("session.updated")
    assert updated["session"]["voice"] == "echo"
    assert updated["session"]["output_audio_format"] == "g711_ulaw"
    await h.send(USER_TEXT)
    await h.send({"type": "response.create"})
    await h.wait_for("response.done")
    assert "conversation.item.created" in h.types()
    assert not {"conversation.item.added", "conversation.item.done"} & set(h.types())
    ulaw = b"".join(base64.b64decode(e["delta"]) for e in h.of("response.audio.delta"))
    # G.711 is one byte per sample at 8 kHz.
    assert len(ulaw) == pytest.approx(8 * 60 * len("You said:hi"), rel=0.03)
    pcm = make_decoder({"type": "audio/pcmu"}).decode(ulaw)
    assert np.abs(pcm).max() > 3000
    validate_all(h.events, "beta")
    await h.close()


async def test_mp3_output_is_a_decodable_stream() -> None:
    import av

    h = await harness(dialect="beta")
    await h.send({"type": "session.update", "session": {"output_audio_format": "MonoMp3"}})
    await h.send(USER_TEXT)
    await h.send({"type": "response.create"})
    await h.wait_for("response.done")
    mp3 = b"".join(base64.b64decode(e["delta"]) for e in h.of("response.audio.delta"))
    decoder = av.CodecContext.create("mp3", "r")
    samples = sum(f.samples for p in decoder.parse(mp3) for f in decoder.decode(p))
    assert samples / 24_000 == pytest.approx(0.06 * len("You said:hi"), abs=0.1)
    await h.close()


async def test_manual_commit_transcribes_and_needs_audio() -> None:
    h = await harness(transcripts=("what time is it",))
    await h.send(MANUAL)
    await h.send(TRANSCRIBE)
    await h.send({"type": "input_audio_buffer.commit", "event_id": "c0"})
    error = await h.wait_for("error")
    assert error["error"]["code"] == "input_audio_buffer_commit_empty"
    assert error["error"]["event_id"] == "c0"
    await h.send(append(tone(400)))
    await h.send({"type": "input_audio_buffer.commit"})
    completed = await h.wait_for("conversation.item.input_audio_transcription.completed")
    assert completed["transcript"] == "what time is it"
    committed = h.of("input_audio_buffer.committed")[0]
    assert completed["item_id"] == committed["item_id"]
    assert h.store.items[committed["item_id"]].text == "what time is it"
    assert "response.created" not in h.types()  # a commit alone does not answer
    await h.send({"type": "response.create"})
    await h.wait_for("response.done")
    assert h.llm.requests[-1].messages[-1].content == "what time is it"
    validate_all(h.events, "ga")
    await h.close()


async def test_server_vad_turn_answers_by_itself() -> None:
    h = await harness(transcripts=("hello there",))
    await h.send(TRANSCRIBE)
    for chunk in [tone(600), silence(800)]:
        await h.send(append(chunk))
    started = await h.wait_for("input_audio_buffer.speech_started")
    stopped = await h.wait_for("input_audio_buffer.speech_stopped")
    assert started["item_id"] == stopped["item_id"]
    assert 0 <= started["audio_start_ms"] < 100
    assert stopped["audio_end_ms"] >= 600 + 500
    done = await h.wait_for("response.done")
    assert done["response"]["status"] == "completed"
    assert h.llm.requests[-1].messages[-1].content == "hello there"
    validate_all(h.events, "ga")
    await h.close()


async def test_binary_frames_are_input_audio() -> None:
    h = await harness()
    await h.send(MANUAL)
    await h.session.receive_audio(tone(300))
    await h.send({"type": "input_audio_buffer.commit"})
    committed = await h.wait_for("input_audio_buffer.committed")
    assert committed["item_id"]
    await h.close()


async def test_odd_pcm_and_bad_base64_get_one_error_each() -> None:
    h = await harness()
    await h.send(append(b"\x00\x01\x02", event_id="odd"))
    await h.send({"type": "input_audio_buffer.append", "audio": "%%%", "event_id": "b64"})
    await asyncio.sleep(0.05)
    errors = h.of("error")
    assert [e["error"]["event_id"] for e in errors] == ["odd", "b64"]
    assert all(e["error"]["type"] == "invalid_request_error" for e in errors)
    await h.close()


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_function_call_round_trip(dialect: str) -> None:
    llm = ScriptedLlm(
        models=["scripted-echo"],
        script=[{"tool": "get_weather", "arguments": {"city": "Paris"}}, "It is sunny in Paris."],
    )
    h = await harness(llm=llm, dialect=dialect)
    tool = {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    session = {"type": "realtime", "tools": [tool]} if dialect == "ga" else {"tools": [tool]}
    await h.send({"type": "session.update", "session": session})
    await h.send(USER_TEXT)
    await h.send({"type": "response.create"})
    done = await h.wait_for("response.done")
    call = h.of("response.function_call_arguments.done")[0]
    assert done["response"]["output"][0]["name"] == "get_weather"
    assert call["arguments"] == '{"city": "Paris"}'
    assert done["response"]["output"][0]["type"] == "function_call"
    await h.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"},
        }
    )
    await h.send({"type": "response.create"})
    second = await h.wait_for("response.done", count=2)
    assert second["response"]["output"][0]["content"][0]["transcript"] == "It is sunny in Paris."
    messages = llm.requests[-1].messages
    assert messages[-2].tool_calls[0].name == "get_weather"
    assert messages[-1].role == "tool" and messages[-1].content == "sunny"
    saved = {i.type for i in h.store.items.values()}
    assert {"function_call", "function_call_output", "message"} <= saved
    validate_all(h.events, dialect)
    await h.close()


async def test_forced_tool_choice_must_name_a_tool() -> None:
    h = await harness()
    await h.send(
        {
            "type": "response.create",
            "event_id": "r1",
            "response": {"tool_choice": {"type": "function", "name": "nope"}},
        }
    )
    error = await h.wait_for("error")
    assert error["error"]["event_id"] == "r1"
    await h.close()


async def test_max_output_tokens_ends_incomplete() -> None:
    h = await harness(llm=ScriptedLlm(models=["scripted-echo"], script=["one two three four five"]))
    await h.send(TEXT_ONLY)
    await h.send({"type": "response.create", "response": {"max_output_tokens": 2}})
    done = await h.wait_for("response.done")
    assert done["response"]["status"] == "incomplete"
    assert done["response"]["status_details"]["reason"] == "max_output_tokens"
    assert done["response"]["output"][0]["content"][0]["text"] == "one two"
    validate_all(h.events, "ga")
    await h.close()


async def test_out_of_band_response_leaves_conversation_alone() -> None:
    h = await harness()
    await h.send(TEXT_ONLY)
    await h.send(USER_TEXT)
    await asyncio.sleep(0.02)
    user_item = h.of("conversation.item.added")[0]["item"]["id"]
    await h.send(
        {
            "type": "response.create",
            "response": {
                "conversation": "none",
                "metadata": {"purpose": "summary"},
                "instructions": "Summarise.",
                "input": [
                    {"type": "item_reference", "id": user_item},
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": "in one word"}],
                    },
                ],
            },
        }
    )
    done = await h.wait_for("response.done")
    assert done["response"]["conversation_id"] is None
    assert done["response"]["metadata"] == {"purpose": "summary"}
    assert len(h.session.conversation) == 1
    request = h.llm.requests[-1]
    assert [m.content for m in request.messages] == ["Summarise.", "hi", "in one word"]
    validate_all(h.events, "ga")
    await h.close()


async def test_tts_text_is_spoken_verbatim_without_the_model() -> None:
    h = await harness(dialect="beta")
    await h.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "tts_text", "text": "电量低，请充电。"}],
            },
        }
    )
    await h.send({"type": "response.create"})
    done = await h.wait_for("response.done")
    assert h.llm.requests == []
    assert done["response"]["output"][0]["content"][0]["transcript"] == "电量低，请充电。"
    assert h.of("response.audio.delta")
    await h.close()


async def test_cancel_and_cancel_without_response() -> None:
    h = await harness(
        llm=ScriptedLlm(
            models=["scripted-echo"], delay_s=0.05, script=["a b c d e f g h i j k l m n o p"]
        )
    )
    await h.send({"type": "response.cancel", "event_id": "x"})
    error = await h.wait_for("error")
    assert error["error"]["code"] == "response_cancel_not_active"
    assert error["error"]["event_id"] == "x"
    await h.send(USER_TEXT)
    await h.send({"type": "response.create"})
    await h.wait_for("response.created")
    await asyncio.sleep(0.15)
    await h.send({"type": "response.cancel"})
    done = await h.wait_for("response.done")
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"]["reason"] == "client_cancelled"
    # Every opened part/item was closed before response.done.
    types = h.types()
    assert types.count("response.output_item.added") == types.count("response.output_item.done")
    validate_all(h.events, "ga")
    await h.close()


async def test_barge_in_cancels_with_turn_detected() -> None:
    h = await harness(
        llm=ScriptedLlm(models=["scripted-echo"], script=["word " * 40]),
        limits=Limits(audio_lead_ms=200),
    )
    await h.send(USER_TEXT)
    await h.send({"type": "response.create"})
    await h.wait_for("response.output_audio.delta")
    await h.send(append(tone(300)))
    done = await h.wait_for("response.done")
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"]["reason"] == "turn_detected"
    assert h.types().index("input_audio_buffer.speech_started") < h.types().index("response.done")
    await h.close()


async def test_truncate_removes_unheard_text_from_context() -> None:
    llm = ScriptedLlm(
        models=["scripted-echo"], script=["First sentence here. Second one never heard.", "ok"]
    )
    h = await harness(llm=llm)
    await h.send(MANUAL)
    await h.send(USER_TEXT)
    await h.send({"type": "response.create"})
    done = await h.wait_for("response.done")
    item = done["response"]["output"][0]
    first_ms = 60 * len("First sentence here.")
    await h.send(
        {
            "type": "conversation.item.truncate",
            "item_id": item["id"],
            "content_index": 0,
            "audio_end_ms": first_ms + 10,
        }
    )
    truncated = await h.wait_for("conversation.item.truncated")
    assert truncated["audio_end_ms"] == first_ms + 10
    assert h.store.items[item["id"]].text == "First sentence here."
    assert h.store.items[item["id"]].truncated_at_ms == first_ms + 10
    await h.send(USER_TEXT)
    await h.send({"type": "response.create"})
    await h.wait_for("response.done", count=2)
    assistant = [m.content for m in llm.requests[-1].messages if m.role == "assistant"]
    assert assistant == ["First sentence here."]
    # Past the end of the audio, and unknown items, are errors.
    await h.send(
        {
            "type": "conversation.item.truncate",
            "item_id": item["id"],
            "content_index": 0,
            "audio_end_ms": 999_999,
            "event_id": "t2",
        }
    )
    await h.send(
        {
            "type": "conversation.item.truncate",
            "item_id": "item_nope",
            "content_index": 0,
            "audio_end_ms": 0,
            "event_id": "t3",
        }
    )
    await asyncio.sleep(0.05)
    codes = {e["error"]["event_id"]: e["error"]["code"] for e in h.of("error")}
    assert codes == {"t2": "invalid_value", "t3": "item_truncate_invalid_item_id"}
    validate_all(h.events, "ga")
    await h.close()


async def test_retrieve_and_delete_items() -> None:
    h = await harness()
    await h.send(MANUAL)
    await h.send(append(tone(200)))
    await h.send({"type": "input_audio_buffer.commit"})
    committed = await h.wait_for("input_audio_buffer.committed")
    await h.send({"type": "conversation.item.retrieve", "item_id": committed["item_id"]})
    retrieved = await h.wait_for("conversation.item.retrieved")
    audio = base64.b64decode(retrieved["item"]["content"][0]["audio"])
    assert len(audio) == pytest.approx(2 * 24 * 200, rel=0.05)
    await h.send({"type": "conversation.item.delete", "item_id": committed["item_id"]})
    deleted = await h.wait_for("conversation.item.deleted")
    assert deleted["item_id"] == committed["item_id"]
    await h.send(
        {"type": "conversation.item.delete", "item_id": committed["item_id"], "event_id": "d2"}
    )
    error = await h.wait_for("error")
    assert error["error"]["event_id"] == "d2"
    validate_all(h.events, "ga")
    await h.close()


async def test_session_update_errors_change_nothing() -> None:
    h = await harness()
    await h.send(
        {
            "type": "session.update",
            "event_id": "v",
            "session": {"type": "realtime", "audio": {"output": {"voice": "nobody"}}},
        }
    )
    await h.send(
        {
            "type": "session.update",
            "event_id": "m",
            "session": {"type": "realtime", "model": "nope"},
        }
    )
    await asyncio.sleep(0.02)
    errors = {e["error"]["event_id"]: e["error"]["code"] for e in h.of("error")}
    assert errors == {"v": "invalid_value", "m": "model_not_found"}
    assert h.session.config["audio"]["output"]["voice"] == "alloy"
    # Once audio was produced, the voice is fixed.
    await h.send(USER_TEXT)
    await h.send({"type": "response.create"})
    await h.wait_for("response.done")
    await h.send(
        {
            "type": "session.update",
            "event_id": "v2",
            "session": {"type": "realtime", "audio": {"output": {"voice": "echo"}}},
        }
    )
    error = await h.wait_for("error", count=3)
    assert error["error"]["code"] == "cannot_update_voice"
    await h.close()


async def test_second_response_while_one_is_active_is_an_error() -> None:
    h = await harness(
        llm=ScriptedLlm(models=["scripted-echo"], delay_s=0.05, script=["a b c d e f"])
    )
    await h.send({"type": "response.create"})
    await h.send({"type": "response.create", "event_id": "again"})
    error = await h.wait_for("error")
    assert error["error"]["code"] == "conversation_already_has_active_response"
    await h.wait_for("response.done")
    await h.close()


async def test_session_expires_with_an_error_then_closes() -> None:
    h = await harness(limits=Limits(max_session_s=0.2, audio_lead_ms=100_000))
    error = await h.wait_for("error")
    assert error["error"]["code"] == "session_expired"
    await asyncio.sleep(0.05)
    assert h.closed == (4000, "session_expired")


async def test_disconnect_mid_response_saves_the_partial_item() -> None:
    h = await harness(
        llm=ScriptedLlm(models=["scripted-echo"], script=["First part. " + "more " * 50])
    )
    await h.send(USER_TEXT)
    await h.send({"type": "response.create"})
    await h.wait_for("response.output_audio.delta")
    await h.close()
    assistant = [i for i in h.store.items.values() if i.role == "assistant"]
    assert assistant and assistant[0].status == "incomplete"
    assert assistant[0].text.startswith("First part.")


async def test_responses_per_minute_are_limited() -> None:
    h = await harness(limits=Limits(max_responses_per_minute=1, audio_lead_ms=100_000))
    await h.send(TEXT_ONLY)
    await h.send({"type": "response.create"})
    await h.wait_for("response.done")
    await h.send({"type": "response.create", "event_id": "r2"})
    error = await h.wait_for("error")
    assert error["error"]["code"] == "rate_limit_exceeded"
    await h.close()


async def test_semantic_vad_ends_a_finished_sentence_early() -> None:
    h = await harness(transcripts=("I am done.",))
    await h.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {
                    "input": {"turn_detection": {"type": "semantic_vad", "eagerness": "low"}}
                },
            },
        }
    )
    await h.send(append(tone(600)))
    await h.send(append(silence(1500)))
    stopped = await h.wait_for("input_audio_buffer.speech_stopped")
    # eagerness=low waits up to 8 s for an unfinished sentence; a finished one ends sooner.
    assert stopped["audio_end_ms"] < 600 + 1500
    await h.close()


async def test_idle_timeout_prompts_a_response() -> None:
    h = await harness()
    await h.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "output_modalities": ["text"],
                "audio": {
                    "input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 1000}}
                },
            },
        }
    )
    await h.send(USER_TEXT)
    await h.send({"type": "response.create"})
    await h.wait_for("response.done")
    triggered = await h.wait_for("input_audio_buffer.timeout_triggered", timeout_s=5)
    assert triggered["item_id"]
    await h.wait_for("response.done", count=2)
    validate_all(h.events, "ga")
    await h.close()


async def test_the_guess_made_when_the_voice_drops_is_the_final_transcript() -> None:
    h = await harness(transcripts=("only once",))
    await h.send(TRANSCRIBE)
    await h.send(append(tone(600)))
    for _ in range(10):  # silence in 100 ms appends, as a real client streams it
        await h.send(append(silence(100)))
        await asyncio.sleep(0.01)
    completed = await h.wait_for("conversation.item.input_audio_transcription.completed")
    assert completed["transcript"] == "only once"
    # Decoded once, when the voice dropped; the end of the turn reused that decode.
    assert h.session.deps.engines.asr.calls == 1
    await h.close()


async def test_opus_in_and_out() -> None:
    from apps.core.audio_codecs import make_encoder

    h = await harness(dialect="beta")
    await h.send(
        {
            "type": "session.update",
            "session": {
                "input_audio_format": "Audio16KHz16BitMonoOpus",
                "output_audio_format": "Audio16KHz16BitMonoOpus",
                "turn_detection": None,
            },
        }
    )
    await h.wait_for("session.updated")
    t = np.arange(16_000 * 3 // 10) / 16_000
    encoder = make_encoder({"type": "audio/opus", "rate": 16_000})
    packets = encoder.encode((0.3 * 32767 * np.sin(2 * np.pi * 300 * t)).astype(np.int16))
    for packet in packets + encoder.flush():
        await h.session.receive_audio(packet)  # one raw Opus packet per binary frame
    await h.send({"type": "input_audio_buffer.commit"})
    committed = await h.wait_for("input_audio_buffer.committed")
    item = h.session.conversation.get(committed["item_id"])
    assert item is not None and len(item.audio) == pytest.approx(16_000 * 0.3, abs=800)
    await h.send(USER_TEXT)
    await h.send({"type": "response.create"})
    await h.wait_for("response.done")
    decoder = make_decoder({"type": "audio/opus", "rate": 16_000})
    pcm = np.concatenate(
        [decoder.decode(base64.b64decode(e["delta"])) for e in h.of("response.audio.delta")]
    )
    assert len(pcm) / 16_000 == pytest.approx(0.06 * len("You said:hi"), abs=0.05)
    await h.close()


async def test_transcription_failure_is_reported_and_the_turn_goes_on() -> None:
    h = await harness()

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("decoder crashed")

    h.session.deps.engines.asr.transcribe = broken  # type: ignore[method-assign]
    await h.send(MANUAL)
    await h.send(TRANSCRIBE)
    await h.send(append(tone(300)))
    await h.send({"type": "input_audio_buffer.commit"})
    failed = await h.wait_for("conversation.item.input_audio_transcription.failed")
    assert failed["error"]["code"] == "transcription_failed"
    await h.send({"type": "response.create"})
    done = await h.wait_for("response.done")
    assert done["response"]["status"] == "completed"
    validate_all(h.events, "ga")
    await h.close()


async def test_a_response_cancelled_while_waiting_for_a_transcript_spoils_no_later_one() -> None:
    """Cancelling a response that waits on a slow transcription leaves the transcription be."""
    h = await harness(transcripts=("slow words",))
    asr = h.session.deps.engines.asr
    release = threading.Event()
    transcribe = asr.transcribe

    def slow(*args: object, **kwargs: object) -> object:
        release.wait(10)
        return transcribe(*args, **kwargs)

    asr.transcribe = slow  # type: ignore[method-assign]
    await h.send(MANUAL)
    await h.send(TRANSCRIBE)
    await h.send(append(tone(300)))
    await h.send({"type": "input_audio_buffer.commit"})
    await h.wait_for("input_audio_buffer.committed")
    await h.send({"type": "response.create"})
    await h.wait_for("response.created")
    await asyncio.sleep(0.2)  # the response is now waiting for the transcript
    await h.send({"type": "response.cancel"})
    first = await h.wait_for("response.done")
    assert first["response"]["status"] == "cancelled"
    release.set()
    completed = await h.wait_for("conversation.item.input_audio_transcription.completed")
    assert completed["transcript"] == "slow words"
    await h.send({"type": "response.create"})
    second = await h.wait_for("response.done", count=2)
    assert second["response"]["status"] == "completed", second["response"]
    assert h.llm.requests[-1].messages[-1].content == "slow words"
    await h.close()


async def test_a_media_track_over_a_full_buffer_gets_one_error_not_one_a_frame() -> None:
    h = await harness(limits=Limits(max_input_buffer_ms=400))
    await h.send(MANUAL)
    await h.wait_for("session.updated")
    frame = np.full(640, 1000, dtype=np.int16)  # 40 ms at 16 kHz, as a call hands them over

    async def stream(frames: int) -> None:
        for _ in range(frames):
            h.session.input.append_pcm(frame)
            await asyncio.sleep(0.005)

    await stream(40)  # 1.6 s into a 0.4 s buffer
    await h.wait_for("error")
    await asyncio.sleep(0.2)
    full = [e for e in h.of("error") if e["error"]["code"] == "input_audio_buffer_full"]
    assert len(full) == 1 and full[0]["error"]["event_id"] is None
    # After a clear the buffer takes audio again; when full again, the track is told again.
    await h.send({"type": "input_audio_buffer.clear"})
    await h.wait_for("input_audio_buffer.cleared")
    await stream(40)
    await h.wait_for("error", count=2)
    await asyncio.sleep(0.2)
    assert len(h.of("error")) == 2
    await h.close()


# --- context window (issue 8: a context that never overflows) ---------------------------------


def _user_says(text: str) -> dict[str, object]:
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        },
    }


async def _windowed(window_tokens: int = 80, **session: object) -> Harness:
    llm = ScriptedLlm(
        models=["scripted-echo"], script=["ok sure"], context_window_tokens=window_tokens
    )
    h = await harness(
        llm=llm, limits=Limits(audio_lead_ms=100_000, max_responses_per_minute=10_000)
    )
    await h.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "output_modalities": ["text"], **session},
        }
    )
    return h


async def _turn(h: Harness, number: int) -> dict[str, object]:
    # 8 words + 1 = 9 tokens for the scripted provider; its reply "ok sure" is 3.
    await h.send(_user_says(f"turn {number} " + "word " * 6))
    await h.send({"type": "response.create"})
    return (await h.wait_for("response.done", count=number + 1))["response"]


async def test_a_long_conversation_fits_a_small_window() -> None:
    h = await _windowed()
    # Window 80, 16 kept for the reply: 64 tokens of prompt, about 5 turns of 12.
    for number in range(40):
        response = await _turn(h, number)
        assert response["status"] == "completed", response["status_details"]
    requests = h.llm.requests
    assert len(requests) == 40
    last = requests[-1].messages
    # The instructions stay; the oldest turns went, whole; the newest turn is there.
    assert (last[0].role, last[0].content) == ("system", "Be brief.")
    assert last[1].role == "user"
    assert not any(m.content.startswith("turn 0 ") for m in last)
    assert last[-1].content.startswith("turn 39 ")
    assert len(last) < 2 * 40
    # Counted once per message, not the whole conversation again for every response.
    assert h.llm.counted_messages <= 3 * 40
    validate_all(h.events, "ga")
    await h.close()


async def test_retention_ratio_moves_the_window_start_rarely() -> None:
    async def starts(truncation: object) -> list[str]:
        h = await _windowed(truncation=truncation)
        for number in range(30):
            assert (await _turn(h, number))["status"] == "completed"
        firsts = [request.messages[1].content for request in h.llm.requests]
        await h.close()
        return firsts

    def moves(firsts: list[str]) -> int:
        return sum(a != b for a, b in zip(firsts[10:], firsts[11:], strict=False))

    # Cutting just enough moves the start (and loses a cached prefix) every turn once
    # full; cutting to half the limit moves it about once every four turns.
    just_enough = await starts({"type": "retention_ratio", "retention_ratio": 1.0})
    half = await starts({"type": "retention_ratio", "retention_ratio": 0.5})
    assert moves(just_enough) == 19
    assert moves(half) <= 6


async def test_truncation_disabled_fails_the_response_cleanly() -> None:
    h = await _windowed(truncation="disabled")
    assert (await h.wait_for("session.updated"))["session"]["truncation"] == "disabled"
    statuses = []
    for number in range(8):
        response = await _turn(h, number)
        statuses.append(response["status"])
        if response["status"] == "failed":
            break
    assert statuses[:-1] == ["completed"] * (len(statuses) - 1) and statuses[-1] == "failed"
    error = response["status_details"]["error"]
    assert error["code"] == "context_length_exceeded"
    assert error["type"] == "invalid_request_error"
    assert "truncation is disabled" in error["message"]
    assert response["output"] == []
    assert len(h.llm.requests) == len(statuses) - 1  # the model was not asked
    # The session goes on: with truncation back on, the next response drops old turns.
    await h.send({"type": "session.update", "session": {"type": "realtime", "truncation": "auto"}})
    await h.send({"type": "response.create"})
    done = await h.wait_for("response.done", count=len(statuses) + 1)
    assert done["response"]["status"] == "completed"
    assert not h.llm.requests[-1].messages[1].content.startswith("turn 0 ")
    validate_all(h.events, "ga")
    await h.close()


async def test_a_message_too_long_for_the_window_fails_clearly() -> None:
    h = await _windowed()
    await h.send(_user_says("word " * 100))
    await h.send({"type": "response.create"})
    done = await h.wait_for("response.done")
    assert done["response"]["status"] == "failed"
    assert done["response"]["status_details"]["error"]["code"] == "context_length_exceeded"
    assert h.llm.requests == []
    await h.close()


async def test_truncation_setting_is_validated_and_echoed() -> None:
    h = await harness()
    ratio = {
        "type": "retention_ratio",
        "retention_ratio": 0.5,
        "token_limits": {"post_instructions": 500},
    }
    await h.send({"type": "session.update", "session": {"type": "realtime", "truncation": ratio}})
    assert (await h.wait_for("session.updated"))["session"]["truncation"] == ratio
    for bad, param in [
        ({"type": "retention_ratio", "retention_ratio": 1.5}, "session.truncation.retention_ratio"),
        ({"type": "retention_ratio"}, "session.truncation.retention_ratio"),
        (
            {
                "type": "retention_ratio",
                "retention_ratio": 0.5,
                "token_limits": {"post_instructions": 0},
            },
            "session.truncation.token_limits.post_instructions",
        ),
        ({"type": "retention_ratio", "retention_ratio": 0.5, "keep": 1}, "session.truncation.keep"),
        ("sometimes", "session.truncation"),
    ]:
        errors = len(h.of("error"))
        await h.send(
            {
                "type": "session.update",
                "event_id": "bad",
                "session": {"type": "realtime", "truncation": bad},
            }
        )
        error = await h.wait_for("error", count=errors + 1)
        assert error["error"]["param"] == param, (bad, error)
    assert len(h.of("session.updated")) == 1
    validate_all(h.events, "ga")
    await h.close()


@pytest.mark.parametrize("inline_ok", [True, False])
async def test_small_appends_are_scored_on_the_loop_large_ones_in_the_executor(
    inline_ok: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apps.realtime.session import input_audio
    from apps.realtime.session.deps import Engines
    from apps.voice.vad.fake import FakeVad

    hops: list[object] = []
    real_run = Engines.run

    async def counting_run(self: Engines, executor: object, fn: object, *args: object) -> object:
        if getattr(fn, "__name__", "") == "_decode":
            hops.append(fn)
        return await real_run(self, executor, fn, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Engines, "run", counting_run)
    vad = FakeVad()
    vad.inline_ok = inline_ok
    h = await harness(vad=vad)
    for _ in range(10):
        # Paced as a streaming client sends; appends queued back to back are one batch.
        await h.send(append(tone(20)))
        await asyncio.sleep(0.005)
    await h.send({"type": "input_audio_buffer.clear"})
    await h.wait_for("input_audio_buffer.cleared")
    small_hops = len(hops)
    await h.send(append(silence(int(input_audio.INLINE_DECODE_MAX_MS) * 5)))
    await h.send({"type": "input_audio_buffer.clear"})
    await h.wait_for("input_audio_buffer.cleared", count=2)
    large_hops = len(hops) - small_hops
    # 20 ms appends: no executor hop at all unless the VAD says it is too heavy for the loop;
    # 500 ms of audio always goes to the executor.
    assert small_hops == (0 if inline_ok else 10)
    assert large_hops == 1
    await h.close()


async def test_the_sink_gets_each_chunks_phoneme_timings(monkeypatch: pytest.MonkeyPatch) -> None:
    # An avatar sink places them on its clock when the audio plays (the session draws nothing).
    from apps.realtime.session.sink import WebSocketAudioSink

    played: list[tuple[int, int, tuple[object, ...]]] = []
    real_play = WebSocketAudioSink.play

    async def recording(self: WebSocketAudioSink, samples, sample_rate, target, phonemes=()):  # type: ignore[no-untyped-def]
        played.append((len(samples), sample_rate, tuple(phonemes)))
        await real_play(self, samples, sample_rate, target, phonemes)

    monkeypatch.setattr(WebSocketAudioSink, "play", recording)
    h = await harness()
    await h.send(USER_TEXT)
    await h.send({"type": "response.create"})
    await h.wait_for("response.done")
    assert played
    for samples, rate, phonemes in played:
        # FakeTts: one "phoneme" per character, covering the chunk's audio exactly.
        assert phonemes, "timings reach the sink"
        last = phonemes[-1]
        assert abs(last.start_ms + last.duration_ms - 1000 * samples / rate) < 1  # type: ignore[attr-defined]
    await h.close()
