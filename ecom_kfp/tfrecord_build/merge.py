"""Join the outputs of a fan-out (``--shard-index i --num-shards n``) into one dataset.

Shard files already carry global names, so they are copied as they are. Labels and text models
are identical in every piece (deterministic fits of the same input); that is checked, not
assumed. Counts and ``other`` records are summed, rejects concatenated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from ecom_kfp import uri
from ecom_kfp.contracts import tables
from ecom_kfp.contracts.digests import verify_tree
from ecom_kfp.contracts.layouts import DatasetLayout
from ecom_kfp.report import write_report
from ecom_kfp.tfrecord_build import manifest as manifest_keys
from ecom_kfp.tfrecord_build.config import SPLITS


class MergeError(ValueError):
    """The pieces do not form one complete fan-out."""


@dataclass
class MergeReport:
    """``report.json`` of a merge: pieces joined, records per split, rejects, shard files."""

    pieces: int
    records: int
    rejected: int
    splits: dict[str, int]
    shards: dict[str, int]


def _add(total: Any, part: Any) -> Any:
    """Sum two count trees of the same shape (nested dicts of ints)."""
    if isinstance(total, dict):
        return {k: _add(total.get(k, 0), part.get(k, 0)) for k in total.keys() | part.keys()}
    return total + part


def merge_pieces(pieces: Sequence[str], out: str) -> MergeReport:
    """Copy every piece's shards, one copy of the shared files, and summed counts to ``out``.

    Raises:
        MergeError: pieces of different fan-outs or fits, or a piece missing.
    """
    layouts = [DatasetLayout(p) for p in pieces]
    manifests = [uri.read_json(layout.manifest) for layout in layouts]
    for layout, manifest in zip(layouts, manifests, strict=True):
        verify_tree(layout.root, manifest.get(manifest_keys.DIGESTS), DatasetLayout.PARTS, f"--merge-pieces {layout.root}")
    first = manifests[0]
    expected = first["shards"]["num_shards"]
    indices = sorted(m["shards"]["shard_index"] for m in manifests)
    if indices != list(range(expected)):
        raise MergeError(f"--merge-pieces: got shard indices {indices}, expected 0..{expected - 1}")
    shared = ["text/spm.model"] + [f"labels/level_{k}.txt" for k in range(1, first["feature_spec"]["num_levels"] + 1)]
    for layout, manifest in zip(layouts[1:], manifests[1:], strict=True):
        for key in (manifest_keys.FEATURE_SPEC, "input", "splits"):
            if manifest[key] != first[key]:
                raise MergeError(f"--merge-pieces: {layout.root} differs from {layouts[0].root} in {key!r}")
        for rel in shared:
            if uri.read_bytes(uri.join(layout.root, rel)) != uri.read_bytes(uri.join(layouts[0].root, rel)):
                raise MergeError(f"--merge-pieces: {rel} of {layout.root} differs from {layouts[0].root}")
    target = DatasetLayout(out)
    for rel in [*shared, "text/piece_vectors.npy", "text/piece_vectors.json"]:
        uri.copy(uri.join(layouts[0].root, rel), uri.join(out, rel))
    files = {split: 0 for split in SPLITS}
    for layout in layouts:
        for split in SPLITS:
            for shard in uri.list_files(layout.split_dir(split), suffix=".tfrecord.gz"):
                uri.copy(shard, uri.join(target.split_dir(split), shard.rsplit("/", 1)[-1]))
                files[split] += 1
    planned = first["shards"]["planned_files"]
    if files != planned:
        raise MergeError(f"--merge-pieces: found shard files {files}, the plan has {planned}")
    counts = first[manifest_keys.COUNTS]
    other = first["folding"]["other_records"]
    for manifest in manifests[1:]:
        counts = _add(counts, manifest[manifest_keys.COUNTS])
        other = _add(other, manifest["folding"]["other_records"])
    rejects = pa.concat_tables([uri.read_parquet(layout.rejects) for layout in layouts])
    uri.write_parquet(tables.conform(rejects, tables.REJECTS), target.rejects)
    merged = dict(first)
    merged[manifest_keys.COUNTS] = counts
    merged["folding"] = {**first["folding"], "other_records": other}
    merged["shards"] = {**first["shards"], "files": files, "shard_index": None, "merged_pieces": list(pieces)}
    merged[manifest_keys.DIGESTS] = manifest_keys.dataset_digests(out)
    uri.write_json(target.manifest, merged)
    report = MergeReport(pieces=len(pieces), records=sum(counts[s]["total"] for s in SPLITS), rejected=rejects.num_rows,
                         splits={s: counts[s]["total"] for s in SPLITS}, shards=files)
    write_report(report, out)
    return report
