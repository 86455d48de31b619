"""Demo quality over training seeds and both tasks: accuracy and map quality of each run, and
their ranges.

Run ``python benchmarks/quality.py --seeds 3`` (``--help`` for options). Each seed trains and
analyses the demo from scratch for each task on the same generated data; the script prints one
JSON object (``runs`` and ``summary``: mean, min and max of every figure per task and method)
with ``--json``, and writes ``benchmarks/QUALITY.md`` naming the machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from machine import describe, isa_limits
from PIL import Image, ImageFilter, ImageOps

from cam_core.analysis.artifacts import Manifest, read_artifacts, read_manifest
from cam_core.analysis.demo import run_demo
from cam_core.analysis.findings import FamiliarGround
from cam_core.analysis.predict import placed, predict_images
from cam_core.data.demo_data import BREEDS, draw_sample
from cam_core.data.photos import installed_photos
from cam_core.data.sources import TASKS
from cam_core.evaluation.shortcuts import Verdict
from cam_core.evaluation.suite import verdicts
from cam_core.methods import default_method
from cam_core.modelling.model_files import load_model

SEEDS = (42, 3, 7, 11, 23, 31, 57, 64, 99, 123)
TUNED_ON = (
    "the demo data on seed 42 (species); the demo CNN's receptive field and the CAM head's "
    "learning rate on seeds 42, 3 and 7 of both tasks (and a 900-image species set); seeds 11 "
    "and 23 were measured while choosing (every candidate kept met the targets on them); "
    "seeds 31 and 57 were first run for this table"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="how many seeds (default 3)")
    parser.add_argument(
        "--tasks", default=",".join(TASKS), help=f"comma-separated (default: {','.join(TASKS)})"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("QUALITY.md"))
    parser.add_argument(
        "--shortcut",
        action="store_true",
        help="also train the breed demo with the planted shortcut on every seed, and report "
        "whether the finder ranks it first (and false alarms on the plain runs)",
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="write --out from a saved --json output instead of training (same figures, date "
        "and machine)",
    )
    return parser.parse_args(argv)


def one_run(
    task: str, seed: int, folder: Path, cache: Path, shortcut: bool = False
) -> dict[str, Any]:
    """Train and analyse the demo for ``task`` with ``seed`` (and the planted shortcut); the
    run's figures."""
    out = folder / f"{task}{'-shortcut' if shortcut else ''}-seed{seed}"
    start = time.perf_counter()
    marks: list[float] = []

    def progress(message: str, fraction: float) -> None:
        if fraction >= 0.6 and not marks:  # run_demo's analysis takes 0.6..1.0
            marks.append(time.perf_counter())

    run_demo(
        out,
        console=False,
        cache_root=cache,
        seed=seed,
        task=task,
        shortcut=shortcut,
        progress=progress,
    )
    seconds = time.perf_counter() - start
    analysis_seconds = time.perf_counter() - marks[0] if marks else seconds
    manifest = read_manifest(out / "artifacts")
    familiar = familiar_ground_check(out, seed)
    judged = verdicts(manifest.quality)
    quality = {
        name: {
            **figures,
            **{k: float(v) for k, v in judged.get(name, {}).items() if v is not None},
        }
        for name, figures in manifest.quality.items()
    }
    return {
        "task": f"{task}+shortcut" if shortcut else task,
        "seed": seed,
        "shortcuts": shortcut_figures(manifest, analysis_seconds),
        "accuracy": manifest.metrics["accuracy"],
        "seconds": seconds,
        "stages": {
            "training": seconds - analysis_seconds,
            **{f"maps: {name}": record.seconds for name, record in manifest.methods.items()},
            **{k: v for k, v in manifest.timings.items() if k != "maps"},
        },
        "quality": quality,
        "familiarity": {
            **familiar,
            "validation_pairs": float(manifest.duplicates.get("validation_pairs", 0)),
            "leaked_images": float(manifest.duplicates.get("leaked_images", 0)),
        },
    }


