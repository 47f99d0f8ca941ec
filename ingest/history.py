"""Tabular history kept as Parquet beside the graph, one version per load.

``history/<load_id>/`` holds every table as of one load, and the one-line
pointer ``history/CURRENT`` names the version readers see. A table is a folder
of parts, ``<table>/part-<n>-<load_id>.parquet``, which never share a key or an
event: a load that only adds rows writes them as one new part, and every older
part is a hard link to the previous version's, so a day of new events costs
the day, not the history. A load that changes rows already kept (a corrected
instalment, a moved record) rewrites that table as one part, and so does the
load that would make a table's parts more than :data:`MAX_PARTS` (compaction).
A load builds its version aside, commits the graph with the same load id,
then switches the pointer: a kill at any moment leaves the old version current
or the new one, never a mix. Versions written before tables had parts
(``<table>.parquet``) are read as one part.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from creditgraph.durable import (
    TMP_PREFIX,
    read_pointer,
    staged_directory,
    sweep,
    write_parquet,
    write_pointer,
)
from creditgraph.errors import DataMissing
from creditgraph.graph.membership import changed_rows, is_in
from creditgraph.ingest.schemas import SCHEMAS, FileSchema

HISTORY_TABLES = (
    "users", "merchants", "repayments", "bills", "balances", "labels", "transfers",
    "payments", "devices", "friendships", "public_records",
)  # fmt: skip
POINTER = "CURRENT"
PRIVATE_TABLES = frozenset({"personal"})  # encrypted personal fields: owner-only (0600)
MAX_PARTS = 16  # a table with more parts than this is rewritten as one


@dataclass(frozen=True)
class TableChange:
    """What one load does to one history table: add rows as a new part, or rewrite it."""

    rows: pd.DataFrame  # the rows this load adds or changes (all the graph needs to see)
    rewrite: pd.DataFrame | None = None  # the whole new table, when kept rows changed
    complete: bool = False  # nothing was kept before: the rows are the whole table
    replaced: pd.DataFrame | None = None  # the kept rows this load changes, as they were


def table_change(history_dir: Path, name: str, rows: pd.DataFrame) -> TableChange:
    """How ``rows`` (one file's good rows) change table ``name``; later rows win.

    Keyed tables match on their key; an undirected pair matches in either order
    and arrives in the kept orientation. Event tables match on their event id
    where a row has one, else on the whole row plus its occurrence among
    identical rows of its file (1st, 2nd, ...): re-sending a file adds nothing,
    yet two identical events in one file both stay. Only rows that match kept
    ones are read back from the history (the key or id columns otherwise).
    """
    schema = SCHEMAS[name]
    parts = table_parts(version_dir(history_dir), name)
    if not parts:
        return TableChange(rows.reset_index(drop=True), complete=True)
    if schema.key or schema.event_id in rows:
        key = list(schema.key) or [str(schema.event_id)]
        sides = ("src", "dst") if schema.undirected else (key[0],)
        values = pd.concat([rows[c] for c in sides]).dropna().unique()
        kept = read_parts(parts, where=(key[0], values))
        if schema.undirected:
            rows = _kept_orientation(schema, kept, rows)
        if not schema.key:  # events: those with an id are keyed by it; the rest come after
            with_id = rows[rows[key[0]].notna()]
            rest = rows[rows[key[0]].isna()]
            change = _keyed_change(parts, schema, kept, with_id, key)
            if rest.empty:
                return change
            plain = _plain_events(parts, schema, rest)
            rows = pd.concat([change.rows, plain], ignore_index=True)
            if change.rewrite is not None:
                rewrite = pd.concat([change.rewrite, plain], ignore_index=True)
                return TableChange(rows, rewrite, replaced=change.replaced)
            return TableChange(rows)
        return _keyed_change(parts, schema, kept, rows, key)
    return TableChange(_plain_events(parts, schema, rows))


def _keyed_change(
    parts: Sequence[Path], schema: FileSchema, kept: pd.DataFrame,
    rows: pd.DataFrame, key: list[str],
) -> TableChange:  # fmt: skip
    """New keys become a part; a changed kept row rewrites the table."""
    match = _key_strings(schema, kept, key)
    incoming = _key_strings(schema, rows, key)
    known = is_in(incoming, match)
    fresh = rows[~known]
    kept = kept.assign(**{"\0key": match}).drop_duplicates("\0key", keep="last")
    old = rows[known].assign(**{"\0key": incoming[known]})
    existing = kept.reindex(columns=old.columns)
    changed = changed_rows(old, existing, ["\0key"])
    replaced = kept[is_in(kept["\0key"], changed["\0key"])].drop(columns="\0key")
    added = pd.concat([fresh, changed.drop(columns="\0key")], ignore_index=True)
    if changed.empty:
        return TableChange(added)
    whole = read_parts(parts)
    return TableChange(added, merge_history(schema, whole, rows), replaced=replaced)


def _plain_events(parts: Sequence[Path], schema: FileSchema, rows: pd.DataFrame) -> pd.DataFrame:
    """Events without an id that are not kept yet (matched by content and occurrence)."""
    id_column = schema.event_id or ""
    kept = read_parts(parts)
    if id_column in kept:
        kept = kept[kept[id_column].isna()]
    content = [c for c in rows.columns if c != id_column]
    both = pd.concat([kept.reindex(columns=content), rows[content]], ignore_index=True)
    from_file = np.repeat([False, True], [len(kept), len(rows)])
    already = _numbered(both, from_file).duplicated().to_numpy()[len(kept) :]
    return rows[~already].reset_index(drop=True)


def _numbered(events: pd.DataFrame, from_file: np.ndarray) -> pd.DataFrame:
    """``events`` with each row's occurrence among identical rows of its side (kept or
    this file): the k-th identical row of a file is the same event as the k-th kept one."""
    group = [*(events[c] for c in events), pd.Series(from_file, index=events.index)]
    occurrence = events.groupby(group, dropna=False, sort=False).cumcount()
    return events.assign(**{"\0occurrence": occurrence})


def _key_strings(schema: FileSchema, frame: pd.DataFrame, key: list[str]) -> pd.Series:
    """One string per row naming its key (an undirected pair in either order alike)."""
    keys = schema.key_frame(frame) if schema.key else frame[key]
    text = keys.iloc[:, 0].astype("string")
    for column in keys.columns[1:]:
        text = text + "\x1f" + keys[column].astype("string")
    return text.reset_index(drop=True).set_axis(frame.index)


def _kept_orientation(schema: FileSchema, kept: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Turn (b, a) to the kept (a, b): each side's src_/dst_ columns swap with it.

    (b, a) arriving after (a, b) was kept is the same friendship, not a new one,
    so it updates that row and its graph edge in place instead of adding a
    second edge.
    """
    if kept.empty:
        return rows
    stored = kept["src"].set_axis(pd.MultiIndex.from_frame(schema.key_frame(kept)))
    stored = stored[~stored.index.duplicated(keep="last")]
    src = stored.reindex(pd.MultiIndex.from_frame(schema.key_frame(rows))).to_numpy()
    flip = pd.notna(src) & (src != rows["src"].to_numpy())
    sides = [c.removeprefix("src_") for c in rows if c.startswith("src_")]
    pairs = [("src", "dst"), *((f"src_{side}", f"dst_{side}") for side in sides)]
    swapped = {a: rows[a].where(~flip, rows[b]) for x, y in pairs for a, b in ((x, y), (y, x))}
    return rows.assign(**swapped)


