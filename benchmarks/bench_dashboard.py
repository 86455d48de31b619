"""Dashboard speed at scale: a synthetic analysis of many images, every page timed cold and warm.

Builds an artifact folder (default 100,000 images, 37 classes, 16×16 maps, two methods) with
random logits and maps, then runs each dashboard page in Streamlit's AppTest: "cold" is the
first page of a fresh app with empty caches (the analysis is read and its hashes checked),
"warm" the median of further runs of a page. The pages run in a fresh process, as in a
Streamlit server, whose resident memory is reported. Writes its section of
``benchmarks/RESULTS.md`` and, with ``--json``, prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from machine import describe, write_section
from PIL import Image

from cam_core.analysis.artifacts import (
    DUPLICATES_FILE,
    EMBEDDING_FILE,
    FEATURES_FILE,
    REFERENCE_FEATURES_FILE,
    maps_file,
    new_manifest,
    write_artifacts,
)
from cam_core.analysis.embedding import embed
from cam_core.analysis.findings import familiarity_columns
from cam_core.evaluation.familiarity import REFERENCE_TRAINING, FamiliarityIndex
from cam_core.methods import MethodRecord
from cam_core.modelling.model_files import ModelCard

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
PAGES = (
    "views/overview.py",
    "views/misclassified.py",
    "views/heatmaps.py",
    "views/gallery.py",
    "views/review.py",
    "views/breeds.py",
    "views/compare.py",
    "views/quality.py",
    "views/calibration.py",
    "views/embedding.py",
)
TARGETS = {
    "warm_s": "<= 1 per page",
    "first_load_s": "<= 5",
    "rss_mb": "<= 1536",
    "embedding_s": "<= 180",
    "upload_familiarity_ms": "<= 50",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="images (default 100000)")
    parser.add_argument("--classes", type=int, default=37, help="classes (default 37)")
    parser.add_argument("--side", type=int, default=16, help="map side (default 16)")
    parser.add_argument("--methods", default="cam,gradcam", help="default: cam,gradcam")
    parser.add_argument("--reps", type=int, default=3, help="warm runs per page (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    parser.add_argument(
        "--time-pages",
        type=Path,
        default=None,
        help="(internal) time the pages of this artifact folder and print JSON",
    )
    return parser.parse_args(argv)


def rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


Files = dict[str, np.ndarray | pd.DataFrame]


def whole_dataset(
    labels: np.ndarray, logits: np.ndarray, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], Files, dict[str, Any], dict[str, float]]:
    """Synthetic features (a cluster per class), scored and mapped as an analysis would:
    the table's columns, the files and manifest blocks, and the seconds of the map and of one
    upload's familiarity against a 5,000-image reference."""
    n, n_classes = logits.shape
    centres = rng.standard_normal((n_classes, 512)).astype(np.float32)
    features = np.abs(centres[labels] + rng.standard_normal((n, 512), dtype=np.float32))
    reference = np.abs(
        centres[np.arange(5000) % n_classes] + rng.standard_normal((5000, 512), dtype=np.float32)
    )
    features, reference = features.astype(np.float16), reference.astype(np.float16)
    columns, record = familiarity_columns(features, logits, reference, REFERENCE_TRAINING)
    columns["near_duplicate"] = np.zeros(n, dtype=bool)
    columns["leaked"] = np.zeros(n, dtype=bool)
    index = FamiliarityIndex(reference, record.k, record.scale)  # as predict rebuilds it
    upload = features[:1].astype(np.float32)
    index.score(upload)
    start = time.perf_counter()
    for _ in range(20):
        index.score(upload)
    upload_ms = (time.perf_counter() - start) / 20 * 1000
    start = time.perf_counter()
    embedding = embed(features)
    embedding_s = time.perf_counter() - start
    files: Files = {
        FEATURES_FILE: features,
        REFERENCE_FEATURES_FILE: reference,
        EMBEDDING_FILE: embedding.coords,
        DUPLICATES_FILE: pd.DataFrame(
            {"row": [0], "other": [1], "kind": ["validation"], "distance": [0.001]}
        ),
    }
    blocks: dict[str, Any] = {
        "features": {"layer": "body", "dim": 512},
        "familiarity": record,
        "embedding": embedding.info,
        "duplicates": {"validation_pairs": 1, "leaked_images": 0},
    }
    seconds = {"embedding_s": embedding_s, "upload_familiarity_ms": upload_ms}
    return columns, files, blocks, seconds


