"""Sharded analysis on torchrun (2 CPU processes, gloo) against a single-process run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cam_core.analysis.artifacts import read_artifacts
from cam_core.analysis.cams import ExplainedFiles
from cam_core.analysis.distributed import merge_shards, shard_rows
from cam_core.analysis.pipeline import AnalyzeConfig, analyze
from cam_core.data.sources import DataConfig
from cam_core.errors import DistributedError

REPO = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _torchrun(model_dir: Path, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
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


def _assert_same_rows_and_maps(sharded: object, one: object) -> None:
    """A sharded analysis holds the single-process rows, in order, and their maps."""
    pd.testing.assert_frame_equal(
        sharded.table[["path", "label", "pred"]],  # type: ignore[attr-defined]
        one.table[["path", "label", "pred"]],  # type: ignore[attr-defined]
    )
    for method in ("cam", "gradcam"):
        np.testing.assert_allclose(
            np.asarray(sharded.maps[method], np.float32),  # type: ignore[attr-defined]
            np.asarray(one.maps[method], np.float32),  # type: ignore[attr-defined]
            atol=2e-3,
        )


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
    _assert_same_rows_and_maps(sharded, one)
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


class _FakeGroup:
    """``torch.distributed`` for one rank of two, in this process: it records every call, and
    what the other rank would send is given by the test."""

    def __init__(self, rank: int, other_status: object = "ok", other_shard: object = None) -> None:
        self.rank, self.other_status, self.other_shard = rank, other_status, other_shard
        self.calls: list[tuple[str, object]] = []
        self.side_group = object()
        self.sent: object = None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import torch.distributed as dist

        def init(backend: str | None = None, **kwargs: object) -> None:
            self.calls.append(("init", (backend, kwargs.get("timeout"))))

        def new_group(**kwargs: object) -> object:
            self.calls.append(("new_group", kwargs.get("backend")))
            return self.side_group

        def all_gather(out: list[object], obj: object, group: object = None) -> None:
            self.calls.append(("all_gather", group))
            out[self.rank], out[1 - self.rank] = obj, self.other_status

        def gather(obj: object, out: list[object] | None, dst: int = 0, group: object = None):
            self.calls.append(("gather", (dst, group, out is not None)))
            self.sent = obj
            if out is not None:
                out[self.rank], out[1 - self.rank] = obj, self.other_shard

        monkeypatch.setattr(dist, "init_process_group", init)
        monkeypatch.setattr(dist, "new_group", new_group)
        monkeypatch.setattr(dist, "all_gather_object", all_gather)
        monkeypatch.setattr(dist, "gather_object", gather)
        monkeypatch.setattr(dist, "barrier", lambda *a, **k: self.calls.append(("barrier", None)))
        monkeypatch.setattr(
            dist, "destroy_process_group", lambda *a, **k: self.calls.append(("destroy", None))
        )

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def _as_rank(monkeypatch: pytest.MonkeyPatch, rank: int, local_rank: int | None = None) -> None:
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", "2")
    if local_rank is None:
        monkeypatch.delenv("LOCAL_RANK", raising=False)
    else:
        monkeypatch.setenv("LOCAL_RANK", str(local_rank))


def _recording_prepare(monkeypatch: pytest.MonkeyPatch, group: _FakeGroup) -> None:
    import cam_core.analysis.distributed as distributed

    real = distributed.prepare

    def prepare(*args: object, **kwargs: object) -> object:
        group.calls.append(("prepare", None))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(distributed, "prepare", prepare)


def test_two_ranks_in_process_take_turns_and_rank_0_writes_what_one_process_does(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rank 1 waits for rank 0 to prepare, computes its rows and writes nothing; rank 0
    prepares first, merges rank 1's shard with its own and writes the single-process result."""
    from cam_core.analysis.distributed import sharded_analyze

    cfg = AnalyzeConfig(
        methods=("cam", "gradcam"), quality=None, num_workers=0, batch_size=4, precision="fp32"
    )
    analyze(tiny_model_dir, tmp_path / "single", cfg=cfg)
    one = read_artifacts(tmp_path / "single")
    n = len(one.table)
    assert n % 2 == 1  # so the sampler pads rank 1's shard with a repeat of row 0

    second = _FakeGroup(rank=1)
    second.install(monkeypatch)
    _recording_prepare(monkeypatch, second)
    _as_rank(monkeypatch, 1)
    assert sharded_analyze(tiny_model_dir, tmp_path / "sharded", None, cfg) is None
    assert second.names() == ["init", "barrier", "prepare", "all_gather", "gather", "destroy"]
    assert second.calls[0][1] == ("gloo", second.calls[0][1][1])  # type: ignore[index]
    assert second.calls[4][1] == (0, None, False)  # sent to rank 0, over the default group
    assert not (tmp_path / "sharded").exists()  # only rank 0 writes
    rows, part = second.sent  # type: ignore[misc]
    assert rows == shard_rows(n, 2, 1) and rows[-1] == 0
    assert len(part.logits) == len(rows) and len(part.maps["gradcam"]) == len(rows)

    first = _FakeGroup(rank=0, other_shard=second.sent)
    first.install(monkeypatch)
    _recording_prepare(monkeypatch, first)
    _as_rank(monkeypatch, 0)
    manifest = sharded_analyze(tiny_model_dir, tmp_path / "sharded", None, cfg)
    assert manifest is not None
    assert first.names() == ["init", "prepare", "barrier", "all_gather", "gather", "destroy"]
    assert first.calls[4][1] == (0, None, True)
    sharded = read_artifacts(tmp_path / "sharded")
    _assert_same_rows_and_maps(sharded, one)


