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
    "atomic_write_bytes",
    "atomic_write_text",
    "clean_stale_temps",
    "commit_files",
    "committed_path",
    "folder_lock",
    "read_json_object",
    "recover_commit",
    "sha256_file",
    "write_temp",
    "write_temp_bytes",
]

log = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp-"
LOCK_NAME = ".cam_lens.lock"
JOURNAL_NAME = ".commit.json"


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        log.debug("no /proc/self/status; reading the umask by setting it")
    # Elsewhere the only way is to set it and put it back (a short race with other threads).
    current = os.umask(0o022)
    os.umask(current)
    return current


def write_temp(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write a complete, fsynced temp file beside ``path`` without touching ``path``.

    The file gets the permissions a plain ``open()`` would give (``0o666`` less the umask, so
    0644 with the usual 022), not ``mkstemp``'s private 0600: colleagues and a dashboard
    running as another user can read models, artifacts and reports.

    Returns:
        The temp file (named ``.tmp-<name>.*``), ready for ``os.replace`` onto ``path``.
    """
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX + path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o666 & ~_umask())
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def commit_files(folder: Path, replacements: dict[str, Path]) -> None:
    """Move several complete temp files onto their final names as one unit.

    A journal naming every pair is written (atomically) before the first rename and removed
    after the last, so a crash in between is rolled forward by :func:`recover_commit` and
    readers can resolve the new set with :func:`committed_path`.

    Args:
        folder: the folder holding the files.
        replacements: final name relative to ``folder`` (``maps/cam.npy`` is fine) → temp
            file beside that final file.
    """
    base = folder.resolve()
    journal = {name: str(tmp.resolve().relative_to(base)) for name, tmp in replacements.items()}
    atomic_write_text(folder / JOURNAL_NAME, json.dumps(journal))
    for name, tmp in replacements.items():
        os.replace(tmp, folder / name)
    os.unlink(folder / JOURNAL_NAME)


def _journal(folder: Path) -> dict[str, str]:
    try:
        raw = json.loads((folder / JOURNAL_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.warning("ignoring an unreadable commit journal in %s", folder)
        return {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def committed_path(folder: Path, name: str) -> Path:
    """Where the newest complete version of ``name`` is, even mid-commit (read-only)."""
    pending = _journal(folder).get(name)
    if pending and (folder / pending).is_file():
        return folder / pending
    return folder / name


def recover_commit(folder: Path) -> None:
    """Finish a commit that a crashed writer started; call only while holding the lock."""
    journal = _journal(folder)
    for name, tmp in journal.items():
        if (folder / tmp).is_file():
            os.replace(folder / tmp, folder / name)
    if journal:
        log.warning("finished an interrupted save in %s", folder)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(folder / JOURNAL_NAME)


def write_temp_bytes(path: Path, data: bytes) -> Path:
    """:func:`write_temp` for data already in memory."""

    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    return write_temp(path, write)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``."""
    os.replace(write_temp_bytes(path, data), path)


def atomic_write_text(path: Path, text: str) -> None:
    """Atomically replace ``path`` with UTF-8 ``text``."""
    atomic_write_bytes(path, text.encode("utf-8"))


def clean_stale_temps(folder: Path) -> int:
    """Remove temp files left by a writer that died (in the folder and its sub-folders, one
    level down); call only while holding the folder lock.

    Returns:
        How many files were removed.
    """
    removed = 0
    for stale in [*folder.glob(TEMP_PREFIX + "*"), *folder.glob("*/" + TEMP_PREFIX + "*")]:
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
        recover_commit(folder)
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
