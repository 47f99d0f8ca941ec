"""Where the access service reads scores from: one small protocol, two sources.

:class:`ParquetScoreSource` reads what the scoring pipeline publishes: each run's parts under
``<data_dir>/scores/runs/<run_id>/scores/`` (one ``scores.parquet`` for runs published
before parts) and a one-line pointer
``<data_dir>/scores/CURRENT`` naming the current run (switched by atomic rename), and
gives each record the scale of the run it comes from (:func:`published_scale`): bands and
cut-offs mean the points its model scored on, whatever the configuration says now.
:class:`StoreScoreSource` reads the score properties written back onto ``User`` nodes of a
graph store.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from creditgraph.access.errors import ScoresNotReady
from creditgraph.errors import CreditGraphError, QueryError, SchemaError
from creditgraph.scoring.dictionary import FACTORS  # the one definition (no heavy imports)
from creditgraph.scoring.scale import ScoreScale

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from creditgraph.graph.store import GraphStore

FACTOR_COLUMNS = tuple(f"f_{name}" for name in FACTORS)
REQUIRED_COLUMNS = ("user_id", "score", "pd", "scored_at", "model_id", *FACTOR_COLUMNS)
REASON_SEPARATOR = "; "
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NO_TIME = np.iinfo(np.int64).min
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
    scale: ScoreScale | None = None  # of the run it comes from; None: the source cannot tell


@runtime_checkable
class ScoreSource(Protocol):
    """Anything that returns a subject's latest score, or None if it has none."""

    def get(self, subject_id: str) -> ScoreRecord | None: ...


@runtime_checkable
class ScaledSource(Protocol):
    """A score source that can tell the scale of the run it answers from now (without
    reading any subject's score): grants are checked against it when they are made."""

    def served_scale(self) -> ScoreScale | None: ...


def served_scale(scores: ScoreSource) -> ScoreScale | None:
    """The scale of the run ``scores`` answers from now; None when it cannot tell."""
    return scores.served_scale() if isinstance(scores, ScaledSource) else None


def split_reasons(value: object) -> list[str]:
    """Reasons stored as one ``"; "``-joined string, back to a list."""
    if not isinstance(value, str) or not value.strip():
        return []
    return [part.strip() for part in value.split(REASON_SEPARATOR.strip()) if part.strip()]


def _utc(value: Any) -> datetime:
    import pandas as pd

    moment = pd.Timestamp(value).to_pydatetime()
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def resolve_scores(path: Path) -> Path:
    """The scores ``path`` stands for: itself if a file or a folder of Parquet parts, else the
    published run of a scores directory (its parts folder, or its one file for a run
    published before parts; see :mod:`creditgraph.catalog`). Raises :class:`SchemaError`
    if none, and :class:`~creditgraph.errors.RunPruned` for a run retention pruned (its
    folder, or its parts folder or file)."""
    from creditgraph.catalog import RUNS, current_scores_path, ensure_not_pruned

    if not path.exists():
        ensure_not_pruned(path.parent)  # a pruned run's scores/ or scores.parquet
    if not path.is_dir() or _parts(path):
        return path
    ensure_not_pruned(path)  # a run's own folder
    file = current_scores_path(path)
    if file is None:
        raise SchemaError(
            "no scores published yet (no CURRENT pointer); run `creditgraph score` first",
            file=str(path),
        )
    run = file.parent
    if run != path and (run.parent != path / RUNS or run.name in (".", "..")):  # not the legacy
        raise SchemaError("the CURRENT pointer does not name a run", file=str(path))
    return file


def published_scale(scores: Path) -> ScoreScale | None:
    """The scale the published scores at ``scores`` (as :func:`resolve_scores` gives them)
    were computed on: recorded with their run, or its model's (:func:`catalog.run_scale`);
    None when nothing says (a loose file, a legacy ``latest.parquet``, a run whose model is
    gone)."""
    from creditgraph.catalog import run_scale

    saved = run_scale(scores)
    if saved is None:
        return None
    try:
        scale = ScoreScale(**{key: float(value) for key, value in saved.items()})
    except (TypeError, ValueError):  # damaged: as if nothing were recorded
        return None
    return scale if scale.min_score < scale.max_score else None