def test_the_other_rank_s_failure_fails_rank_0_and_keeps_the_old_artifacts(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cam_core.analysis.distributed import sharded_analyze

    out = tmp_path / "art"
    cfg = AnalyzeConfig(methods=("cam",), quality=None, num_workers=0)
    analyze(tiny_model_dir, out, cfg=cfg)
    before = (out / "manifest.json").read_bytes()
    group = _FakeGroup(rank=0, other_status="rank 1: disk full on rank 1")
    group.install(monkeypatch)
    _as_rank(monkeypatch, 0)
    with pytest.raises(DistributedError, match=r"rank 1: disk full on rank 1.*intact"):
        sharded_analyze(tiny_model_dir, out, None, cfg)
    assert group.names()[-1] == "destroy" and "gather" not in group.names()
    assert (out / "manifest.json").read_bytes() == before


@pytest.mark.parametrize(
    ("asked", "local_rank", "device", "backend"),
    [
        (None, 1, "cuda:1", "nccl"),
        ("cuda", None, "cuda:0", "nccl"),  # torchrun always sets LOCAL_RANK; 0 when it does not
        ("cpu", 1, "cpu", "gloo"),
    ],
)
def test_a_rank_on_a_gpu_machine_takes_its_local_gpu_and_sends_objects_over_gloo(
    asked: str | None,
    local_rank: int | None,
    device: str,
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With CUDA present, each rank computes on ``cuda:<LOCAL_RANK>`` (set as its current
    device), the process group is NCCL and Python objects travel over a gloo side group (NCCL
    cannot carry them); ``--device cpu`` keeps everything on the CPU and gloo."""
    import torch

    import cam_core.analysis.distributed as distributed

    chosen: list[int] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    computed: list[tuple[int, int, object, str | None]] = []
    data = DataConfig(source=str(tmp_path / "photos"))

    def compute(rank, world, model_dir, data_cfg, cfg):  # type: ignore[no-untyped-def]
        computed.append((rank, world, data_cfg, cfg.device))
        return object(), ([1], "rank 1's shard")

    monkeypatch.setattr(distributed, "_compute", compute)
    group = _FakeGroup(rank=1)
    group.install(monkeypatch)
    _as_rank(monkeypatch, 1, local_rank)
    outcome = distributed.sharded_analyze(
        tmp_path / "model", tmp_path / "out", data, AnalyzeConfig(device=asked)
    )
    assert outcome is None  # not rank 0
    assert computed == [(1, 2, data, device)]
    assert chosen == ([] if device == "cpu" else [int(device[-1])])
    init = dict(group.calls)["init"]
    assert init[0] == backend  # type: ignore[index]
    # hours, not torch's 30-minute default: the other ranks wait while rank 0 fetches the data
    assert init[1] >= timedelta(hours=1)  # type: ignore[index]
    side = group.side_group if backend == "nccl" else None
    assert ("new_group", "gloo") in group.calls if side else "new_group" not in group.names()
    assert ("all_gather", side) in group.calls
    assert ("gather", (0, side, False)) in group.calls  # the shard goes to rank 0 the same way
    assert group.sent == ([1], "rank 1's shard")


def test_a_rank_analyses_the_data_it_is_given(
    tiny_model_dir: Path, tiny_dataset: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--data FOLDER --valid-pct 0.5``: each rank prepares the data it is given (half of the
    24 images), not the model's own 20% validation split."""
    from cam_core.analysis.distributed import _compute
    from cam_core.analysis.pipeline import folder_data_config

    _FakeGroup(rank=1).install(monkeypatch)
    data = folder_data_config(tiny_model_dir, str(tiny_dataset.root), valid_pct=0.5)  # type: ignore[attr-defined]
    cfg = AnalyzeConfig(methods=("cam",), quality=None, num_workers=0, precision="fp32")
    job, shard = _compute(1, 2, tiny_model_dir, data, cfg)
    assert job is not None and len(job.paths) == len(tiny_dataset.samples) // 2  # type: ignore[attr-defined]
    rows, _ = shard  # type: ignore[misc]
    assert rows == shard_rows(len(job.paths), 2, 1)
