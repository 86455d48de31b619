"""Crash safety: atomic writes, SIGKILL mid-write, stale temp files, one writer per folder."""

from __future__ import annotations

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
