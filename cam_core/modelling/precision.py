"""Numeric precision of inference: fp32, or bf16 / fp16 autocast.

``auto`` picks bf16 autocast + channels_last on a CPU with native bf16 (AVX512-BF16 or AMX:
oneDNN runs bf16 convolutions there at about twice the fp32 speed), fp16 autocast +
channels_last on CUDA, and plain fp32 elsewhere. Only the forward pass that gives the logits
and exact CAM uses it; the gradient and score methods always run in fp32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["PRECISIONS", "autocast", "native_bf16", "resolve_precision"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def native_bf16() -> bool:
    """The CPU computes bf16 natively (oneDNN's own check: AVX512-BF16, AMX or similar)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(requested: str, device: torch.device) -> str:
    """The precision to run: ``fp32``, ``bf16`` or ``fp16``.

    Raises:
        ValueError: an unknown name, or fp16 on a CPU.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}")
    if requested == "auto":
        if device.type == "cuda":
            return "fp16"
        return "bf16" if native_bf16() else "fp32"
    if requested == "fp16" and device.type != "cuda":
        raise ValueError("fp16 autocast needs a CUDA device; use bf16 or fp32 on a CPU")
    return requested


@contextlib.contextmanager
def autocast(precision: str, device: torch.device) -> Iterator[None]:
    """Autocast for ``bf16``/``fp16``; nothing for ``fp32``."""
    if precision == "fp32":
        yield
        return
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    with torch.autocast(device.type, dtype=dtype):
        yield
