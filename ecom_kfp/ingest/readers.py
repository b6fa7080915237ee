"""Catalog readers: JSON lines, Amazon product metadata, CSV and Parquet, local or ``gs://``.

A reader streams :class:`RawRecord` (a parsed record as a dict) or :class:`BadRecord` (a line or
row that could not be parsed, with its reject reason), so a malformed line becomes a reject row
instead of stopping the run. Gzip input is detected by its magic bytes; a gzip file cut off
mid-stream yields every complete line, then its partial tail as a ``truncated_file`` record, and
sets :attr:`Catalog.truncated` (the report says the catalog was incomplete).
"""

from __future__ import annotations

import ast
import collections
import contextlib
import csv
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ecom_kfp import uri
from ecom_kfp.ingest import column_map
from ecom_kfp.ingest.config import FORMATS
from ecom_kfp.ingest.reasons import Reason

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
_SNIFF_BYTES = 64 << 10
#: Physical lines one CSV record may span; a quote left open is given up on after this many.
_MAX_RECORD_LINES = 1000
_SURROGATE = re.compile("[\ud800-\udfff]")
_LONE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass(frozen=True)
class RawRecord:
    """A parsed catalog record; ``position`` is its 1-based record number in the file."""

    position: int
    fields: dict[str, Any]


@dataclass(frozen=True)
class BadRecord:
    """A record that could not be parsed."""

    position: int
    reason: Reason
    detail: str


Record = RawRecord | BadRecord


@dataclass
class Catalog:
    """An open catalog: its format, its header (fixed-schema formats) and its records.

    ``truncated`` becomes true once iteration reaches the end of a compressed file that was cut off.
    """

    uri: str
    format: str
    columns: list[str] | None
    _records: Iterator[Record]
    truncated: bool = field(default=False)

    def __iter__(self) -> Iterator[Record]:
        return self._records

    def default_column_map(self) -> dict[str, str]:
        return column_map.AMAZON if self.format == "amazon" else column_map.IDENTITY


class _Lines:
    """Complete text lines of a plain or gzip file; remembers a gzip stream cut mid-way."""

    def __init__(self, path: str):
        self.path = path
        self.truncated = False
        #: Text after the last newline of a truncated file (the record that was cut).
        self.tail = ""

    def __iter__(self) -> Iterator[str]:
        with open(self.path, "rb") as fh:
            head = fh.read(2)
            fh.seek(0)
            chunks = self._gunzip(fh) if head == _GZIP_MAGIC else iter(lambda: fh.read(_CHUNK), b"")
            pending = b""
            for chunk in chunks:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", errors="surrogateescape")
            if pending and not self.truncated:
                yield pending.decode("utf-8", errors="surrogateescape")  # no final newline
            elif pending:
                self.tail = pending.decode("utf-8", errors="replace")

    def _gunzip(self, fh) -> Iterator[bytes]:
        decomp = zlib.decompressobj(wbits=31)
        while True:
            data = fh.read(_CHUNK)
            if not data:
                break
            while data:
                yield decomp.decompress(data)
                # Concatenated gzip members are one valid file (what `cat a.gz b.gz` makes).
                data = decomp.unused_data if decomp.eof else b""
                if data:
                    decomp = zlib.decompressobj(wbits=31)
        yield decomp.flush()
        self.truncated = not decomp.eof


def _text(line: str) -> str:
    return line.lstrip("\ufeff").rstrip("\r")


