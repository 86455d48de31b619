"""Seeded cartoon "cats" and "dogs" whose class-defining parts are known.

Both classes share the same round face (eyes, random colours, sizes and positions); cats have
pointed ears on top and a small pink nose, dogs floppy ears hanging at the sides and a broad
dark nose. A mask per picture marks exactly those parts (ears and nose), so localisation can be
scored (pointing game) against ground truth.

Format 1 differed in the ears only. Its cat map peaked beside the face, where a dog's ears would
be: with two classes the cat map is close to the negative of the dog map, so without evidence of
its own the cat class "points" at missing dog evidence. The nose gives each class something of
its own in the middle of the face.

Files follow the Oxford-IIIT Pet naming convention (``Cat_0001.png`` is a cat because the name
starts with an upper-case letter, ``dog_0002.png`` is a dog), so the same labelling code serves
both datasets.
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from cam_core.progress import ConsoleProgress
from cam_core.storage import atomic_write_text, folder_lock

__all__ = ["DEMO_FORMAT", "DemoConfig", "demo_folder", "draw_sample", "generate_demo"]

log = logging.getLogger(__name__)

DEMO_FORMAT = 2
READY_FILE = "demo.json"

Colour = tuple[int, int, int]
Point = tuple[float, float]


@dataclass(frozen=True)
class DemoConfig:
    """What to generate.

    Attributes:
        n_per_class: pictures of each class.
        size: side of the square pictures in pixels.
        seed: the only source of randomness; same seed, same bytes.
        distractors: upper bound of random shapes behind each animal.
    """

    n_per_class: int = 1000
    size: int = 96
    seed: int = 42
    distractors: int = 5


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
    is_cat: bool, cx: float, cy: float, r: float, rng: random.Random
) -> list[list[Point]]:
    """Polygons (lists of points) of the two ears around a head at (cx, cy) of radius r."""
    ears = []
    for side in (-1, 1):
        if is_cat:
            angle = math.radians(rng.uniform(28, 42)) * side
            spread = math.radians(rng.uniform(17, 23))
            length = r * rng.uniform(0.75, 1.0)
            base_a = (cx + r * math.sin(angle - spread), cy - r * math.cos(angle - spread))
            base_b = (cx + r * math.sin(angle + spread), cy - r * math.cos(angle + spread))
            tip = (
                cx + (r + length) * math.sin(angle),
                cy - (r + length) * math.cos(angle),
            )
            ears.append([base_a, tip, base_b])
        else:
            width, height = r * rng.uniform(0.5, 0.65), r * rng.uniform(1.0, 1.3)
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


def draw_sample(
    is_cat: bool, size: int, rng: random.Random, distractors: int = 5
) -> tuple[Image.Image, Image.Image]:
    """Draw one picture and the mask of its class-defining parts.

    Returns:
        ``(image, mask)``: RGB image and L mask (255 on the ears and the nose, 0 elsewhere), both
        ``size``×``size``.
    """
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
    if abs(_luma(ear_colour) - _luma(background)) < 50:
        ear_colour = _contrasting(rng, background)
    mask = Image.new("L", (size, size), 0)
    mask_draw = ImageDraw.Draw(mask)
    ears = _ear_polygons(is_cat, cx, cy, r, rng)
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
    nose, nose_colour = _nose(is_cat, cx, cy, r, rng)
    draw.polygon(nose, fill=nose_colour)
    mask_draw.polygon(nose, fill=255)
    return image, mask


def demo_folder(cache_root: Path, cfg: DemoConfig) -> Path:
    """Where the demo set for ``cfg`` lives under ``cache_root``."""
    return cache_root / f"demo-v{DEMO_FORMAT}-n{cfg.n_per_class}-s{cfg.size}-seed{cfg.seed}"


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
        total = 2 * cfg.n_per_class
        with ConsoleProgress("demo images", total, "images") as bar:
            for index in range(total):
                is_cat = index % 2 == 0
                image, mask = draw_sample(is_cat, cfg.size, rng, cfg.distractors)
                name = f"{'Cat' if is_cat else 'dog'}_{index // 2 + 1:04d}.png"
                image.save(images / name)
                mask.save(masks / name)
                bar.update()
        atomic_write_text(
            root / READY_FILE, json.dumps({"format": DEMO_FORMAT, **asdict(cfg)}, indent=2)
        )
    log.info("generated %d demo images in %s", total, root)
    return root
