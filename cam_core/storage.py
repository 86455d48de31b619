"""Crash-safe files: atomic writes, stale temp clean-up and one-writer-per-folder locks."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from filelock import FileLock, Timeout

from cam_core.errors import AlreadyRunningError, CamLensError

__all__ = [
    "TEMP_PREFIX",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "clean_stale_temps",
    "folder_lock",
    "read_json_object",
    "sha256_file",
]

log = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp-"
LOCK_NAME = ".cam_lens.lock"


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write a file so that readers see either the old or the complete new version.

    Args:
        path: final file path; its folder must exist.
        write: called with a binary file object open on a temp file in the same folder.
    """
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX + path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``."""

    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    atomic_write(path, write)


def atomic_write_text(path: Path, text: str) -> None:
    """Atomically replace ``path`` with UTF-8 ``text``."""
    atomic_write_bytes(path, text.encode("utf-8"))


def clean_stale_temps(folder: Path) -> int:
    """Remove temp files left by a writer that died; call only while holding the folder lock.

    Returns:
        How many files were removed.
    """
    removed = 0
    for stale in folder.glob(TEMP_PREFIX + "*"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
            removed += 1
    if removed:
        log.info("removed %d stale temp file(s) from %s", removed, folder)
    return removed


@contextlib.contextmanager
def folder_lock(folder: Path, what: str) -> Iterator[None]:
    """Hold the folder's writer lock, or fail at once if another process holds it.

    Raises:
        AlreadyRunningError: another writer (in any process) holds the lock.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK_NAME), thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise AlreadyRunningError(
            f"{what} is already running for {folder}; wait for it to finish"
        ) from None
    try:
        clean_stale_temps(folder)
        yield
    finally:
        lock.release()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_json_object(
    path: Path, error: type[CamLensError], missing_hint: str, fix: str
) -> dict[str, Any]:
    """Read a JSON object, turning every failure into ``error`` with a one-line message.

    Args:
        path: the JSON file.
        error: exception class to raise.
        missing_hint: what it means when the file is absent.
        fix: what the user should do when the file is damaged.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path} is missing; {missing_hint}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"{path} is not valid JSON ({exc}); {fix}") from None
    if not isinstance(raw, dict):
        raise error(f"{path} is not a JSON object; {fix}")
    return raw
