"""The talk page, end to end: Chromium with a fake microphone talks to the real server.

Questions are synthesized at test time (the ``speech`` fixture) and played as the browser's
microphone; the embedded engines hear, think and answer. For each transport (one WebRTC
call; the realtime WebSocket with the video over /iwebrtc) the tests check what a person
would: the question shows as their words, the reply shows and is heard, the avatar's mouth
moves while it speaks and rests after, speaking over a reply stops it and leaves only the
words heard, and failures (no microphone, a bad key, a lost server) say what to do.

Timing comes from events, not sleeps: the reply that gets interrupted is a long ``tts_text``
(spoken verbatim, no model), the page joins muted and is unmuted in the pause before the
next utterance of its microphone file once that reply is playing.
"""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import pytest

from tests.e2e import media

pytestmark = pytest.mark.browser

QUESTION_EN = "What is the capital of France?"
QUESTION_ZH = "中国的首都是哪里？"
STORY = (
    "Let me tell you a long story about a lighthouse keeper. Every evening she climbed the "
    "stairs to light the lamp. The ships far out at sea looked for her light. One night a "
    "storm came in from the west. The wind howled and the waves grew tall. She kept the lamp "
    "burning until morning. When the sun rose, every ship had come home safely. The town "
    "thanked her with a feast by the harbour. She smiled and said it was simply her job."
)
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TURN_TIMEOUT_S = 150.0  # a spoken turn on 2 busy cores: VAD, Whisper, the model, TTS


def _wait_page_time(page: Any, at_ms: float) -> None:
    wait = at_ms - media.now_ms(page)
    if wait > 0:
        page.wait_for_timeout(wait)


def _breakdown(page: Any, user_id: str, reply_id: str) -> dict[str, int]:
    """Where a turn's time went, from the events' arrival: the end of speech (or the commit),
    the transcript, the reply's first words (its first sentence synthesized)."""
    seen = media.events(page)

    def first(kind: str, item: str) -> float | None:
        return next((e["t"] for e in seen if e["type"] == kind and e["item_id"] == item), None)

    end = first("input_audio_buffer.speech_stopped", user_id) or first(
        "input_audio_buffer.committed", user_id
    )
    heard = first("conversation.item.input_audio_transcription.completed", user_id)
    words = first("response.output_audio_transcript.delta", reply_id)
    if end is None or heard is None or words is None:
        return {}
    return {"transcript_after_ms": round(heard - end), "first_words_after_ms": round(words - end)}


def _mandarin_turn(page: Any) -> dict[str, Any]:
    """Wait for the Mandarin question's turn; check what was heard, seen and played."""
    user = media.wait_entry(page, "user", timeout_s=TURN_TIMEOUT_S)
    assert media.similarity(user["text"], QUESTION_ZH) >= 0.5, user
    reply = media.wait_entry(page, "assistant", timeout_s=TURN_TIMEOUT_S)
    assert re.search(r"[\u3400-\u9fff]", reply["text"]), reply
    media.wait_quiet(page, 2.5)
    samples = media.trace(page)
    figures = media.av_figures(samples, media.now_ms(page) - 2000)
    latency = page.evaluate("window.talk.turns")[0]["latencyMs"]
    figures.update(_breakdown(page, user["id"], reply["id"]))
    figures.update(latency_ms=latency, user=user["text"], reply=reply["text"])
    media.check_av(samples, figures)
    assert latency and latency > 0
    return figures


def _report(record_property: Any, name: str, figures: dict[str, Any]) -> None:
    record_property(name, json.dumps(figures, ensure_ascii=False))
    print(f"\n{name}: {json.dumps(figures, ensure_ascii=False)}")


