"""Remote OpenAI-compatible ASR/TTS against a real local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from apps.voice.remote import RemoteAsr, RemoteError, RemoteTts
from apps.voice.tts.base import VoiceSpec


class Recorder:
    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.requests: list[tuple[str, dict, bytes]] = []


@pytest.fixture
def audio_server() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            recorder.requests.append((self.path, dict(self.headers), body))
            status = recorder.statuses.pop(0) if recorder.statuses else 200
            if status != 200:
                self.send_response(status)
                self.send_header("Content-Length", "5")
                self.end_headers()
                self.wfile.write(b"nope!")
                return
            if self.path.endswith("/audio/transcriptions"):
                payload = json.dumps({"text": " hello there ", "language": "en"}).encode()
                content_type = "application/json"
            else:
                payload = (np.arange(2400, dtype="<i2") % 100).tobytes()
                content_type = "application/octet-stream"
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", recorder
    httpd.shutdown()
    httpd.server_close()


def test_remote_asr_uploads_wav_and_reads_json(audio_server) -> None:
    url, recorder = audio_server
    asr = RemoteAsr(base_url=url, api_key="sk-a", model="whisper-1")
    transcript = asr.transcribe(np.zeros(16_000, np.int16), language="en")
    assert (
        transcript.text == "hello there"
        and transcript.language == "en"
        and transcript.duration_ms == 1000
    )
    path, headers, body = recorder.requests[0]
    assert path == "/v1/audio/transcriptions" and headers["Authorization"] == "Bearer sk-a"
    assert b'name="model"' in body and b"whisper-1" in body and b"RIFF" in body


def test_remote_tts_one_request_per_sentence(audio_server) -> None:
    url, recorder = audio_server
    chunks = list(RemoteTts(base_url=url).synthesize("Hello. Bye!", VoiceSpec("alloy", speed=1.2)))
    assert [c.text for c in chunks] == ["Hello.", "Bye!"]
    assert chunks[0].sample_rate == 24_000 and len(chunks[0].samples) == 2400
    sent = json.loads(recorder.requests[0][2])
    assert sent == {
        "model": "tts-1",
        "input": "Hello.",
        "voice": "alloy",
        "speed": 1.2,
        "response_format": "pcm",
    }


def test_retries_then_clear_errors(audio_server) -> None:
    url, recorder = audio_server
    recorder.statuses += [503]
    assert (
        RemoteAsr(base_url=url, retries=1).transcribe(np.zeros(1600, np.int16)).text
        == "hello there"
    )
    recorder.statuses += [401]
    with pytest.raises(RemoteError, match="refused the request"):
        list(RemoteTts(base_url=url).synthesize("Hi.", VoiceSpec("alloy")))
    with pytest.raises(RemoteError, match="cannot reach"):
        RemoteAsr(base_url="http://127.0.0.1:9/v1", retries=0).transcribe(np.zeros(1600, np.int16))