def shortcut_figures(manifest: Manifest, analysis_seconds: float) -> dict[str, Any]:
    """What the shortcut search of one run found, against the planted mark where there is one."""
    search = manifest.shortcuts
    if search is None or not search.findings:
        return {"n_candidates": 0, "n_shortcuts": 0}
    top = search.findings[0]
    planted = manifest.data.get("shortcut")
    found = False
    if isinstance(planted, dict) and top.verdict is Verdict.SHORTCUT:
        box = planted["box"]
        across = max(0.0, min(top.box[2], box[2]) - max(top.box[0], box[0]))
        down = max(0.0, min(top.box[3], box[3]) - max(top.box[1], box[1]))
        covered = across * down / ((box[2] - box[0]) * (box[3] - box[1]))
        found = top.class_name == planted["breed"] and covered > 0.9
    return {
        "n_candidates": len(search.findings),
        "n_shortcuts": len(search.shortcuts),
        "top_class": top.class_name,
        "top_verdict": top.verdict.value,
        "planted_top": found,
        "transplant_flip": top.transplant.effect if top.transplant else None,
        "transplant_control": top.transplant.control if top.transplant else None,
        "removal_drop": top.removal.effect if top.removal else None,
        "accuracy_drop": top.removal.accuracy_drop if top.removal else None,
        "log_odds_drop": top.removal.log_odds_drop if top.removal else None,
        "log_odds_control": top.removal.log_odds_control if top.removal else None,
        "search_seconds": search.seconds,
        "analysis_seconds": analysis_seconds,
    }