def build(
    root: Path, n: int, n_classes: int, side: int, methods: list[str]
) -> tuple[Path, dict[str, float]]:
    """A synthetic artifact folder under ``root`` (images are links to 64 small pictures), and
    the seconds its map and an upload's familiarity took."""
    rng = np.random.default_rng(0)
    pictures = root / "pictures"
    pictures.mkdir()
    for i in range(64):
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        Image.new("RGB", (64, 64), colour).save(pictures / f"p{i}.png")
    images = root / "images"
    images.mkdir()
    classes = tuple(f"breed_{k:02d}" for k in range(n_classes))
    paths = []
    for i in range(n):
        link = images / f"{classes[i % n_classes]}_{i:06d}.png"
        link.symlink_to(pictures / f"p{i % 64}.png")
        paths.append(str(link))
    logits = rng.normal(0, 2, (n, n_classes)).astype(np.float32)
    labels = np.arange(n) % n_classes
    logits[np.arange(n), labels] += rng.normal(3, 1.5, n).astype(np.float32)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    pred = probs.argmax(1)
    table = pd.DataFrame(
        {
            "path": paths,
            "label": [classes[k] for k in labels],
            "pred": [classes[k] for k in pred],
            "correct": pred == labels,
            "confidence": probs.max(1),
            "loss": -np.log(probs[np.arange(n), labels]),
            "breed": [classes[k] for k in labels],
        }
    )
    for k, name in enumerate(classes):
        table[f"logit_{name}"] = logits[:, k]
        table[f"prob_{name}"] = probs[:, k]
    columns, files, blocks, seconds = whole_dataset(labels, logits, rng)
    for column, values in columns.items():
        table[column] = values
    maps = {}
    for method in methods:
        array = np.empty((n, n_classes, side, side), np.float16)
        for start in range(0, n, 5000):
            stop = min(n, start + 5000)
            array[start:stop] = rng.standard_normal(
                (stop - start, n_classes, side, side), dtype=np.float32
            )
        maps[method] = array
    card = ModelCard(arch="resnet34", n_features=512, classes=classes, image_size=64)
    out = root / "artifacts"
    records = {
        m: MethodRecord(
            title=m,
            layer="body",
            additive=m == "cam",
            normalised=m != "cam",
            library="synthetic",
            shape=tuple(maps[m].shape),
            file=maps_file(m),
        )
        for m in methods
    }
    manifest = new_manifest(
        card,
        root / "model",
        n,
        records,
        {"accuracy": float(table["correct"].mean())},
        {"source": "synthetic", "task": "breed"},
        **blocks,
    )
    write_artifacts(out, table, maps, manifest, files)
    return out, seconds