def current_scale(scores: Path) -> ScoreScale | None:
    """The scale of the run published now at ``scores`` (a scores directory, or a file, as
    :class:`ParquetScoreSource` takes it); None when nothing is published or nothing says."""
    try:
        return published_scale(resolve_scores(scores))
    except (OSError, CreditGraphError):  # nothing published, or its run pruned by hand
        return None


def _parts(folder: Path) -> list[Path]:
    """A folder's Parquet parts in order (``part-NNNNN.parquet``; files written aside are not)."""
    return sorted(folder.glob("part-*.parquet"))


def _version(file: Path) -> tuple[str, int, int]:
    """What changes when another scores file is published: its path, mtime and size."""
    info = os.stat(file)
    return str(file), info.st_mtime_ns, info.st_size


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    filled = pc.fill_null(column.cast(pa.float64()), float("nan"))
    return np.asarray(filled.to_numpy(), dtype=np.float64)


def _micros(column: pa.ChunkedArray) -> np.ndarray:
    """Timestamps as microseconds since the epoch, UTC (naive ones are taken as UTC)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_timestamp(kind):
        column = column.cast(pa.timestamp("us", tz=kind.tz))
    elif pa.types.is_date(kind):
        column = column.cast(pa.timestamp("us"))
    else:  # text: parse as pandas would
        import pandas as pd

        parsed = pd.to_datetime(column.to_pandas(), utc=True, format="ISO8601")
        column = pa.chunked_array([pa.array(parsed, type=pa.timestamp("us", tz="UTC"))])
    micros = pc.fill_null(column.cast(pa.int64()), _NO_TIME)
    return np.asarray(micros.to_numpy(), dtype=np.int64)


@dataclass(frozen=True)
class _Snapshot:
    """One loaded scores file: an id → row index over column arrays (no object per row
    beyond the ids, so a million subjects load in about a second)."""

    index: dict[str, int]
    score: np.ndarray
    pd: np.ndarray
    scored_at_us: np.ndarray  # int64 microseconds since the epoch, UTC
    model_id: pa.Array
    factors: np.ndarray  # rows × FACTORS
    reasons: pa.Array | None
    version: tuple[str, int, int]
    scale: ScoreScale | None  # the run's (published_scale)

    @classmethod
    def read(cls, path: Path) -> _Snapshot:
        """One scores file, or a folder of parts read in order."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        files = _parts(path) if path.is_dir() else [path]
        try:
            version = _version(path)
            schema = pq.read_schema(files[0])
        except (FileNotFoundError, IndexError):
            raise SchemaError(
                "scores file not found; run the scoring pipeline first", file=str(path)
            ) from None
        missing = [c for c in REQUIRED_COLUMNS if c not in schema.names]
        if missing:
            raise SchemaError(f"missing columns {missing}", file=str(path))
        with_reasons = "reasons" in schema.names
        columns = [*REQUIRED_COLUMNS, "reasons"] if with_reasons else list(REQUIRED_COLUMNS)
        table = pa.concat_tables([pq.read_table(file, columns=columns) for file in files],
                                 promote_options="default")  # fmt: skip
        ids = table.column("user_id").cast("string").to_pylist()
        scale = published_scale(path)
        if scale is None:
            _log.warning("the scores at %s record no scale and their model is not found: "
                         "bands and cut-offs are read on the configured scale", path)  # fmt: skip
        return cls(
            index=dict(zip(ids, range(len(ids)), strict=True)),  # a repeated id: its last row
            score=_floats(table.column("score")),
            pd=_floats(table.column("pd")),
            scored_at_us=_micros(table.column("scored_at")),
            model_id=table.column("model_id").cast("string").combine_chunks(),
            factors=np.column_stack([_floats(table.column(c)) for c in FACTOR_COLUMNS]),
            reasons=table.column("reasons").combine_chunks() if with_reasons else None,
            version=version,
            scale=scale,
        )

    def record(self, row: int) -> ScoreRecord | None:
        at = int(self.scored_at_us[row])
        if np.isnan(self.score[row]) or at == _NO_TIME:
            return None
        return ScoreRecord(
            score=float(self.score[row]),
            pd=float(self.pd[row]),
            scored_at=_EPOCH + timedelta(microseconds=at),
            model_id=str(self.model_id[row].as_py()),
            factors=dict(zip(FACTORS, self.factors[row].tolist(), strict=True)),
            reasons=split_reasons(self.reasons[row].as_py()) if self.reasons else [],
            scale=self.scale,
        )


