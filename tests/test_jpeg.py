"""``ecom_kfp.jpeg``: which JPEGs libjpeg-turbo takes, and that its reduced decode still sees every byte."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from ecom_kfp import jpeg


def _jpeg(size: tuple[int, int] = (200, 150), mode: str = "RGB") -> bytes:
    rng = random.Random(7)
    image = Image.new("RGB", size)
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(size[0] * size[1])])
    out = io.BytesIO()
    image.convert(mode).save(out, format="JPEG", quality=90)
    return out.getvalue()


def _pillow_decodes(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except OSError:
        return False
    return True


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_turbo_size_of_colour_and_grey_jpegs(mode: str) -> None:
    assert jpeg.turbo_size(_jpeg((200, 150), mode)) == (200, 150)


def test_pillow_keeps_what_libjpeg_turbo_would_read_differently() -> None:
    out = io.BytesIO()
    Image.new("CMYK", (40, 40), (0, 80, 160, 20)).save(out, format="JPEG")
    assert jpeg.turbo_size(out.getvalue()) is None  # CMYK: colours differ between the two decoders
    png = io.BytesIO()
    Image.new("RGB", (40, 40)).save(png, format="PNG")
    assert jpeg.turbo_size(png.getvalue()) is None
    assert jpeg.turbo_size(b"\xff\xd8\xff" + bytes(100)) is None  # no readable header


def test_reduced_decode_catches_cut_off_and_overwritten_data() -> None:
    data = _jpeg()
    assert jpeg.decodes_cleanly(data)
    for cut in (len(data) // 3, len(data) - 2):
        assert not jpeg.decodes_cleanly(data[:cut])
        assert not _pillow_decodes(data[:cut])
    # Zeros over the middle of the scan: the entropy decoder hits invalid codes at any scale.
    zeroed = data[: len(data) // 2] + bytes(64) + data[len(data) // 2 + 64:]
    assert not jpeg.decodes_cleanly(zeroed)
    assert _pillow_decodes(zeroed)  # Pillow only warns: strict refusal is not a verdict
