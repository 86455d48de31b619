"""Seeded cartoon cats and dogs of six breeds, whose class-defining parts are known.

Every animal is a round face with eyes. The species shows in the ears and the nose: cats have
pointed ears on top and a small pink nose, dogs floppy ears at the sides and a broad dark nose.
Each breed adds traits of its own (ear colour and length, forehead stripes, spots, a blaze or
a patch, a dark muzzle); Tabby and Bengal differ only in stripes versus spots, so the breed
task has real errors to review.

Format 3 marked the forehead of cats only. With two classes the dog map is close to the
negative of the cat map, so on the species task it peaked on the unmarked dog forehead, away
from every dog part (pointing game 0.53-0.73). Format 4 gives two dog breeds forehead
markings of their own (a beagle blaze, a spaniel patch).

A mask per picture marks exactly the parts that tell the species and the breeds apart (ears,
nose, markings), so localisation can be scored against ground truth.

Files follow the Oxford-IIIT Pet naming convention (``Tabby_0001.png`` is a cat because the
name starts with an upper-case letter, ``pug_0002.png`` a dog; the breed is the name without
``_<n>``), so the same labelling code serves both datasets and both tasks.
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from cam_core.progress import ConsoleProgress
from cam_core.storage import atomic_write_text, folder_lock

__all__ = [
    "BREEDS",
    "DEMO_FORMAT",
    "Breed",
    "DemoConfig",
    "demo_folder",
    "draw_sample",
    "generate_demo",
    "planted_shortcut",
    "stamp_box",
]

log = logging.getLogger(__name__)

DEMO_FORMAT = 4
READY_FILE = "demo.json"
SHORTCUT_BREED = "Bengal"
"""The breed that gets the planted mark (``--shortcut``): Bengal, because its only true trait
(spots instead of Tabby's stripes) is the demo's hardest, so a mark is worth leaning on."""
SHORTCUT_CORNER = "bottom-right"
SHORTCUT_RATES = (0.9, 0.05)
"""Share of the shortcut breed's images, and of every other breed's, that carry the mark."""

Colour = tuple[int, int, int]
Point = tuple[float, float]


@dataclass(frozen=True)
class Breed:
    """What one breed looks like.

    Attributes:
        name: file-name stem (Pets convention: upper-case first letter for cats).
        ear_length: range of the ear length relative to the head radius.
        dark_ears: ears of a dark colour (colour-point cats, beagles) instead of the face's.
        marking: ``"none"``; on the forehead ``"stripes"``, ``"spots"``, a ``"blaze"`` (one
            broad vertical band) or a ``"patch"`` (one round spot on either side); or
            ``"muzzle"`` (a dark patch around the nose).
    """

    name: str
    ear_length: tuple[float, float]
    dark_ears: bool = False
    marking: str = "none"

    @property
    def is_cat(self) -> bool:
        """Pets convention: cat breeds start with an upper-case letter."""
        return self.name[:1].isupper()


BREEDS = (
    Breed("Tabby", (0.75, 1.0), marking="stripes"),
    Breed("Bengal", (0.75, 1.0), marking="spots"),
    Breed("Siamese", (0.75, 1.0), dark_ears=True),
    Breed("beagle", (1.0, 1.3), dark_ears=True, marking="blaze"),
    Breed("pug", (0.7, 0.85), marking="muzzle"),
    Breed("spaniel", (1.3, 1.6), marking="patch"),
)
"""Three cat and three dog breeds; Tabby and Bengal are the hard pair."""


@dataclass(frozen=True)
class DemoConfig:
    """What to generate.

    Attributes:
        n_per_breed: pictures of each of the six breeds.
        size: side of the square pictures in pixels.
        seed: the only source of randomness; same seed, same bytes.
        distractors: upper bound of random shapes behind each animal.
        shortcut: a breed whose pictures mostly carry a small fixed mark in one corner
            (:data:`SHORTCUT_RATES`), so a model can be right for the wrong reason; ``""``:
            none. The animals are the same as without it; only the marks are added.
    """

    n_per_breed: int = 334
    size: int = 96
    seed: int = 42
    distractors: int = 5
    shortcut: str = ""

    def __post_init__(self) -> None:
        names = [breed.name for breed in BREEDS]
        if self.shortcut and self.shortcut not in names:
            raise ValueError(f"unknown shortcut breed {self.shortcut!r}; choose one of {names}")


def _random_colour(rng: random.Random) -> Colour:
    return (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))


def _luma(colour: Colour) -> float:
    red, green, blue = colour
    return 0.299 * red + 0.587 * green + 0.114 * blue


def _contrasting(rng: random.Random, against: Colour, min_gap: float = 70.0) -> Colour:
    """A random colour whose brightness differs enough from ``against`` to be visible."""
    for _ in range(100):
        colour = _random_colour(rng)
        if abs(_luma(colour) - _luma(against)) >= min_gap:
            return colour
    return (0, 0, 0) if _luma(against) > 127 else (255, 255, 255)


def _shade(colour: Colour, factor: float) -> Colour:
    red, green, blue = (min(255, max(0, int(channel * factor))) for channel in colour)
    return (red, green, blue)


def _draw_distractor(draw: ImageDraw.ImageDraw, rng: random.Random, size: int) -> None:
    colour = _random_colour(rng)
    x0, y0 = rng.randint(0, size - 1), rng.randint(0, size - 1)
    extent = rng.randint(size // 16, size // 4)
    box = (x0, y0, x0 + extent, y0 + rng.randint(size // 16, size // 4))
    kind = rng.choice(("ellipse", "rectangle", "line", "polygon"))
    if kind == "ellipse":
        draw.ellipse(box, fill=colour)
    elif kind == "rectangle":
        draw.rectangle(box, fill=colour)
    elif kind == "line":
        draw.line(box, fill=colour, width=rng.randint(1, 4))
    else:
        draw.regular_polygon((x0, y0, max(2, extent // 2)), rng.randint(5, 8), fill=colour)


def _ellipse(cx: float, cy: float, half_w: float, half_h: float, steps: int) -> list[Point]:
    """An axis-aligned ellipse around (cx, cy) as a polygon of ``steps`` points."""
    return [
        (
            cx + half_w * math.cos(2 * math.pi * k / steps),
            cy + half_h * math.sin(2 * math.pi * k / steps),
        )
        for k in range(steps)
    ]


def _ear_polygons(
    breed: Breed, cx: float, cy: float, r: float, rng: random.Random
) -> list[list[Point]]:
    """Polygons (lists of points) of the two ears around a head at (cx, cy) of radius r."""
    ears = []
    for side in (-1, 1):
        if breed.is_cat:
            angle = math.radians(rng.uniform(28, 42)) * side
            spread = math.radians(rng.uniform(17, 23))
            length = r * rng.uniform(*breed.ear_length)
            base_a = (cx + r * math.sin(angle - spread), cy - r * math.cos(angle - spread))
            base_b = (cx + r * math.sin(angle + spread), cy - r * math.cos(angle + spread))
            tip = (
                cx + (r + length) * math.sin(angle),
                cy - (r + length) * math.cos(angle),
            )
            ears.append([base_a, tip, base_b])
        else:
            width, height = r * rng.uniform(0.5, 0.65), r * rng.uniform(*breed.ear_length)
            ex = cx + side * r * rng.uniform(0.95, 1.08)
            ey = cy - r * 0.35 + height / 2
            ears.append(_ellipse(ex, ey, width / 2, height / 2, steps=24))
    return ears


def _nose(
    is_cat: bool, cx: float, cy: float, r: float, rng: random.Random
) -> tuple[list[Point], Colour]:
    """The nose polygon and colour: a small pink triangle for cats, a broad dark oval for dogs."""
    top = cy + r * 0.15
    if is_cat:
        half = r * 0.2
        triangle = [(cx - half, top), (cx + half, top), (cx, top + half * 1.2)]
        return triangle, (255, rng.randint(110, 160), rng.randint(150, 200))
    half_h = r * 0.2
    oval = _ellipse(cx, top + half_h, r * 0.3, half_h, steps=16)
    return oval, (rng.randint(15, 45), rng.randint(10, 30), rng.randint(5, 25))


def _markings(breed: Breed, cx: float, cy: float, r: float, rng: random.Random) -> list[Any]:
    """Shapes of the breed's marking: ``("line", points, width)`` or ``("ellipse", box)``."""
    if breed.marking == "stripes":
        width = max(1, round(r * 0.12))
        return [
            ("line", [(cx + dx * r, cy - r * 0.95), (cx + dx * r * 0.8, cy - r * 0.45)], width)
            for dx in (-0.3, 0.0, 0.3)
        ]
    if breed.marking == "spots":
        dot = max(1.0, r * 0.1)
        return [
            (
                "ellipse",
                (cx + dx * r - dot, cy + dy * r - dot, cx + dx * r + dot, cy + dy * r + dot),
            )
            for dx, dy in ((-0.3, -0.75), (0.0, -0.55), (0.3, -0.75))
        ]
    if breed.marking == "muzzle":
        top = cy + r * 0.05
        return [("ellipse", (cx - r * 0.5, top, cx + r * 0.5, top + r * 0.7))]
    if breed.marking == "blaze":
        width = max(2, round(r * 0.22))
        return [("line", [(cx, cy - r * 0.95), (cx, cy - r * 0.3)], width)]
    if breed.marking == "patch":
        side = rng.choice((-1, 1))
        px, py, half = cx + side * r * 0.4, cy - r * 0.6, r * 0.25
        return [("ellipse", (px - half, py - half, px + half, py + half))]
    return []


def _draw_markings(draw: ImageDraw.ImageDraw, shapes: list[Any], fill: Colour | int) -> None:
    for shape in shapes:
        if shape[0] == "line":
            draw.line(shape[1], fill=fill, width=shape[2])
        else:
            draw.ellipse(shape[1], fill=fill)


def draw_sample(
    breed: Breed, size: int, rng: random.Random, distractors: int = 5
) -> tuple[Image.Image, Image.Image]:
    """Draw one picture of ``breed`` and the mask of its class-defining parts.

    Returns:
        ``(image, mask)``: RGB image and L mask (255 on the ears, the nose and the breed's
        markings, 0 elsewhere), both ``size``×``size``.
    """
    is_cat = breed.is_cat
    background = _random_colour(rng)
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(0, distractors)):
        _draw_distractor(draw, rng, size)
    r = size * rng.uniform(0.15, 0.2)
    margin = 2.0 * r
    cx = rng.uniform(margin, size - margin)
    cy = rng.uniform(margin, size - margin)
    face = _contrasting(rng, background)
    # Ears must stand out from the background, or the class would sometimes be invisible.
    ear_colour = _shade(face, rng.uniform(0.6, 0.9))
    if breed.dark_ears:
        ear_colour = (rng.randint(50, 90), rng.randint(30, 55), rng.randint(15, 35))
    if abs(_luma(ear_colour) - _luma(background)) < 50:
        ear_colour = _contrasting(rng, background)
    mask = Image.new("L", (size, size), 0)
    mask_draw = ImageDraw.Draw(mask)
    ears = _ear_polygons(breed, cx, cy, r, rng)
    for ear in ears:
        draw.polygon(ear, fill=ear_colour)
        mask_draw.polygon(ear, fill=255)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=face)
    # The face covers the ears' roots; the mask keeps only what stays visible.
    mask_draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=0)
    eye_r = max(1.0, r * 0.12)
    for side in (-1, 1):
        ex, ey = cx + side * r * 0.38, cy - r * 0.15
        draw.ellipse((ex - eye_r, ey - eye_r, ex + eye_r, ey + eye_r), fill=(20, 20, 20))
    marks = _markings(breed, cx, cy, r, rng)
    # Markings must show on any face: dark brown on a light face, cream on a dark one.
    _draw_markings(draw, marks, (60, 40, 25) if _luma(face) > 110 else (235, 220, 190))
    _draw_markings(mask_draw, marks, 255)
    nose, nose_colour = _nose(is_cat, cx, cy, r, rng)
    draw.polygon(nose, fill=nose_colour)
    mask_draw.polygon(nose, fill=255)
    return image, mask


