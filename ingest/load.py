"""Load a directory of input files: validate → reject file → graph store + Parquet history."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from creditgraph.durable import (
    failpoint,
    replace_file,
    temporary_sibling,
    write_parquet,
    write_text,
)
from creditgraph.errors import SchemaError
from creditgraph.graph.membership import duplicated, rows_in
from creditgraph.graph.meta import LOAD_PROGRESS, PENDING_LOAD, read_meta, write_meta
from creditgraph.graph.store import GraphStore
from creditgraph.ingest.history import (
    TableChange,
    current_load_id,
    new_load_id,
    publish_version,
    read_history,
    read_keys,
    read_parts,
    stage_version,
    table_change,
    table_parts,
    version_tables,
)
from creditgraph.ingest.schemas import LOAD_ORDER, SCHEMAS, DateWindow
from creditgraph.ingest.validate import Validated, find_file, validate

Progress = Callable[[str], None]
REJECTS = "rejects"  # each history version's folder of rejected rows
TOUCHED = "touched"  # each version's rows behind its graph writes (see touched_rows)
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileReport:
    file: str
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    rejects_path: Path | None


@dataclass
class LoadReport:
    """What a load did: per file counts, graph writes, where the rejects went."""

    files: list[FileReport] = field(default_factory=list)
    nodes_written: dict[str, int] = field(default_factory=dict)
    edges_written: dict[str, int] = field(default_factory=dict)
    edges_removed: dict[str, int] = field(default_factory=dict)  # left with nothing behind them
    load_id: str = ""  # the history version and graph bookkeeping this load published
    finished_load: str = ""  # an interrupted earlier load this run completed first
    notes: list[str] = field(default_factory=list)  # what the user should know (abandoned load)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    @property
    def ok(self) -> bool:
        return self.rows_rejected == 0


def validate_directory(
    source: Path, *, window: DateWindow | None = None, history_dir: Path | None = None
) -> dict[str, Validated]:
    """Validate every known file in ``source``, referenced files first; dates in ``window``.

    With ``history_dir`` a load after the first may bring any subset of the
    files (a day of payments, say), and a reference may name a key kept from an
    earlier load.
    """
    if not source.is_dir():
        raise SchemaError("input directory not found", file=str(source))
    validated: dict[str, Validated] = {}
    keys: dict[str, pd.Index] = {}
    referenced = {target for s in SCHEMAS.values() for target in s.references.values()}
    kept_keys = {name: read_keys(history_dir, name) for name in referenced} if history_dir else {}
    first = kept_keys.get("users") is None or kept_keys["users"].empty
    for name in LOAD_ORDER:
        schema = SCHEMAS[name]
        kept = kept_keys.get(name)
        path = find_file(source, schema)
        if path is None:
            if schema.required and first:
                raise SchemaError(
                    f"required file missing: expected {name}.csv or {name}.parquet in {source}",
                    file=f"{name}.csv",
                )
            if kept is not None:
                keys[name] = kept
            continue
        result = validate(path, schema, keys, window=window)
        validated[name] = result
        if schema.key and len(schema.key) == 1:
            keys[name] = pd.Index(result.rows[schema.key[0]])
            if kept is not None and len(kept):
                keys[name] = kept.append(keys[name])
    return validated


def load_directory(
    source: Path,
    store: GraphStore,
    history_dir: Path,
    rejects_dir: Path,
    progress: Progress | None = None,
    *,
    window: DateWindow | None = None,
) -> LoadReport:
    """Validate and load every file; good rows load, bad rows go to ``rejects/<file>.csv``.

    The new history version is written aside, the graph takes the load with
    ``store.bulk_load`` (which records the load id once every row landed), and
    only then does the history pointer switch, so a failure (or a kill) at any
    point leaves the previous load current. On the embedded store the graph
    side is one transaction (all or nothing); on Neo4j it is resumable
    batches, and a load interrupted half-way is completed first by the next
    call (:func:`finish_pending_load`). Re-running with the same files writes
    nothing new to the graph.
    """
    say = progress or (lambda _msg: None)
    report = LoadReport()
    report.finished_load = finish_pending_load(store, history_dir, say, notes=report.notes) or ""
    say("validating")
    validated = validate_directory(source, window=window, history_dir=history_dir)
    personal = _split_personal(validated)
    key = _personal_key() if personal is not None else None  # fail before writing anything
    changes = {name: table_change(history_dir, name, v.rows) for name, v in validated.items()}
    say("writing history")
    load_id = new_load_id()
    staged: dict[str, TableChange | pd.DataFrame] = {**changes}
    if personal is not None and key is not None:
        staged["personal"] = encrypt_personal(history_dir, personal, key)
    version = stage_version(history_dir, load_id, staged)
    # The rejects belong to their load: written into its version, shown once it is current.
    for name, result in validated.items():
        written_to = _write_rejects(version / REJECTS, name, result)
        report.files.append(
            FileReport(
                result.path.name,
                result.rows_read,
                len(result.rows),
                result.rejected_rows,
                None if written_to is None else rejects_dir / written_to.name,
            )
        )
    failpoint("ingest:history-staged")
    # The graph is built from its own tables only: the others (bills, balances and
    # repayments hold most of the rows) are let go before it takes the memory it needs.
    changes = {name: change for name, change in changes.items() if name in GRAPH_TABLES}
    del validated, staged, personal
    store.ensure_schema()
    touched = touched_rows(version, changes)
    keep_touched(version, touched, changes)
    edges = edge_frames(touched)
    written = store.bulk_load(
        node_frames(touched), edges, load_id=load_id, progress=say,
        removed=stale_edges(touched, edges),
    )  # fmt: skip
    report.nodes_written, report.edges_written = written.nodes, written.edges
    report.edges_removed = written.removed
    failpoint("ingest:graph-committed")
    publish_version(history_dir, load_id)
    point_rejects(rejects_dir, history_dir)
    report.load_id = load_id
    return report


def finish_pending_load(
    store: GraphStore,
    history_dir: Path,
    progress: Progress | None = None,
    *,
    notes: list[str] | None = None,
) -> str | None:
    """Complete the load the graph marks ``pending_load``, then publish it; returns its id.

    Only a store that loads in batches (Neo4j) leaves such a mark, when a kill
    or a failure stopped a load half-way. Its staged version
    ``history/<id>/`` (kept by :func:`creditgraph.catalog.recover`) holds the
    tables it was loading, so the same frames are rebuilt and ``bulk_load``
    sends only the batches that had not committed. If that version is gone the
    load is abandoned: the marks are cleared, and the message (in ``notes``
    and the log) says that loading the same files again repairs the graph
    (its batches were idempotent MERGEs).
    """
    say = progress or (lambda _msg: None)
    pending = read_meta(store).get(PENDING_LOAD)
    if not pending:
        return None
    if not (history_dir / pending).is_dir():
        message = (
            f"load {pending} was interrupted half-way and its staged history "
            f"({history_dir / pending}) is gone: abandoned. The graph may hold part of it, "
            "which a load of the same files repairs (its batches are idempotent MERGEs)"
        )
        _log.warning(message)
        say(message)
        if notes is not None:
            notes.append(message)
        write_meta(store, **{PENDING_LOAD: None, LOAD_PROGRESS: None})
        return None
    say(f"finishing interrupted load {pending}")
    tables = read_touched(history_dir / pending) or version_tables(history_dir, pending)
    store.ensure_schema()
    edges = edge_frames(tables)
    store.bulk_load(
        node_frames(tables), edges, load_id=pending, progress=say,
        removed=stale_edges(tables, edges),
    )  # fmt: skip
    publish_version(history_dir, pending)
    return pending


def _split_personal(validated: dict[str, Validated]) -> pd.DataFrame | None:
    """Take personal columns out of the users rows (they never reach graph or features)."""
    users = validated.get("users")
    if users is None:
        return None
    columns = [c.name for c in users.schema.columns if c.personal and c.name in users.rows]
    if not columns:
        return None
    personal = users.rows[["user_id", *columns]]
    validated["users"] = replace(users, rows=users.rows.drop(columns=columns))
    return personal


def _personal_key() -> bytes:
    from creditgraph.ingest.pii import load_key

    return load_key()


def encrypt_personal(history_dir: Path, personal: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """The kept personal table with ``personal`` merged in, fields encrypted (AES-GCM).

    Rows whose plaintext is unchanged keep their stored ciphertext, so a re-load
    rewrites nothing that did not change. The table is kept as the history's
    ``personal.parquet``, readable by its owner only.
    """
    from creditgraph.ingest.pii import decrypt_column, encrypt_column

    columns = [c for c in personal.columns if c != "user_id"]
    kept = read_history(history_dir, "personal")
    personal = personal.set_index("user_id")
    if kept is not None:
        kept = kept.set_index("user_id")
        plain = pd.DataFrame({c: decrypt_column(kept[c], key, c) for c in columns if c in kept},
                             index=kept.index)  # fmt: skip
        same = plain.reindex(personal.index).fillna("\x00").eq(personal.fillna("\x00")).all(axis=1)
        personal = personal[~same.reindex(personal.index, fill_value=False)]
    encrypted = pd.DataFrame({c: encrypt_column(personal[c], key, c) for c in columns},
                             index=personal.index)  # fmt: skip
    if kept is not None:
        encrypted = pd.concat([kept.drop(index=encrypted.index, errors="ignore"), encrypted])
    return encrypted.rename_axis("user_id").reset_index()


def _write_rejects(directory: Path, name: str, result: Validated) -> Path | None:
    if result.rejects.empty:
        return None
    path = directory / f"{name}.csv"
    return replace_file(path, lambda tmp: result.rejects.to_csv(tmp, index=False))


def point_rejects(rejects_link: Path, history_dir: Path) -> None:
    """Make ``rejects/`` show the current load's rejects: one symlink, switched atomically.

    Each load keeps its rejects in its history version (``history/<load_id>/rejects/``),
    so they switch with the load; the link is moved after the history pointer, and
    recovery moves it again if a kill came between the two.
    """
    load_id = current_load_id(history_dir)
    if load_id is None or not (history_dir / load_id).is_dir():
        return
    (history_dir / load_id / REJECTS).mkdir(exist_ok=True)  # never a dangling link
    target = os.path.relpath(history_dir / load_id / REJECTS, rejects_link.parent)
    if rejects_link.is_symlink() and os.readlink(rejects_link) == target:
        return
    if rejects_link.is_dir() and not rejects_link.is_symlink():
        shutil.rmtree(rejects_link)  # the layout before rejects were kept per load
    temporary = temporary_sibling(rejects_link)
    os.symlink(target, temporary)
    os.replace(temporary, rejects_link)


EVENT_PAIRS = {"transfers": ("src", "dst"), "payments": ("user_id", "merchant_id")}
# The history tables nodes and relationships are made of (node_frames, edge_frames).
GRAPH_TABLES = frozenset({"users", "labels", "merchants", "devices", "public_records",
                          "friendships", *EVENT_PAIRS})  # fmt: skip


REPLACED = ".replaced"  # "<table>.replaced": a table's kept rows that a load changes, as they were


def touched_rows(version: Path, changes: dict[str, TableChange]) -> dict[str, pd.DataFrame]:
    """The history rows behind every node and relationship a load adds, changes or removes.

    Keyed tables give their new and changed rows, and as ``<table>.replaced`` the
    kept rows those changes replace. A user comes with its row and label as the
    new version holds them, and an event pair (a user paying a merchant) with all
    its events, so its relationship's totals are recomputed from the whole history
    rather than added to what the graph holds; so does the pair an event was
    corrected away from.
    """
    rows = {name: change.rows for name, change in changes.items()}  # a loaded file's table
    touched = dict(rows)  # (empty when it changed nothing: its types report 0 written)
    for name, change in changes.items():
        if change.replaced is not None and len(change.replaced):
            touched[name + REPLACED] = change.replaced
    ids = [rows[name]["user_id"] for name in ("users", "labels") if name in rows]
    first = "users" in changes and all(
        changes[name].complete for name in ("users", "labels") if name in changes
    )
    if ids and sum(map(len, ids)) and not first:
        users = pd.concat(ids)
        for name in ("users", "labels"):
            parts = table_parts(version, name)
            if parts:
                touched[name] = read_parts(parts, where=("user_id", users.unique()))
    for name, (src, dst) in EVENT_PAIRS.items():
        if name in rows and len(rows[name]) and not changes[name].complete:
            moved = touched.get(name + REPLACED)
            wanted = pd.concat(
                [rows[name][[src, dst]], None if moved is None else moved[[src, dst]]]
            )
            events = read_parts(table_parts(version, name), where=(src, wanted[src].unique()))
            touched[name] = events[rows_in(events[[src, dst]], wanted)]
    return touched


def stale_edges(
    touched: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame]
) -> dict[str, pd.DataFrame]:
    """Relationships a load's corrections leave with nothing behind them (``src``/``dst``).

    A replaced row made some pairs (a payment's user and merchant, a merchant's
    owner): those the touched rows no longer make (``after``: their
    :func:`edge_frames`) are gone from a full reload, so the load removes them.
    """
    replaced = {name.removesuffix(REPLACED): frame for name, frame in touched.items()
                if name.endswith(REPLACED)}  # fmt: skip
    stale = {}
    for rel, before in edge_frames(replaced).items():
        pairs = before[["src", "dst"]]
        pairs = pairs[~duplicated(pairs, keep="first")]
        if rel in after:
            pairs = pairs[~rows_in(pairs, after[rel][["src", "dst"]])]
        if len(pairs):
            stale[rel] = pairs.reset_index(drop=True)
    return stale


def keep_touched(
    version: Path, touched: dict[str, pd.DataFrame], changes: dict[str, TableChange]
) -> None:
    """Keep a load's touched rows in its staged version, so a resumed load sends the same.

    A table loaded for the first time is touched whole: it is only named (in
    ``touched/whole``, written last), not written twice.
    """
    whole = {name for name, change in changes.items()
             if change.complete and touched.get(name) is change.rows}  # fmt: skip
    for name, frame in touched.items():
        if name not in whole:
            write_parquet(version / TOUCHED / f"{name}.parquet", frame)
    write_text(version / TOUCHED / "whole", "".join(f"{name}\n" for name in sorted(whole)))


def read_touched(version: Path) -> dict[str, pd.DataFrame]:
    """The touched rows :func:`keep_touched` kept ({} for a version staged before them)."""
    folder = version / TOUCHED
    if not (folder / "whole").exists():
        return {}
    touched = {path.stem: pd.read_parquet(path) for path in sorted(folder.glob("*.parquet"))}
    for name in (folder / "whole").read_text().split():
        touched[name] = read_parts(table_parts(version, name))
    return touched


def node_frames(history: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    frames = {}
    if "users" in history:
        users = history["users"].copy()
        if "labels" in history:
            outcome = history["labels"].set_index("user_id")["defaulted"].astype("boolean")
            users["defaulted"] = users["user_id"].map(outcome)
        frames["User"] = users
    if "merchants" in history:
        frames["Merchant"] = history["merchants"]
    if "devices" in history:
        frames["Device"] = history["devices"][["device_id"]].drop_duplicates()
    if "public_records" in history:
        frames["PublicRecord"] = history["public_records"].drop(columns="user_id")
    return frames


def edge_frames(history: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Relationship frames (src/dst keys); event tables are aggregated per pair."""
    frames: dict[str, pd.DataFrame] = {}
    if "friendships" in history:
        frames["FRIEND"] = history["friendships"]
    if "transfers" in history:
        frames["TRANSFER"] = (
            history["transfers"].groupby(["src", "dst"], as_index=False)
            .agg(n=("amount", "size"), amount=("amount", "sum"),
                 first_date=("date", "min"), last_date=("date", "max"))
        )  # fmt: skip
    if "payments" in history:
        frames["PAYS"] = (
            history["payments"].groupby(["user_id", "merchant_id"], as_index=False)
            .agg(n=("amount", "size"), amount=("amount", "sum"), last_date=("date", "max"))
            .rename(columns={"user_id": "src", "merchant_id": "dst"})
        )  # fmt: skip
    if "merchants" in history:
        frames["OWNS"] = history["merchants"].rename(
            columns={"owner_id": "src", "merchant_id": "dst"}
        )[["src", "dst"]]
    if "devices" in history:
        frames["USES"] = history["devices"].rename(columns={"user_id": "src", "device_id": "dst"})
    if "public_records" in history:
        frames["HAS_RECORD"] = history["public_records"].rename(
            columns={"user_id": "src", "record_id": "dst"}
        )[["src", "dst"]]
    return frames
