"""The image-intake path against hostile and unusual files."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cam_core.errors import ImageRejectedError
from cam_core.intake.images import (
    BACKGROUND_RGB,
    MAX_PIXELS,
    decode_image,
    load_image_file,
    sniff_format,
    square_resize,
)


def _encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR claiming huge dimensions, with a tiny IDAT."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00"))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"%PDF-1.7\n1 0 obj", "PDF"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n", "EPS"),
        (b"SIMPLE  =                    T", "FITS"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "HTML"),
        (b"\x00\x00\x00\x1cftypheic\x00\x00\x00\x00mif1heic", "HEIC"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1", "AVIF"),
        (b"just some words in a text file", "text file"),
        (b"\x01\x02\x03\x04\x05garbage", "not a recognised image format"),
    ],
)
def test_refused_formats_are_named(data: bytes, named: str) -> None:
    with pytest.raises(ImageRejectedError, match=named):
        decode_image(data, name="upload.jpg")


def test_heic_message_says_how_to_fix() -> None:
    with pytest.raises(ImageRejectedError, match="convert to JPEG or PNG"):
        decode_image(b"\x00\x00\x00\x1cftypheic\x00\x00\x00\x00", name="x.heic")


def test_format_comes_from_bytes_not_name(tmp_path: Path) -> None:
    png = _encode(Image.new("RGB", (8, 8), (1, 2, 3)), "PNG")
    disguised = tmp_path / "photo.jpg"
    disguised.write_bytes(png)
    assert sniff_format(png) == "PNG"
    assert load_image_file(disguised).getpixel((0, 0)) == (1, 2, 3)


def test_empty_truncated_and_corrupt_files_are_refused() -> None:
    with pytest.raises(ImageRejectedError, match="empty"):
        decode_image(b"")
    jpeg = _encode(Image.new("RGB", (64, 64), (200, 100, 50)), "JPEG")
    with pytest.raises(ImageRejectedError, match="corrupt or truncated"):
        decode_image(jpeg[: len(jpeg) // 2])
    png = _encode(
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)),
        "PNG",
    )
    with pytest.raises(ImageRejectedError, match="corrupt or truncated"):
        decode_image(png[: len(png) - 200])


def test_pixel_cap_is_enforced_before_decoding() -> None:
    large = _png_header_only(7_100, 7_100)  # 50 MP claimed by a ~70-byte file
    with pytest.raises(ImageRejectedError, match="50.4 MP, over the 40 MP limit"):
        decode_image(large)
    for side in (10_000, 30_000):  # Pillow's own bomb warning/error zones
        with pytest.raises(ImageRejectedError, match="(decompression bomb|over the 40 MP)"):
            decode_image(_png_header_only(side, side))
    with pytest.raises(ImageRejectedError, match="over the 0 MP limit"):
        decode_image(_encode(Image.new("RGB", (20, 20)), "PNG"), max_pixels=100)
    assert MAX_PIXELS == 40_000_000


def test_exif_orientation_is_applied() -> None:
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 10, 20))  # blue strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    out = decode_image(_encode(img, "JPEG", exif=exif.tobytes(), quality=95))
    assert out.size == (20, 40)
    top = np.asarray(out)[2, 10]
    assert top[2] > 150 and top[0] < 100  # the blue strip is now on top


@pytest.mark.parametrize(
    ("img", "fmt", "expected"),
    [
        (Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", (255, 0, 0)),
        (Image.new("P", (8, 8), 0), "PNG", (0, 0, 0)),
        (Image.new("L", (8, 8), 128), "PNG", (128, 128, 128)),
        (Image.new("1", (8, 8), 1), "BMP", (255, 255, 255)),
        (Image.new("RGBA", (8, 8), (0, 0, 0, 0)), "PNG", BACKGROUND_RGB),
        (Image.new("RGBA", (8, 8), (0, 0, 255, 255)), "WEBP", (0, 0, 255)),
        (Image.new("LA", (8, 8), (0, 0)), "PNG", BACKGROUND_RGB),
    ],
)
def test_modes_become_8_bit_rgb(img: Image.Image, fmt: str, expected: tuple[int, int, int]) -> None:
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    out = decode_image(_encode(img, fmt, **kwargs))
    assert out.mode == "RGB"
    assert np.abs(np.asarray(out)[4, 4].astype(int) - np.array(expected)).max() <= 3


def test_sixteen_bit_is_scaled_not_clipped() -> None:
    ramp = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 257).astype(np.uint16)
    img = Image.fromarray(ramp)
    assert img.mode.startswith("I;16")
    out = np.asarray(decode_image(_encode(img, "PNG")))[..., 0]
    assert out.min() == 0 and out.max() == 255
    assert len(np.unique(out)) > 200


def test_animated_gif_gives_the_first_frame() -> None:
    frames = [Image.new("RGB", (10, 10), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    out = decode_image(buffer.getvalue())
    assert out.mode == "RGB" and np.asarray(out)[5, 5, 0] > 200


def test_square_resize_centre_crops() -> None:
    img = Image.new("RGB", (300, 100), (0, 0, 0))
    img.paste((255, 255, 255), (100, 0, 200, 100))
    out = square_resize(img, 50)
    assert out.size == (50, 50) and np.asarray(out).mean() > 250


_SEEDS = [
    _encode(Image.new("RGB", (24, 16), (10, 200, 30)), "PNG"),
    _encode(Image.new("RGB", (24, 16), (10, 200, 30)), "JPEG"),
    _encode(Image.new("RGBA", (12, 12), (1, 2, 3, 4)), "WEBP"),
    _encode(Image.new("P", (12, 12), 3), "GIF"),
    _encode(Image.new("RGB", (12, 12)), "BMP"),
    _encode(Image.new("RGB", (12, 12)), "TIFF"),
]


def _check(data: bytes) -> None:
    try:
        out = decode_image(data, max_pixels=1_000_000)
    except ImageRejectedError as exc:
        assert "\n" not in str(exc)
        return
    assert out.mode == "RGB"
    assert out.width * out.height <= 1_000_000


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_give_rgb_or_our_error(data: bytes) -> None:
    _check(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_SEEDS),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(0, 10_000),
)
def test_mutated_real_images_give_rgb_or_our_error(
    seed: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(seed)
    for position, value in flips:
        data[position % len(data)] = value
    _check(bytes(data[: max(1, len(data) - cut % len(data))]))


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"\xff\xd8\xff\xe0rest", "JPEG"),
        (b"\x89PNG\r\n\x1a\nrest", "PNG"),
        (b"GIF87a....", "GIF"),
        (b"GIF89a....", "GIF"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "WEBP"),
        (b"BM\x00\x00", "BMP"),
        (b"II*\x00\x08\x00", "TIFF"),
        (b"MM\x00*\x00\x08", "TIFF"),
    ],
)
def test_each_allowed_format_is_recognised_by_its_magic_bytes(head: bytes, fmt: str) -> None:
    assert sniff_format(head) == fmt


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", "not a recognised image format"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00", "MP4/QuickTime video"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00", "HEIF images are unsupported"),
        (b"PK\x03\x04zipped", "ZIP files"),
        (b"\x00\x00\x01\x00\x01\x00", "ICO files"),
        (b"8BPS\x00\x01", "PSD files"),
        (b"\xc5\xd0\xd3\xc6\x00", "EPS/PostScript"),
        (b"  <svg width='1'/>", "SVG files"),
        (b"<html><body>", "HTML files"),
        (b"<?xml version='1.0'?><root/>", "XML files"),
        (b"line one\r\n\tline two", "a text file"),
        (b"%PDF-1.4", "PDF files"),
        (b"%!PS-Adobe", "EPS/PostScript files"),
        (b"SIMPLE  =    T", "FITS files"),
        (b"\n  <!doctype html><html>", "HTML files"),
        (b"\xff\xfe\x00broken utf8 \x80", "not a recognised image format"),
    ],
)
def test_refusals_say_what_the_file_is(data: bytes, message: str) -> None:
    with pytest.raises(ImageRejectedError) as caught:
        sniff_format(data)
    assert str(caught.value).startswith(message)


def test_pixel_limits_are_inclusive_and_files_over_the_byte_limit_are_refused(
    tmp_path: Path,
) -> None:
    data = _encode(Image.new("RGB", (20, 10), (9, 9, 9)), "PNG")
    assert decode_image(data, max_pixels=200).size == (20, 10)
    with pytest.raises(ImageRejectedError, match="20x10"):
        decode_image(data, max_pixels=199)
    path = tmp_path / "x.png"
    path.write_bytes(data)
    assert load_image_file(path, max_bytes=len(data)).size == (20, 10)
    with pytest.raises(ImageRejectedError, match="over the"):
        load_image_file(path, max_bytes=len(data) - 1)
    with pytest.raises(ImageRejectedError, match="cannot read"):
        load_image_file(tmp_path / "missing.png")


def test_float_and_wide_integer_images_are_stretched_to_8_bits() -> None:
    from cam_core.intake.images import _to_rgb

    values = np.array([[-1.0, 0.0], [1.0, 3.0]], dtype=np.float32)
    out = np.asarray(_to_rgb(Image.fromarray(values, mode="F")))[..., 0]
    assert out.tolist() == [[0, 64], [128, 255]]
    # the range always holds 0: a constant 5 is the top, a constant 0 stays 0
    flat = np.asarray(_to_rgb(Image.fromarray(np.full((2, 2), 5.0, np.float32), mode="F")))
    assert (flat == 255).all()
    zero = np.asarray(_to_rgb(Image.fromarray(np.zeros((2, 2), np.float32), mode="F")))
    assert (zero == 0).all()
    wide = np.array([[0, 70000], [140000, 35000]], dtype=np.int32)
    out = np.asarray(_to_rgb(Image.fromarray(wide, mode="I")))[..., 0]
    assert out.tolist() == [[0, 128], [255, 64]]
    small = np.array([[0, 65535]], dtype=np.int32)
    assert np.asarray(_to_rgb(Image.fromarray(small, mode="I")))[..., 0].tolist() == [[0, 255]]
    palette = Image.new("P", (2, 2), 0)
    palette.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    palette.info["transparency"] = 0
    assert np.asarray(_to_rgb(palette))[0, 0].tolist() == list(BACKGROUND_RGB)


def test_model_tensors_round_trip_through_the_normalisation() -> None:
    from cam_core.intake.images import from_model_tensor, to_model_tensor

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)
    img = Image.fromarray(pixels)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    tensor = to_model_tensor(img, 12, mean, std)
    assert tensor.shape == (3, 12, 12) and tensor.dtype.is_floating_point
    crop = pixels[:, 4:16].astype(np.float32) / 255  # the centred 12x12 square, not resized
    expected = (crop - np.array(mean, np.float32)) / np.array(std, np.float32)
    np.testing.assert_allclose(tensor.permute(1, 2, 0).numpy(), expected, atol=1e-5)
    back = np.asarray(from_model_tensor(tensor, mean, std))
    np.testing.assert_array_equal(back, pixels[:, 4:16])


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L", "I;16N"])
def test_every_16_bit_layout_is_scaled_to_8_bits(mode: str) -> None:
    from cam_core.intake.images import _to_rgb

    img = Image.new(mode, (2, 1))
    img.putpixel((0, 0), 65535)
    img.putpixel((1, 0), 32768)
    out = np.asarray(_to_rgb(img))
    assert out.dtype == np.uint8 and out[0, 0].tolist() == [255, 255, 255]
    assert out[0, 1].tolist() == [128, 128, 128]


@pytest.mark.parametrize("mode", ["PA", "LA", "RGBa"])
def test_every_mode_with_alpha_is_composited_on_the_background(mode: str) -> None:
    from cam_core.intake.images import _to_rgb

    img = Image.new(mode, (2, 2))  # fully transparent
    assert np.asarray(_to_rgb(img))[0, 0].tolist() == list(BACKGROUND_RGB)


def test_rgb_is_kept_as_it_is_and_a_palette_without_transparency_is_not_composited() -> None:
    from cam_core.intake.images import _to_rgb

    rgb = Image.new("RGB", (2, 2), (1, 2, 3))
    assert _to_rgb(rgb) is rgb
    palette = Image.new("P", (2, 2), 0)
    palette.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    assert np.asarray(_to_rgb(palette))[0, 0].tolist() == [10, 20, 30]
    wide = Image.fromarray(np.array([[65535, 65536 * 2 - 1]], dtype=np.int32), mode="I")
    assert np.asarray(_to_rgb(wide))[0, :, 0].tolist() == [127, 255]  # scaled by its own top


def test_float_ranges_hold_zero_and_16_bit_uses_its_full_scale() -> None:
    from cam_core.intake.images import _to_rgb

    def stretched(values: list[float]) -> list[int]:
        img = Image.fromarray(np.array([values], dtype=np.float32), mode="F")
        return np.asarray(_to_rgb(img))[0, :, 0].tolist()

    assert stretched([2.0, 4.0]) == [128, 255]
    assert stretched([-3.0, -1.0]) == [0, 170]
    assert stretched([0.0, 0.5]) == [0, 255]
    half = Image.new("I;16", (1, 1))
    half.putpixel((0, 0), 32768)
    assert np.asarray(_to_rgb(half))[0, 0, 0] == 128  # scaled by 65535, not its own top


def test_rgb_with_a_transparent_colour_is_left_alone_and_messages_name_the_input(
    tmp_path: Path,
) -> None:
    from cam_core.intake.images import _to_rgb, from_model_tensor, to_model_tensor

    rgb = Image.new("RGB", (2, 2), (1, 2, 3))
    rgb.info["transparency"] = (1, 2, 3)
    assert np.asarray(_to_rgb(rgb))[0, 0].tolist() == [1, 2, 3]
    with pytest.raises(ImageRejectedError, match="^image: the file is empty"):
        decode_image(b"")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(ImageRejectedError, match=f"^{broken}: the PNG file is corrupt"):
        load_image_file(broken)
    tensor = to_model_tensor(Image.new("RGB", (4, 4), (255, 0, 0)), 4, (0.5,) * 3, (0.25,) * 3)
    assert tensor.dtype == torch.float32
    beyond = from_model_tensor(tensor * 3, (0.5,) * 3, (0.25,) * 3)  # out of range: clamped
    assert np.asarray(beyond)[0, 0].tolist() == [255, 0, 0]


def test_square_crops_start_on_whole_pixels_and_resize_bilinearly() -> None:
    pixels = np.arange(6 * 3 * 3, dtype=np.uint8).reshape(3, 6, 3) * 4
    wide = Image.fromarray(pixels)
    assert np.array_equal(np.asarray(square_resize(wide, 3)), pixels[:, 1:4])
    tall = Image.fromarray(pixels.transpose(1, 0, 2).copy())  # 3 wide, 6 tall
    assert np.array_equal(np.asarray(square_resize(tall, 3)), pixels.transpose(1, 0, 2)[1:4])
    big = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    expected = big.resize((10, 10), Image.Resampling.BILINEAR)
    assert np.array_equal(np.asarray(square_resize(big, 10)), np.asarray(expected))


def test_unknown_bytes_are_judged_as_text_by_their_first_256_bytes() -> None:
    with pytest.raises(ImageRejectedError, match=r"a text file; use JPEG"):
        decode_image(b"a" * 256 + b"\x00 binary beyond the sample")
    with pytest.raises(ImageRejectedError, match=r"not a recognised image format; use JPEG"):
        decode_image(b"a" * 255 + b"\x00")


def test_a_tall_image_is_cropped_around_its_middle_row() -> None:
    rows = np.repeat(np.arange(9, dtype=np.uint8)[:, None] * 20, 3, axis=1)
    tall = Image.fromarray(np.stack([rows] * 3, axis=-1))  # 3 wide, 9 tall: 6 spare rows
    np.testing.assert_array_equal(np.asarray(square_resize(tall, 3)), np.asarray(tall)[3:6])
