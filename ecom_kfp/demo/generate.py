"""Write the deterministic demo catalog: the embedded default the whole pipeline runs on.

Layout under ``out`` (a local directory or ``gs://`` prefix)::

    catalog.jsonl        one product per line: product_id, title, brand, price, category_path
                         (list, level 1 first), image_url (relative to images/), colour; a few
                         lines are deliberately malformed, and a few products carry a wrong category
    images/<id>.jpg      drawn product photos (some broken, some missing on purpose)
    business_value.csv   category_path (levels joined with " > "),business_value per leaf class
    truth.json           what was planted where, for recall checks of later stages
    report.json          counts and timings of this run

The same ``seed`` and sizes give byte-identical catalog, images, business values and truth:
every product draws from its own generator keyed by ``(seed, index)`` and the fault plan from
one keyed by ``seed``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ecom_kfp import uri
from ecom_kfp.demo import faults
from ecom_kfp.demo.drawing import draw_product
from ecom_kfp.demo.products import ProductSpec, garbage_title, make_product, product_id, short_title
from ecom_kfp.demo.taxonomy import LEAVES, UNKNOWN_PATHS, Leaf, tree_depth
from ecom_kfp.report import write_report
from ecom_kfp.settings import require

log = logging.getLogger(__name__)

CATALOG = "catalog.jsonl"
IMAGES = "images"
BUSINESS_VALUE = "business_value.csv"
TRUTH = "truth.json"

#: Fewest products that leave room for every planted fault next to clean products.
MIN_PRODUCTS = 60
#: Single-product fault kinds, each planted ``fault_rate * products`` times (at least once).
SINGLE_FAULTS = ("dead_link", "truncated_image", "random_bytes_image", "html_image", "tiny_image",
                 "no_image", "empty_title", "short_title", "unknown_category", "empty_category")
#: Faults that make a product invalid for ingest (e-CLIP's rules and failed fetches).
INGEST_REJECT_FAULTS = ("dead_link", "truncated_image", "random_bytes_image", "html_image", "tiny_image",
                        "no_image", "empty_title", "short_title")
#: Re-listings of the same item by another seller keep the title, or decorate it like this.
_RELIST_SUFFIXES = ("", "", " (Pack of 1)", " - Original", " | Free Delivery", " New")


@dataclass(frozen=True)
class DemoCatalogConfig:
    """What to generate.

    Attributes:
        out: Output directory or ``gs://`` prefix.
        products: Catalog lines (products, including the faulty ones).
        seed: Everything is a function of this seed.
        image_size: Side of the square product photos in pixels.
        fault_rate: Fraction of products planted with each single-product fault.
        duplicate_rate: Duplicate groups of each kind (exact, near, repeated title) per product.
        label_error_rate: Fraction of products whose category is wrong: title and image of one class,
            the category of a class under another level-1 category (0 plants none).
        progress: Show a progress bar.
    """

    out: str
    products: int = 3000
    seed: int = 0
    image_size: int = 128
    fault_rate: float = 0.01
    duplicate_rate: float = 0.01
    label_error_rate: float = 0.01
    progress: bool = True

    def validate(self) -> None:
        """Fail fast, naming the CLI flag, on values the generator cannot honour.

        Raises:
            ValueError: for an out-of-range value.
        """
        require((
            (self.products >= MIN_PRODUCTS, "--products", self.products, f"must be at least {MIN_PRODUCTS}"),
            (32 <= self.image_size <= 1024, "--image-size", self.image_size, "must be within 32..1024"),
            (0 < self.fault_rate <= 0.05, "--fault-rate", self.fault_rate, "must be within (0, 0.05]"),
            (0 < self.duplicate_rate <= 0.05, "--duplicate-rate", self.duplicate_rate, "must be within (0, 0.05]"),
            (0 <= self.label_error_rate <= 0.1, "--label-error-rate", self.label_error_rate, "must be within [0, 0.1]"),
            (bool(self.out), "--out", self.out, "must name a directory or gs:// prefix"),
        ))
        planted = _planted_products(self)
        require(((planted <= self.products, "--products", self.products,
                  f"too few for the {planted} products --fault-rate, --duplicate-rate and --label-error-rate plant"),))


@dataclass
class DemoCatalogReport:
    """What was written (also saved as ``report.json``).

    Attributes:
        out: Output root.
        catalog: URI of ``catalog.jsonl``.
        images: URI of the images directory (the base of the relative ``image_url`` values).
        business_value: URI of ``business_value.csv``.
        truth: URI of ``truth.json``.
        seed: Seed used.
        products: Catalog lines written.
        malformed_lines: Lines that are not valid JSON objects.
        images_written: Image files written (broken ones included, missing ones not).
        image_bytes: Their total size.
        leaf_classes: Leaf classes in the tree.
        tree_depth: Levels of the deepest path.
        planted: Count per planted defect (products; groups for duplicates).
        seconds: Wall-clock time.
        products_per_second: Generation throughput.
    """

    out: str
    catalog: str
    images: str
    business_value: str
    truth: str
    seed: int
    products: int
    malformed_lines: int
    images_written: int
    image_bytes: int
    leaf_classes: int
    tree_depth: int
    planted: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    products_per_second: float = 0.0


@dataclass(frozen=True)
class _Role:
    """How product ``index`` deviates from a clean product.

    ``kind`` is ``clean``, ``exact_copy``, ``near_copy``, ``same_title``, ``malformed``,
    ``wrong_label`` or one of :data:`SINGLE_FAULTS`; ``source`` is the product copied from
    (duplicates, repeated titles); ``variant`` picks among the ways a fault can look (for a wrong
    label: the index in ``LEAVES`` of the category it is given).
    """

    kind: str
    source: int = -1
    variant: int = 0


@dataclass
class _Plan:
    roles: dict[int, _Role]
    exact_groups: list[list[int]]
    near_groups: list[list[int]]
    title_groups: list[list[int]]


def _count(rate: float, products: int, minimum: int = 1) -> int:
    return max(minimum, round(rate * products))


def _label_errors(config: DemoCatalogConfig) -> int:
    return _count(config.label_error_rate, config.products, minimum=int(config.label_error_rate > 0))


def _malformed_lines(config: DemoCatalogConfig) -> int:
    """A few, at least one of each breakage :func:`faults.malformed_line` knows."""
    return _count(config.fault_rate / 5, config.products, minimum=3)


def _planted_products(config: DemoCatalogConfig) -> int:
    """Most products :func:`_plan` can take (duplicate groups counted at their largest size)."""
    return (3 * 3 * _count(config.duplicate_rate, config.products)
            + len(SINGLE_FAULTS) * _count(config.fault_rate, config.products)
            + _malformed_lines(config) + _label_errors(config))


def _wrong_leaf(true_leaf: Leaf, rng: random.Random) -> int:
    """Index in ``LEAVES`` of a class under another level-1 category than ``true_leaf``'s.

    A category from another branch contradicts title and image at every level, as a product filed
    in the wrong department does (a sibling class would be a subtler error than this check needs).
    """
    return rng.choice([i for i, leaf in enumerate(LEAVES) if leaf.path[0] != true_leaf.path[0]])


def _plan(config: DemoCatalogConfig) -> _Plan:
    """Assign disjoint sets of products to every planted defect."""
    rng = random.Random(f"ecom-kfp-demo/{config.seed}/plan")
    free = list(range(config.products))
    rng.shuffle(free)
    roles: dict[int, _Role] = {}

    def groups(kind: str) -> list[list[int]]:
        out: list[list[int]] = []
        copies = 0  # cycles the variants (e.g. near-duplicate kinds) evenly over the copies
        for _ in range(_count(config.duplicate_rate, config.products)):
            members = [free.pop() for _ in range(rng.choice((2, 2, 3)))]
            for index in members[1:]:
                roles[index] = _Role(kind, source=members[0], variant=copies)
                copies += 1
            out.append(members)
        return out

    plan = _Plan(roles, groups("exact_copy"), groups("near_copy"), groups("same_title"))
    for kind in SINGLE_FAULTS:
        for variant in range(_count(config.fault_rate, config.products)):
            roles[free.pop()] = _Role(kind, variant=variant)
    for variant in range(_malformed_lines(config)):
        roles[free.pop()] = _Role("malformed", variant=variant)
    # Planted last, so the products of the other defects are those of a catalog without wrong labels.
    for _ in range(_label_errors(config)):
        index = free.pop()
        roles[index] = _Role("wrong_label", variant=_wrong_leaf(make_product(config.seed, index).leaf, rng))
    return plan


def _record(spec: ProductSpec, image_url: str | None) -> dict:
    return {
        "product_id": spec.product_id,
        "title": spec.title,
        "brand": spec.brand,
        "price": spec.price,
        "category_path": list(spec.leaf.path),
        "image_url": image_url,
        "colour": spec.colour,
    }


class _Writer:
    """Writes each product's catalog line and image file according to its role in the plan."""

    def __init__(self, config: DemoCatalogConfig, plan: _Plan, images_dir: Path) -> None:
        self.config = config
        self.plan = plan
        self.images_dir = images_dir
        self.images_written = 0
        self.image_bytes = 0

    def line(self, index: int) -> tuple[str, dict | None]:
        """The catalog line of product ``index`` and its record (``None`` when malformed).

        Writes the product's image file as a side effect.
        """
        role = self.plan.roles.get(index, _Role("clean"))
        rng = random.Random(f"ecom-kfp-demo/{self.config.seed}/fault/{index}")
        source = make_product(self.config.seed, role.source) if role.source >= 0 else None
        # Repeated titles are variants of one listing, so they share its class.
        spec = make_product(self.config.seed, index, leaf=source.leaf if source else None)
        record = _record(spec, f"{spec.product_id}.jpg")
        self._deface(record, spec, source, role, rng)
        data = self._image(spec, source, role, rng)
        if data is not None:
            (self.images_dir / f"{spec.product_id}.jpg").write_bytes(data)
            self.images_written += 1
            self.image_bytes += len(data)
        if role.kind == "malformed":
            return faults.malformed_line(record, role.variant), None
        return json.dumps(record, ensure_ascii=False), record

    @staticmethod
    def _deface(record: dict, spec: ProductSpec, source: ProductSpec | None, role: _Role,
                rng: random.Random) -> None:
        """Apply the role's changes to the catalog fields."""
        if role.kind in ("exact_copy", "near_copy"):
            # Another seller re-listing the source item: its fields, a decorated title.
            record.update(title=source.title + rng.choice(_RELIST_SUFFIXES), brand=source.brand,
                          colour=source.colour, category_path=list(source.leaf.path),
                          price=round(source.price * rng.choice((1.0, 1.0, 0.95, 1.05)), 2))
        elif role.kind == "same_title":
            record["title"] = source.title
        elif role.kind == "empty_title":
            record["title"] = ("", "   ", garbage_title(rng))[role.variant % 3]
        elif role.kind == "short_title":
            record["title"] = short_title(spec)
        elif role.kind == "unknown_category":
            record["category_path"] = list(UNKNOWN_PATHS[role.variant % len(UNKNOWN_PATHS)])
        elif role.kind == "empty_category":
            record["category_path"] = [] if role.variant % 2 else None
        elif role.kind == "no_image":
            record["image_url"] = "" if role.variant % 2 else None
        elif role.kind == "wrong_label":
            record["category_path"] = list(LEAVES[role.variant].path)

    def _image(self, spec: ProductSpec, source: ProductSpec | None, role: _Role,
               rng: random.Random) -> bytes | None:
        """The bytes of the product's image file, or ``None`` when no file should exist."""
        if role.kind in ("dead_link", "no_image"):
            return None
        if role.kind == "random_bytes_image":
            return faults.random_bytes(rng)
        if role.kind == "html_image":
            return faults.html_page(spec.product_id)
        # Copies show the source's photo; drawing is deterministic, so exact copies match its bytes.
        shown = source if role.kind in ("exact_copy", "near_copy") else spec
        photo = draw_product(shown.leaf.shape, shown.style, self.config.image_size)
        if role.kind == "near_copy":
            kinds = sorted(faults.NEAR_DUPLICATE_KINDS)
            return faults.NEAR_DUPLICATE_KINDS[kinds[role.variant % len(kinds)]](photo, rng)
        if role.kind == "truncated_image":
            return faults.truncated_jpeg(faults.encode_jpeg(photo), rng)
        if role.kind == "tiny_image":
            return faults.tiny_image(photo)
        return faults.encode_jpeg(photo)


