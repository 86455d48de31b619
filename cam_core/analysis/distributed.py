"""Sharded analysis under ``torchrun``: every rank explains a shard, rank 0 merges and writes.

``torchrun --nproc-per-node N -m cam_core analyze …`` (add ``--nnodes``/``--rdzv-endpoint`` for
several machines) starts N copies of the CLI; each sees ``RANK``/``WORLD_SIZE`` and lands here.
Ranks take rows as ``DistributedSampler`` deals them (rank r: rows r, r+N, …); the sampler pads
the last round by repeating the first rows so every rank has as many, and the merge drops the
repeats, so the table holds each image once, in the single-process order. Shards travel to
rank 0 over the process group (a gloo group, so no shared disk is needed), which alone takes
the artifact folder's lock, scores the maps and writes the artifacts. A rank that fails makes
every rank fail with the reason; nothing is written, so the previous artifacts stay intact.

This is the only module that imports ``torch.distributed``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import cast

import numpy as np
import torch

from cam_core.analysis.artifacts import Manifest
from cam_core.analysis.cams import ExplainedFiles
from cam_core.analysis.pipeline import AnalysisJob, AnalyzeConfig, explain_rows, finish, prepare
from cam_core.data.sources import DataConfig
from cam_core.errors import CamLensError, DistributedError
from cam_core.storage import folder_lock

__all__ = ["launched", "merge_shards", "shard_rows", "sharded_analyze"]

log = logging.getLogger(__name__)

Shard = tuple[list[int], ExplainedFiles]
"""Rows, and the logits, features and maps of those rows."""


def launched() -> bool:
    """This process is one of several started by ``torchrun``."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def shard_rows(n: int, world: int, rank: int) -> list[int]:
    """The rows ``DistributedSampler`` gives ``rank`` (no shuffling; padded by repetition)."""
    from torch.utils.data.distributed import DistributedSampler

    rows: list[int] = list(range(n))
    sampler: DistributedSampler[int] = DistributedSampler(
        rows,  # type: ignore[arg-type]  # any sized sequence works
        num_replicas=world,
        rank=rank,
        shuffle=False,
    )
    return list(sampler)


def merge_shards(shards: list[Shard], n: int) -> ExplainedFiles:
    """One result in single-process order from every rank's shard; padded repeats dropped.

    Raises:
        DistributedError: a row no rank computed.
    """
    first = shards[0][1]

    def empty(array: np.ndarray) -> np.ndarray:
        return np.zeros((n, *array.shape[1:]), dtype=array.dtype)

    logits, features = empty(first.logits), empty(first.features)
    signatures, properties = empty(first.signatures), empty(first.properties)
    maps = {name: empty(array) for name, array in first.maps.items()}
    classes = None if first.classes is None else empty(first.classes)
    seen = np.zeros(n, dtype=bool)
    seconds = dict.fromkeys(first.seconds, 0.0)
    for rows, part in shards:
        for position, row in enumerate(rows):
            if seen[row]:
                continue  # the sampler's padding: a repeat of a row another rank also has
            seen[row] = True
            logits[row] = part.logits[position]
            features[row] = part.features[position]
            signatures[row] = part.signatures[position]
            properties[row] = part.properties[position]
            for name in maps:
                maps[name][row] = part.maps[name][position]
            if classes is not None and part.classes is not None:
                classes[row] = part.classes[position]
        for name, value in part.seconds.items():
            seconds[name] = max(seconds.get(name, 0.0), value)  # ranks run side by side
    if not seen.all():
        raise DistributedError(f"{int((~seen).sum())} images were analysed by no rank")
    return ExplainedFiles(logits, features, signatures, properties, maps, seconds, classes)


def sharded_analyze(
    model_dir: Path, out: Path, data_cfg: DataConfig | None, cfg: AnalyzeConfig
) -> Manifest | None:
    """Run this rank's part of the analysis; rank 0 returns the manifest, the others None.

    Raises:
        DistributedError: any rank failed (every rank raises, with each failure's reason).
    """
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    on_gpu = torch.cuda.is_available() and cfg.device in (None, "cuda")
    if on_gpu:
        torch.cuda.set_device(local_rank)
    device = f"cuda:{local_rank}" if on_gpu else "cpu"
    dist.init_process_group("nccl" if on_gpu else "gloo", timeout=timedelta(hours=2))
    try:
        # NCCL cannot carry Python objects: they travel over a gloo side group on a GPU.
        objects = cast(
            "dist.ProcessGroup | None", dist.new_group(backend="gloo") if on_gpu else None
        )
        job, shard = _compute(rank, world, model_dir, data_cfg, replace(cfg, device=device))
        statuses: list[object] = [None] * world
        dist.all_gather_object(statuses, "ok" if job is not None else shard, group=objects)
        failures = [str(s) for s in statuses if s != "ok"]
        if failures:
            raise DistributedError(
                f"sharded analysis failed ({'; '.join(failures)}); nothing was written, the "
                "previous artifacts are intact"
            )
        gathered: list[object] | None = [None] * world if rank == 0 else None
        dist.gather_object(shard, gathered, dst=0, group=objects)
        if rank != 0:
            return None
        assert job is not None and gathered is not None
        merged = merge_shards([s for s in gathered if isinstance(s, tuple)], len(job.paths))
        log.info("merged %d shards: %d images", world, len(job.paths))
        with folder_lock(out, "analysis"):
            return finish(job, out, merged, cfg)
    finally:
        dist.destroy_process_group()


def _compute(
    rank: int, world: int, model_dir: Path, data_cfg: DataConfig | None, cfg: AnalyzeConfig
) -> tuple[AnalysisJob | None, Shard | str]:
    """This rank's shard, or (None, the reason it failed)."""
    import torch.distributed as dist

    try:
        if rank != 0:
            dist.barrier()  # rank 0 prepares first: it may generate or download the data once
        try:
            job = prepare(model_dir, data_cfg, cfg)
        finally:
            if rank == 0:
                dist.barrier()
        rows = shard_rows(len(job.paths), world, rank)
        return job, (rows, explain_rows(job, cfg, rows))
    except (CamLensError, ValueError, OSError, RuntimeError) as exc:
        log.error("rank %d failed: %s", rank, exc)
        return None, f"rank {rank}: {exc}"
