"""Where the access service reads scores from: one small protocol, two sources.

:class:`ParquetScoreSource` reads what the scoring pipeline writes to
``<data_dir>/scores/latest.parquet``; :class:`StoreScoreSource` reads the score
properties written back onto ``User`` nodes of a graph store.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from creditgraph.errors import QueryError, SchemaError

if TYPE_CHECKING:
    from graph.store import GraphStore

FACTORS = ("credit_history", "behaviour", "capacity", "characteristics", "relationships")
FACTOR_COLUMNS = tuple(f"f_{name}" for name in FACTORS)
REQUIRED_COLUMNS = ("user_id", "score", "pd", "scored_at", "model_id", *FACTOR_COLUMNS)
REASON_SEPARATOR = "; "
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreRecord:
    """One subject's latest score, as the access service sees it."""

    score: float
    pd: float
    scored_at: datetime
    model_id: str
    factors: dict[str, float]  # keys: FACTORS
    reasons: list[str] = field(default_factory=list)


@runtime_checkable
class ScoreSource(Protocol):
    """Anything that returns a subject's latest score, or None if it has none."""

    def get(self, subject_id: str) -> ScoreRecord | None: ...


def split_reasons(value: object) -> list[str]:
    """Reasons stored as one ``"; "``-joined string, back to a list."""
    if not isinstance(value, str) or not value.strip():
        return []
    return [part.strip() for part in value.split(REASON_SEPARATOR.strip()) if part.strip()]


def _utc(value: Any) -> datetime:
    moment = pd.Timestamp(value).to_pydatetime()
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class _Snapshot:
    """One loaded scores file: an id → row index over column arrays."""

    index: dict[str, int]
    score: np.ndarray
    pd: np.ndarray
    scored_at: list[Any]
    model_id: list[str]
    factors: np.ndarray  # rows × FACTORS
    reasons: list[Any]
    mtime_ns: int

    @classmethod
    def read(cls, path: Path) -> _Snapshot:
        if not path.exists():
            raise SchemaError(
                "scores file not found; run the scoring pipeline first", file=str(path)
            )
        mtime_ns = os.stat(path).st_mtime_ns
        frame = pd.read_parquet(path)
        missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise SchemaError(f"missing columns {missing}", file=str(path))
        frame = frame.drop_duplicates("user_id", keep="last")
        reasons = frame["reasons"] if "reasons" in frame.columns else [None] * len(frame)
        return cls(
            index={uid: i for i, uid in enumerate(frame["user_id"].astype(str))},
            score=frame["score"].to_numpy(dtype=float),
            pd=frame["pd"].to_numpy(dtype=float),
            scored_at=pd.to_datetime(frame["scored_at"], utc=True).tolist(),
            model_id=frame["model_id"].astype(str).tolist(),
            factors=np.column_stack([frame[c].to_numpy(dtype=float) for c in FACTOR_COLUMNS]),
            reasons=list(reasons),
            mtime_ns=mtime_ns,
        )


class ParquetScoreSource:
    """Scores from a Parquet file, held in memory for O(1) lookups.

    The file is loaded once. If it changes on disk (a new scoring run), the first lookup
    after ``recheck_s`` seconds notices and a background thread loads it and swaps it in
    whole; lookups meanwhile use the previous one, as they do if the new file is unreadable.
    """

    def __init__(self, path: Path | str, *, recheck_s: float = 5.0) -> None:
        self.path = Path(path)
        self.recheck_s = recheck_s
        self._lock = threading.Lock()
        self._data = _Snapshot.read(self.path)
        self._checked = time.monotonic()

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.recheck_s or not self._lock.acquire(blocking=False):
            return  # checked recently, or a check or reload is under way
        self._checked = now
        try:
            changed = os.stat(self.path).st_mtime_ns != self._data.mtime_ns
        except OSError:  # mid-replace by a scoring run: look again next time
            changed = False
        if not changed:
            self._lock.release()
            return
        # Load beside the lookups, not inside the one that noticed: a big file takes seconds.
        threading.Thread(target=self._reload, name="scores-reload", daemon=True).start()

    def _reload(self) -> None:
        try:
            self._data = _Snapshot.read(self.path)
        except (OSError, SchemaError, ValueError) as exc:  # half-written: keep the old one
            _log.warning("scores file not reloaded: %s", type(exc).__name__)
        finally:
            self._lock.release()

    def __len__(self) -> int:
        return len(self._data.index)

    def get(self, subject_id: str) -> ScoreRecord | None:
        self._maybe_reload()
        data = self._data  # one snapshot for the whole lookup
        row = data.index.get(subject_id)
        if row is None or np.isnan(data.score[row]):
            return None
        return ScoreRecord(
            score=float(data.score[row]),
            pd=float(data.pd[row]),
            scored_at=_utc(data.scored_at[row]),
            model_id=data.model_id[row],
            factors=dict(zip(FACTORS, data.factors[row].tolist(), strict=True)),
            reasons=split_reasons(data.reasons[row]),
        )


class StoreScoreSource:
    """Scores read from ``User`` nodes of a graph store (one parameterised query per lookup).

    ``reasons`` is not a store property everywhere: if the first query naming it fails, the
    source asks without it from then on and returns no reasons.
    """

    _BASE = (
        "MATCH (u:User {user_id: $id}) RETURN u.score AS score, u.pd AS pd, "
        "u.scored_at AS scored_at, u.model_id AS model_id, "
        + ", ".join(f"u.{c} AS {c}" for c in FACTOR_COLUMNS)
    )

    def __init__(self, store: GraphStore) -> None:
        self.store = store
        self._with_reasons: bool | None = None

    def _query(self, subject_id: str) -> pd.DataFrame:
        params = {"id": subject_id}
        if self._with_reasons is None:
            try:
                rows = self.store.query(self._BASE + ", u.reasons AS reasons", params)
            except QueryError:
                self._with_reasons = False
            else:
                self._with_reasons = True
                return rows
        query = self._BASE + (", u.reasons AS reasons" if self._with_reasons else "")
        return self.store.query(query, params)

    def get(self, subject_id: str) -> ScoreRecord | None:
        rows = self._query(subject_id)
        if rows.empty or pd.isna(rows["score"].iloc[0]):
            return None
        row = rows.iloc[0]
        return ScoreRecord(
            score=float(row["score"]),
            pd=float(row["pd"]),
            scored_at=_utc(row["scored_at"]),
            model_id=str(row["model_id"]),
            factors={name: float(row[f"f_{name}"]) for name in FACTORS},
            reasons=split_reasons(row.get("reasons")),
        )
