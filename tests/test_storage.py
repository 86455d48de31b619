"""Crash safety: atomic writes, SIGKILL mid-write, stale temp files, one writer per folder."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cam_core.analysis.artifacts import read_artifacts
from cam_core.errors import AlreadyRunningError
from cam_core.storage import (
    TEMP_PREFIX,
    atomic_write_text,
    commit_files,
    folder_lock,
    write_temp,
    write_temp_bytes,
)

REPO = Path(__file__).resolve().parents[1]


def test_an_exception_mid_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "data.txt"
    atomic_write_text(target, "old")

    def explode(handle) -> None:  # type: ignore[no-untyped-def]
        handle.write(b"half of the new")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_temp(target, explode)
    assert target.read_text() == "old"
    assert not list(tmp_path.glob(TEMP_PREFIX + "*"))


_KILLED_WRITER = """
import sys, time
from pathlib import Path
import numpy as np
import cam_core.analysis.artifacts as artifacts
from cam_core.analysis.artifacts import read_artifacts, write_artifacts

folder, model_dir = Path(sys.argv[1]), Path(sys.argv[2])
art = read_artifacts(folder)
real_save = np.save

def slow_save(handle, array):
    handle.write(b"\\x93NUMPY partial")
    handle.flush()
    print("writing", flush=True)
    time.sleep(60)

