"""Real photographs that installed packages ship (matplotlib's and scikit-learn's samples):
images unlike any demo cartoon, for checking that the model knows when it is out of its depth."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

__all__ = ["installed_photos"]


def installed_photos() -> list[tuple[str, Image.Image]]:
    """``(name, RGB image)`` of a portrait (matplotlib's ``grace_hopper.jpg``) and scikit-learn's
    two sample photographs (a temple in China, a flower)."""
    import matplotlib
    from sklearn.datasets import load_sample_images

    portrait = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    with Image.open(portrait) as image:
        photos = [("grace_hopper.jpg", image.convert("RGB"))]
    sample = load_sample_images()
    photos += [
        (Path(name).name, Image.fromarray(array))
        for name, array in zip(sample.filenames, sample.images, strict=True)
    ]
    return photos