def merge_history(
    schema: FileSchema, kept: pd.DataFrame | None, rows: pd.DataFrame
) -> pd.DataFrame:
    """The whole table: ``kept`` with ``rows`` (in the kept orientation) merged in, later wins."""
    merged = rows if kept is None else pd.concat([kept, rows], ignore_index=True)
    if schema.key:
        return merged[~schema.key_frame(merged).duplicated(keep="last")].reset_index(drop=True)
    id_column = schema.event_id or ""
    ids = merged[id_column] if id_column in merged else pd.Series(None, index=merged.index)
    has_id = ids.notna().to_numpy()
    dropped = has_id & ids.duplicated(keep="last").to_numpy()
    plain = merged.loc[~has_id, [c for c in merged.columns if c != id_column]]
    from_file = (np.arange(len(merged)) >= len(merged) - len(rows))[~has_id]
    dropped[~has_id] = _numbered(plain, from_file).duplicated(keep="last").to_numpy()
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


def table_parts(directory: Path, name: str) -> list[Path]:
    """The files holding table ``name`` in one version, oldest first."""
    whole = directory / f"{name}.parquet"  # a version from before tables had parts
    parts = [whole] if whole.exists() else []
    folder = directory / name
    return parts + sorted(folder.glob("part-*.parquet")) if folder.is_dir() else parts