def _truth(config: DemoCatalogConfig, plan: _Plan, records: list[dict | None]) -> dict:
    """Where every defect was planted, by product id (1-based line numbers for malformed lines)."""
    by_kind: dict[str, list[str]] = {}
    for index, role in sorted(plan.roles.items()):
        by_kind.setdefault(role.kind, []).append(product_id(index))
    near_kinds = sorted(faults.NEAR_DUPLICATE_KINDS)
    leaf_names = {leaf.path: leaf.name for leaf in LEAVES}
    class_counts = Counter(leaf_names[tuple(r["category_path"])] for r in records
                           if r is not None and tuple(r["category_path"] or ()) in leaf_names)

    def group_ids(groups: list[list[int]]) -> list[list[str]]:
        return [[product_id(i) for i in group] for group in groups]

    return {
        "seed": config.seed,
        "products": config.products,
        "image_size": config.image_size,
        "tree_depth": tree_depth(),
        "leaf_classes": sorted(leaf.name for leaf in LEAVES),
        "class_counts": dict(sorted(class_counts.items())),
        "exact_duplicate_groups": group_ids(plan.exact_groups),
        "near_duplicate_groups": group_ids(plan.near_groups),
        "near_duplicate_kinds": {product_id(i): near_kinds[r.variant % len(near_kinds)]
                                 for i, r in sorted(plan.roles.items()) if r.kind == "near_copy"},
        "repeated_title_groups": group_ids(plan.title_groups),
        **{kind: by_kind.get(kind, []) for kind in SINGLE_FAULTS},
        "malformed_lines": [i + 1 for i, r in sorted(plan.roles.items()) if r.kind == "malformed"],
        "expected_ingest_rejects": {pid: kind for kind in INGEST_REJECT_FAULTS for pid in by_kind.get(kind, [])},
        "wrong_label": {product_id(i): {"true_category": list(make_product(config.seed, i).leaf.path),
                                        "given_category": list(LEAVES[r.variant].path)}
                        for i, r in sorted(plan.roles.items()) if r.kind == "wrong_label"},
    }


