"""Model files are hash-checked before they are loaded; digests are cached per unchanged file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.agent.providers import gguf
from apps.agent.providers.embedded import EmbeddedLlm
from apps.core import model_files
from apps.core.model_files import (
    ModelFileMismatch,
    file_sha256,
    verify_configured_file,
    verify_model_file,
)


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    model_files.clear_cache()


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_a_matching_file_passes_and_a_tampered_one_is_refused(tmp_path) -> None:
    path = tmp_path / "weights.bin"
    # Larger than one chunk, so the chunked hashing is exercised.
    good = _write(path, os.urandom(model_files.CHUNK_BYTES + 123))
    assert verify_model_file(path, good.upper()) == path

    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(1, 1))  # a different mtime, even on a coarse clock
    with pytest.raises(ModelFileMismatch) as caught:
        verify_model_file(path, good)
    error = caught.value
    actual = hashlib.sha256(bytes(data)).hexdigest()
    assert (error.path, error.expected, error.actual) == (path, good, actual)
    assert str(path) in str(error) and good in str(error) and actual in str(error)


def test_an_unchanged_file_is_hashed_once_per_process(tmp_path, monkeypatch) -> None:
    path = tmp_path / "model.onnx"
    digest = _write(path, b"weights" * 1000)
    calls = []
    real = hashlib.sha256

    def counting_sha256(*args: object) -> object:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(model_files.hashlib, "sha256", counting_sha256)
    for _ in range(3):
        verify_model_file(path, digest)
    assert len(calls) == 1
    # Through a symlink it is the same file.
    link = tmp_path / "link.onnx"
    link.symlink_to(path)
    verify_model_file(link, digest)
    assert len(calls) == 1
    # Rewritten (same size, new mtime): hashed again, and the change is caught.
    path.write_bytes(b"WEIGHTS" * 1000)
    os.utime(path, ns=(2, 2))
    with pytest.raises(ModelFileMismatch):
        verify_model_file(path, digest)
    assert len(calls) == 2


def test_the_cache_is_bounded(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(model_files, "CACHE_ENTRIES", 3)
    for index in range(5):
        path = tmp_path / f"f{index}"
        path.write_bytes(bytes([index]))
        file_sha256(path)
    assert len(model_files._digests) == 3


def test_a_configured_file_needs_a_digest(tmp_path) -> None:
    path = tmp_path / "custom.onnx"
    digest = _write(path, b"custom")
    with pytest.raises(ImproperlyConfigured, match="model_sha256"):
        verify_configured_file(path, None, owner="SileroVad", digest_option="model_sha256")
    assert verify_configured_file(path, digest, owner="X", digest_option="d") == path
    with pytest.raises(FileNotFoundError):
        verify_model_file(tmp_path / "missing.onnx", digest)


# --- the LLM loaders --------------------------------------------------------------------------


def test_an_assembled_gguf_in_the_cache_is_verified_before_use(tmp_path) -> None:
    name = "qwen2.5-coder-0.5b-instruct"
    target = tmp_path / "llm" / gguf.MODELS[name].filename
    target.parent.mkdir()
    # A stand-in for a truncated or swapped file left in the model cache.
    target.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ModelFileMismatch) as caught:
        gguf.assemble(name, tmp_path)
    assert caught.value.expected == gguf.MODELS[name].sha256
    assert caught.value.path == target


def test_the_embedded_llm_refuses_an_unpinned_or_tampered_model_path(tmp_path) -> None:
    path = tmp_path / "other.gguf"
    digest = _write(path, b"GGUF custom model")
    with pytest.raises(ImproperlyConfigured, match="model_sha256"):
        EmbeddedLlm(cache_dir=str(tmp_path), model="custom", model_path=str(path))
    llm = EmbeddedLlm(
        cache_dir=str(tmp_path), model="custom", model_path=str(path), model_sha256=digest
    )
    path.write_bytes(b"GGUF tampered model")
    os.utime(path, ns=(3, 3))
    with pytest.raises(ModelFileMismatch):
        llm.load()
    assert llm.describe()["loaded"] is False
