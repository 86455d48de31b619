"""Sharded analysis on torchrun (2 CPU processes, gloo) against a single-process run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cam_core.analysis.artifacts import read_artifacts
from cam_core.analysis.cams import ExplainedFiles
from cam_core.analysis.distributed import merge_shards, shard_rows
from cam_core.analysis.pipeline import AnalyzeConfig, analyze
from cam_core.errors import DistributedError

REPO = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _torchrun(
    model_dir: Path, out: Path, env_path: str | None = None
) -> subprocess.CompletedProcess[str]:

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if env_path is not None:
        env["PYTHONPATH"] = env_path
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            str(_port()),
            "-m",
            "cam_core",
            "analyze",
            "--model",
            str(model_dir),
            "--out",
            str(out),
            "--methods",
            "cam,gradcam",
            "--no-quality",
            "--workers",
            "0",
            "--bs",
            "4",
            "--precision",
            "fp32",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_sampler_pads_and_the_merge_drops_the_repeats() -> None:
    shards = [shard_rows(5, 2, rank) for rank in range(2)]
    assert shards == [[0, 2, 4], [1, 3, 0]]  # rank 1 gets row 0 again as padding
    parts = []
    for rows in shards:
        logits = np.array([[float(r), -float(r)] for r in rows], dtype=np.float32)
        features = np.array([[r, r + 10, r + 20] for r in rows], dtype=np.float16)
        maps = {"cam": np.stack([np.full((2, 1, 1), r, np.float16) for r in rows])}
        signatures = np.array([[[r]] for r in rows], dtype=np.float16)
        properties = np.array([[r, 0, 0, 2 * r] for r in rows], dtype=np.float32)
        parts.append(
            (rows, ExplainedFiles(logits, features, signatures, properties, maps, {"cam": 1.0}))
        )
    merged = merge_shards(parts, 5)
    assert isinstance(merged, ExplainedFiles)
    np.testing.assert_array_equal(merged.logits[:, 0], np.arange(5))
    np.testing.assert_array_equal(merged.features[:, 1], np.arange(5) + 10)
    np.testing.assert_array_equal(merged.signatures[:, 0, 0], np.arange(5))
    np.testing.assert_array_equal(merged.properties[:, 3], 2 * np.arange(5))
    np.testing.assert_array_equal(merged.maps["cam"][:, 0, 0, 0], np.arange(5))
    with pytest.raises(DistributedError, match="2 images were analysed by no rank"):
        merge_shards(parts[:1], 5)


def test_two_processes_equal_one(tiny_model_dir: Path, tmp_path: Path) -> None:
    single = tmp_path / "single"
    analyze(
        tiny_model_dir,
        single,
        cfg=AnalyzeConfig(
            methods=("cam", "gradcam"), quality=None, num_workers=0, batch_size=4, precision="fp32"
        ),
    )
    sharded = tmp_path / "sharded"
    result = _torchrun(tiny_model_dir, sharded)
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = read_artifacts(single), read_artifacts(sharded)
    assert len(two.table) == len(one.table)  # each image exactly once
    pd.testing.assert_series_equal(two.table["path"], one.table["path"])
    pd.testing.assert_frame_equal(
        two.table[["label", "pred", "correct"]], one.table[["label", "pred", "correct"]]
    )
    np.testing.assert_allclose(two.table["logit_cat"], one.table["logit_cat"], atol=1e-5)
    for method in ("cam", "gradcam"):
        np.testing.assert_allclose(
            np.asarray(two.maps[method], np.float32),
            np.asarray(one.maps[method], np.float32),
            atol=2e-3,
        )
    # The features (and what is computed from them) are the same as one process's.
    features = [np.asarray(a.array("features.npy"), np.float32) for a in (one, two)]
    assert features[0].shape == (len(one.table), one.manifest.features["dim"])
    np.testing.assert_allclose(features[1], features[0], atol=2e-3)
    np.testing.assert_allclose(two.table["familiarity"], one.table["familiarity"], atol=1e-3)


def test_a_failing_rank_fails_the_run_and_keeps_the_old_artifacts(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "art"
    analyze(tiny_model_dir, out, cfg=AnalyzeConfig(methods=("cam",), quality=None, num_workers=0))
    before = (out / "manifest.json").read_bytes()
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    # Loaded by every rank at start-up: rank 1's explanation step raises.
    (hooks / "sitecustomize.py").write_text(
        "import os\n"
        "if os.environ.get('RANK') == '1':\n"
        "    import cam_core.analysis.pipeline as p\n"
        "    def broken(*args, **kwargs):\n"
        "        raise OSError('disk full on rank 1')\n"
        "    p.explain_rows = broken\n"
    )
    result = _torchrun(tiny_model_dir, out, env_path=str(hooks))
    assert result.returncode != 0
    assert "rank 1: disk full on rank 1" in result.stderr
    assert "previous artifacts are intact" in result.stderr
    assert (out / "manifest.json").read_bytes() == before
    assert read_artifacts(out).manifest.methods.keys() == {"cam"}


def test_the_merge_keeps_each_row_s_first_copy_its_classes_and_the_slowest_rank_s_time() -> None:
    world = 3
    shards = [shard_rows(7, world, rank) for rank in range(world)]
    assert shards == [[0, 3, 6], [1, 4, 0], [2, 5, 1]]
    parts = []
    for rank, rows in enumerate(shards):
        # the padded repeats carry a wrong value: the merge must keep the first copy
        value = [r if (rank, i) not in {(1, 2), (2, 2)} else -99 for i, r in enumerate(rows)]
        parts.append(
            (
                rows,
                ExplainedFiles(
                    np.array([[v, 0.0] for v in value], np.float32),
                    np.array([[v] for v in value], np.float16),
                    np.array([[[v]] for v in value], np.float16),
                    np.array([[v, 0, 0, 0] for v in value], np.float32),
                    {"gradcam": np.stack([np.full((2, 1, 1), v, np.float16) for v in value])},
                    {"maps": 0.25 + rank / 10, "forward": 0.5 - rank / 10},
                    np.array([[v, v + 1] for v in value], np.int64),
                ),
            )
        )
    merged = merge_shards(parts, 7)
    np.testing.assert_array_equal(merged.logits[:, 0], np.arange(7))
    np.testing.assert_array_equal(merged.features[:, 0], np.arange(7))
    np.testing.assert_array_equal(merged.maps["gradcam"][:, 1, 0, 0], np.arange(7))
    assert merged.classes is not None
    np.testing.assert_array_equal(merged.classes, np.stack([np.arange(7), np.arange(1, 8)], 1))
    assert merged.seconds == {"maps": 0.45, "forward": 0.5}
    assert merged.logits.dtype == np.float32 and merged.features.dtype == np.float16
    assert merged.maps["gradcam"].dtype == np.float16 and merged.classes.dtype == np.int64


def test_launched_reads_the_world_size(monkeypatch: pytest.MonkeyPatch) -> None:
    from cam_core.analysis.distributed import launched

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not launched()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not launched()
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launched()


def _one_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as the only rank of a gloo group (what torchrun sets)."""
    for key, value in {
        "RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_port()),
    }.items():
        monkeypatch.setenv(key, value)