def time_pages(folder: Path, reps: int) -> dict[str, dict[str, float]]:
    """Cold (first page, empty caches) and warm (median of ``reps`` runs) seconds per page."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["CAM_LENS_HOME"] = str(folder.parent)
    os.environ["CAM_LENS_ROOTS"] = str(folder.parent)  # the server shares this folder only
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=600)
    start = time.perf_counter()
    at.run()
    at.selectbox(key="shared_choice").set_value(str(folder)).run()
    first = time.perf_counter() - start
    results: dict[str, dict[str, float]] = {}
    for page in PAGES:
        start = time.perf_counter()
        at.switch_page(page)
        at.run()
        cold = time.perf_counter() - start
        if at.exception:
            raise RuntimeError(f"{page}: {at.exception[0].value}")
        warm = []
        for _ in range(reps):
            start = time.perf_counter()
            at.run()
            warm.append(time.perf_counter() - start)
        results[page] = {"first_visit_s": cold, "warm_s": statistics.median(warm)}
    results["(first load of the app)"] = {"first_visit_s": first, "warm_s": float("nan")}
    return results


def render(summary: dict[str, object], pages: dict[str, dict[str, float]]) -> str:
    lines = [
        "## Dashboard at scale (`benchmarks/bench_dashboard.py`)",
        "",
        f"- date: {summary['date']}",
        f"- machine: {summary['machine']}",
        f"- synthetic analysis: {summary['n']} images, {summary['classes']} classes, "
        f"{summary['side']}×{summary['side']} maps, methods {summary['methods']} "
        f"({summary['maps_gb']:.2f} GB of maps); built in {summary['build_s']:.0f} s",
        f"- first load (empty caches: table read, hashes checked): {summary['first_load_s']:.2f} s "
        f"(target {TARGETS['first_load_s']} s)",
        f"- resident memory after every page: {summary['rss_mb']:.0f} MB "
        f"(target {TARGETS['rss_mb']} MB); before the first page, with the libraries "
        f"imported: {summary['rss_mb_before_pages']:.0f} MB",
        f"- embedding map of the {summary['n']} images (analysis time, t-SNE on at most "
        f"20,000, the rest placed): {summary['embedding_s']:.0f} s (target "
        f"{TARGETS['embedding_s']} s); familiarity of one upload against a 5,000-image "
        f"reference: {summary['upload_familiarity_ms']:.1f} ms (target "
        f"{TARGETS['upload_familiarity_ms']} ms)",
        "",
        "| page | first visit s | warm s (median) |",
        "| --- | ---: | ---: |",
    ]
    for page, entry in pages.items():
        warm = "" if np.isnan(entry["warm_s"]) else f"{entry['warm_s']:.2f}"
        lines.append(f"| {page} | {entry['first_visit_s']:.2f} | {warm} |")
    lines.append("")
    return "\n".join(lines)


def measure(folder: Path, reps: int) -> dict[str, object]:
    """Page times and resident memory of a fresh process that only serves the dashboard (as
    a Streamlit server would: it never built the synthetic data)."""
    import streamlit.testing.v1  # noqa: F401  (imports counted in the baseline)

    import dashboard.resources  # noqa: F401

    baseline = rss_mb()
    pages = time_pages(folder, reps)
    return {"pages": pages, "rss_mb": rss_mb(), "rss_mb_before_pages": baseline}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.time_pages is not None:
        print(json.dumps(measure(args.time_pages, args.reps)))
        return 0
    methods = [m for m in args.methods.split(",") if m]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        folder, seconds = build(Path(tmp), args.n, args.classes, args.side, methods)
        build_s = time.perf_counter() - start
        child = subprocess.run(
            [sys.executable, __file__, "--time-pages", str(folder), "--reps", str(args.reps)],
            capture_output=True,
            text=True,
            check=True,
        )
        measured = json.loads(child.stdout.strip().splitlines()[-1])
        pages = measured["pages"]
        baseline = measured["rss_mb_before_pages"]
        warm = [e["warm_s"] for p, e in pages.items() if not p.startswith("(")]
        summary = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": describe(),
            "n": args.n,
            "classes": args.classes,
            "side": args.side,
            "methods": ",".join(methods),
            "maps_gb": args.n * args.classes * args.side**2 * 2 * len(methods) / 1e9,
            "build_s": build_s,
            "first_load_s": pages["(first load of the app)"]["first_visit_s"],
            "max_warm_s": max(warm),
            "rss_mb": measured["rss_mb"],
            "rss_mb_before_pages": baseline,
            **seconds,
            "pages": pages,
            "targets": TARGETS,
        }
    write_section(args.out, "dashboard", render(summary, pages))
    print(json.dumps(summary) if args.json else render(summary, pages))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