def _business_value_csv() -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["category_path", "business_value"])
    for leaf in sorted(LEAVES, key=lambda leaf: leaf.name):
        writer.writerow([leaf.name, f"{leaf.business_value:.2f}"])
    return buf.getvalue()


def generate(config: DemoCatalogConfig) -> DemoCatalogReport:
    """Write the demo catalog described in the module docstring.

    Args:
        config: What to generate; validated first.

    Returns:
        The report, also written as ``report.json`` under ``config.out``.

    Raises:
        ValueError: for an invalid config (the message names the flag).
    """
    config.validate()
    start = time.perf_counter()
    plan = _plan(config)
    # Stale files from an earlier run (another seed) would turn planted dead links into live ones.
    uri.delete_tree(uri.join(config.out, IMAGES))
    with uri.local_output_dir(config.out) as local:
        images_dir = Path(local, IMAGES)
        images_dir.mkdir(parents=True, exist_ok=True)
        writer = _Writer(config, plan, images_dir)
        records: list[dict | None] = []
        with open(Path(local, CATALOG), "w", encoding="utf-8", newline="\n") as catalog:
            for index in tqdm(range(config.products), desc="demo catalog", unit="product",
                              disable=not config.progress):
                text, record = writer.line(index)
                catalog.write(text + "\n")
                records.append(record)
        Path(local, BUSINESS_VALUE).write_text(_business_value_csv(), encoding="utf-8")
        truth = _truth(config, plan, records)
        Path(local, TRUTH).write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    seconds = time.perf_counter() - start
    planted = {kind: len(truth[kind]) for kind in SINGLE_FAULTS + ("malformed_lines", "wrong_label")}
    planted.update({kind: len(truth[kind]) for kind in
                    ("exact_duplicate_groups", "near_duplicate_groups", "repeated_title_groups")})
    report = DemoCatalogReport(
        out=config.out,
        catalog=uri.join(config.out, CATALOG),
        images=uri.join(config.out, IMAGES),
        business_value=uri.join(config.out, BUSINESS_VALUE),
        truth=uri.join(config.out, TRUTH),
        seed=config.seed,
        products=config.products,
        malformed_lines=len(truth["malformed_lines"]),
        images_written=writer.images_written,
        image_bytes=writer.image_bytes,
        leaf_classes=len(LEAVES),
        tree_depth=tree_depth(),
        planted=planted,
        seconds=round(seconds, 3),
        products_per_second=round(config.products / seconds, 1) if seconds else 0.0,
    )
    write_report(report, config.out)
    log.info("demo catalog: %d products, %d images in %.1fs -> %s", config.products,
             writer.images_written, seconds, config.out)
    return report