class ParquetScoreSource:
    """Scores from published Parquet, held in memory for O(1) lookups.

    ``path`` is a scores directory (the run its ``CURRENT`` pointer names is read) or one
    Parquet file. The first lookup after ``recheck_s`` seconds re-reads the pointer (or the
    file's mtime); if another run was published, a background thread loads it and swaps it
    in whole, while lookups use the previous one, as they do if the new file is unreadable.

    ``lazy=True`` returns at once (after checking that scores were published) and loads in
    the background, so a server can answer ``/healthz`` while a big file loads; a lookup
    meanwhile waits up to ``ready_timeout_s`` and then raises :class:`ScoresNotReady`.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        recheck_s: float = 5.0,
        lazy: bool = False,
        ready_timeout_s: float = 2.0,
    ) -> None:
        self.path = Path(path)
        self.recheck_s = recheck_s
        self.ready_timeout_s = ready_timeout_s
        self._lock = threading.Lock()  # held while a check or load is under way
        self._data: _Snapshot | None = None
        self._failure: str | None = None  # why the first load failed, while nothing is loaded
        self._first = threading.Event()  # set once the first load has finished, either way
        file = resolve_scores(self.path)
        self._checked = time.monotonic()
        if lazy:
            self._lock.acquire()
            threading.Thread(
                target=self._reload, args=(file,), name="scores-load", daemon=True
            ).start()
        else:
            self._data = _Snapshot.read(file)
            self._first.set()

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.recheck_s or not self._lock.acquire(blocking=False):
            return  # checked recently, or a check or load is under way
        self._checked = now
        try:
            file = resolve_scores(self.path)
            changed = self._data is None or _version(file) != self._data.version
        except (OSError, ValueError, CreditGraphError):  # mid-publication, damaged, or nothing
            changed = False  # there: keep serving the loaded run, look again later
        except BaseException:
            self._lock.release()  # never leave reloading locked for good
            raise
        if not changed:
            self._lock.release()
            return
        # Load beside the lookups, not inside the one that noticed: a big file takes seconds.
        threading.Thread(
            target=self._reload, args=(file,), name="scores-reload", daemon=True
        ).start()

    def _reload(self, file: Path) -> None:
        try:
            self._data = _Snapshot.read(file)
            self._failure = None
        except (OSError, SchemaError, ValueError) as exc:  # half-written: keep the old one
            self._failure = type(exc).__name__
            _log.warning("scores file not loaded: %s", type(exc).__name__)
        finally:
            self._first.set()
            self._lock.release()

    def served_scale(self) -> ScoreScale | None:
        """The scale of the run lookups are answered from: the loaded one's, or until the
        first load is in, the published run's (the one being loaded); None when it says none."""
        data = self._data
        return data.scale if data is not None else current_scale(self.path)

    def __len__(self) -> int:
        data = self._data
        return len(data.index) if data is not None else 0

    def get(self, subject_id: str) -> ScoreRecord | None:
        self._maybe_reload()
        data = self._data  # one snapshot for the whole lookup
        if data is None:
            self._first.wait(self.ready_timeout_s)
            data = self._data
            if data is None:
                raise ScoresNotReady(
                    f"scores not loaded ({self._failure})"
                    if self._failure
                    else "scores are still loading"
                )
        row = data.index.get(subject_id)
        return None if row is None else data.record(row)


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
        import pandas as pd

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
