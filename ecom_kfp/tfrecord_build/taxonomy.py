"""Optional mapping of source category paths onto the Google Product Taxonomy.

Two input files, both read through :mod:`ecom_kfp.uri` (the project never reads ``../shared``):

- the taxonomy, in Google's ``taxonomy-with-ids`` format: a ``#`` version line, then one
  category per line, ``<id> - <Level 1> > <Level 2> > ...``;
- the mapping, a UTF-8 TSV with one ``<source path>\t<taxonomy id or path>`` per line, source
  paths written with ``" > "`` like class names (``Apparel > Topwear > Tshirts``). Blank lines
  and lines starting with ``#`` are comments.

A product maps through the longest mapped prefix of its source path, so mapping
``Apparel > Topwear`` covers every deeper category under it. A product with no mapped prefix is
*unmapped*: it gets no category path, so it is labelled ``other`` at every level, and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ecom_kfp import uri
from ecom_kfp.contracts.labels import path_from_name


class TaxonomyError(ValueError):
    """The taxonomy or mapping file is malformed; the message names the flag, file and line."""


def read_taxonomy(taxonomy_uri: str) -> dict[str, tuple[str, ...]]:
    """Taxonomy id -> category path, from a ``taxonomy-with-ids`` file.

    Raises:
        TaxonomyError: a line that is not ``<id> - <path>``, or no category at all.
    """
    categories: dict[str, tuple[str, ...]] = {}
    for number, line in enumerate(uri.read_text(taxonomy_uri).splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        ident, sep, path = line.partition(" - ")
        if not sep or not ident.strip().isdigit() or not path.strip():
            raise TaxonomyError(f"--taxonomy {taxonomy_uri} line {number}: expected '<id> - <path>', got {line!r}")
        categories[ident.strip()] = tuple(path_from_name(path.strip()))
    if not categories:
        raise TaxonomyError(f"--taxonomy {taxonomy_uri}: no categories")
    return categories


@dataclass(frozen=True)
class TaxonomyMapping:
    """Source category path -> taxonomy path, by longest mapped prefix."""

    targets: dict[tuple[str, ...], tuple[str, ...]]

    @classmethod
    def load(cls, taxonomy_uri: str, mapping_uri: str) -> TaxonomyMapping:
        """Read both files and resolve every mapping target to a taxonomy path.

        Raises:
            TaxonomyError: a malformed mapping line, or a target the taxonomy does not have.
        """
        by_id = read_taxonomy(taxonomy_uri)
        known_paths = set(by_id.values())
        targets: dict[tuple[str, ...], tuple[str, ...]] = {}
        for number, line in enumerate(uri.read_text(mapping_uri).splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            source, sep, target = line.partition("\t")
            where = f"--taxonomy-mapping {mapping_uri} line {number}"
            if not sep or not source.strip() or not target.strip():
                raise TaxonomyError(f"{where}: expected '<source path>\\t<taxonomy id or path>', got {line!r}")
            target = target.strip()
            path = by_id.get(target) if target.isdigit() else tuple(path_from_name(target))
            if path is None or path not in known_paths:
                raise TaxonomyError(f"{where}: {target!r} is not in the taxonomy {taxonomy_uri}")
            targets[tuple(path_from_name(source.strip()))] = path
        return cls(targets)

    def map(self, category_path: Sequence[str]) -> tuple[str, ...] | None:
        """The taxonomy path of a source path, or ``None`` when no prefix of it is mapped."""
        for depth in range(len(category_path), 0, -1):
            target = self.targets.get(tuple(category_path[:depth]))
            if target is not None:
                return target
        return None
