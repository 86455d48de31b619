"""Demo quality over training seeds: accuracy and map quality of each run, and their ranges.

Run ``python benchmarks/quality.py --seeds 3`` (``--help`` for options). Each seed trains and
analyses the demo from scratch on the same generated data; the script prints one JSON object
(``runs`` and ``summary``: mean, min and max of every figure) with ``--json``, and writes
``benchmarks/QUALITY.md`` naming the machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from machine import describe

from cam_core.artifacts import read_manifest
from cam_core.demo import run_demo

SEEDS = (42, 3, 7, 11, 23, 31, 57, 64, 99, 123)
TASK = "species"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="how many seeds (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("QUALITY.md"))
    return parser.parse_args(argv)


def one_run(seed: int, folder: Path, cache: Path) -> dict[str, Any]:
    """Train and analyse the demo with ``seed``; the run's figures."""
    start = time.perf_counter()
    run_demo(folder / f"seed{seed}", console=False, cache_root=cache, seed=seed)
    seconds = time.perf_counter() - start
    manifest = read_manifest(folder / f"seed{seed}" / "artifacts")
    quality = {"cam": {"pointing_game": manifest.metrics.get("pointing_game", float("nan"))}}
    return {
        "task": TASK,
        "seed": seed,
        "accuracy": manifest.metrics["accuracy"],
        "seconds": seconds,
        "quality": quality,
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per task and method: mean, min and max of each figure over the runs."""
    summary: dict[str, Any] = {}
    for task in sorted({r["task"] for r in runs}):
        mine = [r for r in runs if r["task"] == task]
        entry: dict[str, Any] = {"accuracy": _spread([r["accuracy"] for r in mine])}
        for method in mine[0]["quality"]:
            entry[method] = {
                metric: _spread([r["quality"][method][metric] for r in mine])
                for metric in mine[0]["quality"][method]
            }
        summary[task] = entry
    return summary


def _spread(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values)}


def render_markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Demo quality over seeds",
        "",
        f"- date: {result['date']}",
        f"- machine: {result['machine']}",
        f"- command: `python benchmarks/quality.py --seeds {len(result['runs'])}`",
        "- each seed trains the demo preset from scratch on the same generated data",
        "",
        "| task | seed | accuracy | CAM pointing game | seconds |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for run in result["runs"]:
        lines.append(
            f"| {run['task']} | {run['seed']} | {run['accuracy']:.2%} | "
            f"{run['quality']['cam']['pointing_game']:.2%} | {run['seconds']:.0f} |"
        )
    lines += ["", "| task | figure | mean | min | max |", "| --- | --- | ---: | ---: | ---: |"]
    for task, entry in result["summary"].items():
        rows = [("accuracy", entry["accuracy"])] + [
            (f"{method} {metric}", spread)
            for method, metrics in entry.items()
            if method != "accuracy"
            for metric, spread in metrics.items()
        ]
        for name, spread in rows:
            lines.append(
                f"| {task} | {name} | {spread['mean']:.2%} | {spread['min']:.2%} | "
                f"{spread['max']:.2%} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not 1 <= args.seeds <= len(SEEDS):
        raise SystemExit(f"error: --seeds takes 1 to {len(SEEDS)}, got {args.seeds}")
    seeds = SEEDS[: args.seeds]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runs = [one_run(seed, folder, folder / "cache") for seed in seeds]
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe(),
        "runs": runs,
        "summary": summarise(runs),
    }
    args.out.write_text(render_markdown(result))
    print(json.dumps(result) if args.json else render_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
