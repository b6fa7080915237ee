"""JFIF full-range RGB -> YCbCr, the conversion JPEG and Pillow use both ways.

Images are decoded to RGB; the pHash looks at luma (the first row) and the colour thumbnails are
kept in YCbCr. Both apply it as the ``mix`` of :func:`~ecom_kfp.dedupe.separable.project_many`.

Luma recomputed from RGB (rounded to 8 bits and clipped by the decoder) is not quite the luma a
JPEG stores: on myntra's resized and re-encoded copies it moved copies' 64-bit pHashes apart by
0.63 instead of 0.54 bits on average. Decoding the stored luma as well (libjpeg-turbo's GRAY
output) costs a second decode: 30 us more per 60x80 thumbnail and about half the throughput on
800x1066 photos, where the entropy decoding that both decodes repeat dominates.
"""

from __future__ import annotations

import numpy as np

RGB_TO_YCC = np.array([[0.299, 0.587, 0.114],
                       [-0.168736, -0.331264, 0.5],
                       [0.5, -0.418688, -0.081312]], dtype=np.float32)
YCC_OFFSET = np.array([0.0, 128.0, 128.0], dtype=np.float32)