def _preview(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _parse_json_object(line: str, allow_python_literal: bool) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as err:
        if not allow_python_literal:
            raise ValueError(f"invalid JSON: {err.msg} at column {err.colno}") from err
        # The 2014 Amazon metadata dumps are Python dict reprs ('...' quotes, True/None).
        try:
            value = ast.literal_eval(line)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as lit_err:
            raise ValueError(f"neither JSON nor a Python literal: {type(lit_err).__name__}") from lit_err
    if not isinstance(value, dict):
        raise ValueError(f"a {type(value).__name__}, not an object")
    return value


def _unencodable(text: str) -> bool:
    """True when ``text`` holds surrogates: undecodable bytes kept by ``surrogateescape``, or a lone
    ``\\udXXX`` escape of JSON or a Python literal. Parquet cannot store them, so such a record would
    fail the run at the final write."""
    return _SURROGATE.search(text) is not None


def _line_records(lines: _Lines, catalog: Catalog, allow_python_literal: bool) -> Iterator[Record]:
    number = 0
    for number, raw in enumerate(lines, start=1):
        line = _text(raw).strip()
        if not line:
            continue  # blank lines separate nothing and hold no product
        if _unencodable(line):
            yield BadRecord(number, Reason.MALFORMED_LINE, "not UTF-8 text")
            continue
        try:
            fields = _parse_json_object(line, allow_python_literal)
        except ValueError as err:
            yield BadRecord(number, Reason.MALFORMED_LINE, f"{err}: {_preview(line)}")
            continue
        if _LONE_ESCAPE.search(line) and _unencodable(json.dumps(fields, ensure_ascii=False, default=str)):
            yield BadRecord(number, Reason.MALFORMED_LINE, "a lone surrogate escape (\\udXXX): not Unicode text")
            continue
        yield RawRecord(number, fields)
    yield from _truncation(lines, catalog, number)


def _truncation(lines: _Lines, catalog: Catalog, position: int) -> Iterator[Record]:
    catalog.truncated = lines.truncated
    if lines.truncated and lines.tail.strip():
        yield BadRecord(position + 1, Reason.TRUNCATED_FILE,
                        f"compressed file ends mid-record: {_preview(lines.tail.strip())}")


class _PhysicalLines:
    """The numbered lines of a CSV body, with lines pushed back to be parsed again."""

    def __init__(self, lines: Iterator[str], first_number: int):
        self._source = enumerate(lines, start=first_number)
        self._replay: collections.deque[tuple[int, str]] = collections.deque()
        self.last_number = first_number - 1

    def next(self) -> tuple[int, str] | None:
        if self._replay:
            return self._replay.popleft()
        item = next(self._source, None)
        if item is not None:
            self.last_number = item[0]
        return item

    def push_back(self, items: list[tuple[int, str]]) -> None:
        self._replay.extendleft(reversed(items))


class _RecordFeed:
    """Feeds the lines of one CSV record to ``csv.reader`` and remembers which it took.

    ``ended`` means the reader asked for more after the last line (or after ``_MAX_RECORD_LINES``):
    a quoted field was still open, so the "record" is an unterminated quote swallowing rows.
    """

    def __init__(self, lines: _PhysicalLines):
        self.lines = lines
        self.taken: list[tuple[int, str]] = []
        self.ended = False

    def __iter__(self) -> Iterator[str]:
        while len(self.taken) < _MAX_RECORD_LINES and (item := self.lines.next()) is not None:
            self.taken.append(item)
            yield _text(item[1]) + "\n"  # newlines go back in so quoted fields spanning lines keep theirs
        self.ended = True


def _csv_records(lines: _Lines, header: list[str], catalog: Catalog) -> Iterator[Record]:
    """One record per CSV row, numbered by its first physical line (the header is line 1).

    A row whose quoted field never closes (or that spans lines and has the wrong number of fields)
    does not swallow the rows after it: its first line is rejected and the following lines are
    parsed again on their own, so every physical line ends as a record, a reject or a blank.
    """
    body = iter(lines)
    next(body, None)  # the header, already read
    physical = _PhysicalLines(body, first_number=2)
    while True:
        feed = _RecordFeed(physical)
        try:
            row, error = next(csv.reader(feed)), None
        except StopIteration:
            break
        except csv.Error as err:
            row, error = [], f"CSV error: {err}"
        first, spanned = feed.taken[0][0], len(feed.taken) > 1
        if error is None and spanned and feed.ended:
            error = "a quoted field is never closed"
        elif error is None and spanned and len(row) != len(header):
            error = f"a quoted field spans lines {first}-{feed.taken[-1][0]} and gives {len(row)} fields"
        if error is not None and spanned:
            physical.push_back(feed.taken[1:])
            yield BadRecord(first, Reason.MALFORMED_LINE, f"{error}; the lines after it are read on their own")
            continue
        if error is None and (not row or row == [""]):
            continue
        if error is None and len(row) != len(header):
            error = f"{len(row)} fields, header has {len(header)}: {_preview(','.join(row))}"
        if error is None and _unencodable("".join(row)):
            error = "not UTF-8 text"
        yield BadRecord(first, Reason.MALFORMED_LINE, error) if error else RawRecord(first, dict(zip(header, row)))
    yield from _truncation(lines, catalog, physical.last_number)


def _csv_header(lines: _Lines, catalog_uri: str) -> list[str]:
    first = next(iter(lines), None)
    if first is None:
        return []
    header = next(csv.reader([_text(first)]), [])
    if len(set(header)) != len(header):
        raise ValueError(f"--catalog {catalog_uri}: CSV header repeats a column: {header}")
    return header


def _parquet_records(path: str) -> Iterator[Record]:
    import pyarrow.parquet as pq

    position = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=8192):
        for row in batch.to_pylist():
            position += 1
            yield RawRecord(position, row)


def sniff_format(path: str, catalog_uri: str) -> str:
    """Guess the format from the name, then the first record (Amazon records carry ``asin``).

    An empty file reads as zero records in any format; it is reported as ``jsonl``.
    """
    name = catalog_uri.lower().removesuffix(".gz")
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".csv"):
        return "csv"
    first = next((text for text in map(str.strip, map(_text, _Lines(path))) if text), None)
    if first is None:
        return "jsonl"
    if first.startswith("{"):
        return "amazon" if ("'asin'" in first or '"asin"' in first) else "jsonl"
    raise ValueError(f"--format auto cannot tell the format of --catalog {catalog_uri}; "
                     f"pass --format one of {', '.join(FORMATS[1:])}")


@contextlib.contextmanager
def open_catalog(catalog_uri: str, fmt: str = "auto") -> Iterator[Catalog]:
    """Open a catalog at a local path or ``gs://`` URI (downloaded to a temporary file first).

    Raises:
        FileNotFoundError: nothing at ``catalog_uri`` (names ``--catalog``).
        ValueError: unknown or undetectable format (names ``--format``).
    """
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if not uri.exists(catalog_uri):
        raise FileNotFoundError(f"--catalog {catalog_uri}: no such file or object")
    with uri.local_copy(catalog_uri) as path:
        if fmt == "auto":
            fmt = sniff_format(path, catalog_uri)
        catalog = Catalog(catalog_uri, fmt, None, iter(()))
        lines = _Lines(path)
        if fmt in ("jsonl", "amazon"):
            catalog._records = _line_records(lines, catalog, allow_python_literal=fmt == "amazon")
        elif fmt == "csv":
            catalog.columns = _csv_header(_Lines(path), catalog_uri)
            catalog._records = _csv_records(lines, catalog.columns, catalog)
        else:
            import pyarrow.parquet as pq

            try:
                catalog.columns = pq.ParquetFile(path).schema_arrow.names
            except Exception as err:  # pyarrow raises several types for a broken footer
                raise ValueError(f"--catalog {catalog_uri} is not a readable Parquet file: {err}") from err
            catalog._records = _parquet_records(path)
        yield catalog

