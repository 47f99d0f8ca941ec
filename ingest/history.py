"""Tabular history kept as Parquet beside the graph: one file per input table."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ingest.schemas import SCHEMAS

HISTORY_TABLES = (
    "users", "merchants", "repayments", "bills", "balances", "labels", "transfers",
    "payments", "devices", "friendships",
)  # fmt: skip


def merge_history(history_dir: Path, name: str, rows: pd.DataFrame) -> pd.DataFrame:
    """Union ``rows`` with what is kept for ``name``; later rows win on a key clash.

    Tables without a key (transfers, payments) dedupe on the whole row, so
    re-loading the same file adds nothing.
    """
    kept = read_history(history_dir, name)
    merged = rows if kept is None else pd.concat([kept, rows], ignore_index=True)
    key = list(SCHEMAS[name].key) or list(merged.columns)
    return merged.drop_duplicates(key, keep="last").reset_index(drop=True)


def write_history(history_dir: Path, name: str, frame: pd.DataFrame) -> Path:
    """Write atomically: a half-written file never replaces the good one."""
    history_dir.mkdir(parents=True, exist_ok=True)
    path = history_dir / f"{name}.parquet"
    temporary = path.with_suffix(".parquet.tmp")
    frame.to_parquet(temporary, index=False)
    os.replace(temporary, path)
    return path


def read_history(history_dir: Path, name: str) -> pd.DataFrame | None:
    path = history_dir / f"{name}.parquet"
    return pd.read_parquet(path) if path.exists() else None


def load_tables(history_dir: Path) -> dict[str, pd.DataFrame]:
    """Every kept history table by name (missing ones are absent)."""
    tables = {name: read_history(history_dir, name) for name in HISTORY_TABLES}
    return {name: frame for name, frame in tables.items() if frame is not None}
