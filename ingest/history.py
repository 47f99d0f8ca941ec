"""Tabular history kept as Parquet beside the graph, one version per load.

``history/<load_id>/<table>.parquet`` holds every table as of one load, and
the one-line pointer ``history/CURRENT`` names the version readers see. A load
builds its version aside (tables it did not change are hard links), commits
the graph with the same load id, then switches the pointer: a kill at any
moment leaves the old version current or the new one, never a mix. A data
directory from before versioning (flat ``history/<table>.parquet``) is read
as it is until the next load replaces it.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from creditgraph.durable import (
    TMP_PREFIX,
    read_pointer,
    staged_directory,
    sweep,
    write_parquet,
    write_pointer,
)
from creditgraph.errors import DataMissing
from creditgraph.ingest.schemas import SCHEMAS

HISTORY_TABLES = (
    "users", "merchants", "repayments", "bills", "balances", "labels", "transfers",
    "payments", "devices", "friendships", "public_records",
)  # fmt: skip
POINTER = "CURRENT"
PRIVATE_TABLES = frozenset({"personal"})  # encrypted personal fields: owner-only (0600)


def merge_history(history_dir: Path, name: str, rows: pd.DataFrame) -> pd.DataFrame:
    """Union ``rows`` (one file's good rows) with what is kept for ``name``; later rows win.

    Keyed tables match on their key; an undirected pair matches in either order.
    Event tables (payments, transfers) match on their event id where a row has
    one, else on the whole row plus its occurrence among identical rows of its
    file (1st, 2nd, ...): re-sending a file adds nothing, yet two identical
    events in one file both stay.
    """
    schema = SCHEMAS[name]
    kept = read_history(history_dir, name)
    if schema.undirected and kept is not None and len(kept):
        # (b, a) arriving after (a, b) was kept is the same friendship, not a new one: turn
        # it to the kept orientation (each side's src_/dst_ columns swap with it) so it
        # updates that row and its graph edge in place instead of adding a second edge.
        stored = kept["src"].set_axis(pd.MultiIndex.from_frame(schema.key_frame(kept)))
        stored = stored[~stored.index.duplicated(keep="last")]
        src = stored.reindex(pd.MultiIndex.from_frame(schema.key_frame(rows))).to_numpy()
        flip = pd.notna(src) & (src != rows["src"].to_numpy())
        sides = [c.removeprefix("src_") for c in rows if c.startswith("src_")]
        pairs = [("src", "dst"), *((f"src_{side}", f"dst_{side}") for side in sides)]
        swapped = {a: rows[a].where(~flip, rows[b]) for x, y in pairs for a, b in ((x, y), (y, x))}
        rows = rows.assign(**swapped)
    merged = rows if kept is None else pd.concat([kept, rows], ignore_index=True)
    if schema.key:
        return merged[~schema.key_frame(merged).duplicated(keep="last")].reset_index(drop=True)
    id_column = schema.event_id or ""
    ids = merged[id_column] if id_column in merged else pd.Series(None, index=merged.index)
    has_id = ids.notna().to_numpy()
    dropped = has_id & ids.duplicated(keep="last").to_numpy()
    plain = merged.loc[~has_id, [c for c in merged.columns if c != id_column]]
    from_file = pd.Series(pd.RangeIndex(len(merged)) >= len(merged) - len(rows))[~has_id]
    group = [*(plain[c] for c in plain), from_file.set_axis(plain.index)]  # kept | this file
    occurrence = plain.groupby(group, dropna=False, sort=False).cumcount()
    numbered = plain.assign(**{"\0occurrence": occurrence})
    dropped[~has_id] = numbered.duplicated(keep="last").to_numpy()
    return merged[~dropped].reset_index(drop=True)


def new_load_id() -> str:
    """A sortable, unique id for one load (UTC time plus a random suffix)."""
    return datetime.now(UTC).strftime("L%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def current_load_id(history_dir: Path) -> str | None:
    """The load whose version readers see (None before the first versioned load)."""
    return read_pointer(history_dir / POINTER)


def version_dir(history_dir: Path) -> Path:
    """The directory holding the current tables (the flat legacy layout if unversioned)."""
    load_id = current_load_id(history_dir)
    return history_dir if load_id is None else history_dir / load_id


def read_history(history_dir: Path, name: str) -> pd.DataFrame | None:
    path = version_dir(history_dir) / f"{name}.parquet"
    return pd.read_parquet(path) if path.exists() else None


def load_tables(history_dir: Path) -> dict[str, pd.DataFrame]:
    """Every kept history table by name (missing ones are absent)."""
    tables = {name: read_history(history_dir, name) for name in HISTORY_TABLES}
    return {name: frame for name, frame in tables.items() if frame is not None}


def version_tables(history_dir: Path, load_id: str) -> dict[str, pd.DataFrame]:
    """Every history table of version ``load_id``, current or only staged (no personal data)."""
    directory = history_dir / load_id
    if not directory.is_dir():
        raise DataMissing(f"history version {load_id} is missing in {history_dir}")
    paths = {name: directory / f"{name}.parquet" for name in HISTORY_TABLES}
    return {name: pd.read_parquet(path) for name, path in paths.items() if path.exists()}


def stage_version(history_dir: Path, load_id: str, tables: Mapping[str, pd.DataFrame]) -> Path:
    """Write the version ``load_id`` complete but not yet current; returns its directory.

    ``tables`` are written as given, every other table of the current version
    is carried over. Call :func:`publish_version` once the graph has committed
    the same load.
    """
    previous = version_dir(history_dir)
    with staged_directory(history_dir / load_id) as staged:
        for name, frame in tables.items():
            mode = 0o600 if name in PRIVATE_TABLES else None
            write_parquet(staged / f"{name}.parquet", frame, mode=mode)
        for kept in previous.glob("*.parquet"):
            if not (staged / kept.name).exists():
                os.link(kept, staged / kept.name)  # unchanged table: no copy
                if kept.stem in PRIVATE_TABLES:
                    os.chmod(staged / kept.name, 0o600)  # one written before it was private
    return history_dir / load_id


def publish_version(history_dir: Path, load_id: str, keep: frozenset[str] = frozenset()) -> None:
    """Make ``load_id`` the current version, then remove every other one (but ``keep``)."""
    if not (history_dir / load_id).is_dir():
        raise DataMissing(f"history version {load_id} is missing in {history_dir}")
    write_pointer(history_dir / POINTER, load_id)
    prune_versions(history_dir, keep)


def prune_versions(history_dir: Path, keep: frozenset[str] = frozenset()) -> None:
    """Remove versions other than the current one (and ``keep``), and killed writes."""
    current = current_load_id(history_dir)
    if current is None:
        return
    sweep(history_dir)
    for child in history_dir.iterdir():
        if child.name in (current, POINTER) or child.name in keep:
            continue
        if child.is_dir() and not child.name.startswith(TMP_PREFIX):
            shutil.rmtree(child, ignore_errors=True)
        elif child.suffix == ".parquet":  # the flat layout from before versioning
            child.unlink(missing_ok=True)
