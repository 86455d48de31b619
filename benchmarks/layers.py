"""Which layer ``--layer auto`` picks on the demo, over training seeds and both tasks, and its
scores against the body's output.

Run ``python benchmarks/layers.py --seeds 3`` (``--help`` for options). Each seed trains the
demo from scratch for each task on the same generated data, then scores the candidate layers
on a seeded sample of the validation images exactly as ``analyze --layer auto`` does. Writes
``benchmarks/LAYERS.json`` and the section between ``<!-- layers -->`` markers of
``benchmarks/QUALITY.md`` (the rest of that file is left as it is).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from machine import describe, isa_limits

from cam_core.analysis.demo import demo_configs
from cam_core.analysis.pipeline import AnalyzeConfig, choose_job_layer, prepare
from cam_core.data.sources import TASKS, load_dataset
from cam_core.modelling.training import train_model

SEEDS = (42, 3, 7, 11, 23)
HERE = Path(__file__).resolve().parent
START, END = "<!-- layers -->", "<!-- /layers -->"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="how many seeds (default 3)")
    parser.add_argument(
        "--tasks", default=",".join(TASKS), help=f"comma-separated (default: {','.join(TASKS)})"
    )
    parser.add_argument("--n", type=int, default=64, help="images scored (default 64)")
    parser.add_argument("--json", type=Path, default=HERE / "LAYERS.json")
    parser.add_argument("--quality", type=Path, default=HERE / "QUALITY.md")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the section from --json"
    )
    return parser.parse_args(argv)


def one_run(task: str, seed: int, folder: Path, n: int) -> dict[str, Any]:
    """Train the demo of ``task`` with ``seed``; the layer choice on its validation images."""
    data_cfg, train_cfg = demo_configs(False, task)
    data_cfg = replace(data_cfg, cache_root=folder / "cache")
    dataset = load_dataset(data_cfg)
    run = folder / f"{task}-{seed}"
    start = time.perf_counter()
    train_model(dataset, replace(train_cfg, seed=seed), run / "model", console=False)
    trained = time.perf_counter() - start
    cfg = AnalyzeConfig(num_workers=0, precision="fp32", quality=None, shortcuts=None, seed=0)
    job = prepare(run / "model", replace(data_cfg, source=str(dataset.root)), cfg)
    choice = choose_job_layer(job, cfg, sample_n=n)
    return {
        **choice.to_json(),
        "sample_seed": choice.seed,
        "task": task,
        "seed": seed,
        "train_seconds": round(trained, 1),
    }


def render(result: dict[str, Any]) -> str:
    """The QUALITY.md section."""
    lines = [
        START,
        "## Which layer `--layer auto` picks (#22)",
        "",
        f"Measured {result['date']} on {result['machine']}"
        + (f" with {result['isa']}" if result["isa"] else "")
        + f"; {result['n_seeds']} training seeds per task, Grad-CAM maps of the true class on a "
        f"seeded sample of {result['n']} validation images, {result['steps']} deletion/insertion "
        "steps. Candidates: the body's output (`body`, 12×12 cells), the block before it "
        "(`body.5`, 12×12) and the last block at 24×24 (`body.3`). `faithful`: beats the random "
        "and the centred map on both curves; sanity: rank correlation after randomising the head "
        "and the last block below 0.5. Reproduce: `python benchmarks/layers.py --seeds "
        f"{result['n_seeds']}`.",
        "",
        "| task | seed | chosen | rule | chosen: del / ins / sanity | body: del / ins / sanity"
        " | faithful candidates |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        scores = {c["layer"]: c for c in run["candidates"]}
        chosen, body = scores.get(run["chosen"]), scores.get("body")
        rule = (
            "best faithful & sane"
            if run["reason"].startswith("the most faithful")
            else run["reason"].split(";")[0]
        )
        faithful = ", ".join(
            f"`{c['layer']}`" for c in run["candidates"] if c["faithful"] and c["sanity_passed"]
        )
        lines.append(
            f"| {run['task']} | {run['seed']} | `{run['chosen']}` | {rule} | "
            f"{_figures(chosen)} | {_figures(body)} | {faithful or 'none'} |"
        )
    picks: dict[str, dict[str, int]] = {}
    for run in result["runs"]:
        picks.setdefault(run["task"], {}).setdefault(run["chosen"], 0)
        picks[run["task"]][run["chosen"]] += 1
    seconds = [run["seconds"] for run in result["runs"]]
    lines += [
        "",
        f"Scoring the candidates took {min(seconds):.0f}–{max(seconds):.0f} s per run.",
        "",
        "Picks per task: "
        + "; ".join(
            f"{task}: " + ", ".join(f"`{layer}` {count}×" for layer, count in counts.items())
            for task, counts in picks.items()
        )
        + ".",
        END,
    ]
    return "\n".join(lines) + "\n"


def _figures(score: dict[str, Any] | None) -> str:
    if score is None:
        return "–"
    return (
        f"{score['deletion_auc']:.3f} / {score['insertion_auc']:.3f} / "
        f"{score['randomization_spearman']:+.2f}"
    )


def write_section(path: Path, section: str) -> None:
    """Replace the marked section of ``path`` (or append it)."""
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END) + "\n?", re.S)
    text = pattern.sub(section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.render:
        result = json.loads(args.json.read_text())
    else:
        if not 1 <= args.seeds <= len(SEEDS):
            raise SystemExit(f"error: --seeds takes 1 to {len(SEEDS)}, got {args.seeds}")
        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
        if not tasks or any(t not in TASKS for t in tasks):
            raise SystemExit(f"error: --tasks takes {', '.join(TASKS)}, got {args.tasks!r}")
        with tempfile.TemporaryDirectory() as tmp:
            runs = [
                one_run(task, seed, Path(tmp), args.n)
                for task in tasks
                for seed in SEEDS[: args.seeds]
            ]
        result = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": describe(),
            "isa": isa_limits(),
            "n_seeds": args.seeds,
            "n": args.n,
            "steps": runs[0]["steps"],
            "runs": runs,
        }
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    write_section(args.quality, render(result))
    print(render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
