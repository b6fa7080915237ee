"""Metrics per slice of the test set, flagging slices that fall below an accuracy floor.

Slices always include the true top-level category (``top_level``). More slicing columns (gender,
brand, merchant, ...) come from a products table (``--slice-table``, Parquet or CSV with
``product_id``) joined on ``product_id``; a column missing from the table is looked up in its
``source`` JSON column, which holds the catalog's original columns. Image size buckets are not
available: records store images already resized to the model's input size.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ecom_kfp import uri
from ecom_kfp.contracts.labels import Vocabulary
from ecom_kfp.evaluate.business_value import ExampleWeights
from ecom_kfp.evaluate.metrics import LevelPredictions

TOP_LEVEL = "top_level"
UNKNOWN = "(unknown)"


@dataclass(frozen=True)
class SliceMetrics:
    """Metrics of the examples sharing one value of one slicing column.

    Attributes:
        column: Slicing column (``top_level`` or a products-table column).
        value: The column's value.
        examples: Test examples in the slice.
        accuracy: Level -> accuracy.
        weighted_score: Level -> business-value-weighted score (None when the slice has no value).
        below_floor: Levels whose accuracy is under the floor (only for slices with enough examples).
    """

    column: str
    value: str
    examples: int
    accuracy: dict[int, float]
    weighted_score: dict[int, float | None]
    below_floor: list[int]

    @property
    def flagged(self) -> bool:
        return bool(self.below_floor)


def top_level_values(labels: np.ndarray, level_1: Vocabulary) -> list[str]:
    """The true level-1 class name of every example."""
    return [level_1.classes[i] for i in labels[:, 0].tolist()]


def load_slice_columns(table_uri: str, columns: Sequence[str], product_ids: Sequence[str]) -> dict[str, list[str]]:
    """Values of ``columns`` for each of ``product_ids`` from a products table.

    Raises:
        FileNotFoundError / ValueError: the table is missing or has no ``product_id`` column.
    """
    if not uri.exists(table_uri):
        raise FileNotFoundError(f"--slice-table {table_uri}: no such file")
    if table_uri.endswith(".parquet"):
        rows = uri.read_parquet(table_uri).to_pylist()
    else:
        rows = list(csv.DictReader(io.StringIO(uri.read_text(table_uri))))
    if rows and "product_id" not in rows[0]:
        raise ValueError(f"--slice-table {table_uri}: no product_id column")
    by_id = {str(row["product_id"]): row for row in rows}
    out: dict[str, list[str]] = {}
    for column in columns:
        values = []
        for pid in product_ids:
            row = by_id.get(pid, {})
            value = row.get(column)
            if value is None and row.get("source"):
                value = json.loads(row["source"]).get(column)
            values.append(UNKNOWN if value in (None, "") else str(value))
        out[column] = values
    return out


def slice_metrics(columns: Mapping[str, Sequence[str]], levels: Sequence[LevelPredictions], weights: ExampleWeights,
                  floor: float, min_examples: int) -> list[SliceMetrics]:
    """Metrics of every (column, value) slice, largest slices first within a column.

    Args:
        columns: Slicing column -> value per example.
        levels: Per-level predictions.
        weights: Business value per example.
        floor: Accuracy under which a slice is flagged (at any level).
        min_examples: Slices smaller than this are reported but never flagged (too noisy).
    """
    out = []
    for column, values in columns.items():
        values_array = np.asarray(values, dtype=object)
        uniques, counts = np.unique(values_array, return_counts=True)
        for value, _ in sorted(zip(uniques.tolist(), counts.tolist(), strict=True), key=lambda vc: (-vc[1], vc[0])):
            mask = values_array == value
            accuracy = {p.level: float(p.correct[mask].mean()) for p in levels}
            scores: dict[int, float | None] = {}
            for p in levels:
                w = weights.at(p.level)[mask]
                scores[p.level] = float((w * p.correct[mask]).sum() / w.sum()) if w.sum() > 0 else None
            below = [k for k, acc in accuracy.items() if acc < floor] if mask.sum() >= min_examples else []
            out.append(SliceMetrics(column, str(value), int(mask.sum()), accuracy, scores, below))
    return out
