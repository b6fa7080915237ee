"""Why batch prediction could not score a product (the ``reason`` of its ``rejects.parquet`` row)."""

from __future__ import annotations

import enum

STAGE = "predict"


class Reason(str, enum.Enum):
    NO_IMAGE = "no_image"
    IMAGE_NOT_FOUND = "image_not_found"
    IMAGE_READ_ERROR = "image_read_error"
    IMAGE_UNDECODABLE = "image_undecodable"
