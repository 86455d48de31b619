"""Benchmark: what a default analysis of a real-size imported model costs, stage by stage.

An imported ResNet50 (random weights) with 37 classes at 224 px, analysed with the defaults
(every method that applies but Score-CAM, the class budget, the evidence) on generated
images, against plain fp32 inference of the same images measured in the same run.
Run ``python benchmarks/bench_analysis.py`` (``--help`` for options); writes a section of
``benchmarks/RESULTS.md`` and, with ``--json``, prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
from machine import describe, isa_limits, write_section

from cam_core.analysis.cams import load_images
from cam_core.analysis.pipeline import AnalyzeConfig, analyze, folder_data_config
from cam_core.data.demo_data import BREEDS, draw_sample
from cam_core.modelling.importing import ImportConfig, import_model
from cam_core.modelling.model_files import load_model
from cam_core.modelling.precision import native_bf16, resolve_precision

TARGET = "<= 25 (default analysis time / plain fp32 inference time of the same images)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="images (default 64)")
    parser.add_argument("--classes", type=int, default=37, help="classes (default 37)")
    parser.add_argument("--size", type=int, default=224, help="input size (default 224)")
    parser.add_argument("--arch", default="resnet50", help="torchvision model (default resnet50)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--reps", type=int, default=3, help="plain-inference repetitions (3)")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "RESULTS.md", help="report file"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser.parse_args(argv)


def _images(folder: Path, n: int, classes: int, size: int) -> None:
    """``n`` generated cartoons in ``classes`` class folders (round robin)."""
    rng = random.Random(0)
    for i in range(n):
        label = f"class_{i % classes:02d}"
        (folder / label).mkdir(parents=True, exist_ok=True)
        image, _ = draw_sample(BREEDS[i % len(BREEDS)], size, rng)
        image.save(folder / label / f"img_{i:03d}.png")


def _model(folder: Path, arch: str, classes: int, size: int) -> Path:
    from safetensors.torch import save_file
    from torchvision import models

    torch.manual_seed(0)
    net = models.get_model(arch, weights=None, num_classes=classes)
    weights = folder / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(weights))
    names = tuple(f"class_{k:02d}" for k in range(classes))
    import_model(ImportConfig(arch, weights, names, image_size=size), folder / "model")
    return folder / "model"


def _plain_seconds(model_dir: Path, paths: list[Path], device: str, reps: int) -> float:
    """Median wall time of plain fp32 inference of the decoded images (no maps, no decoding)."""
    model = load_model(model_dir, device)
    batches = [b.to(model.device) for b in load_images(model, paths, 64, 0)]
    times = []
    with torch.inference_mode():
        for batch in batches[:1]:
            model.net(batch)  # warm-up
        for _ in range(reps):
            start = time.perf_counter()
            for batch in batches:
                model.net(batch)
            if model.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "data"
        _images(data, args.n, args.classes, args.size)
        model_dir = _model(root, args.arch, args.classes, args.size)
        paths = sorted(data.rglob("*.png"))
        plain_before = _plain_seconds(model_dir, paths, args.device, args.reps)
        start = time.perf_counter()
        manifest = analyze(
            model_dir,
            root / "artifacts",
            folder_data_config(model_dir, str(data)),
            AnalyzeConfig(device=args.device),
        )
        total = time.perf_counter() - start
        plain_after = _plain_seconds(model_dir, paths, args.device, args.reps)
    plain = (plain_before + plain_after) / 2
    stages = {f"maps: {record.title}": record.seconds for record in manifest.methods.values()}
    stages.update({k: v for k, v in manifest.timings.items() if k != "maps"})
    return {
        "machine": describe(),
        "isa": isa_limits(),
        "native_bf16": native_bf16(),
        "precision": resolve_precision("auto", torch.device(args.device)),
        "images": args.n,
        "classes": args.classes,
        "size": args.size,
        "arch": args.arch,
        "methods": list(manifest.methods),
        "classes_per_image": AnalyzeConfig().classes_per_image,
        "plain_inference_s": round(plain, 3),
        "analysis_s": round(total, 2),
        "ratio": round(total / plain, 1),
        "stages_s": {name: round(seconds, 2) for name, seconds in stages.items()},
        "target": TARGET,
    }


def report(result: dict[str, object]) -> str:
    isa = result["isa"]
    assert isinstance(isa, dict)
    limited = ", ".join(f"{k}={v}" for k, v in isa.items()) or "none (the CPU's own ISA)"
    stages = result["stages_s"]
    assert isinstance(stages, dict)
    lines = [
        f"## Default analysis of an imported {result['arch']} ({result['classes']} classes, "
        f"{result['size']} px, {result['images']} images)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {result['machine']}; ISA limits: {limited}; "
        f"native bf16: {result['native_bf16']}, analysis precision: {result['precision']}. "
        f"Methods: {', '.join(result['methods'])} (class budget "  # type: ignore[arg-type]
        f"{result['classes_per_image']} per image). Target {TARGET}.",
        "",
        "| stage | seconds |",
        "|---|---|",
        *(f"| {name} | {seconds:.2f} |" for name, seconds in stages.items()),
        f"| **whole analysis** | **{result['analysis_s']}** |",
        f"| plain fp32 inference of the same images | {result['plain_inference_s']} |",
        f"| **ratio** | **{result['ratio']}x** |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    result = run(args)
    isa = result["isa"]
    section = "bench_analysis_limited_isa" if isa else "bench_analysis"
    write_section(args.out, section, report(result))
    if args.json:
        print(json.dumps(result))
    else:
        print(report(result))


if __name__ == "__main__":
    main()
