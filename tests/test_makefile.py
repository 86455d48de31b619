"""The Makefile rebuilds the demo when its preset is newer than the run, and only then."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _make(home: Path, *args: str) -> str:
    """The output of ``make ARGS`` for a demo home of ``home``."""
    done = subprocess.run(
        ["make", *args, f"CAM_LENS_HOME={home}", "VENV=.venv"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def _planned(home: Path) -> list[str]:
    """The commands ``make demo`` would run (``make -n``), for a demo home of ``home``."""
    return [line for line in _make(home, "-n", "demo").splitlines() if "cam_core demo" in line]


def test_a_demo_older_than_its_preset_is_rebuilt(tmp_path: Path) -> None:
    newest_source = max(
        (REPO / "cam_core" / n).stat().st_mtime for n in ("analysis/demo.py", "data/demo_data.py")
    )
    manifests = [
        tmp_path / "demo" / task / "artifacts" / "manifest.json" for task in ("species", "breed")
    ]
    assert len(_planned(tmp_path)) == 2  # no demo yet: both tasks are built
    for manifest in manifests:
        manifest.parent.mkdir(parents=True)
        manifest.write_text("{}")
        os.utime(manifest, (newest_source + 60, newest_source + 60))
    assert _planned(tmp_path) == []
    os.utime(manifests[1], (newest_source - 60, newest_source - 60))
    planned = _planned(tmp_path)
    assert len(planned) == 1 and planned[0].endswith("demo --task breed")


def _stale(home: Path) -> list[str]:
    """The demo tasks ``make run`` asks the dashboard to build in the background."""
    return _make(home, "-s", "demo-stale").split()


def test_make_run_builds_only_missing_or_outdated_demo_tasks(tmp_path: Path) -> None:
    newest_source = max(
        (REPO / "cam_core" / n).stat().st_mtime for n in ("analysis/demo.py", "data/demo_data.py")
    )
    assert _stale(tmp_path) == ["species", "breed"]  # species first: its pages open first
    for task in ("species", "breed"):
        manifest = tmp_path / "demo" / task / "artifacts" / "manifest.json"
        manifest.parent.mkdir(parents=True)
        manifest.write_text("{}")
        os.utime(manifest, (newest_source + 60, newest_source + 60))
    assert _stale(tmp_path) == []
    old = tmp_path / "demo" / "species" / "artifacts" / "manifest.json"
    os.utime(old, (newest_source - 60, newest_source - 60))
    assert _stale(tmp_path) == ["species"]
    recipe = _make(tmp_path, "-n", "-s", "run", "PY=echo")
    assert "CAM_LENS_BUILD_DEMO=" in recipe and "streamlit run dashboard/app.py" in recipe
    assert "cam_core demo" not in recipe  # the dashboard no longer waits for the demo


def test_the_dashboard_listens_on_this_machine_only_unless_asked() -> None:
    """Streamlit, reading the repository's config, binds 127.0.0.1; ``HOST`` or
    ``STREAMLIT_SERVER_ADDRESS`` open it up."""
    import sys

    def address(env: dict[str, str]) -> str:
        shown = subprocess.run(
            [sys.executable, "-m", "streamlit", "config", "show"],
            cwd=REPO,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return next(
            line.split("=", 1)[1].strip().strip('"')
            for line in shown.splitlines()
            if line.startswith("address =")
        )

    assert address({}) == "127.0.0.1"
    assert address({"STREAMLIT_SERVER_ADDRESS": "0.0.0.0"}) == "0.0.0.0"
    rule = (REPO / "Makefile").read_text()
    assert "$(if $(HOST),--server.address $(HOST))" in rule  # only when HOST is given
