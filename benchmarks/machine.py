"""One line naming the machine a benchmark ran on (CPU model, threads, GPU, versions)."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


def describe() -> str:
    """CPU model (from /proc/cpuinfo where there is one), torch threads, GPU, Python, torch."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return (
        f"{cpu}, {torch.get_num_threads()} torch threads{gpu}; Python "
        f"{platform.python_version()}, torch {torch.__version__}"
    )
