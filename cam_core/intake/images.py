"""The one image-intake path: untrusted bytes in, a safe 8-bit RGB image out (or one error).

The CLI, the dashboard, training and the tests all read images through :func:`decode_image`, so
every hostile-file rule (format whitelist by magic bytes, pixel cap before decoding, no truncated
files, EXIF orientation, mode conversion) holds everywhere.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps

from cam_core.errors import ImageRejectedError

__all__ = [
    "ALLOWED_FORMATS",
    "BACKGROUND_RGB",
    "MAX_FILE_BYTES",
    "MAX_PIXELS",
    "decode_image",
    "from_model_tensor",
    "load_image_file",
    "sniff_format",
    "square_resize",
    "to_model_tensor",
]

log = logging.getLogger(__name__)

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
MAX_PIXELS = 40_000_000
MAX_FILE_BYTES = 50 * 1024 * 1024
# Transparent pixels are composited on one fixed colour so the same file always gives the
# same model input.
BACKGROUND_RGB = (255, 255, 255)

# Truncated files must fail, never be half-decoded with grey filler.
ImageFile.LOAD_TRUNCATED_IMAGES = False

_ISO_BRANDS = {
    b"heic": "HEIC",
    b"heix": "HEIC",
    b"hevc": "HEIC",
    b"heim": "HEIC",
    b"heis": "HEIC",
    b"mif1": "HEIF",
    b"msf1": "HEIF",
    b"avif": "AVIF",
    b"avis": "AVIF",
}


def _named_refusal(data: bytes) -> str | None:
    """Name well-known formats we refuse, so the message can say what the file is."""
    head = data[:64].lstrip()
    lowered = head.lower()
    if data[4:8] == b"ftyp":
        brand = _ISO_BRANDS.get(data[8:12])
        if brand is not None:
            return f"{brand} images are unsupported; convert to JPEG or PNG"
        return "MP4/QuickTime video is not an image; export a frame as JPEG or PNG"
    checks: tuple[tuple[bool, str], ...] = (
        (data.startswith(b"%PDF"), "PDF"),
        (data.startswith(b"%!PS") or data.startswith(b"\xc5\xd0\xd3\xc6"), "EPS/PostScript"),
        (data.startswith(b"SIMPLE  ="), "FITS"),
        (lowered.startswith(b"<svg") or b"<svg" in data[:1024].lower(), "SVG"),
        (lowered.startswith((b"<!doctype html", b"<html")), "HTML"),
        (lowered.startswith(b"<?xml"), "XML"),
        (data.startswith(b"PK\x03\x04"), "ZIP"),
        (data.startswith(b"\x00\x00\x01\x00"), "ICO"),
        (data.startswith(b"8BPS"), "PSD"),
    )
    for matched, name in checks:
        if matched:
            return f"{name} files are not accepted; use JPEG, PNG, WebP, GIF or BMP"
    return None


def sniff_format(data: bytes) -> str:
    """Decide the image format from the leading bytes, never from a file name.

    Returns:
        One of :data:`ALLOWED_FORMATS`.

    Raises:
        ImageRejectedError: empty input, or a format that is not allowed.
    """
    if not data:
        raise ImageRejectedError("the file is empty (0 bytes)")
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data.startswith(b"BM"):
        return "BMP"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    refusal = _named_refusal(data)
    if refusal is not None:
        raise ImageRejectedError(refusal)
    try:
        head = data[:256].decode("utf-8")
        is_text = all(ch.isprintable() or ch in "\r\n\t" for ch in head)
    except UnicodeDecodeError:
        is_text = False
    kind = "a text file" if is_text else "not a recognised image format"
    raise ImageRejectedError(f"{kind}; use JPEG, PNG, WebP, GIF or BMP")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB: 16-bit is scaled, alpha is composited."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max(initial=0) <= 65535 else float(arr.max())
        scaled = np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(scaled).convert("RGB")
    if mode == "F":
        arr = np.nan_to_num(np.asarray(img, dtype=np.float64))
        low, high = float(arr.min(initial=0)), float(arr.max(initial=0))
        span = high - low if high > low else 1.0
        scaled = np.rint((arr - low) * (255.0 / span)).astype(np.uint8)
        return Image.fromarray(scaled).convert("RGB")
    if (mode == "P" and "transparency" in img.info) or mode in ("PA", "LA", "La", "RGBa"):
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode == "RGBA":
        background = Image.new("RGBA", img.size, (*BACKGROUND_RGB, 255))
        return Image.alpha_composite(background, img).convert("RGB")
    if mode != "RGB":
        return img.convert("RGB")
    return img


def decode_image(data: bytes, *, name: str = "image", max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode untrusted bytes into a fully loaded 8-bit RGB image.

    Args:
        data: the raw file bytes.
        name: how to call the input in error messages (file name or URL).
        max_pixels: refuse images with more pixels than this, before decoding them.

    Returns:
        An RGB ``PIL.Image.Image`` with ``width * height <= max_pixels``, EXIF orientation
        applied, first frame only for animations.

    Raises:
        ImageRejectedError: not an allowed format, too many pixels, truncated or corrupt.
    """
    try:
        fmt = sniff_format(data)
    except ImageRejectedError as exc:
        raise ImageRejectedError(f"{name}: {exc}") from None
    try:
        opened = Image.open(io.BytesIO(data), formats=[fmt])
        width, height = opened.size
        if width <= 0 or height <= 0:
            raise ImageRejectedError(f"{name}: the image has no pixels ({width}x{height})")
        if width * height > max_pixels:
            raise ImageRejectedError(
                f"{name}: {width}x{height} is {width * height / 1e6:.1f} MP, over the "
                f"{max_pixels / 1e6:.0f} MP limit; downscale it first"
            )
        opened.seek(0)
        opened.load()
        rgb = _to_rgb(ImageOps.exif_transpose(opened) or opened)
        rgb.load()
    except ImageRejectedError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejectedError(f"{name}: refused as a decompression bomb ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure on hostile bytes is a rejection
        raise ImageRejectedError(
            f"{name}: the {fmt} file is corrupt or truncated ({type(exc).__name__}: {exc})"
        ) from None
    if rgb.width * rgb.height > max_pixels:
        raise ImageRejectedError(f"{name}: the decoded image exceeds {max_pixels} pixels")
    return rgb


def load_image_file(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> Image.Image:
    """Read and decode an image file through :func:`decode_image`.

    Raises:
        ImageRejectedError: missing or unreadable file, over ``max_bytes``, or a bad image.
    """
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageRejectedError(
                f"{path}: {size / 2**20:.1f} MiB is over the {max_bytes / 2**20:.0f} MiB limit"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise ImageRejectedError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    return decode_image(data, name=str(path))


def square_resize(
    img: Image.Image, size: int, resample: Image.Resampling = Image.Resampling.BILINEAR
) -> Image.Image:
    """Centre-crop to a square on the short side, then resize to ``size``×``size``.

    This is fastai's validation-time ``Resize(size)`` (crop method), so maps computed here line
    up with what the model saw during training.
    """
    width, height = img.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return img.resize((size, size), resample, box=(left, top, left + side, top + side))


def to_model_tensor(
    img: Image.Image, size: int, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    """Turn an RGB image into the normalised model input.

    Returns:
        float32 tensor of shape ``(3, size, size)``.
    """
    arr = np.asarray(square_resize(img, size), dtype=np.float32) / 255.0
    tensor = torch.from_numpy(arr).permute(2, 0, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (tensor - mean_t) / std_t


def from_model_tensor(
    tensor: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]
) -> Image.Image:
    """The inverse of :func:`to_model_tensor`: a normalised ``(3, S, S)`` input as an image."""
    mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    arr = (tensor.detach().cpu().float() * std_t + mean_t).clamp(0, 1).permute(1, 2, 0).numpy()
    return Image.fromarray((arr * 255).round().astype(np.uint8), "RGB")
