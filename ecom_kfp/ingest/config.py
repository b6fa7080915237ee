"""Configuration of the ingest stage, shared by the CLI and the KFP component.

Each setting is declared once (:func:`ecom_kfp.settings.setting`); ``ecom-kfp ingest`` flags and
``ingest_op``'s parameter descriptions are derived from it. This module imports no I/O libraries:
image fetch worker processes and ``ecom-kfp ingest --help`` load it cheaply.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from dataclasses import dataclass

from ecom_kfp.ingest.source_policy import SourcePolicy
from ecom_kfp.resources import available_cpus
from ecom_kfp.settings import require, require_given, setting

#: Catalog formats of ``--format``.
FORMATS = ("auto", "jsonl", "amazon", "csv", "parquet")


@dataclass(frozen=True)
class ImageLimits:
    """Size limits of an acceptable image."""

    min_side: int = setting(32, flag="--min-image-side", metavar="PX",
                            help="reject images whose shorter side is below this many pixels")
    max_pixels: int = setting(40_000_000, flag="--max-image-pixels", metavar="PX",
                              help="reject images with more pixels than this (also a decompression-bomb guard)")
    max_bytes: int = setting(20 << 20, flag="--max-image-bytes", metavar="BYTES",
                             help="reject images (downloads and local files) larger than this")

    def __post_init__(self) -> None:
        require([
            (self.min_side >= 1, "--min-image-side", self.min_side, "must be >= 1"),
            (self.max_pixels >= 1, "--max-image-pixels", self.max_pixels, "must be >= 1"),
            (self.max_bytes >= 1, "--max-image-bytes", self.max_bytes, "must be >= 1"),
        ])


@dataclass(frozen=True)
class FetchConfig:
    """How images are fetched and what is accepted (see :mod:`ecom_kfp.ingest.fetch`)."""

    concurrency: int = setting(64, metavar="N", help="images in flight at once, over all hosts")
    per_host: int = setting(16, metavar="N", help="concurrent HTTP requests to one host")
    timeout_seconds: float = setting(20.0, flag="--timeout", metavar="S",
                                     help="deadline of one download attempt (connect + response + body)")
    max_retries: int = setting(2, metavar="N", help="retries after a timeout, reset, truncated transfer, 429 or 5xx "
                                                    "(never after a failed name resolution)")
    backoff_seconds: float = setting(0.5, flag="--backoff", metavar="S",
                                     help="first retry delay; doubles per attempt, with jitter of up to half of it")
    max_backoff_seconds: float = setting(30.0, metavar="S",
                                         help="longest wait between attempts, Retry-After included")
    host_failure_limit: int = setting(
        8, metavar="N", help="consecutive connection failures (refused, unresolvable, unreachable) after which "
                             "a host is not tried again in this run; its remaining images are host_unavailable")
    io_threads: int = setting(
        16, metavar="N", help="threads reading local and gs:// sources, and checking and storing images over 16 KiB "
                              "or bound for a gs:// store (smaller ones are checked on the event loop)")
    decode_pixel_budget: int = setting(
        40_000_000, metavar="PX", help="pixels of all images being decoded at once, over all threads: bounds "
                                       "decode memory whatever the images (an image larger than this decodes alone)")
    fetch_processes: int = setting(
        1, metavar="N", help="worker processes fetching images, each with its own event loop and a share of "
                             "--concurrency, --per-host, --io-threads and --decode-pixel-budget; 1 = fetch in this "
                             "process, whose threads already decode large images on every core; 0 = one per CPU")
    dns_servers: str = setting(
        "", metavar="IP[:PORT],...",
        help="DNS servers that resolve image host names, comma-separated IP addresses with optional ports "
             "([v6]:port for IPv6; default: the system's resolver). The source policy judges the answers")
    limits: ImageLimits = setting(factory=ImageLimits, help="accepted image sizes")
    policy: SourcePolicy = setting(factory=SourcePolicy, help="which image sources may be read")

    def __post_init__(self) -> None:
        require([
            (self.concurrency >= 1, "--concurrency", self.concurrency, "must be at least 1"),
            (self.per_host >= 1, "--per-host", self.per_host, "must be at least 1"),
            (self.io_threads >= 1, "--io-threads", self.io_threads, "must be at least 1"),
            (self.timeout_seconds > 0, "--timeout", self.timeout_seconds, "must be positive"),
            (self.max_retries >= 0, "--max-retries", self.max_retries, "must be >= 0"),
            (self.backoff_seconds >= 0, "--backoff", self.backoff_seconds, "must be >= 0"),
            (self.host_failure_limit >= 1, "--host-failure-limit", self.host_failure_limit, "must be at least 1"),
            (self.decode_pixel_budget >= 1, "--decode-pixel-budget", self.decode_pixel_budget, "must be >= 1"),
            (self.fetch_processes >= 0, "--fetch-processes", self.fetch_processes, "must be >= 0 (0 = one per CPU)"),
        ])
        try:
            _ = self.nameservers  # parsed now, so that a bad entry fails the configuration, not the fetch
        except ValueError as err:
            require([(False, "--dns-servers", self.dns_servers, str(err))])

    @property
    def nameservers(self) -> list[tuple[str, int]]:
        """The (address, port) pairs of ``dns_servers``; empty for the system's resolver.

        Raises:
            ValueError: an entry is not an IP address with an optional port in 1-65535. Servers are
                addresses, not names: a name would need a resolver to find the resolver.
        """
        return [_nameserver(entry) for entry in (e.strip() for e in self.dns_servers.split(",")) if entry]

    def process_count(self, total: int | None = None) -> int:
        """Worker processes a fetch of ``total`` sources uses.

        Each process needs at least one slot of ``concurrency`` and ``per_host``, and more processes
        than sources would only cost start-up time.
        """
        wanted = self.fetch_processes or available_cpus()
        return max(1, min(wanted, self.concurrency, self.per_host, wanted if total is None else total))


def _nameserver(entry: str) -> tuple[str, int]:
    """``IP``, ``IP:PORT``, ``IPv6`` or ``[IPv6]:PORT`` as (address, port); port 53 when not given."""
    try:
        return str(ipaddress.ip_address(entry)), 53  # a bare IPv6 address: its colons are not a port
    except ValueError:
        pass
    try:
        parsed = urllib.parse.urlsplit(f"//{entry}")
        address, port = ipaddress.ip_address(parsed.hostname or ""), parsed.port
    except ValueError:
        address, port = None, 0
    if address is None or port == 0 or entry.endswith(":"):
        raise ValueError(f"{entry!r} is not an IP address with an optional port in 1-65535")
    return str(address), 53 if port is None else port


@dataclass(frozen=True, kw_only=True)
class IngestConfig:
    """What ``ecom-kfp ingest`` and ``ingest_op`` run on; each field's help is its documentation."""

    catalog: str = setting("", metavar="URI", help="catalog file: local path or gs:// URI (gzip is detected); "
                                                   "JSON lines, Amazon metadata, CSV or Parquet")
    out: str = setting(metavar="URI", help="output directory or gs:// prefix")
    format: str = setting("auto", choices=FORMATS,
                          help="catalog format; auto guesses from the name and the first record")
    column_map: str = setting(
        "", metavar="FIELD=COLUMN,...",
        help="catalog columns of the products fields; a>b>c builds a category path from several columns, a|b takes "
             "the first non-empty, e.g. product_id=id,title=productDisplayName,"
             "category_path=masterCategory>subCategory>articleType,image_url=image")
    images_base: str = setting(
        "", metavar="URL_OR_URI",
        help="URL, gs:// prefix or directory that relative image references resolve against (default: the "
             "catalog's directory); the source policy applies to what they resolve to")
    business_value_uri: str = setting(
        "", flag="--business-value", metavar="URI",
        help="per-category value table (CSV category_path,business_value, JSON or Parquet); products in "
             "categories it does not list are rejected as unknown_category")
    shard_index: int = setting(0, metavar="I", help="this shard (0-based)")
    num_shards: int = setting(1, metavar="N", help="shards the catalog is split into")
    min_title_tokens: int = setting(3, metavar="N",
                                    help="reject titles with fewer tokens once special characters are spaces")
    fetch: FetchConfig = setting(factory=FetchConfig, help="image fetching")
    progress: bool = setting(True, flag="--no-progress", help="show progress bars")

    def __post_init__(self) -> None:
        require_given([("--catalog", self.catalog), ("--out", self.out)])
        require([
            (self.num_shards >= 1, "--num-shards", self.num_shards, "must be at least 1"),
            (0 <= self.shard_index < self.num_shards, "--shard-index", self.shard_index,
             f"must be in [0, --num-shards {self.num_shards})"),
            (self.min_title_tokens >= 0, "--min-title-tokens", self.min_title_tokens, "must be >= 0"),
        ])
