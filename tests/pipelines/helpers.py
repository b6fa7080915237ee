"""Helpers of the pipelines tests (plain functions and constants; fixtures are in conftest.py)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