@pytest.mark.timeout(480)
@pytest.mark.parametrize("transport", ["webrtc", "websocket"])
def test_english_question_interrupts_a_reply(
    server: dict[str, Any],
    speech: Any,
    launch: Any,
    shot: Any,
    record_property: Any,
    transport: str,
) -> None:
    """Barge-in, then an English question: transcript, audible reply, lips, latency."""
    wav = speech(QUESTION_EN, "en", lead_s=4.0, tail_s=10.0, then=[(5.0, QUESTION_EN)] * 6)
    spans = media.voiced_spans(wav)
    page = media.open_talk(
        launch(wav), server, f"/talk/ava/?transport={transport}&lang=en", DESKTOP
    )
    if transport == "webrtc":
        shot(page, "talk-idle")
    # Join muted: the microphone file's questions wait until the long reply is playing.
    page.click("#talk-mute")
    media.connect(page)
    media.start_trace(page)
    mic_start = media.mic_started(page)
    assert page.evaluate("window.talk.transport") == transport
    page.wait_for_function("window.talk.videoPlaying", timeout=30_000)
    shot(page, f"talk-connected-{transport}")

    media.send_event(
        page,
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "tts_text", "text": STORY}],
            },
        },
    )
    media.send_event(page, {"type": "response.create"})
    page.wait_for_function("window.talk.activity === 'speaking'", timeout=60_000)
    speaking_from = media.now_ms(page)
    page.wait_for_timeout(1500)
    # The words fill in as they are heard: part of the story shows, not all of it.
    shown = [e for e in media.entries(page) if e["role"] == "assistant"][0]
    assert 0 < len(shown["text"]) < len(STORY), shown
    shot(page, f"talk-speaking-{transport}")

    # Unmute in the pause before the next question of the file: it talks over the reply.
    now = media.now_ms(page)
    start_s, end_s = next(s for s in spans if mic_start + s[0] * 1000 > now + 1500)
    _wait_page_time(page, mic_start + start_s * 1000 - 1200)
    unmuted = media.now_ms(page)
    page.click("#talk-mute")
    started = media.wait_event(page, "input_audio_buffer.speech_started", after=unmuted)
    cut = media.wait_entry(page, "assistant", index=0, statuses=("interrupted",), timeout_s=30)
    stopped = media.wait_event(page, "input_audio_buffer.speech_stopped", after=started["t"])
    page.click("#talk-mute")  # one question is enough: the file's next ones stay unheard
    assert stopped["t"] < mic_start + (end_s + 5.0) * 1000, "muted too late"
    assert started["t"] > speaking_from

    # The reply stopped, and the transcript keeps only what was heard, as the server has it:
    # the item truncated to the audio played (the page truncates it over the WebSocket, the
    # server itself over WebRTC), a beginning of the story, marked as interrupted.
    truncated = None
    if transport == "websocket" or media.has_event(page, "conversation.item.truncated", cut["id"]):
        truncated = media.wait_event(
            page, "conversation.item.truncated", after=started["t"], item_id=cut["id"]
        )
        said = media.wait_event(
            page, "conversation.item.retrieved", after=truncated["t"], item_id=cut["id"]
        )
    else:
        # Over WebRTC, a barge-in while the reply waited for its next sentence (the voice
        # slower than real time on a busy machine) cuts nothing unheard: no truncation, and
        # the item as it ends holds only the sentences played.
        said = media.wait_event(
            page, "conversation.item.done", after=started["t"], item_id=cut["id"]
        )
    heard = said["transcript"]
    page.wait_for_function(
        """([id, text]) => window.talk.transcript.some((e) => e.id === id && e.text === text)""",
        arg=[cut["id"], heard],
        timeout=10_000,
    )
    assert heard and STORY.startswith(heard) and len(heard) < len(STORY) * 0.8, heard
    heard_ms = truncated["audio_end_ms"] if truncated else None
    if heard_ms is not None:
        # Piper says about 15-20 characters a second: the words kept fit the audio played.
        assert len(heard) <= 25 * heard_ms / 1000 + 20, (heard, heard_ms)
    page.locator(f'[data-item-id="{cut["id"]}"] .msg__badge').wait_for(state="visible")
    cut_at = (truncated or said)["t"]
    samples = media.trace(page)
    after_cut = media.between(samples, cut_at + 400, cut_at + 1500)
    assert after_cut and max(s["level"] for s in after_cut) < media.AUDIBLE, after_cut

    # The question: the user's words, then the reply, heard and lip-synced.
    user = media.wait_entry(page, "user", index=0, timeout_s=TURN_TIMEOUT_S)
    assert media.similarity(user["text"], QUESTION_EN) >= 0.5, user
    reply = media.wait_entry(page, "assistant", index=1, timeout_s=TURN_TIMEOUT_S)
    media.wait_quiet(page, 2.5)
    rest_from = media.now_ms(page) - 2000
    samples = media.trace(page)
    figures = media.av_figures(samples, rest_from)
    turns = page.evaluate("window.talk.turns")
    turn = next(t for t in turns if t["assistantItemId"] == reply["id"])
    assert turn["latencyMs"] and turn["latencyMs"] > 0, turns
    page.locator(f'[data-item-id="{reply["id"]}"] .msg__latency').wait_for(state="visible")
    figures.update(_breakdown(page, user["id"], reply["id"]))
    figures.update(
        latency_ms=turn["latencyMs"],
        heard_ms=heard_ms,
        heard_chars=len(heard),
        user=user["text"],
        reply=reply["text"],
    )
    _report(record_property, f"talk-en-{transport}", figures)
    shot(page, f"talk-transcript-en-{transport}")
    media.check_av(samples, figures)

    page.click("#talk-hangup")
    page.wait_for_function("window.talk.state === 'idle'", timeout=15_000)
    assert len(media.entries(page)) == 3  # the transcript stays after hanging up


