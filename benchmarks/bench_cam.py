"""Benchmark: our batched CAM path against plain inference, the tutorial's loop and Grad-CAM.

Run ``python benchmarks/bench_cam.py`` (``--help`` for options). Writes ``benchmarks/RESULTS.md``
and, with ``--json``, prints one JSON object with images/second per path and the ratios.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch
from machine import describe, write_section

from cam_core.analysis.cams import explain_batch, explain_files
from cam_core.analysis.predict import predict_images
from cam_core.data.demo_data import BREEDS, draw_sample
from cam_core.intake.images import decode_image, to_model_tensor
from cam_core.methods import DEFAULT_LAYER, METHODS, get_method
from cam_core.modelling.model_files import IMAGENET_MEAN, IMAGENET_STD, LoadedModel, ModelCard
from cam_core.modelling.models import CamNet, build_body
from cam_core.modelling.precision import native_bf16
from cam_core.present.overlay import encode_png, overlay

CLASSES = ("cat", "dog")
TARGETS = {
    "ours_vs_plain": "<= 1.10 (time per image, ours / plain inference)",
    "tutorial_vs_ours": ">= 10 (time per image, tutorial loop / ours)",
    "gradcam_vs_ours": ">= 3 (time, Grad-CAM for every class / ours)",
    "upload_latency_s": "< 1",
    "bf16_speedup_vs_plain_fp32": ">= 1.8 on a CPU with native bf16 (plain fp32 eager time / "
    "our bf16 analysis time)",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="validation images (default 256)")
    parser.add_argument("--size", type=int, default=224, help="input size (default 224)")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions (default 5)")
    parser.add_argument(
        "--tutorial-n",
        type=int,
        default=64,
        help="images timed for the one-at-a-time tutorial loop (default 64)",
    )
    parser.add_argument(
        "--method-n", type=int, default=64, help="images timed per explanation method (64)"
    )
    parser.add_argument(
        "--costly-n", type=int, default=2, help="images timed for Score-CAM (default 2)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    return parser.parse_args(argv)


def interleaved_medians(
    runs: dict[str, Callable[[], object]], reps: int, device: torch.device
) -> dict[str, float]:
    """Median wall times of several paths timed in turn (A, B, C, A, B, C, …), so slow drifts
    of the machine (clock, cache, other load) affect every path alike."""
    for run in runs.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(reps):
        for name, run in runs.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def median_seconds(run: Callable[[], object], reps: int, device: torch.device) -> float:
    """Median wall time of ``reps`` runs after one warm-up run."""
    return interleaved_medians({"run": run}, reps, device)["run"]


def make_images(folder: Path, n: int, size: int) -> list[Path]:
    rng = random.Random(0)
    paths = []
    for i in range(n):
        breed = BREEDS[i % len(BREEDS)]
        image, _ = draw_sample(breed, size, rng)
        path = folder / f"{breed.name}_{i:04d}.png"
        image.save(path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    net = CamNet(build_body("resnet34"), len(CLASSES)).to(device).eval()
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    card = ModelCard(arch="resnet34", n_features=512, classes=CLASSES, image_size=args.size)
    model = LoadedModel(card=card, net=net, device=device, folder=Path("."))
    results: dict[str, dict[str, float]] = {}

    with tempfile.TemporaryDirectory() as tmp:
        paths = make_images(Path(tmp), args.n, args.size)
        from PIL import Image

        batch = torch.stack(
            [
                to_model_tensor(
                    Image.open(p).convert("RGB"), args.size, IMAGENET_MEAN, IMAGENET_STD
                )
                for p in paths
            ]
        )
        chunks = list(torch.split(batch, args.batch))

        @torch.inference_mode()
        def plain() -> None:
            for chunk in chunks:
                x = chunk.to(device, non_blocking=True)
                if device.type == "cuda":
                    with torch.autocast("cuda", dtype=torch.float16):
                        net(x.contiguous(memory_format=torch.channels_last))
                else:
                    net(x)

        fast = "fp16" if device.type == "cuda" else "fp32"  # the default path, as before
        cam_only = (get_method("cam"),)

        def ours() -> None:
            for chunk in chunks:
                explain_batch(model, chunk, cam_only, precision=fast)

        # bf16 autocast + channels_last on a copy (the conversion to channels_last is in place).
        bf16_model = LoadedModel(card=card, net=copy.deepcopy(net), device=device, folder=Path("."))

        def ours_bf16() -> None:
            for chunk in chunks:
                explain_batch(bf16_model, chunk, cam_only, precision="bf16")

        @torch.inference_mode()
        def plain_fp32() -> None:
            for chunk in chunks:
                net(chunk.to(device, non_blocking=True))

        def ours_files() -> None:
            explain_files(model, paths, ("cam",), batch_size=args.batch)

        paths_timed = {"plain": plain, "ours": ours, "files": ours_files, "bf16": ours_bf16}
        if device.type == "cuda":
            paths_timed["plain_fp32"] = plain_fp32
        medians = interleaved_medians(paths_timed, args.reps, device)
        t_plain, t_ours, t_files = medians["plain"], medians["ours"], medians["files"]
        t_bf16 = medians["bf16"]
        t_plain_fp32 = medians.get("plain_fp32", t_plain)
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        results["1 plain inference model(x)"] = {"seconds": t_plain, "n": args.n}
        results["2 cam_core batched (logits + every map)"] = {"seconds": t_ours, "n": args.n}
        results["2b cam_core from files (decode + maps)"] = {"seconds": t_files, "n": args.n}
        results["2c cam_core batched, bf16 autocast + channels_last"] = {
            "seconds": t_bf16,
            "n": args.n,
        }
        with torch.inference_mode():
            a = explain_batch(model, chunks[0], cam_only, precision=fast).logits
            b = explain_batch(bf16_model, chunks[0], cam_only, precision="bf16").logits
        bf16_argmax_agreement = float((a.argmax(1) == b.argmax(1)).float().mean())

        tutorial_paths = paths[: args.tutorial_n]
        t_tutorial = median_seconds(
            lambda: tutorial_loop(net, tutorial_paths, args.size, device), args.reps, device
        )
        results["3 tutorial: test_dl + einsum per image"] = {
            "seconds": t_tutorial,
            "n": len(tutorial_paths),
        }

        t_gradcam = median_seconds(
            lambda: [METHODS["gradcam"].explain(net, c, DEFAULT_LAYER) for c in chunks],
            args.reps,
            device,
        )
        results["4 Grad-CAM (pytorch-grad-cam), every class"] = {"seconds": t_gradcam, "n": args.n}
        for name, method in METHODS.items():
            if method.applies_to(net) is not None:
                continue  # attention rollout: transformers only
            count = min(args.costly_n if method.costly else args.method_n, args.n)
            subset = batch[:count]
            seconds = median_seconds(
                lambda m=method, x=subset: m.explain(net, x, DEFAULT_LAYER),  # type: ignore[misc]
                1 if method.costly else args.reps,
                device,
            )
            results[f"method {name}: every class, batch of {count}"] = {
                "seconds": seconds,
                "n": count,
            }

        upload = io.BytesIO()
        Image.open(paths[0]).save(upload, format="JPEG", quality=90)
        data = upload.getvalue()

        def single_upload() -> None:
            img = decode_image(data, name="upload.jpg")
            (prediction,) = predict_images(model, [("upload.jpg", img)], "cam")
            for k in range(len(CLASSES)):
                encode_png(overlay(prediction.view, prediction.maps[k]))

        t_upload = median_seconds(single_upload, max(args.reps, 10), device)
        results["5 single upload → prediction + maps + overlay PNGs"] = {
            "seconds": t_upload,
            "n": 1,
        }

    for entry in results.values():
        entry["images_per_s"] = entry["n"] / entry["seconds"]
    ips = {name: entry["images_per_s"] for name, entry in results.items()}
    method_ips = {
        name.split(":")[0].removeprefix("method "): entry["images_per_s"]
        for name, entry in results.items()
        if name.startswith("method ")
    }
    ours_per_image = t_ours / args.n
    ratios = {
        "ours_vs_plain": t_ours / t_plain,
        "tutorial_vs_ours": t_tutorial / len(tutorial_paths) / ours_per_image,
        "gradcam_vs_ours": t_gradcam / t_ours,
        "bf16_speedup_vs_plain_fp32": t_plain_fp32 / t_bf16,
    }
    with torch.inference_mode():
        h = net.body(batch[:1].to(device)).shape[-1]
    summary = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe(),
        "device": str(device),
        "n": args.n,
        "size": args.size,
        "batch": args.batch,
        "reps": args.reps,
        "method_n": args.method_n,
        "costly_n": args.costly_n,
        "images_per_s": ips,
        "method_images_per_s": method_ips,
        "ratios": ratios,
        "upload_latency_s": t_upload,
        "native_bf16": native_bf16(),
        "bf16_argmax_agreement_first_batch": bf16_argmax_agreement,
        "targets": TARGETS,
        "cam_bytes_per_image": len(CLASSES) * h * h * 2,
        "peak_rss_mb_after_analysis": peak_rss_mb,
    }
    write_section(args.out, "cam", render_markdown(summary, results))
    if args.json:
        print(json.dumps(summary))
    else:
        print(render_markdown(summary, results))
    return 0


def tutorial_loop(net: CamNet, paths: list[Path], size: int, device: torch.device) -> None:
    """The tutorial's way: one image at a time through a fastai ``test_dl``, einsum per image."""
    dls = _tutorial_dls(paths, size, device)
    weight = net.weight
    with torch.no_grad():
        for path in paths:
            (x,) = dls.test_dl([path]).one_batch()
            features = net.body(x)
            torch.einsum("ocij,kc->okij", features, weight)


