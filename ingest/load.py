"""Load a directory of input files: validate → reject file → graph store + Parquet history."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from creditgraph.durable import failpoint, replace_file
from creditgraph.errors import SchemaError
from graph.meta import LOAD_ID, write_meta
from graph.store import GraphStore
from ingest.history import (
    merge_history,
    new_load_id,
    publish_version,
    read_history,
    stage_version,
)
from ingest.schemas import LOAD_ORDER, SCHEMAS, DateWindow
from ingest.validate import Validated, find_file, validate

Progress = Callable[[str], None]


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
    load_id: str = ""  # the history version and graph bookkeeping this load published

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    @property
    def ok(self) -> bool:
        return self.rows_rejected == 0


def validate_directory(source: Path, *, window: DateWindow | None = None) -> dict[str, Validated]:
    """Validate every known file in ``source``, referenced files first; dates in ``window``."""
    if not source.is_dir():
        raise SchemaError("input directory not found", file=str(source))
    validated: dict[str, Validated] = {}
    keys: dict[str, pd.Index] = {}
    for name in LOAD_ORDER:
        schema = SCHEMAS[name]
        path = find_file(source, schema)
        if path is None:
            if schema.required:
                raise SchemaError(
                    f"required file missing: expected {name}.csv or {name}.parquet in {source}",
                    file=f"{name}.csv",
                )
            continue
        result = validate(path, schema, keys, window=window)
        validated[name] = result
        if schema.key and len(schema.key) == 1:
            keys[name] = pd.Index(result.rows[schema.key[0]])
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

    All or nothing across graph, history and personal data: the new history
    version is written aside, the graph commits in one atomic block that also
    records the load id, and only then does the history pointer switch. A
    failure (or a kill) at any point leaves the previous load current.
    Re-running with the same files writes nothing new to the graph.
    """
    say = progress or (lambda _msg: None)
    say("validating")
    validated = validate_directory(source, window=window)
    report = LoadReport()
    for name, result in validated.items():
        report.files.append(
            FileReport(
                result.path.name,
                result.rows_read,
                len(result.rows),
                result.rejected_rows,
                _write_rejects(rejects_dir, name, result),
            )
        )
    personal = _split_personal(validated)
    key = _personal_key() if personal is not None else None  # fail before writing anything
    history = {name: merge_history(history_dir, name, v.rows) for name, v in validated.items()}
    say("writing history")
    load_id = new_load_id()
    staged = {**history}
    if personal is not None and key is not None:
        staged["personal"] = encrypt_personal(history_dir, personal, key)
    stage_version(history_dir, load_id, staged)
    failpoint("ingest:history-staged")
    store.ensure_schema()
    with store.atomic():
        for label, frame in node_frames(history).items():
            say(f"loading {label} nodes")
            report.nodes_written[label] = store.upsert_nodes(label, frame)
        for rel, frame in edge_frames(history).items():
            say(f"loading {rel} relationships")
            report.edges_written[rel] = store.upsert_edges(rel, frame)
        write_meta(store, **{LOAD_ID: load_id})
    failpoint("ingest:graph-committed")
    publish_version(history_dir, load_id)
    report.load_id = load_id
    return report


def _split_personal(validated: dict[str, Validated]) -> pd.DataFrame | None:
    """Take personal columns out of the users rows (they never reach graph or features)."""
    users = validated["users"]
    columns = [c.name for c in users.schema.columns if c.personal and c.name in users.rows]
    if not columns:
        return None
    personal = users.rows[["user_id", *columns]]
    validated["users"] = replace(users, rows=users.rows.drop(columns=columns))
    return personal


def _personal_key() -> bytes:
    from creditgraph.access.pii import load_key

    return load_key()


def encrypt_personal(history_dir: Path, personal: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """The kept personal table with ``personal`` merged in, fields encrypted (AES-GCM).

    Rows whose plaintext is unchanged keep their stored ciphertext, so a re-load
    rewrites nothing that did not change. The table is kept as the history's
    ``personal.parquet``, readable by its owner only.
    """
    from creditgraph.access.pii import decrypt_column, encrypt_column

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


def _write_rejects(rejects_dir: Path, name: str, result: Validated) -> Path | None:
    path = rejects_dir / f"{name}.csv"
    if result.rejects.empty:
        path.unlink(missing_ok=True)
        return None
    return replace_file(path, lambda tmp: result.rejects.to_csv(tmp, index=False))


def node_frames(history: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    users = history["users"].copy()
    if "labels" in history:
        outcome = history["labels"].set_index("user_id")["defaulted"].astype("boolean")
        users["defaulted"] = users["user_id"].map(outcome)
    frames = {"User": users}
    if "merchants" in history:
        frames["Merchant"] = history["merchants"]
    if "devices" in history:
        frames["Device"] = history["devices"][["device_id"]].drop_duplicates()
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
    return frames