@pytest.mark.timeout(420)
def test_mandarin_over_webrtc_then_reconnect(
    server: dict[str, Any], speech: Any, launch: Any, shot: Any, record_property: Any
) -> None:
    """A Mandarin question, hands-free over WebRTC; the server drops the call; Reconnect."""
    # The call takes a second or two to come up; the question starts well after.
    wav = speech(QUESTION_ZH, "zh", lead_s=6.0, tail_s=40.0)
    page = media.open_talk(
        launch(wav), server, "/talk/girl2/?transport=webrtc&lang=zh&mode=vad", DESKTOP
    )
    locations: list[str] = []
    page.on(
        "response",
        lambda r: (
            locations.append(r.headers.get("location", ""))
            if r.request.method == "POST" and "/v1/realtime/calls" in r.url and r.status == 201
            else None
        ),
    )
    media.connect(page)
    media.start_trace(page)
    figures = _mandarin_turn(page)
    _report(record_property, "talk-zh-webrtc", figures)
    shot(page, "talk-transcript-zh")

    # The server ends the call (as when it goes away): the page says so and offers Reconnect.
    page.click("#talk-mute")  # a new capture would play the file's question again
    assert locations and locations[0].startswith("/v1/realtime/calls/rtc_"), locations
    request = urllib.request.Request(
        server["base"] + locations[0] + "/hangup",
        method="POST",
        headers={"Authorization": f"Bearer {server['demo_key']}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 204)
    page.wait_for_function("window.talk.state === 'error'", timeout=30_000)
    assert page.evaluate("window.talk.lastError.code") == "lost"
    retry = page.locator("#talk-retry")
    assert retry.is_visible() and retry.inner_text() == "Reconnect"
    assert "lost" in page.locator("#talk-alert").inner_text()
    shot(page, "talk-lost")
    before = media.entries(page)
    user_id = page.evaluate("window.talk.userId")
    media.connect(page, "#talk-retry")
    assert page.evaluate("window.talk.connects") == 2
    assert page.evaluate("window.talk.userId") == user_id
    assert media.entries(page) == before  # the conversation so far stays on the page
    page.click("#talk-hangup")


@pytest.mark.timeout(420)
def test_mandarin_push_to_talk_over_websocket_on_a_phone(
    server: dict[str, Any], speech: Any, launch: Any, shot: Any, record_property: Any
) -> None:
    """Push-to-talk (the Space bar) over the WebSocket transport, at a phone's width."""
    wav = speech(QUESTION_ZH, "zh", lead_s=3.0, tail_s=40.0)
    (start_s, end_s) = media.voiced_spans(wav)[0]
    page = media.open_talk(
        launch(wav), server, "/talk/wang-laoshi/?transport=websocket&lang=zh&mode=ptt", PHONE
    )
    media.connect(page)
    media.start_trace(page)
    mic_start = media.mic_started(page)
    assert page.locator("#talk-ptt").is_visible()
    # Nothing is sent until the button (here: Space) is held.
    page.locator("body").focus()
    page.keyboard.down("Space")
    page.wait_for_function("window.talk.activity === 'listening'", timeout=5_000)
    levels = []
    while media.now_ms(page) < mic_start + (end_s + 0.4) * 1000:
        levels.append(int(page.get_attribute("#talk-meter", "aria-valuenow") or 0))
        page.wait_for_timeout(100)
    page.keyboard.up("Space")
    assert max(levels) > 20, levels  # the input meter showed the voice
    figures = _mandarin_turn(page)
    figures.update(meter_peak=max(levels))
    _report(record_property, "talk-zh-websocket-ptt", figures)
    shot(page, "talk-phone")
    # Nothing spills over the phone's width.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.click("#talk-hangup")


@pytest.mark.timeout(240)
def test_failures_say_what_to_do(server: dict[str, Any], launch: Any, shot: Any) -> None:
    """No microphone, bad keys, a site without a key: clear messages and a way on."""
    # A denied microphone.
    page = media.open_talk(launch(mic="deny"), server, "/talk/ava/", DESKTOP)
    page.click("#talk-connect")
    page.wait_for_function("window.talk.state === 'error'", timeout=30_000)
    assert page.evaluate("window.talk.lastError.code") == "mic_denied"
    alert = page.locator("#talk-alert")
    assert "Microphone access is blocked" in alert.inner_text()
    assert page.locator("#talk-retry").is_visible()
    shot(page, "talk-error-mic")
    page.click("#talk-retry")  # tries again (and, still denied, says so again)
    page.wait_for_function("window.talk.state === 'error'", timeout=30_000)
    assert page.evaluate("window.talk.lastError.code") == "mic_denied"

    browser = launch()
    # A visitor's own license key that the server does not know.
    page = media.open_talk(browser, server, "/talk/ava/?transport=webrtc", DESKTOP)
    sent_to: list[str] = []
    page.on("request", lambda r: sent_to.append(r.url) if "lic_" in str(r.headers) else None)
    page.click("#talk-settings summary")
    page.fill("#talk-own-key", "lic_" + "A" * 38)
    page.click("#talk-own-key-form button")
    page.click("#talk-connect")
    page.wait_for_function("window.talk.state === 'error'", timeout=30_000)
    assert page.evaluate("window.talk.lastError.code") == "bad_key"
    assert "The key was not accepted" in page.locator("#talk-alert").inner_text()
    assert page.locator("#talk-retry").is_visible() and page.locator("#talk-key").is_visible()
    shot(page, "talk-error-key")
    assert sent_to and all(u.endswith("/v1/realtime/client_secrets") for u in sent_to), sent_to

    # A secret the server refuses, on each transport: 401 on the call, an error on the socket.
    bogus = {"value": "ek_" + "B" * 40, "expires_at": 0, "user_id": "v_x", "session": {}}
    for transport in ("webrtc", "websocket"):
        page = media.open_talk(browser, server, f"/talk/ava/?transport={transport}", DESKTOP)
        page.route(
            "**/talk/secret",
            lambda route: route.fulfill(
                status=200, content_type="application/json", body=json.dumps(bogus)
            ),
        )
        page.click("#talk-connect")
        page.wait_for_function("window.talk.state === 'error'", timeout=30_000)
        error = page.evaluate("window.talk.lastError")
        assert error["code"] == "bad_key", (transport, error)
        assert page.locator("#talk-retry").is_visible()

    # The operator set no key for the talk page: the page asks for one, and it works.
    page = media.open_talk(browser, server, "/talk/ava/?transport=websocket", DESKTOP)
    page.route(
        "**/talk/secret",
        lambda route: route.fulfill(
            status=503,
            content_type="application/json",
            body=json.dumps(
                {
                    "error": {
                        "message": "No license is set up for the talk page.",
                        "type": "invalid_request_error",
                        "code": "talk_page_not_configured",
                        "param": None,
                    }
                }
            ),
        ),
    )
    keyed: list[str] = []
    page.on(
        "request",
        lambda r: (
            keyed.append(r.url)
            if server["demo_key"] in str(r.headers) or server["demo_key"] in (r.post_data or "")
            else None
        ),
    )
    page.click("#talk-mute")  # no need to hear the fake microphone's beep
    page.click("#talk-connect")
    page.wait_for_function("window.talk.state === 'error'", timeout=30_000)
    assert page.evaluate("window.talk.lastError.code") == "need_key"
    assert page.locator("#talk-key").is_visible()
    shot(page, "talk-need-key")
    page.fill("#talk-key", server["demo_key"])
    page.click("#talk-key-form button")
    page.wait_for_function("window.talk.connected", timeout=60_000)
    assert page.input_value("#talk-key") == ""  # not left in the page
    # The license key went to the mint endpoint only, never to the realtime socket.
    assert keyed and all(u.endswith("/v1/realtime/client_secrets") for u in keyed), keyed
    page.click("#talk-hangup")
