"""SHA-256 checks for the model files the engines load (pins live next to each loader).

Every loader calls :func:`verify_model_file` on each file just before handing it to its runtime,
so a truncated, corrupted or substituted file is refused with an error naming the file, the
expected digest and the one found. Files are hashed in 1 MiB chunks, and the digest is cached
for the process per file identity (path, device, inode, size, mtime, ctime): loading the same
unchanged file again does not rehash it, while any write to it (which moves mtime and ctime)
does.

This guards against corruption and swapped files between loads; it does not protect a file
from someone who can write to it between the check and the runtime opening it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

CHUNK_BYTES = 1 << 20
# Digests remembered per process. A server loads a handful of model files; past this bound
# the least recently used entry is dropped (it is simply rehashed if loaded again).
CACHE_ENTRIES = 256

_FileKey = tuple[str, int, int, int, int, int]
_digests: OrderedDict[_FileKey, str] = OrderedDict()
_lock = threading.Lock()


class ModelFileMismatch(RuntimeError):
    """A model file's SHA-256 is not the pinned one; the file must not be loaded.

    Attributes:
        path: The file that was checked.
        expected: The pinned SHA-256 (lowercase hex).
        actual: The SHA-256 the file has.
    """

    def __init__(self, path: Path, *, expected: str, actual: str) -> None:
        """Build the message from the file and the two digests."""
        self.path = path
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"model file {path} failed its integrity check: sha256 is {actual}, expected "
            f"{expected}. The file is corrupted or not the pinned model: reinstall its package "
            "or delete the file from the model cache so it is built again (see docs/models.md)."
        )


def _key(path: Path) -> tuple[Path, _FileKey]:
    resolved = path.resolve(strict=True)
    st = os.stat(resolved)
    return resolved, (
        str(resolved),
        st.st_dev,
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
    )


def file_sha256(path: Path | str) -> str:
    """The file's SHA-256 (lowercase hex), cached while the file is unchanged.

    Args:
        path: The file to hash.

    Returns:
        The hex digest.

    Raises:
        FileNotFoundError: The file does not exist.
    """
    resolved, key = _key(Path(path))
    with _lock:
        cached = _digests.get(key)
        if cached is not None:
            _digests.move_to_end(key)
            return cached
    # Hashed outside the lock: two threads loading different models do not wait on each other
    # (two loading the same file may both hash it once; the results are equal).
    digest = hashlib.sha256()
    with open(resolved, "rb") as fh:
        while block := fh.read(CHUNK_BYTES):
            digest.update(block)
    hex_digest = digest.hexdigest()
    # Remember it only if the file did not change while it was read.
    if _key(resolved)[1] == key:
        with _lock:
            _digests[key] = hex_digest
            _digests.move_to_end(key)
            while len(_digests) > CACHE_ENTRIES:
                _digests.popitem(last=False)
    return hex_digest


def verify_model_file(path: Path | str, sha256: str) -> Path:
    """Refuse ``path`` unless its SHA-256 is ``sha256``.

    Args:
        path: The model file about to be loaded.
        sha256: Its pinned digest (hex, any case).

    Returns:
        ``path`` as a :class:`~pathlib.Path`, for chaining into the loader.

    Raises:
        FileNotFoundError: The file does not exist.
        ModelFileMismatch: The file's digest differs from ``sha256``.
    """
    path = Path(path)
    expected = sha256.strip().lower()
    actual = file_sha256(path)
    if actual != expected:
        raise ModelFileMismatch(path, expected=expected, actual=actual)
    return path


def verify_configured_file(
    path: Path | str, sha256: str | None, *, owner: str, digest_option: str
) -> Path:
    """:func:`verify_model_file` for a file an operator configured instead of the pinned one.

    Their file gets the same check: the OPTIONS that name it must also give its digest.

    Args:
        path: The configured file.
        sha256: Its digest from the same OPTIONS (``sha256sum FILE``), or ``None``.
        owner: The engine, for the error message, e.g. ``SileroVad``.
        digest_option: The OPTIONS key that holds the digest, e.g. ``model_sha256``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ImproperlyConfigured: No digest was configured.
        ModelFileMismatch: The file's digest differs from ``sha256``.
    """
    return verify_model_file(
        path, require_pin(path, sha256, owner=owner, digest_option=digest_option)
    )


def require_pin(path: Path | str, sha256: str | None, *, owner: str, digest_option: str) -> str:
    """``sha256``, or a configuration error saying which option must hold it.

    Lets a backend refuse an unpinned file when it is configured, before any load.

    Raises:
        ImproperlyConfigured: ``sha256`` is empty.
    """
    if not sha256:
        raise ImproperlyConfigured(
            f"{owner}: {path} has no pinned SHA-256; set OPTIONS {digest_option!r} to its "
            f"digest (`sha256sum {path}`), so the file is checked before it is loaded"
        )
    return sha256


def verify_model_files(files: dict[Path, str]) -> None:
    """:func:`verify_model_file` for each ``{path: sha256}``, in order."""
    for path, sha256 in files.items():
        verify_model_file(path, sha256)


def clear_cache() -> None:
    """Forget every cached digest (tests that rewrite a file within one mtime tick)."""
    with _lock:
        _digests.clear()