def test_one_rank_in_process_writes_what_a_single_process_does(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cam_core.analysis.distributed import sharded_analyze

    cfg = AnalyzeConfig(
        methods=("cam", "gradcam"), quality=None, num_workers=0, batch_size=4, precision="fp32"
    )
    analyze(tiny_model_dir, tmp_path / "single", cfg=cfg)
    _one_rank(monkeypatch)
    manifest = sharded_analyze(tiny_model_dir, tmp_path / "sharded", None, cfg)
    assert manifest is not None and manifest.method_names == ("cam", "gradcam")
    one, sharded = read_artifacts(tmp_path / "single"), read_artifacts(tmp_path / "sharded")
    pd.testing.assert_frame_equal(
        sharded.table[["path", "label", "pred"]], one.table[["path", "label", "pred"]]
    )
    for method in ("cam", "gradcam"):
        np.testing.assert_allclose(
            np.asarray(sharded.maps[method], np.float32),
            np.asarray(one.maps[method], np.float32),
            atol=2e-3,
        )
    assert sharded.map_classes.keys() == one.map_classes.keys()
    assert sharded.manifest.timings.keys() == one.manifest.timings.keys()


def test_a_failing_rank_in_process_raises_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cam_core.analysis.distributed import sharded_analyze

    _one_rank(monkeypatch)
    cfg = AnalyzeConfig(methods=("cam",), quality=None, num_workers=0)
    with pytest.raises(DistributedError, match=r"rank 0: .*nothing was written"):
        sharded_analyze(tmp_path / "no-model", tmp_path / "out", None, cfg)
    assert not (tmp_path / "out" / "manifest.json").exists()