artifacts.np.save = slow_save
table = art.table.iloc[::-1].reset_index(drop=True)
flipped = {name: maps[::-1] for name, maps in art.maps.items()}
write_artifacts(folder, table, flipped, art.manifest)
"""


def _kill_mid_write(script: str, folder: Path, model_dir: Path) -> None:
    """Run a writer in a subprocess and SIGKILL it while it is writing."""
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(folder), str(model_dir)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "writing"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def test_sigkill_mid_write_leaves_previous_artifacts_readable(
    tiny_artifacts_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder = Path(shutil.copytree(tiny_artifacts_dir, tmp_path / "art"))
    before = read_artifacts(folder)
    _kill_mid_write(_KILLED_WRITER, folder, tiny_model_dir)
    after = read_artifacts(folder)
    assert after.table.equals(before.table)
    assert np.array_equal(after.maps["cam"], before.maps["cam"])
    assert list(folder.glob(TEMP_PREFIX + "*")), "the killed writer left its temp files"
    with folder_lock(folder, "analysis"):
        pass
    assert not list(folder.glob(TEMP_PREFIX + "*"))


def test_a_crash_between_renames_is_rolled_forward(
    tiny_artifacts_dir: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cam_core import storage
    from cam_core.analysis.artifacts import write_artifacts

    folder = Path(shutil.copytree(tiny_artifacts_dir, tmp_path / "art"))
    before = read_artifacts(folder)
    real_replace = os.replace
    calls: list[str] = []

    def crash_after_first(src: str | Path, dst: str | Path) -> None:
        if Path(dst).parent == folder and not Path(dst).name.startswith("."):
            calls.append(Path(dst).name)
            if len(calls) == 2:
                raise OSError("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(storage.os, "replace", crash_after_first)
    flipped = before.table.iloc[::-1].reset_index(drop=True)
    with pytest.raises(OSError, match="power cut"):
        write_artifacts(
            folder, flipped, {n: m[::-1] for n, m in before.maps.items()}, before.manifest
        )
    monkeypatch.setattr(storage.os, "replace", real_replace)
    mid = read_artifacts(folder)  # readers see the complete new set, never a mix
    assert list(mid.table["path"]) == list(flipped["path"])
    assert np.array_equal(mid.maps["cam"], before.maps["cam"][::-1])
    with folder_lock(folder, "analysis"):
        pass
    assert not (folder / ".commit.json").exists()
    final = read_artifacts(folder)
    assert list(final.table["path"]) == list(flipped["path"])


def test_killed_before_any_replace_keeps_everything(
    tiny_artifacts_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    folder = Path(shutil.copytree(tiny_artifacts_dir, tmp_path / "art"))
    before = read_artifacts(folder)
    script = _KILLED_WRITER.replace(
        "artifacts.np.save = slow_save",
        "artifacts.pd.DataFrame.to_parquet = lambda self, handle, **k: slow_save(handle, None)",
    )
    _kill_mid_write(script, folder, tiny_model_dir)
    after = read_artifacts(folder)
    assert after.table.equals(before.table)
    assert np.array_equal(after.maps["cam"], before.maps["cam"])


def test_lock_is_exclusive_across_processes(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom pathlib import Path\nfrom cam_core.storage import folder_lock\n"
            "with folder_lock(Path(sys.argv[1]), 'training'):\n"
            "    print('held', flush=True)\n    time.sleep(30)\n",
            str(tmp_path),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(AlreadyRunningError, match="training is already running"):
            with folder_lock(tmp_path, "training"):
                pass
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 5
    while True:
        try:
            with folder_lock(tmp_path, "training"):
                break
        except AlreadyRunningError:
            assert time.monotonic() < deadline
            time.sleep(0.1)


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_get_the_permissions_of_the_umask(
    tmp_path: Path, tiny_model_dir: Path, umask: int, mode: int
) -> None:
    from cam_core.analysis.pipeline import AnalyzeConfig, analyze
    from cam_core.present.report import write_report
    from tests.conftest import make_model

    previous = os.umask(umask)
    try:
        make_model(tmp_path / "model")
        analyze(tiny_model_dir, tmp_path / "artifacts", cfg=AnalyzeConfig(num_workers=0))
        write_report(tmp_path / "artifacts", tmp_path / "report.html")
        atomic_write_text(tmp_path / "note.txt", "shared")
    finally:
        os.umask(previous)
    written = [
        *(tmp_path / "model").glob("model.*"),
        *(p for p in (tmp_path / "artifacts").rglob("*") if p.is_file() and p.name[0] != "."),
        tmp_path / "report.html",
        tmp_path / "note.txt",
    ]
    assert len(written) >= 9  # weights, card, table, manifest, 4 maps, report, note
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in written} == {
        p.name: oct(mode) for p in written
    }


def test_a_commit_into_a_relative_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = Path("out")
    folder.mkdir()
    temps = {name: write_temp_bytes(folder / name, name.encode()) for name in ("a.txt", "b.txt")}
    commit_files(folder, temps)
    assert (tmp_path / "out" / "a.txt").read_text() == "a.txt"
    assert (tmp_path / "out" / "b.txt").read_text() == "b.txt"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt", "b.txt"]


def test_the_commit_journal_is_read_defensively(tmp_path: Path) -> None:
    from cam_core.storage import JOURNAL_NAME, committed_path, recover_commit

    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / ".tmp-cam.npy.x").write_bytes(b"new")
    (tmp_path / "maps" / "cam.npy").write_bytes(b"old")
    (tmp_path / "table.csv").write_bytes(b"old table")
    journal = {"maps/cam.npy": "maps/.tmp-cam.npy.x", "table.csv": ".tmp-table.csv.gone"}
    (tmp_path / JOURNAL_NAME).write_text(json.dumps(journal))
    # mid-commit, readers see the pending file where it exists, the final name otherwise
    assert committed_path(tmp_path, "maps/cam.npy") == tmp_path / "maps" / ".tmp-cam.npy.x"
    assert committed_path(tmp_path, "table.csv") == tmp_path / "table.csv"
    assert committed_path(tmp_path, "other") == tmp_path / "other"
    recover_commit(tmp_path)
    assert (tmp_path / "maps" / "cam.npy").read_bytes() == b"new"
    assert (tmp_path / "table.csv").read_bytes() == b"old table"
    assert not (tmp_path / JOURNAL_NAME).exists()
    recover_commit(tmp_path)  # nothing to do
    for broken in ("{not json", "[1, 2]"):
        (tmp_path / JOURNAL_NAME).write_text(broken)
        assert committed_path(tmp_path, "table.csv") == tmp_path / "table.csv"
        recover_commit(tmp_path)
        assert not (tmp_path / JOURNAL_NAME).exists()


def test_stale_temps_are_removed_one_level_down_and_counted(tmp_path: Path) -> None:
    from cam_core.storage import clean_stale_temps

    (tmp_path / "maps" / "deep").mkdir(parents=True)
    for path in (
        tmp_path / f"{TEMP_PREFIX}a",
        tmp_path / f"{TEMP_PREFIX}b",
        tmp_path / "maps" / f"{TEMP_PREFIX}c",
        tmp_path / "maps" / "deep" / f"{TEMP_PREFIX}d",
        tmp_path / "keep.npy",
    ):
        path.write_bytes(b"x")
    assert clean_stale_temps(tmp_path) == 3
    assert (tmp_path / "maps" / "deep" / f"{TEMP_PREFIX}d").exists()
    assert (tmp_path / "keep.npy").exists()
    assert clean_stale_temps(tmp_path) == 0


def test_the_lock_is_released_and_cleans_up_when_taken(tmp_path: Path) -> None:
    from cam_core.storage import JOURNAL_NAME

    (tmp_path / f"{TEMP_PREFIX}left").write_bytes(b"x")
    (tmp_path / ".tmp-new").write_bytes(b"new")
    (tmp_path / JOURNAL_NAME).write_text(json.dumps({"final": ".tmp-new"}))
    with folder_lock(tmp_path, "analysis"):
        assert (tmp_path / "final").read_bytes() == b"new"
        assert not (tmp_path / f"{TEMP_PREFIX}left").exists()
        with pytest.raises(AlreadyRunningError, match="analysis is already running"):
            with folder_lock(tmp_path, "analysis"):
                pass
    with folder_lock(tmp_path, "analysis"):  # released: taken again at once
        pass
    new = tmp_path / "new" / "folder"
    with folder_lock(new, "training"):
        assert new.is_dir()


def test_hashes_and_json_objects(tmp_path: Path) -> None:
    import hashlib

    from cam_core.errors import ArtifactError
    from cam_core.storage import read_json_object, sha256_file

    data = np.random.default_rng(0).bytes(3 * (1 << 20) + 17)  # more than one chunk
    (tmp_path / "blob").write_bytes(data)
    assert sha256_file(tmp_path / "blob") == hashlib.sha256(data).hexdigest()
    good = tmp_path / "good.json"
    good.write_text('{"a": 1}')
    assert read_json_object(good, ArtifactError, "run it", "fix it") == {"a": 1}
    with pytest.raises(ArtifactError, match="missing; run it"):
        read_json_object(tmp_path / "none.json", ArtifactError, "run it", "fix it")
    bad = tmp_path / "bad.json"
    for text, message in (
        ("{oops", "not valid JSON"),
        ("[1]", "not a JSON object"),
        (b"\xff\xfe", "not valid JSON"),
    ):
        if isinstance(text, bytes):
            bad.write_bytes(text)
        else:
            bad.write_text(text)
        with pytest.raises(ArtifactError, match=f"{message}.*fix it"):
            read_json_object(bad, ArtifactError, "run it", "fix it")


def test_a_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    def fail(handle: object) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_temp(tmp_path / "x.bin", fail)
    assert list(tmp_path.iterdir()) == []
    tmp = write_temp_bytes(tmp_path / "x.bin", b"abc")
    assert tmp.parent == tmp_path and tmp.name.startswith(f"{TEMP_PREFIX}x.bin.")
    assert tmp.read_bytes() == b"abc" and not (tmp_path / "x.bin").exists()


def test_the_umask_without_proc_and_races_with_other_cleaners(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cam_core import storage

    real = storage._umask()
    current = os.umask(0o022)
    os.umask(current)
    assert real == current

    def no_proc(self: Path, *args: object, **kwargs: object) -> str:
        raise OSError("no /proc here")

    monkeypatch.setattr(Path, "read_text", no_proc)
    assert storage._umask() == current
    assert os.umask(current) == current  # put back as it was
    monkeypatch.undo()
    # a temp file another cleaner removed first is neither an error nor counted
    for name in ("a", "b"):
        (tmp_path / f"{TEMP_PREFIX}{name}").write_bytes(b"x")
    real_unlink = Path.unlink

    def racing(self: Path, *args: object, **kwargs: object) -> None:
        real_unlink(self)
        if self.name.endswith("a"):
            raise FileNotFoundError(self)

    monkeypatch.setattr(Path, "unlink", racing)
    assert storage.clean_stale_temps(tmp_path) == 1
    monkeypatch.undo()

    def fail_and_vanish(handle: object) -> None:
        for leftover in tmp_path.glob(f"{TEMP_PREFIX}c.bin.*"):
            leftover.unlink()
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_temp(tmp_path / "c.bin", fail_and_vanish)
