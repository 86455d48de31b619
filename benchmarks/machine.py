"""One line naming the machine a benchmark ran on (CPU model, threads, GPU, versions)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

ISA_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
"""Environment variables that limit the instruction sets PyTorch, oneDNN and MKL use (e.g.
``avx2`` / ``AVX2`` to approximate a CPU without AVX-512)."""


def isa_limits() -> dict[str, str]:
    """The ISA-limiting variables that are set, by name."""
    return {name: os.environ[name] for name in ISA_VARIABLES if os.environ.get(name)}


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


def write_section(path: Path, name: str, text: str) -> None:
    """Put ``text`` into ``path`` between ``<!-- name -->`` markers, keeping other sections
    (``bench_cam.py`` and ``bench_dashboard.py`` share ``RESULTS.md``)."""
    begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    block = f"{begin}\n{text.rstrip()}\n{end}\n"
    old = path.read_text() if path.exists() else ""
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        new = (old.rstrip() + "\n\n" if old.strip() else "") + block
    path.write_text(new)
