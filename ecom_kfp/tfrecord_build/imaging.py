"""One stored image: read, decode with Pillow, resize with the shared contract, re-encode as JPEG."""

from __future__ import annotations

import io
import re
import warnings

from PIL import Image

from ecom_kfp import uri
from ecom_kfp.contracts.features import resize_pil
from ecom_kfp.tfrecord_build.rejects import Reason

#: Everything Pillow raises for bytes it cannot turn into pixels (truncated data raises OSError).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError, EOFError)
#: Object addresses in Pillow's messages (``<_io.BytesIO object at 0x7f...>``): left out, so a re-run
#: or another write piece records the same reject detail.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


class ImageReject(Exception):
    """The image cannot become a record; carries the reject reason."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def read_image(image_uri: str) -> bytes:
    """The stored image's bytes.

    Raises:
        ImageReject: missing, or unreadable.
    """
    try:
        return uri.read_bytes(image_uri)
    except FileNotFoundError as err:
        raise ImageReject(Reason.IMAGE_NOT_FOUND, f"{image_uri}: {err}") from err
    except Exception as err:  # noqa: BLE001 - any I/O failure of one image is that product's reject
        raise ImageReject(Reason.IMAGE_READ_ERROR, f"{image_uri}: {type(err).__name__}: {err}") from err


def reencode(data: bytes, size: int, mode: str, quality: int) -> bytes:
    """Decode ``data``, resize it to ``size`` square (:func:`resize_pil`), encode as JPEG.

    JPEGs are decoded with libjpeg's DCT scaling (``Image.draft``) straight to the smallest
    power-of-two reduction still at least ``size`` on both sides: far less work for large photos,
    and :func:`resize_pil` then does the final resampling as always.

    Raises:
        ImageReject: Pillow cannot decode the bytes.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format == "JPEG":
                image.draft("RGB", (size, size))
            image.load()
    except (*_DECODE_ERRORS, Image.DecompressionBombWarning) as err:
        raise ImageReject(Reason.CORRUPT_IMAGE, _ADDRESS.sub("", f"{type(err).__name__}: {err}")) from err
    out = io.BytesIO()
    resize_pil(image, size, mode).save(out, format="JPEG", quality=quality)
    return out.getvalue()
