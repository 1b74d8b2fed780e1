"""ASR and TTS on any OpenAI-compatible audio endpoint (/audio/transcriptions, /audio/speech).

For deployments that prefer a hosted or self-hosted speech service (OpenAI, speaches, vLLM
audio, …) to the embedded engines: set the ``asr`` or ``tts`` entry of ``VOICE_ENGINES`` to
these classes. Calls are blocking (engines run in executors); failures raise ``RemoteError``
with the provider's message, after a bounded number of retries for network errors, 429 and 5xx.
"""

from __future__ import annotations

import io
import os
import time
import wave
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import numpy as np

from .asr.base import AsrEngine, Transcript, as_float32
from .tts.base import SpeechChunk, TtsEngine, VoiceSpec
from .tts.chunker import split_sentences

_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class RemoteError(RuntimeError):
    """The remote audio service failed; the message says which and why."""


class _Client:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        api_key_env: str | None,
        timeout_s: float,
        retries: int,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        key = api_key or (os.environ.get(api_key_env, "") if api_key_env else "")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.timeout = httpx.Timeout(timeout_s, connect=min(5.0, timeout_s))
        self.retries = retries

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = httpx.post(
                    f"{self.base_url}{path}", headers=self.headers, timeout=self.timeout, **kwargs
                )
            except httpx.TimeoutException:
                problem = "timed out"
            except httpx.TransportError as exc:
                problem = f"cannot reach {self.base_url} ({type(exc).__name__})"
            else:
                if response.status_code == 200:
                    return response
                problem = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code not in _RETRY_STATUS:
                    raise RemoteError(f"{self.base_url}{path} refused the request ({problem})")
            if attempt >= self.retries:
                raise RemoteError(f"{self.base_url}{path}: {problem}")
            attempt += 1
            time.sleep(0.25 * 2 ** (attempt - 1))


def _wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes((np.clip(as_float32(samples), -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


class RemoteAsr(AsrEngine):
    """``POST {base_url}/audio/transcriptions`` with the utterance as a WAV file."""

    def __init__(
        self,
        base_url: str,
        model: str = "whisper-1",
        api_key: str | None = None,
        api_key_env: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 2,
    ) -> None:
        self._client = _Client(base_url, api_key, api_key_env, timeout_s, retries)
        self.model = model

    def describe(self) -> dict[str, object]:
        """Endpoint and model (never the key)."""
        return {"engine": "remote-asr", "base_url": self._client.base_url, "model": self.model}

    def transcribe(
        self, samples: np.ndarray, *, language: str | None = None, prompt: str | None = None
    ) -> Transcript:
        """Upload and return the service's transcript."""
        data = {"model": self.model, "response_format": "json"}
        if language:
            data["language"] = language
        if prompt:
            data["prompt"] = prompt
        files = {"file": ("audio.wav", _wav_bytes(samples, self.sample_rate), "audio/wav")}
        body = self._client.post("/audio/transcriptions", data=data, files=files).json()
        return Transcript(
            text=str(body.get("text", "")).strip(),
            language=body.get("language") or language,
            duration_ms=int(1000 * len(samples) / self.sample_rate),
        )


class RemoteTts(TtsEngine):
    """``POST {base_url}/audio/speech`` per sentence, asking for raw 24 kHz PCM16."""

    sample_rate = 24_000

    def __init__(
        self,
        base_url: str,
        model: str = "tts-1",
        api_key: str | None = None,
        api_key_env: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 2,
        languages: tuple[str, ...] = ("en", "zh"),
    ) -> None:
        self._client = _Client(base_url, api_key, api_key_env, timeout_s, retries)
        self.model = model
        self.languages = tuple(languages)

    def describe(self) -> dict[str, object]:
        """Endpoint and model (never the key)."""
        return {"engine": "remote-tts", "base_url": self._client.base_url, "model": self.model}

    def synthesize(self, text: str, voice: VoiceSpec) -> Iterator[SpeechChunk]:
        """One request per sentence so the first one can play while the next is made."""
        for sentence in split_sentences(text):
            body = {
                "model": self.model,
                "input": sentence,
                "voice": voice.engine_voice,
                "speed": max(0.25, min(voice.speed, 1.5)),
                "response_format": "pcm",
            }
            raw = self._client.post("/audio/speech", json=body).content
            samples = np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2").astype(np.int16)
            yield SpeechChunk(samples=samples, sample_rate=self.sample_rate, text=sentence)
