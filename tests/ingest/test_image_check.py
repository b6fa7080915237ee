"""What counts as a usable image, and what is stored."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from ecom_kfp import jpeg
from ecom_kfp.ingest.image_check import CheckedImage, ImageLimits, ImageProblem, check_image
from ecom_kfp.ingest.reasons import Reason

from .conftest import jpeg_bytes, png_bytes

LIMITS = ImageLimits(min_side=32, max_pixels=1_000_000, max_bytes=1 << 20)


def test_jpeg_is_stored_byte_for_byte() -> None:
    data = jpeg_bytes()
    checked = check_image(data, "image/jpeg", LIMITS)
    assert isinstance(checked, CheckedImage)
    assert checked.data == data and checked.sha256 == hashlib.sha256(data).hexdigest()
    assert (checked.width, checked.height) == (64, 48)


def test_clean_jpegs_need_no_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pillow(*_args, **_kwargs) -> None:
        raise AssertionError("Pillow opened a JPEG libjpeg-turbo decodes cleanly")

    monkeypatch.setattr(Image, "open", no_pillow)
    checked = check_image(jpeg_bytes((80, 60)), "image/jpeg", LIMITS)
    assert isinstance(checked, CheckedImage) and (checked.width, checked.height) == (80, 60)
    assert check_image(jpeg_bytes((20, 60)), None, LIMITS).reason is Reason.TOO_SMALL  # from the header


def test_jpegs_libjpeg_turbo_refuses_or_skips_are_judged_by_pillow() -> None:
    noise = io.BytesIO()
    Image.effect_noise((200, 150), 64).convert("RGB").save(noise, format="JPEG", quality=90)
    data = noise.getvalue()
    zeroed = data[: len(data) // 2] + bytes(64) + data[len(data) // 2 + 64:]
    assert not jpeg.decodes_cleanly(zeroed)
    checked = check_image(zeroed, "image/jpeg", LIMITS)  # Pillow decodes it, with a warning
    assert isinstance(checked, CheckedImage) and checked.data == zeroed
    out = io.BytesIO()
    Image.new("CMYK", (40, 40), (0, 80, 160, 20)).save(out, format="JPEG")
    assert jpeg.turbo_size(out.getvalue()) is None
    checked = check_image(out.getvalue(), "image/jpeg", LIMITS)
    assert isinstance(checked, CheckedImage) and (checked.width, checked.height) == (40, 40)


def test_png_is_converted_to_jpeg_over_white() -> None:
    checked = check_image(png_bytes(), "image/png", LIMITS)
    assert checked.source_format == "PNG"
    with Image.open(io.BytesIO(checked.data)) as image:
        assert image.format == "JPEG" and image.mode == "RGB"
        red, green, blue = image.getpixel((5, 5))
        assert red > 100  # half-transparent blue over white, not over black


def test_truncated_jpeg_is_caught_by_the_full_decode() -> None:
    data = jpeg_bytes((200, 150))
    checked = check_image(data[: len(data) // 2], "image/jpeg", LIMITS)
    assert checked.reason is Reason.TRUNCATED_IMAGE


def test_non_images_and_broken_images() -> None:
    assert check_image(b"<html>404</html>", "image/jpeg", LIMITS).reason is Reason.NOT_AN_IMAGE
    assert check_image(b"", "image/jpeg", LIMITS).reason is Reason.NOT_AN_IMAGE
    assert check_image(b"\xff\xd8\xff" + bytes(500), "image/jpeg", LIMITS).reason in (
        Reason.CORRUPT_IMAGE, Reason.TRUNCATED_IMAGE)
    png = bytearray(png_bytes())
    png[40] ^= 0xFF  # breaks a chunk CRC, which verify() checks
    assert check_image(bytes(png), "image/png", LIMITS).reason is Reason.CORRUPT_IMAGE


def test_size_limits() -> None:
    assert check_image(jpeg_bytes((20, 60)), None, LIMITS).reason is Reason.TOO_SMALL
    assert check_image(jpeg_bytes((1200, 1000)), None, LIMITS).reason is Reason.TOO_LARGE
    assert check_image(jpeg_bytes(), None, ImageLimits(max_bytes=100)).reason is Reason.TOO_LARGE


def _stored_grey(result) -> np.ndarray:
    assert isinstance(result, CheckedImage), result
    with Image.open(io.BytesIO(result.data)) as image:
        return np.asarray(image.convert("L"), dtype=np.float64)


def _ramp(high: float, dtype) -> np.ndarray:
    """A 64x64 horizontal ramp from 0 to ``high``: the stored picture must keep it, not clip it."""
    return np.tile(np.linspace(0, high, 64), (64, 1)).astype(dtype)


def _encoded(array: np.ndarray, fmt: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_greyscale_is_scaled_not_clipped_white(fmt: str) -> None:
    """Before: every pixel above 255 of 65535 was stored pure white."""
    data = _encoded(_ramp(65535, np.uint16), fmt)
    grey = _stored_grey(check_image(data, None, LIMITS))
    expected = _ramp(255, np.float64)
    assert np.abs(grey - expected).mean() < 3
    assert grey[:, :8].mean() < 20 and grey[:, -8:].mean() > 235


def test_float_tiff_in_0_1_is_scaled_not_stored_black() -> None:
    """Before: values 0..1 were stored as 0 or 1 of 255, a black picture."""
    data = _encoded(_ramp(1.0, np.float32), "TIFF")
    grey = _stored_grey(check_image(data, "image/tiff", LIMITS))
    assert np.abs(grey - _ramp(255, np.float64)).mean() < 3


def test_float_tiff_already_in_0_255_is_kept() -> None:
    data = _encoded(_ramp(255.0, np.float32), "TIFF")
    grey = _stored_grey(check_image(data, "image/tiff", LIMITS))
    assert np.abs(grey - _ramp(255, np.float64)).mean() < 3


@pytest.mark.parametrize("values", [np.full((64, 64), np.nan, np.float32), _ramp(-5.0, np.float32),
                                    _ramp(1e6, np.float32)])
def test_float_pixels_without_an_8_bit_meaning_are_rejected(values: np.ndarray) -> None:
    result = check_image(_encoded(values, "TIFF"), "image/tiff", LIMITS)
    assert isinstance(result, ImageProblem) and result.reason is Reason.UNSUPPORTED_PIXELS