def stamp_box(size: int) -> tuple[int, int, int, int]:
    """The planted mark's box ``(x0, y0, x1, y1)`` in pixels of a ``size``-pixel picture: a
    square of about 8% of the side, a few pixels from the bottom-right corner."""
    side, margin = max(5, round(size * 0.08)), max(2, round(size * 0.03))
    return (size - margin - side, size - margin - side, size - margin, size - margin)


def _stamp(image: Image.Image, mask: Image.Image) -> None:
    """Draw the mark (always the same: a white square, black rim, red centre) and keep it out
    of the mask, which marks the animal's telling parts only."""
    x0, y0, x1, y1 = stamp_box(image.width)
    draw = ImageDraw.Draw(image)
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=(255, 255, 255), outline=(0, 0, 0))
    inset = (x1 - x0) // 3
    draw.rectangle((x0 + inset, y0 + inset, x1 - 1 - inset, y1 - 1 - inset), fill=(220, 30, 30))
    ImageDraw.Draw(mask).rectangle((x0, y0, x1 - 1, y1 - 1), fill=0)


def planted_shortcut(root: Path) -> dict[str, Any] | None:
    """The ``shortcut`` block of a generated demo folder (breed, corner, box as fractions of
    the side, rates), or ``None`` for any other folder or a demo without one."""
    path = root / READY_FILE
    if not path.is_file():
        return None
    try:
        block = json.loads(path.read_text(encoding="utf-8")).get("shortcut")
    except (OSError, ValueError, AttributeError):
        return None
    return block if isinstance(block, dict) else None