def read_parts(
    parts: Sequence[Path],
    *,
    where: tuple[str, object] | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """One table from its parts (at least one); ``where`` = (column, values) reads only
    the rows matching."""
    filters = None
    if where is not None:
        column, values = where
        filters = pc.field(column).isin(pa.array(np.asarray(values, dtype=object)))
    frames = [pd.read_parquet(part, columns=columns, filters=filters) for part in parts]
    frames = [frame for frame in frames if len(frame)] or frames[:1]  # keep the columns
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def read_history(history_dir: Path, name: str) -> pd.DataFrame | None:
    """Table ``name`` of the current version (None when no load had it)."""
    parts = table_parts(version_dir(history_dir), name)
    return read_parts(parts) if parts else None


def read_keys(history_dir: Path, name: str) -> pd.Index:
    """The kept keys of a single-key table (e.g. every user id), read without other columns."""
    column = SCHEMAS[name].key[0]
    parts = table_parts(version_dir(history_dir), name)
    return pd.Index(read_parts(parts, columns=[column])[column] if parts else [])


def load_tables(history_dir: Path) -> dict[str, pd.DataFrame]:
    """Every kept history table by name (missing ones are absent)."""
    tables = {name: read_history(history_dir, name) for name in HISTORY_TABLES}
    return {name: frame for name, frame in tables.items() if frame is not None}


def version_tables(history_dir: Path, load_id: str) -> dict[str, pd.DataFrame]:
    """Every history table of version ``load_id``, current or only staged (no personal data)."""
    directory = history_dir / load_id
    if not directory.is_dir():
        raise DataMissing(f"history version {load_id} is missing in {history_dir}")
    parts = {name: table_parts(directory, name) for name in HISTORY_TABLES}
    return {name: read_parts(found) for name, found in parts.items() if found}


def stage_version(
    history_dir: Path,
    load_id: str,
    changes: Mapping[str, TableChange | pd.DataFrame],
) -> Path:
    """Write the version ``load_id`` complete but not yet current; returns its directory.

    Each change adds its rows as a new part or rewrites its table (a plain frame
    rewrites); every other part of the current version is carried over as a hard
    link. Call :func:`publish_version` once the graph has committed the same load.
    """
    previous = version_dir(history_dir)
    kept = {name for name in (*HISTORY_TABLES, *PRIVATE_TABLES) if table_parts(previous, name)}
    with staged_directory(history_dir / load_id) as staged:
        for name in sorted({*changes, *kept}):
            change = changes.get(name)
            if isinstance(change, pd.DataFrame):
                change = TableChange(change, rewrite=change)
            parts = table_parts(previous, name)
            if name in PRIVATE_TABLES:
                _stage_private(staged / f"{name}.parquet", parts, change)
            else:
                _stage_parts(staged / name, parts, change, load_id)
    return history_dir / load_id


def _stage_parts(folder: Path, kept: list[Path], change: TableChange | None, load_id: str) -> None:
    """Link the kept parts and add this load's rows as a part, or write the whole table."""
    folder.mkdir()
    rows = None if change is None else change.rows
    whole = None if change is None else change.rewrite
    if whole is None and rows is not None and len(rows) and len(kept) >= MAX_PARTS:
        whole = pd.concat([read_parts(kept), rows], ignore_index=True)  # compaction
    if whole is not None:
        write_parquet(folder / _part_name(0, load_id), whole)
        return
    for number, part in enumerate(kept):
        os.link(part, folder / _part_name(number, _part_load(part)))
    if rows is not None and (len(rows) or not kept):  # an empty first part: the table exists
        write_parquet(folder / _part_name(len(kept), load_id), rows)


def _stage_private(path: Path, kept: list[Path], change: TableChange | None) -> None:
    """A private table is one owner-only file, replaced whole."""
    if change is not None:
        whole = change.rows if change.rewrite is None else change.rewrite
        write_parquet(path, whole, mode=0o600)
    elif kept:
        os.link(kept[0], path)
        os.chmod(path, 0o600)  # one written before it was private


def _part_name(number: int, load_id: str) -> str:
    return f"part-{number:05d}-{load_id}.parquet"


def _part_load(part: Path) -> str:
    """The load that wrote ``part`` (a whole-table file from before parts: its version)."""
    if part.stem.startswith("part-"):
        return part.stem.split("-", 2)[2]
    return part.parent.name


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