def familiar_ground_check(run: Path, seed: int, n_new: int = 400) -> dict[str, float]:
    """Shares flagged unfamiliar: installed real photographs, new demo images drawn like the
    data (``n_new``, a seed of their own), and new demo images blurred, inverted and rotated."""
    model = load_model(run / "model", "cpu")
    art = read_artifacts(run / "artifacts")
    ground = FamiliarGround(art)
    method = default_method(model.net)
    size = model.card.image_size

    def flagged(images: list[Image.Image]) -> float:
        named = [(str(i), image) for i, image in enumerate(images)]
        found = placed(predict_images(model, named, method, 64, precision="fp32"), ground)
        return statistics.fmean(
            float(p.placement is not None and p.placement.unfamiliar) for p in found
        )

    rng = random.Random(10_000 + seed)
    new = [draw_sample(BREEDS[i % len(BREEDS)], size, rng)[0] for i in range(n_new)]
    some = new[: n_new // 2]
    return {
        "valid_flagged": float(art.table["unfamiliar"].mean()),
        "photos_flagged": flagged([image for _, image in installed_photos()]),
        "new_flagged": flagged(new),
        "blur_flagged": flagged([im.filter(ImageFilter.GaussianBlur(4)) for im in some]),
        "invert_flagged": flagged([ImageOps.invert(im) for im in some]),
        "rot90_flagged": flagged([im.rotate(90) for im in some]),
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
                if metric != "randomization_spearman_head"
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
        f"- command: `python benchmarks/quality.py --seeds {result['n_seeds']}"
        f"{' --shortcut' if result.get('shortcut') else ''}`",
        "- each seed trains the demo preset from scratch for each task on the same generated data",
        f"- tuned on: {result.get('tuned_on', TUNED_ON)}",
        "",
        "| task | seed | accuracy | CAM pointing game | CAM deletion AUC | CAM insertion AUC "
        "| seconds (train + analyse, every method) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in result["runs"]:
        cam = run["quality"]["cam"]
        lines.append(
            f"| {run['task']} | {run['seed']} | {run['accuracy']:.2%} | "
            f"{cam['pointing_game']:.2%} | {cam['deletion_auc']:.3f} | "
            f"{cam['insertion_auc']:.3f} | {run['seconds']:.0f} |"
        )
    lines += [
        "",
        "Over the seeds: mean [min, max]. Deletion AUC: lower is better; insertion AUC: higher "
        "is better; faithful / sanity passed: share of seeds (1.00 = every seed).",
        "",
    ]
    lines += _stages_markdown(result)
    lines += _familiarity_markdown(result["runs"])
    lines += _shortcut_markdown(result["runs"])
    for task, entry in result["summary"].items():
        metrics = [m for m in COLUMNS if any(m in v for k, v in entry.items() if k != "accuracy")]
        lines += [
            f"Task **{task}**, accuracy {_range(entry['accuracy'], percent=True)}.",
            "",
            "| method | " + " | ".join(m.replace("_", " ") for m in metrics) + " |",
            "| --- |" + " ---: |" * len(metrics),
        ]
        for method, figures in entry.items():
            if method == "accuracy":
                continue
            cells = [_range(figures[m]) if m in figures else "–" for m in metrics]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


STAGE_COLUMNS = ("training", "maps: scorecam", "deletion/insertion", "sanity check")


def _stages_markdown(result: dict[str, Any]) -> list[str]:
    """Seconds per stage of each run (training, Score-CAM, the evidence, the rest)."""
    runs = [r for r in result["runs"] if "stages" in r]
    if not runs:
        return []
    isa = result.get("isa") or {}
    limits = ", ".join(f"`{k}={v}`" for k, v in isa.items()) or "none (the CPU's own)"
    lines = [
        f"Seconds per stage (ISA limits: {limits}; one process per run, so a first "
        "`make run`, which builds both tasks in one process, is about the sum of one run of "
        "each):",
        "",
        "| task | seed | " + " | ".join(STAGE_COLUMNS) + " | other maps | rest | total |",
        "| --- | ---: |" + " ---: |" * (len(STAGE_COLUMNS) + 3),
    ]
    for run in runs:
        stages = run["stages"]
        shown = [stages.get(name, 0.0) for name in STAGE_COLUMNS]
        other_maps = sum(
            v for k, v in stages.items() if k.startswith("maps: ") and k not in STAGE_COLUMNS
        )
        rest = run["seconds"] - sum(shown) - other_maps
        cells = [f"{v:.1f}" for v in (*shown, other_maps, rest, run["seconds"])]
        lines.append(f"| {run['task']} | {run['seed']} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _familiarity_markdown(runs: list[dict[str, Any]]) -> list[str]:
    """Familiar ground per run: shares flagged unfamiliar and near-copies found."""
    measured = [r for r in runs if "familiarity" in r]
    if not measured:
        return []
    lines = [
        "Familiar ground (#19): share flagged unfamiliar of the validation images (5% by "
        "construction), of installed real photographs (3: a portrait, a temple, a flower), of "
        "400 new demo images drawn like the data (target: at most 6%), and of 200 new demo "
        "images blurred (Gaussian, 4 px), inverted and rotated by 90° (no target); "
        "near-duplicate pairs among the validation images and validation images leaked from "
        "training (none planted).",
        "",
        "| task | seed | validation | real photos | new demo images | blurred | inverted "
        "| rotated | near-duplicate pairs | leaked |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in measured:
        f = run["familiarity"]
        lines.append(
            f"| {run['task']} | {run['seed']} | {f['valid_flagged']:.1%} | "
            f"{f['photos_flagged']:.0%} | {f['new_flagged']:.1%} | {f['blur_flagged']:.0%} | "
            f"{f['invert_flagged']:.0%} | {f['rot90_flagged']:.0%} | "
            f"{f['validation_pairs']:.0f} | {f['leaked_images']:.0f} |"
        )
    return [*lines, ""]


def _shortcut_markdown(runs: list[dict[str, Any]]) -> list[str]:
    """The shortcut finder per run: the planted mark ranked first, false alarms elsewhere."""
    measured = [r for r in runs if r.get("shortcuts", {}).get("n_candidates")]
    if not measured:
        return []
    lines = [
        "Shortcut finder (#20): on `demo --task breed --shortcut` the planted mark (Bengal, "
        "bottom-right) must be the top-ranked shortcut on every seed; on the plain demo no "
        "candidate may be called a shortcut. Transplant: share of other breeds' images that "
        "flip to the class when the region is pasted (control: pasted from other breeds); "
        "removal: drop of the class's probability, accuracy and log-odds (nats, vs the "
        "control) when the region is filled. "
        "Search time against the run's analysis time (every method, quality metrics). "
        "The finder's removal rule (log-odds) and its border snapping were chosen after "
        "seeing shortcut seeds 42 and 3; seed 7 was first run for this table.",
        "",
        "| run | seed | accuracy | shortcuts / candidates | top | planted found first "
        "| transplant flips (control) | removal: probability, accuracy, log-odds drop "
        "| search s / analysis s |",
        "| --- | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: |",
    ]
    for run in measured:
        f = run["shortcuts"]
        planted = "yes" if f["planted_top"] else ("NO" if "shortcut" in run["task"] else "–")
        flips = (
            f"{f['transplant_flip']:.1%} ({f['transplant_control']:.1%})"
            if f.get("transplant_flip") is not None
            else "–"
        )
        removal = (
            f"{f['removal_drop']:.1%}, {f['accuracy_drop']:.1%}, "
            f"{f['log_odds_drop']:.2f} vs {f['log_odds_control']:.2f}"
            if f.get("log_odds_drop") is not None
            else "–"
        )
        lines.append(
            f"| {run['task']} | {run['seed']} | {run['accuracy']:.2%} | "
            f"{f['n_shortcuts']} / {f['n_candidates']} | {f['top_class']} ({f['top_verdict']}) "
            f"| {planted} | {flips} | {removal} | "
            f"{f['search_seconds']:.1f} / {f['analysis_seconds']:.0f} "
            f"({f['search_seconds'] / f['analysis_seconds']:.1%}) |"
        )
    return [*lines, ""]


COLUMNS = (
    "pointing_game",
    "energy_in_mask",
    "deletion_auc",
    "insertion_auc",
    "randomization_spearman",
    "faithful",
    "sanity_passed",
)


def _range(spread: dict[str, float], percent: bool = False) -> str:
    form = "{:.2%}" if percent else "{:.3f}"
    return (
        f"{form.format(spread['mean'])} [{form.format(spread['min'])}, "
        f"{form.format(spread['max'])}]"
    )


def _with_other_sections(path: Path, text: str) -> str:
    """``text`` followed by the sections other scripts keep in the same file (``layers.py``'s,
    between its markers), so that rewriting the quality figures does not drop them."""
    from layers import END, START

    old = path.read_text() if path.exists() else ""
    if START in old and END in old:
        kept = old[old.index(START) : old.index(END) + len(END)]
        return text.rstrip() + "\n\n" + kept + "\n"
    return text


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.render is not None:
        try:
            saved = json.loads(args.render.read_text())
            args.out.write_text(_with_other_sections(args.out, render_markdown(saved)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SystemExit(f"error: cannot render {args.render}: {exc!r}") from None
        return 0
    if not 1 <= args.seeds <= len(SEEDS):
        raise SystemExit(f"error: --seeds takes 1 to {len(SEEDS)}, got {args.seeds}")
    seeds = SEEDS[: args.seeds]
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not tasks or any(t not in TASKS for t in tasks):
        raise SystemExit(f"error: --tasks takes {', '.join(TASKS)}, got {args.tasks!r}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runs = [one_run(task, seed, folder, folder / "cache") for task in tasks for seed in seeds]
        if args.shortcut:
            runs += [one_run("breed", seed, folder, folder / "cache", True) for seed in seeds]
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe(),
        "isa": isa_limits(),
        "n_seeds": len(seeds),
        "shortcut": args.shortcut,
        "tuned_on": TUNED_ON,
        "runs": runs,
        "summary": summarise(runs),
    }
    args.out.write_text(_with_other_sections(args.out, render_markdown(result)))
    print(json.dumps(result) if args.json else render_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
