"""Why the TFRecord build rejected a product: reason codes of its ``rejects.parquet``."""

from __future__ import annotations

import enum

STAGE = "tfrecord-build"


class Reason(str, enum.Enum):
    """Reject reason codes of the TFRecord build stage."""

    MISSING_TITLE = "missing_title"  # null or blank title: nothing to tokenise
    MISSING_IMAGE = "missing_image"  # no image_uri to read
    IMAGE_NOT_FOUND = "image_not_found"  # the image copy ingest made is gone
    IMAGE_READ_ERROR = "image_read_error"  # the image exists but could not be read
    CORRUPT_IMAGE = "corrupt_image"  # read, but Pillow cannot decode it (corrupt, truncated, not an image)

