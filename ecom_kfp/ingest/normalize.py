"""Turn one parsed catalog record into a clean :class:`CatalogProduct`, or a :class:`Reject`.

The title rule is e-CLIP's: replace special characters with spaces; fewer than ``min_title_tokens``
tokens left means the title cannot describe a product. Category paths become a list of levels
(level 1 = most general) whatever shape the catalog stores them in: several columns, one
``a > b > c`` string, a list, or Amazon's list of lists (the first list is the primary path).
"""

from __future__ import annotations

import html
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ecom_kfp.contracts.business_value import BusinessValueTable, split_path
from ecom_kfp.contracts.labels import SEPARATOR
from ecom_kfp.contracts.tables import Reject
from ecom_kfp.ingest import sources
from ecom_kfp.ingest.column_map import ColumnMap
from ecom_kfp.ingest.reasons import Reason

#: Business value of a product when neither a column nor a table gives one.
DEFAULT_BUSINESS_VALUE = 1.0
_SPECIAL = re.compile(r"[\W_]+", re.UNICODE)
#: Unicode categories not allowed in a category level: control, format, surrogate, private use, unassigned.
_BAD_CATEGORY_CHARS = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_JOINERS = frozenset({"\u200c", "\u200d"})
_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?|[-+]?\.\d+")


@dataclass(frozen=True)
class CatalogProduct:
    """A product that passed the metadata rules and now needs its image."""

    product_id: str
    title: str
    title_normalized: str
    brand: str | None
    price: float | None
    category_path: tuple[str, ...]
    business_value: float
    image_source: str
    source: str  # the catalog record as JSON


@dataclass(frozen=True)
class Normalizer:
    """The metadata rules of one ingest run."""

    columns: ColumnMap
    images_base: str
    business_values: BusinessValueTable | None = None
    min_title_tokens: int = 3

    def product_id(self, record: Mapping[str, Any]) -> str | None:
        """The record's product id as text (``39386``, not ``39386.0``), or None."""
        return product_id_text(self.columns.get(record, "product_id"))

    def __call__(self, record: Mapping[str, Any]) -> CatalogProduct | Reject:
        pid = self.product_id(record)
        if pid is None:
            return Reject(None, Reason.MISSING_PRODUCT_ID, "no product id")
        raw_title = self.columns.get(record, "title")
        title = clean_title(raw_title) if isinstance(raw_title, (str, int, float)) else ""
        if not title:
            return Reject(pid, Reason.MISSING_TITLE, f"title is {raw_title!r}")
        title_normalized = normalize_title(title)
        if len(title_normalized.split()) < self.min_title_tokens:
            return Reject(pid, Reason.SHORT_TITLE,
                          f"{title!r} has {len(title_normalized.split())} token(s), "
                          f"fewer than {self.min_title_tokens}")
        path = category_path(self.columns.get(record, "category_path"))
        if not path:
            return Reject(pid, Reason.MISSING_CATEGORY, "no category path")
        if (problem := category_problem(path)) is not None:
            return Reject(pid, Reason.BAD_CATEGORY, problem)
        value = self._business_value(record, path)
        if isinstance(value, Reject):
            return Reject(pid, value.reason, value.detail)
        image_ref = self.columns.get(record, "image_url")
        if isinstance(image_ref, (list, tuple)):  # Amazon 2018: a list of image URLs
            image_ref = next((r for r in image_ref if isinstance(r, str) and r.strip()), None)
        if not isinstance(image_ref, str) or not image_ref.strip():
            return Reject(pid, Reason.MISSING_IMAGE, "no image reference")
        image_source = sources.resolve(image_ref, self.images_base)
        if sources.kind(image_source) is None:
            return Reject(pid, Reason.BAD_IMAGE_URL, f"cannot fetch {image_ref!r}")
        brand = self.columns.get(record, "brand")
        return CatalogProduct(
            product_id=pid,
            title=title,
            title_normalized=title_normalized,
            brand=(clean_title(brand) or None) if isinstance(brand, str) else None,
            price=parse_number(self.columns.get(record, "price")),
            category_path=path,
            business_value=value,
            image_source=image_source,
            source=json.dumps(record, ensure_ascii=False, sort_keys=True, default=str),
        )

    def _business_value(self, record: Mapping[str, Any], path: tuple[str, ...]) -> float | Reject:
        raw = self.columns.get(record, "business_value")
        if raw is not None:
            value = parse_number(raw)
            if value is None:
                return Reject(None, Reason.BAD_VALUE, f"business value {raw!r} is not a number")
            return value
        if self.business_values is None:
            return DEFAULT_BUSINESS_VALUE
        value = self.business_values.lookup(path)
        if value is None:
            return Reject(None, Reason.UNKNOWN_CATEGORY,
                          f"{' > '.join(path)!r} matches no entry of the business value table")
        return value


def product_id_text(value: Any) -> str | None:
    """A product id as text; integral floats (CSV/Parquet type drift) lose their ``.0``."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = int(value) if value.is_integer() else value
    if value is None or isinstance(value, (list, dict)):
        return None
    text = str(value).strip()
    return text or None


def clean_title(value: Any) -> str:
    """Human-readable title: HTML entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(str(value)).split())


def normalize_title(title: str) -> str:
    """Matching form of a title: NFKC, lower case, special characters replaced by spaces."""
    text = unicodedata.normalize("NFKC", title).casefold()
    return " ".join(_SPECIAL.sub(" ", text).split())


def category_path(value: Any) -> tuple[str, ...]:
    """A category path as levels, from a string, a list of levels or a list of lists.

    Only a string path is split at ``>``; a level given as a list element (several columns, a list,
    Amazon's lists) is one level even when its name holds a ``>`` (:func:`category_problem` refuses
    one that holds the class-name separator ``" > "``). Whitespace inside a level, line and
    paragraph separators included, becomes single spaces.
    """
    if isinstance(value, str):
        levels: Iterable[Any] = split_path(value)
    elif isinstance(value, (list, tuple)):
        if value and all(isinstance(v, (list, tuple)) for v in value):
            value = value[0]
        levels = (level for level in value if level is not None)
    else:
        return ()
    return tuple(text for text in (" ".join(str(level).split()) for level in levels) if text)


def category_problem(path: Sequence[str]) -> str | None:
    """Why a (whitespace-normalised) path cannot name classes, or None.

    Control, format, private-use, surrogate and unassigned characters would corrupt label files or
    let two different-looking names collide; the zero-width (non-)joiners that some scripts and
    emoji need are kept. A level holding the separator of class names (``" > "``) would make
    ``["A > B", "C"]`` and ``["A", "B > C"]`` one class, and read back as a deeper path.
    """
    for number, level in enumerate(path, start=1):
        if SEPARATOR in level:
            return (f"level {number} {level!r} holds {SEPARATOR!r}, which separates levels in class names; "
                    "give it as a string path to split it there, or rename the level")
        for char in level:
            if unicodedata.category(char) in _BAD_CATEGORY_CHARS and char not in _JOINERS:
                return f"level {number} {level!r} holds U+{ord(char):04X} ({unicodedata.category(char)})"
    return None


def parse_number(value: Any) -> float | None:
    """A finite number from a number or text like ``"$1,299.00"``; None when there is none."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    match = _NUMBER.search(str(value))
    if not match or len(_NUMBER.findall(str(value))) != 1:
        return None  # none, or a range like "$10 - $20"
    return float(match.group().replace(",", ""))