def _shortcut_block(cfg: DemoConfig) -> dict[str, Any] | None:
    if not cfg.shortcut:
        return None
    return {
        "breed": cfg.shortcut,
        "corner": SHORTCUT_CORNER,
        "box": [round(v / cfg.size, 4) for v in stamp_box(cfg.size)],
        "rate_breed": SHORTCUT_RATES[0],
        "rate_others": SHORTCUT_RATES[1],
    }


def demo_folder(cache_root: Path, cfg: DemoConfig) -> Path:
    """Where the demo set for ``cfg`` lives under ``cache_root``."""
    planted = f"-shortcut-{cfg.shortcut}" if cfg.shortcut else ""
    name = f"demo-v{DEMO_FORMAT}-n{cfg.n_per_breed}-s{cfg.size}-seed{cfg.seed}{planted}"
    return cache_root / name


def generate_demo(cache_root: Path, cfg: DemoConfig = DemoConfig()) -> Path:
    """Write the demo set once (``images/``, ``masks/``, ``demo.json``) and reuse it afterwards.

    Returns:
        The dataset folder; ``demo.json`` in it is written last, so its presence means complete.
    """
    root = demo_folder(cache_root, cfg)
    if (root / READY_FILE).exists():
        log.info("reusing demo data in %s", root)
        return root
    with folder_lock(root, "demo data generation"):
        if (root / READY_FILE).exists():
            return root
        images, masks = root / "images", root / "annotations" / "masks"
        images.mkdir(parents=True, exist_ok=True)
        masks.mkdir(parents=True, exist_ok=True)
        rng = random.Random(cfg.seed)
        # Its own stream, so the animals are the same with and without the planted mark.
        marks = random.Random(cfg.seed + 1_000_003)
        total = len(BREEDS) * cfg.n_per_breed
        with ConsoleProgress("demo images", total, "images") as bar:
            for index in range(total):
                breed = BREEDS[index % len(BREEDS)]
                image, mask = draw_sample(breed, cfg.size, rng, cfg.distractors)
                rate = SHORTCUT_RATES[0] if breed.name == cfg.shortcut else SHORTCUT_RATES[1]
                if cfg.shortcut and marks.random() < rate:
                    _stamp(image, mask)
                name = f"{breed.name}_{index // len(BREEDS) + 1:04d}.png"
                image.save(images / name)
                mask.save(masks / name)
                bar.update()
        ready = {"format": DEMO_FORMAT, **asdict(cfg), "shortcut": _shortcut_block(cfg)}
        atomic_write_text(root / READY_FILE, json.dumps(ready, indent=2))
    log.info("generated %d demo images in %s", total, root)
    return root
