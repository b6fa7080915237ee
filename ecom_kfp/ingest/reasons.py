"""Why a catalog entry was rejected: the reason codes of ``rejects.parquet``.

Every code is a stable, machine-readable string (reports count by it, dashboards filter on it);
the free-text ``detail`` of a :class:`ecom_kfp.contracts.tables.Reject` says what exactly was wrong
with that one entry.
"""

from __future__ import annotations

import enum

STAGE = "ingest"


class Reason(str, enum.Enum):
    """Reject reason codes of the ingest stage."""

    # Catalog records.
    MALFORMED_LINE = "malformed_line"  # not parseable as a record of the catalog's format
    TRUNCATED_FILE = "truncated_file"  # the partial last record of a compressed file cut mid-stream
    MISSING_PRODUCT_ID = "missing_product_id"
    DUPLICATE_PRODUCT_ID = "duplicate_product_id"  # a later row reusing an accepted row's id
    MISSING_TITLE = "missing_title"  # absent, null or blank
    SHORT_TITLE = "short_title"  # fewer tokens than required once special characters are spaces
    MISSING_CATEGORY = "missing_category"
    UNKNOWN_CATEGORY = "unknown_category"  # not in the per-category business value table
    BAD_VALUE = "bad_value"  # a numeric field (business value) that is not a number
    MISSING_IMAGE = "missing_image"  # no image reference at all
    BAD_IMAGE_URL = "bad_image_url"  # a reference with a scheme we cannot fetch
    BAD_CATEGORY = "bad_category"  # a level with control characters or " > " (would corrupt or merge class names)
    # Source policy (ecom_kfp.ingest.source_policy): refused before anything is read.
    LOCAL_SOURCE_REFUSED = "local_source_refused"  # a local path or file:// without --allow-local-files
    GCS_BUCKET_REFUSED = "gcs_bucket_refused"  # a gs:// bucket not in --allow-gcs-buckets
    PRIVATE_ADDRESS_REFUSED = "private_address_refused"  # a host (or redirect) at a non-public address
    # Image fetching.
    NOT_FOUND = "not_found"  # HTTP 404/410, or no such local file / gs:// object
    HTTP_ERROR = "http_error"  # any other non-success status, after retries where retryable
    TIMEOUT = "timeout"  # connect or read timeout on every attempt
    CONNECTION_ERROR = "connection_error"  # refused / reset / disconnected on every attempt
    TRUNCATED_DOWNLOAD = "truncated_download"  # body shorter than its Content-Length, every attempt
    READ_ERROR = "read_error"  # a local file or gs:// object that exists but could not be read
    NOT_A_REGULAR_FILE = "not_a_regular_file"  # a local FIFO, device, socket or directory: never read
    NAME_NOT_RESOLVED = "name_not_resolved"  # the host name does not resolve (not retried)
    HOST_UNAVAILABLE = "host_unavailable"  # skipped: the host failed --host-failure-limit connections in a row
    # Image content.
    NOT_AN_IMAGE = "not_an_image"  # HTML, text or other non-image bytes (whatever the content type)
    CORRUPT_IMAGE = "corrupt_image"  # image signature, but undecodable
    TRUNCATED_IMAGE = "truncated_image"  # decoder ran out of data (e.g. a cut-off JPEG)
    TOO_SMALL = "too_small"  # shorter side below the minimum
    TOO_LARGE = "too_large"  # more bytes or pixels than allowed
    UNSUPPORTED_PIXELS = "unsupported_pixels"  # high-bit-depth or float pixels with no faithful 8-bit form

