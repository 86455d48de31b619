"""Command-line interface: a thin layer mapping flags onto cam_core's config dataclasses."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cam_core import __version__
from cam_core.data.sources import TASKS
from cam_core.errors import CamLensError, ImportModelError, MethodError
from cam_core.locations import demo_run_dir
from cam_core.methods import DEFAULT_LAYER, DEFAULT_METHODS, METHODS, parse_methods
from cam_core.methods.budget import DEFAULT_CLASSES_PER_IMAGE, parse_budget
from cam_core.modelling.models import ARCHITECTURES
from cam_core.modelling.precision import PRECISIONS
from cam_core.review.reviews import EXPORT_FORMATS, VERDICTS

if TYPE_CHECKING:
    from cam_core.present.tables import DisplayTable

__all__ = ["build_parser", "main"]

log = logging.getLogger("cam_core")

EXIT_ERROR = 2
Subcommands = argparse._SubParsersAction  # argparse's own type of ``add_subparsers()``
DATA_HELP = "pets, demo, or a folder (Pets naming or one sub-folder per class)"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _methods(text: str) -> tuple[str, ...]:
    try:
        return parse_methods(text)
    except MethodError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _budget(text: str) -> int | None:
    try:
        return parse_budget(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


BUDGET_HELP = (
    "maps of this many classes per image for every method but exact CAM (which gives every "
    "class for free): the true class, the prediction and the next most probable; 'all' for "
    "every class, whose cost grows with the number of classes (default: %(default)s)"
)


def _add_demo(sub: Subcommands) -> None:
    demo = sub.add_parser("demo", help="generate demo data, train, analyse (offline)")
    demo.add_argument(
        "--out",
        type=Path,
        default=None,
        help="run folder (default: %(default)s = $CAM_LENS_HOME/demo)",
    )
    demo.add_argument("--quick", action="store_true", help="tiny version that runs in seconds")
    demo.add_argument("--seed", type=int, default=None, help="training seed (default: 42)")
    demo.add_argument(
        "--task",
        choices=TASKS,
        default="species",
        help="species (cat vs dog) or breed (six breeds); default: %(default)s",
    )
    demo.add_argument(
        "--shortcut",
        action="store_true",
        help="breed task: a small mark in one corner of most Bengal images, for the Shortcuts "
        "page to find",
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from cam_core.analysis.demo import run_demo

    out = args.out or demo_run_dir(args.task + ("-shortcut" if args.shortcut else ""))
    manifest = run_demo(
        out, quick=args.quick, seed=args.seed, task=args.task, shortcut=args.shortcut
    )
    print(
        json.dumps(
            {"model": str(out / "model"), "artifacts": str(out / "artifacts"), **manifest.metrics}
        )
    )
    return 0


def _add_train(sub: Subcommands) -> None:
    train = sub.add_parser("train", help="two-stage training, saves a model folder")
    train.add_argument("--data", required=True, help=DATA_HELP)
    train.add_argument(
        "--task",
        choices=TASKS,
        default="species",
        help="species (the tutorial's cat vs dog) or breed (Pets naming: the file name without "
        "_<n>); default: %(default)s",
    )
    train.add_argument(
        "--arch",
        default="resnet34",
        choices=ARCHITECTURES,
        help="default: %(default)s; democnn2 is the demo's small CNN (democnn its first version)",
    )
    train.add_argument("--size", type=_positive, default=512, help="input size (default: 512)")
    train.add_argument("--bs", type=_positive, default=32, help="batch size (default: 32)")
    train.add_argument("--epochs1", type=int, default=1, help="stage-1 epochs (default: 1)")
    train.add_argument("--epochs2", type=_positive, default=5, help="stage-2 epochs (default: 5)")
    train.add_argument("--lr", type=float, default=None, help="learning rate")
    train.add_argument(
        "--head-lr-mult",
        type=float,
        default=1.0,
        help="from scratch: stage 2 trains the new CAM head this many times faster than the "
        "body (the demo uses 10; default: 1)",
    )
    train.add_argument(
        "--no-pretrained",
        action="store_true",
        help="train from scratch instead of ImageNet weights",
    )
    train.add_argument("--valid-pct", type=_fraction, default=0.2, help="default: 0.2")
    train.add_argument("--seed", type=int, default=42, help="default: 42")
    train.add_argument("--workers", type=int, default=None, help="DataLoader workers")
    train.add_argument("--device", default=None, help="cuda or cpu (default: cuda when present)")
    train.add_argument("--out", type=Path, required=True, help="model folder to write")


def _cmd_train(args: argparse.Namespace) -> int:
    from cam_core.data.sources import DataConfig, load_dataset
    from cam_core.modelling.training import TrainConfig, train_model

    cfg = TrainConfig(
        arch=args.arch,
        image_size=args.size,
        batch_size=args.bs,
        epochs1=args.epochs1,
        epochs2=args.epochs2,
        pretrained=not args.no_pretrained and args.data != "demo",
        lr=args.lr,
        head_lr_mult=args.head_lr_mult,
        seed=args.seed,
        num_workers=args.workers,
        device=args.device,
    )
    dataset = load_dataset(
        DataConfig(source=args.data, task=args.task, valid_pct=args.valid_pct, seed=args.seed)
    )
    card = train_model(dataset, cfg, args.out)
    if int(os.environ.get("RANK", "0")) == 0:  # under accelerate launch: rank 0 reports
        print(json.dumps({"model": str(args.out), **card.metrics}))
    return 0


def _add_analyze(sub: Subcommands) -> None:
    analyze = sub.add_parser(
        "analyze", help="batched predictions + class maps of the validation set"
    )
    analyze.add_argument("--model", type=Path, required=True, help="model folder")
    analyze.add_argument(
        "--data", default=None, help=f"{DATA_HELP} (default: the model's own training data)"
    )
    analyze.add_argument(
        "--task", choices=TASKS, default=None, help="with --data (default: the model's task)"
    )
    analyze.add_argument(
        "--valid-pct",
        type=_fraction,
        default=None,
        help="with --data: share held out and analysed (default: 0.2; an imported model "
        "analyses every image)",
    )
    analyze.add_argument("--seed", type=int, default=42, help="with --data")
    analyze.add_argument("--bs", type=_positive, default=64, help="batch size (default: 64)")
    analyze.add_argument("--workers", type=int, default=None, help="image-decoding workers")
    analyze.add_argument("--device", default=None, help="cuda or cpu")
    analyze.add_argument(
        "--methods",
        type=_methods,
        default=None,
        help=f"comma-separated, from {', '.join(METHODS)} (default: those of "
        f"{','.join(DEFAULT_METHODS)} that apply to the model; scorecam costs one forward pass "
        "per channel per image)",
    )
    analyze.add_argument(
        "--layer",
        default=None,
        help="layer the gradient/score methods read, e.g. body.5, or auto: the best of the "
        "candidate layers on a seeded sample of 64 images, by deletion/insertion against the "
        "baselines and the sanity check, recorded in the manifest (default: the model's, "
        f"{DEFAULT_LAYER} unless the import named another)",
    )
    analyze.add_argument(
        "--layer-n",
        type=_positive,
        default=64,
        help="with --layer auto: images (a seeded sample) the candidate layers are scored on "
        "(default: %(default)s)",
    )
    analyze.add_argument(
        "--no-quality", action="store_true", help="skip the quality metrics of the maps"
    )
    analyze.add_argument(
        "--quality-n",
        type=_positive,
        default=None,
        help="images (seeded sample) for deletion/insertion, whatever they cost (default: up "
        "to 256, as many as 16 perturbed passes per analysed image pay for, at least 6)",
    )
    analyze.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="logits and exact CAM: auto (bf16 + channels_last on a CPU with native bf16, "
        "fp16 on CUDA, else fp32), fp32, bf16 or fp16 (default: auto)",
    )
    analyze.add_argument(
        "--reference-n",
        type=_positive,
        default=5000,
        help="training images (a seeded sample) whose features say what the model knows: the "
        "reference of familiarity and of the leakage check (default: %(default)s)",
    )
    analyze.add_argument(
        "--classes-per-image",
        type=_budget,
        default=str(DEFAULT_CLASSES_PER_IMAGE),
        metavar="K|all",
        help=BUDGET_HELP,
    )
    analyze.add_argument("--out", type=Path, required=True, help="artifact folder to write")


def _cmd_analyze(args: argparse.Namespace) -> int:
    from cam_core.analysis.distributed import launched, sharded_analyze
    from cam_core.analysis.pipeline import AnalyzeConfig, analyze, folder_data_config
    from cam_core.evaluation.suite import QualityConfig

    data_cfg = None
    if args.data:
        data_cfg = folder_data_config(args.model, args.data, args.task, args.valid_pct, args.seed)
    cfg = AnalyzeConfig(
        batch_size=args.bs,
        num_workers=args.workers,
        device=args.device,
        methods=args.methods,
        layer=args.layer,
        layer_n=args.layer_n,
        quality=None
        if args.no_quality
        else QualityConfig()
        if args.quality_n is None
        else QualityConfig(sample_n=args.quality_n, max_cost=None),
        precision=args.precision,
        reference_n=args.reference_n,
        classes_per_image=args.classes_per_image,
    )
    if launched():  # one of several processes started by torchrun
        sharded = sharded_analyze(args.model, args.out, data_cfg, cfg)
        if sharded is None:
            return 0  # rank 0 prints the result
        manifest = sharded
    else:
        manifest = analyze(args.model, args.out, data_cfg, cfg)
    print(json.dumps({"artifacts": str(args.out), **manifest.metrics}))
    return 0


def _add_predict(sub: Subcommands) -> None:
    predict = sub.add_parser("predict", help="predict images or URLs, one JSON line each")
    predict.add_argument("--model", type=Path, required=True, help="model folder")
    predict.add_argument(
        "--out-dir", type=Path, default=None, help="write an overlay PNG per input and class here"
    )
    predict.add_argument("--colorscale", default="Jet", help="overlay colour scale")
    predict.add_argument("--opacity", type=float, default=0.5, help="overlay opacity 0..1")
    predict.add_argument(
        "--allow-private-urls",
        action="store_true",
        help="allow URLs on private/loopback addresses (trusted intranets only)",
    )
    predict.add_argument("--device", default=None, help="cuda or cpu")
    predict.add_argument(
        "--method",
        default=None,
        choices=list(METHODS),
        help="map method (default: cam where the model allows it, else gradcam)",
    )
    predict.add_argument(
        "--layer", default=None, help="layer for gradient methods (default: the model's)"
    )
    predict.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="logits and exact CAM: auto (bf16 + channels_last on a CPU with native bf16, "
        "fp16 on CUDA, else fp32), fp32, bf16 or fp16 (default: auto)",
    )
    predict.add_argument(
        "--artifacts",
        type=Path,
        default=None,
        help="an analysis of this model whose familiarity each prediction is placed against "
        "(default: the newest one beside the model or under $CAM_LENS_HOME)",
    )
    predict.add_argument(
        "--classes-per-image",
        type=_budget,
        default=str(DEFAULT_CLASSES_PER_IMAGE),
        metavar="K|all",
        help=BUDGET_HELP.replace("the true class, the prediction", "the prediction"),
    )
    predict.add_argument("inputs", nargs="+", metavar="IMAGE_OR_URL")


def _safe_stem(source: str, index: int) -> str:
    tail = source.rstrip("/").rsplit("/", 1)[-1]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(tail).stem)[:60] or "image"
    return f"{index:03d}_{stem}"


def _cmd_predict(args: argparse.Namespace) -> int:
    from cam_core.analysis.findings import familiar_ground_for
    from cam_core.analysis.predict import load_input, placed, predict_images
    from cam_core.intake.fetch import FetchConfig
    from cam_core.methods import default_method
    from cam_core.methods.tokens import placement_of
    from cam_core.modelling.model_files import load_model
    from cam_core.present.overlay import encode_png, overlay
    from cam_core.storage import atomic_write_bytes

    model = load_model(args.model, args.device)
    ground, missing = familiar_ground_for(args.model, model.card.weights_sha256, args.artifacts)
    if ground is None:
        print(f"note: {missing}", file=sys.stderr)
    method = args.method or default_method(model.net)
    layer = args.layer or model.card.layer
    cells = placement_of(model.net)
    fetch_cfg = FetchConfig(allow_private=args.allow_private_urls)
    failed = 0
    if args.out_dir is not None:
        args.out_dir.mkdir(parents=True, exist_ok=True)
    for index, source in enumerate(args.inputs):
        try:
            image = load_input(source, fetch_cfg)
        except CamLensError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        predictions = predict_images(
            model,
            [(source, image)],
            method=method,
            layer=layer,
            precision=args.precision,
            per_image=args.classes_per_image,
        )
        (prediction,) = placed(predictions, ground) if ground is not None else predictions
        print(json.dumps(prediction.to_json()), flush=True)
        if args.out_dir is not None:
            for k, name in enumerate(prediction.classes):
                if not prediction.has_map(k):
                    continue  # outside the class budget
                png = encode_png(
                    overlay(
                        prediction.view,
                        prediction.maps[k],
                        args.colorscale,
                        args.opacity,
                        placement=cells,
                    )
                )
                atomic_write_bytes(args.out_dir / f"{_safe_stem(source, index)}_{name}.png", png)
    return EXIT_ERROR if failed else 0


def _add_import_model(sub: Subcommands) -> None:
    imp = sub.add_parser(
        "import",
        help="import a classifier trained elsewhere (state dict or safetensors; never pickles)",
    )
    imp.add_argument(
        "--arch",
        required=True,
        help="torchvision model name (resnet50, densenet121, efficientnet_b0, "
        "mobilenet_v3_small, convnext_tiny, regnet_y_400mf, vit_b_16, swin_t, …) or "
        "timm:<name> (e.g. timm:deit_tiny_patch16_224)",
    )
    imp.add_argument(
        "--weights",
        type=Path,
        required=True,
        help=".safetensors, or a .pth/.pt state dict (loaded with weights_only=True)",
    )
    names = imp.add_mutually_exclusive_group(required=True)
    names.add_argument("--classes", help="class names in output order, comma-separated")
    names.add_argument("--classes-file", type=Path, help="class names, one per line, in order")
    imp.add_argument("--image-size", type=_positive, default=224, help="default: 224")
    imp.add_argument(
        "--mean", type=float, nargs=3, default=None, help="input mean (default: ImageNet's)"
    )
    imp.add_argument(
        "--std", type=float, nargs=3, default=None, help="input std (default: ImageNet's)"
    )
    imp.add_argument(
        "--layer",
        default="",
        help="layer the gradient methods read by default (default: the body's output, the "
        "last feature maps; for a ViT the last block's first norm)",
    )
    imp.add_argument(
        "--fastai",
        action="store_true",
        help="the weights come from fastai's learn.save() for vision_learner(ARCH)",
    )
    imp.add_argument("--out", type=Path, required=True, help="model folder to write")


def _class_names(args: argparse.Namespace) -> tuple[str, ...]:
    if args.classes is not None:
        return tuple(name.strip() for name in args.classes.split(",") if name.strip())
    try:
        text = args.classes_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportModelError(
            f"cannot read the classes file {args.classes_file} ({exc})"
        ) from None
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _cmd_import(args: argparse.Namespace) -> int:
    from cam_core.modelling.importing import ImportConfig, import_model
    from cam_core.modelling.model_files import IMAGENET_MEAN, IMAGENET_STD

    cfg = ImportConfig(
        arch=args.arch,
        weights=args.weights,
        classes=_class_names(args),
        image_size=args.image_size,
        mean=tuple(args.mean or IMAGENET_MEAN),
        std=tuple(args.std or IMAGENET_STD),
        layer=args.layer,
        fastai=args.fastai,
    )
    card = import_model(cfg, args.out)
    methods = card.provenance["methods"]
    print(
        json.dumps(
            {
                "model": str(args.out),
                "arch": card.arch,
                "classes": len(card.classes),
                "methods": [name for name, why in methods.items() if why == "applies"],
                "not_offered": {name: why for name, why in methods.items() if why != "applies"},
            }
        )
    )
    return 0


def _add_reviews(sub: Subcommands) -> None:
    reviews = sub.add_parser("reviews", help="the analysts' verdicts of an analysis")
    reviews_sub = reviews.add_subparsers(dest="reviews_command", required=True)
    export = reviews_sub.add_parser("export", help="write the verdicts as CSV or JSON")
    export.add_argument("--artifacts", type=Path, required=True, help="artifact folder")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="csv", help="default: csv")
    export.add_argument(
        "--verdict", choices=VERDICTS, default=None, help="only this verdict (default: all)"
    )
    export.add_argument("--out", type=Path, required=True, help="file to write")


def _cmd_reviews(args: argparse.Namespace) -> int:
    from cam_core.review.reviews import export_reviews

    n = export_reviews(args.artifacts, args.out, args.format, args.verdict)
    print(json.dumps({"reviews": str(args.out), "rows": n}))
    return 0


def _add_report(sub: Subcommands) -> None:
    report = sub.add_parser("report", help="self-contained HTML report of an artifact folder")
    report.add_argument("--artifacts", type=Path, required=True, help="artifact folder")
    report.add_argument("--out", type=Path, required=True, help="HTML file to write")
    report.add_argument("--top", type=_positive, default=12, help="errors shown (default: 12)")
    report.add_argument("--colorscale", default="Jet", help="overlay colour scale")
    report.add_argument(
        "--method",
        default=None,
        help="maps shown (default: the analysis's primary method, exact CAM when analysed)",
    )


def _cmd_report(args: argparse.Namespace) -> int:
    from cam_core.present.report import write_report

    write_report(
        args.artifacts, args.out, top_n=args.top, colorscale=args.colorscale, method=args.method
    )
    print(json.dumps({"report": str(args.out)}))
    return 0


def _add_shortcuts(sub: Subcommands) -> None:
    shortcuts = sub.add_parser(
        "shortcuts", help="what the model relies on: shortcut candidates and weak slices"
    )
    shortcuts.add_argument("--artifacts", type=Path, required=True, help="artifact folder")
    shortcuts.add_argument("--json", action="store_true", help="machine-readable output")
    shortcuts.add_argument(
        "--top", type=_positive, default=10, help="weak slices listed (default: 10)"
    )


def _cmd_shortcuts(args: argparse.Namespace) -> int:
    from cam_core.analysis.artifacts import read_artifacts
    from cam_core.analysis.reliance import reliance_of
    from cam_core.evaluation.slices import MIN_SLICE_IMAGES
    from cam_core.present.tables import shortcut_display, slices_display

    reliance = reliance_of(read_artifacts(args.artifacts, verify_maps=False))
    search = reliance.search
    if args.json:
        findings = [
            {key: value for key, value in f.to_json().items() if key != "mean_map"}
            for f in search.findings
        ]
        top = reliance.slices.head(args.top)
        print(
            json.dumps(
                {
                    **search.to_json(),
                    "findings": findings,
                    "slices": top.to_dict(orient="records"),
                },
                indent=2,
            )
        )
        return 0
    if search.skipped:
        print(f"no shortcut search: {search.skipped}")
    else:
        print(
            f"{len(search.shortcuts)} shortcut(s) among {len(search.findings)} candidates "
            f"({search.method} maps, {'with' if search.masks else 'without'} masks)"
        )
        print(_labelled(shortcut_display(search)))
    if reliance.slices.empty:
        print(f"\nno slice has {MIN_SLICE_IMAGES} images or more; no weak slices to rank")
    else:
        print(f"\nweak slices (worst first; slices of {MIN_SLICE_IMAGES} images or more):")
        print(_labelled(slices_display(reliance.slices, args.top)))
    return 0


def _add_layers(sub: Subcommands) -> None:
    layers = sub.add_parser(
        "layers",
        help="which layer to read: candidate layers scored by deletion/insertion and sanity",
    )
    layers.add_argument("--model", type=Path, required=True, help="model folder")
    layers.add_argument(
        "--data", default=None, help="image folder (default: the model's own validation data)"
    )
    layers.add_argument("--task", choices=["species", "breed"], default=None, help="with --data")
    layers.add_argument("--valid-pct", type=float, default=None, help="with --data")
    layers.add_argument("--seed", type=int, default=42, help="with --data")
    layers.add_argument(
        "--n", type=_positive, default=64, help="images scored, a seeded sample (default: 64)"
    )
    layers.add_argument(
        "--candidates",
        default=None,
        help="comma-separated layers to compare (default: 2-4 chosen from the model: the last "
        "blocks of the last two stages; a ViT's last blocks' first norm; Swin's last stage)",
    )
    layers.add_argument("--device", default=None, help="cuda or cpu")
    layers.add_argument("--json", action="store_true", help="machine-readable output")


def _cmd_layers(args: argparse.Namespace) -> int:
    from cam_core.analysis.pipeline import (
        AnalyzeConfig,
        choose_job_layer,
        folder_data_config,
        prepare,
    )
    from cam_core.present.tables import layer_choice_display

    data_cfg = None
    if args.data:
        data_cfg = folder_data_config(args.model, args.data, args.task, args.valid_pct, args.seed)
    cfg = AnalyzeConfig(device=args.device, num_workers=0, quality=None, shortcuts=None)
    job = prepare(args.model, data_cfg, cfg)
    candidates = None
    if args.candidates:
        candidates = [part.strip() for part in args.candidates.split(",") if part.strip()]
    choice = choose_job_layer(job, cfg, sample_n=args.n, candidates=candidates)
    if args.json:
        print(json.dumps(choice.to_json(), indent=2))
        return 0
    if choice.candidates:
        print(_labelled(layer_choice_display(choice)))
    print(f"\nchosen: {choice.chosen} ({choice.reason})")
    return 0


def _labelled(table: DisplayTable) -> str:
    text = table.text()
    return text.rename(columns={c.key: c.label for c in table.columns}).to_string()


_COMMANDS: dict[str, tuple[Callable[[Subcommands], None], Callable[[argparse.Namespace], int]]] = {
    "demo": (_add_demo, _cmd_demo),
    "train": (_add_train, _cmd_train),
    "analyze": (_add_analyze, _cmd_analyze),
    "predict": (_add_predict, _cmd_predict),
    "import": (_add_import_model, _cmd_import),
    "reviews": (_add_reviews, _cmd_reviews),
    "report": (_add_report, _cmd_report),
    "shortcuts": (_add_shortcuts, _cmd_shortcuts),
    "layers": (_add_layers, _cmd_layers),
}
"""Sub-command → (adds its flags to the parser, runs it)."""


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m cam_core`` argument parser: one sub-command per entry of
    :data:`_COMMANDS`, each defined beside its handler."""
    parser = argparse.ArgumentParser(
        prog="python -m cam_core",
        description="Train CAM-ready classifiers and explain them with class activation maps.",
    )
    parser.add_argument("--version", action="version", version=f"cam_core {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add, _ in _COMMANDS.values():
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status (0 ok, 2 error)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return _COMMANDS[args.command][1](args)
    except (CamLensError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