_DLS_CACHE: dict[tuple[int, str], object] = {}


def _tutorial_dls(paths: list[Path], size: int, device: torch.device):  # type: ignore[no-untyped-def]
    from fastai.vision.all import ImageDataLoaders, Normalize, Resize, imagenet_stats

    key = (size, str(device))
    if key not in _DLS_CACHE:
        _DLS_CACHE[key] = ImageDataLoaders.from_name_func(
            str(paths[0].parent),
            paths,
            valid_pct=0.2,
            seed=42,
            label_func=lambda name: "cat" if str(name).split("/")[-1][0].isupper() else "dog",
            item_tfms=Resize(size),
            batch_tfms=Normalize.from_stats(*imagenet_stats),
            bs=1,
            num_workers=0,
            device=device,
        )
    return _DLS_CACHE[key]


def render_markdown(summary: dict[str, object], results: dict[str, dict[str, float]]) -> str:
    lines = [
        "# CAM benchmark results",
        "",
        f"- date: {summary['date']}",
        f"- machine: {summary['machine']}",
        f"- device: {summary['device']}; {summary['n']} images at {summary['size']} px, "
        f"batch {summary['batch']}, median of {summary['reps']} runs after a warm-up",
        f"- command: `python benchmarks/bench_cam.py --n {summary['n']} --size {summary['size']} "
        f"--batch {summary['batch']} --device {summary['device']} --reps {summary['reps']} "
        f"--method-n {summary['method_n']} --costly-n {summary['costly_n']}`",
        "",
        "| path | images timed | median s | images/s |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, entry in results.items():
        lines.append(
            f"| {name} | {int(entry['n'])} | {entry['seconds']:.3f} | {entry['images_per_s']:.1f} |"
        )
    lines += ["", "| ratio | value | target |", "| --- | ---: | --- |"]
    for name, value in summary["ratios"].items():  # type: ignore[union-attr]
        lines.append(f"| {name} | {value:.2f} | {TARGETS[name]} |")
    lines += [
        "",
        f"- single upload latency (decode + predict + every map + overlay PNGs): "
        f"{summary['upload_latency_s']:.3f} s (target {TARGETS['upload_latency_s']} s)",
        f"- CAM storage: {summary['cam_bytes_per_image']} bytes per image (float16)",
        f"- native bf16 on this CPU: {summary['native_bf16']}; bf16 vs default path, same "
        f"predicted class on the first batch: {summary['bf16_argmax_agreement_first_batch']:.1%}",
        f"- peak RSS after the analysis paths: {summary['peak_rss_mb_after_analysis']:.0f} MB",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
