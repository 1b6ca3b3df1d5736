"""Paths in the repository the tests read (the example DAG folder, specs, compose file)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
