"""The data directory: where everything lives, typed reads and writes, and recovery.

:class:`DataDir` is the one place that knows the layout (README, "The data
directory"); everything else asks it for a path or a frame.


A scoring run is published whole: its files are written under
``scores/runs/<run_id>/`` aside (``scores/`` and ``inputs/``, partitioned Parquet: one
part per chunk of users, the same users in part ``i`` of both), the graph store takes
the scores and records ``score_run`` (:meth:`GraphStore.publish_properties`), and only
then does the one-line pointer ``scores/CURRENT`` switch to the run. The partner API's
Parquet source, ``explain`` and the next ``features`` read through that
pointer, so they never see half a run.

The graph and the files cannot commit in one transaction, so the graph is
written first and :func:`recover` (run whenever a store is opened on the
data directory) finishes a publish that a kill interrupted after the graph
committed: the graph names the newer run (or load), whose files are complete,
so the pointer is rolled forward. A kill before the graph commit leaves the
previous state current, and the leftovers are swept away.

On Neo4j a load is a sequence of batch transactions: a kill half-way leaves
the graph marked ``pending_load``. :func:`recover` keeps that load's staged
history version, :func:`check_consistent` refuses the half-loaded graph, and
the next ``ingest`` completes the load first
(:func:`ingest.load.finish_pending_load`). Recovery does not resume it
itself: it runs whenever any command opens the store (``serve``, ``cypher``,
``features``) and must stay quick and never fail, while finishing a load of
10M relationships takes minutes of writes that can fail; ``ingest`` is the
command that writes loads and reports on them.

Publishing a run's scores on Neo4j is batched the same way (one transaction
for 1M users would exceed the server's transaction memory limit): a kill
half-way leaves the graph marked ``pending_score_run`` with some users holding
the new run's properties, while ``score_run`` and ``scores/CURRENT`` still name
the previous run. For the same reasons (100 batches of writes at 1M users),
:func:`recover` only reports it, and the next ``score`` completes it first
(:func:`finish_pending_run`, from the run's staged files), then publishes its
own run. :func:`check_consistent` does not refuse it: what it guards
(``features``) reads scores from the published Parquet run, never from the graph.

Runs are kept unless retention is asked for (``keep_runs``, ``creditgraph runs prune``):
:func:`prune_runs` removes the scores and inputs of older published runs and keeps their
manifests, marked ``pruned``, so the run history stays whole and a reader of a pruned
run is told so (:class:`~creditgraph.errors.RunPruned`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from creditgraph.durable import (
    Busy,
    exclusive,
    failpoint,
    fsync_path,
    read_pointer,
    staged_directory,
    sweep,
    temporary_sibling,
    write_parquet,
    write_pointer,
    write_text,
)
from creditgraph.errors import CreditGraphError, DataMissing, InvalidArgument, RunPruned
from creditgraph.graph.meta import LOAD_ID, PENDING_LOAD, PENDING_RUN, SCORE_RUN, read_meta
from creditgraph.graph.schema import SCORE_PROPERTIES
from creditgraph.graph.store import GraphStore
from creditgraph.graph.versions import GraphVersions
from creditgraph.ingest.history import (
    HISTORY_TABLES,
    current_load_id,
    load_tables,
    prune_versions,
    publish_version,
    read_history,
    read_keys,
    read_parts,
    table_parts,
    version_dir,
)
from creditgraph.ingest.load import point_rejects


@dataclass(frozen=True)
class DataDir:
    """Every path of one data directory, and typed reads and writes of what it holds."""

    root: Path

    @property
    def graph(self) -> Path:  # the embedded store's versions (graph.versions)
        return self.root / "graphs"

    @property
    def legacy_graph(self) -> Path:  # the embedded store as one file, before versions
        return self.root / "graph"

    def graph_versions(self) -> GraphVersions:
        return GraphVersions(self.graph, seed=self.legacy_graph)

    @property
    def lock(self) -> Path:  # held by every command while it writes here
        return self.root / ".lock"

    def writing(self, waiting: Callable[[str], None] | None = None) -> AbstractContextManager[None]:
        """Hold the data directory's writer lock for a block (re-entrant; waits its turn).

        Commands that write (``ingest``, ``features``, ``train``, ``score``) hold it
        while they stage and publish, so two of them never interleave their pointer
        switches, and recovery never sweeps what a running command is staging.
        """
        return exclusive(self.lock, waiting=waiting)

    @property
    def history(self) -> Path:
        return self.root / "history"

    @property
    def rejects(self) -> Path:
        return self.root / "rejects"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def scores(self) -> Path:
        return self.root / "scores"

    @property
    def features(self) -> Path:  # CURRENT → <build>/: the features as Parquet parts
        return self.root / "features"

    @property
    def legacy_features(self) -> Path:  # one file, before features were parts (read only)
        return self.root / "features.parquet"

    @property
    def access_db(self) -> Path:
        return self.root / "access" / "access.sqlite"

    @property
    def world(self) -> Path:  # the demo's synthetic input files
        return self.root / "world"

    @property
    def demo_marker(self) -> Path:  # present only in a directory the demo made
        return self.root / ".creditgraph-demo"

    def report(self, model_id: str) -> Path:
        return self.root / "reports" / model_id

    # -- typed reads and writes ---------------------------------------------
    def read_tables(self) -> dict[str, pd.DataFrame]:
        """Every history table of the current load; refuses an empty directory."""
        tables = load_tables(self.history)
        if "users" not in tables:
            raise DataMissing(f"no data in {self.history}; run `creditgraph ingest` first")
        return tables

    def history_parts(self) -> dict[str, list[Path]]:
        """The current load's Parquet files of every history table (absent tables left out),
        oldest part first; a table is the concatenation of its parts. Refuses an empty
        directory. Nothing is read: a Dask cluster's workers read the files themselves."""
        directory = version_dir(self.history)
        parts = {name: table_parts(directory, name) for name in HISTORY_TABLES}
        found = {name: files for name, files in parts.items() if files}
        if "users" not in found:
            raise DataMissing(f"no data in {self.history}; run `creditgraph ingest` first")
        return found

    def read_labels(self) -> pd.DataFrame:
        """The labels table alone (user_id, observation_date, defaulted)."""
        labels = read_history(self.history, "labels")
        if labels is None:
            raise DataMissing("no labels loaded: training needs a labels file (see README)")
        return labels

    def write_features(self, features: pd.DataFrame, load_id: str | None) -> Path:
        """Keep ``features`` (indexed by user id, in this order), stamped with their load."""
        frame = features.rename_axis("user_id").reset_index()

        def write(directory: Path) -> None:
            starts = range(0, max(len(frame), 1), PART_ROWS)  # an empty frame: one empty part
            for i, start in enumerate(starts):
                write_parquet(directory / part_name(i), frame.iloc[start : start + PART_ROWS])

        return self.publish_features(write, load_id, by_user_id=False)

    def publish_features(
        self, write: Callable[[Path], object], load_id: str | None, *, by_user_id: bool
    ) -> Path:
        """Publish a features build: ``write`` fills a staged folder with ``part-NNNNN.parquet``
        files (``user_id`` a column; on a cluster the workers write them), then a stamp
        (the load, and whether the parts are sorted by user id), a rename and the pointer
        ``features/CURRENT``. The build before stays for commands still reading it."""
        build = f"F{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
        with staged_directory(self.features / build) as staged:
            write(staged)
            stamp = {"load_id": load_id, "by_user_id": by_user_id}
            (staged / FEATURES_STAMP).write_text(json.dumps(stamp))
        before = read_pointer(self.features / POINTER)
        write_pointer(self.features / POINTER, build)
        self.legacy_features.unlink(missing_ok=True)
        for old in self.features.iterdir():  # builds older than the one before
            if old.is_dir() and old.name not in (build, before) and not old.name.startswith("."):
                _discard(old)
        return self.features / build

    def feature_files(self) -> FeatureFiles:
        """The kept features' Parquet files; refuses features built from another load than
        the current one. Nothing is read but the stamp (a cluster's workers read the parts)."""
        build = read_pointer(self.features / POINTER)
        if build is not None:
            directory = self.features / build
            stamp = json.loads((directory / FEATURES_STAMP).read_text())
            found = FeatureFiles(sorted(directory.glob("part-*.parquet")), stamp["load_id"],
                                 by_user_id=bool(stamp["by_user_id"]))  # fmt: skip
        elif self.legacy_features.exists():
            ids = pd.read_parquet(self.legacy_features, columns=["user_id"])  # attrs: the stamp
            built_from = ids.attrs.get("load_id")
            found = FeatureFiles([self.legacy_features], built_from, by_user_id=False)
        else:
            raise DataMissing(f"no features in {self.features}; run `creditgraph features` first")
        current = current_load_id(self.history)
        if current is not None and found.load_id != current:
            raise CreditGraphError(
                f"features were built from load {found.load_id or 'unknown'} but the current "
                f"load is {current}; run `creditgraph features` first"
            )
        return found

    def read_features(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The kept features (``columns``, or all) in the users table's order; refuses
        features built from another load than the current one."""
        files = self.feature_files()
        frame = files.read(columns)
        if files.by_user_id:  # written by a cluster in user-id ranges: the table's order back
            frame = frame.reindex(read_keys(self.history, "users").rename("user_id"))
        return frame

    def read_scores(self, columns: list[str] | None = None) -> pd.DataFrame | None:
        """The published run's scores (``columns`` and ``user_id``, or all), or None before
        the first scoring run."""
        return read_current(self.scores, columns=None if columns is None else
                            ["user_id", *columns])  # fmt: skip

    def published_model_id(self) -> str | None:
        """The model the published run was scored with (None before the first run)."""
        run_id = current_run(self.scores)
        return None if run_id is None else str(read_manifest(self.scores, run_id)["model_id"])

    def read_inputs(self) -> pd.DataFrame:
        """The model inputs of the published run, indexed by user id."""
        inputs = read_current(self.scores, INPUTS)
        if inputs is None:
            raise DataMissing("nothing scored yet; run `creditgraph score` first")
        return inputs.set_index("user_id")


@dataclass(frozen=True)
class FeatureFiles:
    """The kept features' Parquet files (``user_id`` a column) and the load they came from;
    ``by_user_id``: each part holds a range of user ids, sorted (a cluster's build)."""

    parts: list[Path]
    load_id: str | None
    by_user_id: bool

    def read(self, columns: list[str] | None = None) -> pd.DataFrame:
        """``columns`` (or all) of every part, in part order, indexed by user id."""
        frame = read_parts(self.parts, columns=None if columns is None else ["user_id", *columns])
        frame.attrs = {}  # a legacy file's stamp
        return frame.set_index("user_id")


FEATURES_STAMP = "stamp.json"
PART_ROWS = 100_000  # rows per part of a features build or a run written from one frame


def part_name(index: int) -> str:
    """The file name of part ``index`` (names sort in part order)."""
    return f"part-{index:05d}.parquet"


RUNS = "runs"
POINTER = "CURRENT"
SCORES = "scores"  # a run's scores: <run>/scores/part-NNNNN.parquet, one part per chunk
INPUTS = "inputs"  # the model inputs behind them: the same users, part for part
SCORES_FILE = "scores.parquet"  # a run published before parts: one file per table
INPUTS_FILE = "inputs.parquet"
MANIFEST_FILE = "manifest.json"
LEGACY_SCORES = "latest.parquet"  # scores/ layout before runs were published whole


def new_run_id(model_id: str) -> str:
    """A sortable, unique id for one scoring run."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"R{stamp}-{model_id.removeprefix('cg-')}-{secrets.token_hex(3)}"


def current_run(scores_dir: Path) -> str | None:
    return read_pointer(scores_dir / POINTER)


def run_dir(scores_dir: Path, run_id: str) -> Path:
    return scores_dir / RUNS / run_id


def run_files(directory: Path, table: str = SCORES) -> list[Path]:
    """A run's files of ``table`` (``scores`` or ``inputs``) in order: its parts, or the one
    file of a run published before parts; empty when the run has none."""
    if (directory / table).is_dir():
        return sorted((directory / table).glob("part-*.parquet"))
    whole = directory / f"{table}.parquet"
    return [whole] if whole.exists() else []


def read_run(
    directory: Path, table: str = SCORES, columns: list[str] | None = None
) -> pd.DataFrame:
    """A run's ``table``, its parts in order (``columns``, or all; ``user_id`` a column).
    Raises :class:`RunPruned` for a run whose data retention removed."""
    ensure_not_pruned(directory)
    files = run_files(directory, table)
    if not files:
        raise DataMissing(f"no {table} in {directory}")
    return read_parts(files, columns=columns)


def current_scores_path(scores_dir: Path) -> Path | None:
    """The published scores: the run's parts folder, or one file (a run published before
    parts, or a legacy ``latest.parquet``); None when nothing is published yet."""
    run_id = current_run(scores_dir)
    if run_id is not None:
        directory = run_dir(scores_dir, run_id)
        parts = directory / SCORES
        return parts if parts.is_dir() else directory / SCORES_FILE
    legacy = scores_dir / LEGACY_SCORES
    return legacy if legacy.exists() else None


def read_current(
    scores_dir: Path, table: str = SCORES, columns: list[str] | None = None
) -> pd.DataFrame | None:
    """A table of the published run (``scores`` or ``inputs``; ``columns``, or all), or None."""
    run_id = current_run(scores_dir)
    if run_id is not None:
        ensure_not_pruned(run_dir(scores_dir, run_id))  # never by prune_runs; by hand, say so
        files = run_files(run_dir(scores_dir, run_id), table)
    else:
        legacy = scores_dir / (LEGACY_SCORES if table == SCORES else f"{table}.parquet")
        files = [legacy] if legacy.exists() else []
    return read_parts(files, columns=columns) if files else None


def read_manifest(scores_dir: Path, run_id: str) -> dict[str, Any]:
    return json.loads((run_dir(scores_dir, run_id) / MANIFEST_FILE).read_text())


def run_scale(scores: Path) -> dict[str, float] | None:
    """The scale the published scores at ``scores`` are points of (a run's parts folder or
    file, as :func:`current_scores_path` gives them), as saved (the fields of
    :class:`~creditgraph.scoring.scale.ScoreScale`): the one its manifest records, or for a
    run published before runs recorded it, its model's (a model's id covers its scale).
    None when neither says: a loose file, a legacy ``latest.parquet``, a run whose model
    is gone."""
    run = scores.parent
    if run.parent.name != RUNS:
        return None
    manifest = _manifest_or_empty(run)
    recorded, model_id = manifest.get("scale"), manifest.get("model_id")
    if isinstance(recorded, dict):
        return recorded
    if not isinstance(model_id, str):
        return None
    # <data_dir>/scores/runs/<run_id>: its models are <data_dir>/models.
    return model_scale(DataDir(run.parent.parent.parent).models, model_id)


def model_scale(models_dir: Path, model_id: str) -> dict[str, float] | None:
    """The scale a saved model scores on, as its ``model.json`` holds it; None when the
    model is not there."""
    if Path(model_id).name != model_id or model_id.startswith("."):
        return None
    # Read from model.json as it is: loading the model would import XGBoost into `serve`.
    try:
        meta = json.loads((models_dir / model_id / "model.json").read_text())
    except (OSError, ValueError):
        return None
    scale = meta.get("scale") if isinstance(meta, dict) else None
    return scale if isinstance(scale, dict) else None


@dataclass(frozen=True)
class PublishedRun:
    run_id: str
    directory: Path


# Fills a staged run directory with its tables: scores/ and inputs/, part i of both the
# same users in the same order.
StageRun = Callable[[Path], None]


def publish_run(
    scores_dir: Path, store: GraphStore, *, stage: StageRun, manifest: dict[str, Any]
) -> PublishedRun:
    """Publish one scoring run whole: files aside → graph (with ``score_run``) → pointer.

    ``stage`` writes the run's parts into the staged directory it is given. The
    properties written onto ``User`` nodes are then read back from those files
    (:func:`run_store_rows`), exactly as :func:`finish_pending_run` rebuilds them. On
    the embedded store the graph takes them in one transaction; on Neo4j in
    resumable batches (a kill half-way is completed by :func:`finish_pending_run`).
    """
    run_id = manifest.get("run_id") or new_run_id(str(manifest.get("model_id", "model")))
    final = run_dir(scores_dir, run_id)
    with staged_directory(final) as staged:
        stage(staged)
        (staged / MANIFEST_FILE).write_text(
            json.dumps({**manifest, "run_id": run_id}, indent=2, default=str)
        )
    failpoint("score:run-staged")
    store.publish_properties("User", run_store_rows(scores_dir, run_id), run_id=run_id)
    failpoint("score:graph-committed")
    _switch_pointer(scores_dir, run_id)
    return PublishedRun(run_id, final)


def write_part(directory: Path, index: int, scores: pd.DataFrame, inputs: pd.DataFrame) -> None:
    """Part ``index`` of a run's scores and inputs (both indexed by user id), each written
    aside and renamed; the inputs first, so a scores part present means both are whole."""
    for table, frame in ((INPUTS, inputs), (SCORES, scores)):
        write_parquet(directory / table / part_name(index),
                      frame.rename_axis("user_id").reset_index())  # fmt: skip


def frames_as_parts(scores: pd.DataFrame, inputs: pd.DataFrame, rows: int = PART_ROWS) -> StageRun:
    """A run staged from frames in memory: ``rows`` users per part, in ``scores``' order."""

    def stage(directory: Path) -> None:
        for i, start in enumerate(range(0, max(len(scores), 1), rows)):
            chunk = scores.iloc[start : start + rows]
            write_part(directory, i, chunk, inputs.reindex(chunk.index))

    return stage


def _switch_pointer(scores_dir: Path, run_id: str) -> None:
    write_pointer(scores_dir / POINTER, run_id)
    (scores_dir / LEGACY_SCORES).unlink(missing_ok=True)


# The model inputs a run writes onto User nodes besides its scores.
STORE_INPUTS = ("pagerank_scaled", "community")
PREVIOUS = ["score", "model_id"]  # what a run keeps of the one before it


def store_rows(
    scores: pd.DataFrame, inputs: pd.DataFrame, previous: pd.DataFrame | None
) -> pd.DataFrame:
    """The properties one run writes onto ``User`` nodes, a row per user in ``scores``' order.

    The score properties, network position (``pagerank``) and community (for
    investigations) and, when the model changed since ``previous`` (the
    published run's ``score`` and ``model_id``, indexed by user id, if any), its
    score and model as ``prev_score``/``prev_model_id``. ``scores`` and ``inputs``
    are indexed by user id. A function of its arguments only, so a publish
    interrupted half-way is completed with exactly the rows it started with.
    """
    written = scores[list(SCORE_PROPERTIES)].copy()
    written["pagerank"] = inputs["pagerank_scaled"].reindex(written.index).astype(float)
    written["community"] = inputs["community"].reindex(written.index).astype("int64")
    if previous is None or previous.empty or written.empty:
        return written
    if previous["model_id"].iloc[0] != scores["model_id"].iloc[0]:
        before = previous.reindex(written.index)
        written["prev_score"] = before["score"].astype(float)
        written["prev_model_id"] = before["model_id"].astype(object)
    return written


def run_store_rows(scores_dir: Path, run_id: str) -> pd.DataFrame:
    """:func:`store_rows` of a staged or published run, read from its files part by part.

    Only the columns written are read (no reasons, no other inputs), one part of
    scores and inputs at a time; the rows are concatenated because the store takes
    one frame (one transaction on the embedded store; on Neo4j the resumable batches
    are counted in rows of that frame). The previous run is the one the manifest
    names (:func:`_previous_scores`).
    """
    directory = run_dir(scores_dir, run_id)
    ensure_not_pruned(directory)
    previous = _previous_scores(scores_dir, read_manifest(scores_dir, run_id))
    scores, inputs = run_files(directory, SCORES), run_files(directory, INPUTS)
    if len(scores) != len(inputs) or not scores:
        raise DataMissing(f"the run in {directory} lacks parts of its scores or inputs")
    batches = [
        store_rows(read_parts([s], columns=["user_id", *SCORE_PROPERTIES]).set_index("user_id"),
                   read_parts([i], columns=["user_id", *STORE_INPUTS]).set_index("user_id"),
                   previous)
        for s, i in zip(scores, inputs, strict=True)
    ]  # fmt: skip
    return batches[0] if len(batches) == 1 else pd.concat(batches)


def publish_scores(
    paths: DataDir, store: GraphStore, scores: pd.DataFrame, inputs: pd.DataFrame, *,
    run_id: str | None = None, details: dict[str, Any] | None = None,
) -> PublishedRun:  # fmt: skip
    """Publish one scoring run of ``scores`` (indexed by user id) and the model inputs behind it.

    The files are parts of :data:`PART_ROWS` users; the store's users get
    :func:`store_rows`; the manifest records the model and its scale, the load, the
    count, the time, the run published before and ``details``. A run that an earlier
    publish left half-written in the graph (Neo4j) is completed and published first.
    """
    model_id = str(scores["model_id"].iloc[0])
    with paths.writing():
        return _publish(paths, store, frames_as_parts(scores, inputs), model_id, len(scores),
                        run_id, details or {})  # fmt: skip


def publish_chunks(
    paths: DataDir, store: GraphStore, run: RunInProgress, details: dict[str, Any]
) -> PublishedRun:
    """Publish a run scored in chunks (:class:`RunInProgress`, every chunk finished): its
    parts become the run's parts by hard link, never rewritten."""
    with paths.writing():
        return _publish(paths, store, run.link_parts, str(run.state["key"]["model_id"]),
                        int(run.state["key"]["users"]), run.run_id, details)  # fmt: skip


def _publish(
    paths: DataDir, store: GraphStore, stage: StageRun, model_id: str, users: int,
    run_id: str | None, details: dict[str, Any],
) -> PublishedRun:  # fmt: skip
    finish_pending_run(paths, store)
    if run_id is not None and run_id != current_run(paths.scores):
        _discard_staged_run(paths.scores, run_id)  # a killed attempt's files: staged afresh
    # The scale the scores are points of, kept with them: the partner API answers on it.
    scale = model_scale(paths.models, model_id)
    manifest = {
        "run_id": run_id,
        "model_id": model_id,
        "scale": scale,
        "load_id": current_load_id(paths.history),
        "users": users,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "previous_run": current_run(paths.scores),
        **details,
    }
    return publish_run(paths.scores, store, stage=stage, manifest=manifest)


def _discard_staged_run(scores_dir: Path, run_id: str) -> None:
    """Remove an unpublished run's directory (a killed attempt's files)."""
    directory = run_dir(scores_dir, run_id)
    if directory.is_dir():
        _discard(directory)


def _discard(directory: Path) -> None:
    """Move a directory out of sight in one rename, then delete it (a kill leaves a swept .tmp)."""
    aside = temporary_sibling(directory)
    os.rename(directory, aside)
    shutil.rmtree(aside, ignore_errors=True)


RESUME = "resume"  # scores/resume/: the chunks of a rescore not yet published
STATE_FILE = "state.json"


@dataclass(frozen=True)
class RunInProgress:
    """A scoring run being computed in chunks, kept so a killed run resumes where it stopped.

    ``scores/resume/`` holds ``state.json`` (what the run scores: its id, start
    time and the key of its inputs) and, per finished chunk, its parts
    ``scores/part-NNNNN.parquet`` and ``inputs/part-NNNNN.parquet``, each written
    aside and renamed (by whichever process scored the chunk: on a cluster, a
    worker; the folder must be shared). Nothing here is published: the run is
    published whole (its parts linked into the run), then this directory is removed.
    Picklable: a cluster's workers get it to write their chunks.
    """

    directory: Path
    state: dict[str, Any]

    @property
    def run_id(self) -> str:
        return str(self.state["run_id"])

    @property
    def scored_at(self) -> pd.Timestamp:
        return pd.Timestamp(self.state["scored_at"])

    @property
    def chunks(self) -> int:
        return int(self.state["chunks"])

    def _part(self, table: str, index: int) -> Path:
        return self.directory / table / part_name(index)

    def finished(self) -> set[int]:
        return {i for i in range(self.chunks) if self._part(SCORES, i).exists()}

    def write_chunk(self, index: int, scores: pd.DataFrame, inputs: pd.DataFrame) -> int:
        """Keep chunk ``index``'s scores and the inputs behind them; returns its rows."""
        write_part(self.directory, index, scores, inputs)
        return len(scores)

    def read(self, columns: list[str] | None = None) -> pd.DataFrame:
        """Every chunk's scores in chunk order (``columns``, or all), indexed by user id."""
        parts = [self._part(SCORES, i) for i in range(self.chunks)]
        wanted = None if columns is None else ["user_id", *columns]
        return read_parts(parts, columns=wanted).set_index("user_id")

    def link_parts(self, directory: Path) -> None:
        """Every chunk's parts hard-linked into ``directory`` (a staged run)."""
        for table in (SCORES, INPUTS):
            (directory / table).mkdir()
            for i in range(self.chunks):
                os.link(self._part(table, i), directory / table / part_name(i))

    def clear(self) -> None:
        _discard(self.directory)


def resume_or_start_run(paths: DataDir, key: dict[str, Any], chunks: int) -> RunInProgress:
    """The run in progress for exactly these inputs (``key``) and chunks, or a new one.

    A run left by a killed command for other inputs (another model, load or
    chunk size) is discarded.
    """
    directory = paths.scores / RESUME
    state_file = directory / STATE_FILE
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if state.get("key") == key and state.get("chunks") == chunks:
            return RunInProgress(directory, state)
    if directory.exists():  # another run's chunks (or a removal a kill cut short): never reused
        _discard(directory)
    state = {
        "run_id": new_run_id(str(key.get("model_id", "model"))),
        "scored_at": pd.Timestamp(datetime.now(UTC).replace(tzinfo=None)).floor("s").isoformat(),
        "chunks": chunks,
        "key": key,
    }
    directory.mkdir(parents=True, exist_ok=True)
    write_text(state_file, json.dumps(state, indent=2))
    return RunInProgress(directory, state)


def annotate_manifest(scores_dir: Path, run_id: str, details: dict[str, Any]) -> None:
    """Add ``details`` (e.g. how long publishing took) to a published run's manifest."""
    manifest = {**read_manifest(scores_dir, run_id), **details}
    write_text(run_dir(scores_dir, run_id) / MANIFEST_FILE, json.dumps(manifest, indent=2))


def _previous_scores(scores_dir: Path, manifest: dict[str, Any]) -> pd.DataFrame | None:
    """The scores a run's ``prev_score`` came from (``score``, ``model_id``, indexed by user
    id): the run its manifest names, if kept.

    Otherwise (a legacy ``latest.parquet``, or none) what the pointer names, which is
    what it named when the run was staged: the pointer moves only once a run's graph
    write has finished, and every publish first finishes a pending one.
    """
    previous_run = manifest.get("previous_run")
    columns = ["user_id", *PREVIOUS]
    if previous_run and run_files(run_dir(scores_dir, previous_run)):
        frame: pd.DataFrame | None = read_run(run_dir(scores_dir, previous_run), columns=columns)
    else:
        frame = read_current(scores_dir, columns=columns)
    return None if frame is None else frame.set_index("user_id")


def finish_pending_run(
    paths: DataDir, store: GraphStore, progress: Callable[[str], None] | None = None
) -> str | None:
    """Complete the run the graph marks ``pending_score_run``, then publish it; returns its id.

    The store rows are rebuilt from the run's staged files (:func:`run_store_rows`)
    and only the batches that had not committed are sent; then ``score_run``
    is set and the pointer switches. None when nothing is pending, or when the
    run's staged directory is gone: that run is abandoned, and the caller's own
    publish supersedes it (it sets every user's score properties again).
    """
    pending = read_meta(store).get(PENDING_RUN)
    if not pending:
        return None
    directory = run_dir(paths.scores, pending)
    if not (directory / MANIFEST_FILE).exists():
        return None
    say = progress or (lambda _message: None)
    say(f"finishing interrupted scoring run {pending}")
    rows = run_store_rows(paths.scores, pending)
    store.publish_properties("User", rows, run_id=pending, progress=progress)
    _switch_pointer(paths.scores, pending)
    return pending


# -- retention: old runs' data removed, their manifests kept ------------------------------
PRUNED = "pruned"  # manifest key of a run whose scores and inputs retention removed
# The current run and the one before it are never pruned: the shift (PSI) a publish
# records, the score-drops notebook and a pending publish's prev_score read both.
MIN_KEEP = 2
DATA_PARTS = (SCORES, INPUTS, SCORES_FILE, INPUTS_FILE)  # what retention removes from a run


def ensure_not_pruned(directory: Path) -> None:
    """Raise :class:`RunPruned` when the run at ``directory`` had its data removed by
    retention (:func:`prune_runs`), so a reader hears that rather than a missing file."""
    stamp = _manifest_or_empty(directory).get(PRUNED)
    if stamp is None:
        return
    when = stamp.get("at", "?") if isinstance(stamp, dict) else "?"
    raise RunPruned(
        f"run {directory.name} was pruned (retention) at {when}: its scores and model inputs "
        f"were removed and only its manifest is kept ({directory / MANIFEST_FILE})"
    )


def published_runs(scores_dir: Path) -> list[str]:
    """The published runs, newest first: the current run, then the run each one's manifest
    names as published before it. Pruned runs keep their manifests, so the chain stays whole.

    Publish order comes from this chain, not from run ids or times: two runs published in
    the same second have ids that sort at random. A run directory not on the chain was
    never published (staged by a command killed before its graph write, or a batched
    publish still pending), or dates from before manifests named their previous run.
    """
    chain: list[str] = []
    run_id = current_run(scores_dir)
    while run_id and _is_run_name(run_id) and run_id not in chain:
        manifest = _manifest_or_empty(run_dir(scores_dir, run_id))
        if not manifest:
            break
        chain.append(run_id)
        previous = manifest.get("previous_run")
        run_id = str(previous) if previous else None
    return chain


def _is_run_name(name: str) -> bool:
    return Path(name).name == name and not name.startswith(".")


def _manifest_or_empty(directory: Path) -> dict[str, Any]:
    """A run's manifest; empty when it is missing or unreadable (every lenient reader's)."""
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


@dataclass(frozen=True)
class RunSummary:
    """One run directory, as ``creditgraph runs list`` shows it."""

    run_id: str
    published_at: str | None  # when it was staged for publishing (the manifest's created_at)
    model_id: str | None
    users: int | None
    psi: float | None  # against the run before it, when the manifest records it (rescore)
    size_bytes: int  # on disk: its parts and manifest
    status: str  # current, previous, kept, pruned, or unpublished (not on the chain)
    pruned_at: str | None


def list_runs(scores_dir: Path) -> list[RunSummary]:
    """Every run directory: the published ones newest first (:func:`published_runs`), then
    the others (never published), newest first."""
    chain = published_runs(scores_dir)
    runs_dir = scores_dir / RUNS
    others = [d.name for d in runs_dir.iterdir()
              if d.is_dir() and _is_run_name(d.name) and d.name not in chain
              ] if runs_dir.is_dir() else []  # fmt: skip
    manifests = {run_id: _manifest_or_empty(run_dir(scores_dir, run_id))
                 for run_id in [*chain, *others]}  # fmt: skip
    others.sort(key=lambda r: (str(manifests[r].get("created_at", "")), r), reverse=True)
    summaries = []
    for position, run_id in enumerate([*chain, *others]):
        manifest = manifests[run_id]
        stamp = manifest.get(PRUNED)
        if isinstance(stamp, dict):
            status = "pruned"
        elif run_id not in chain:
            status = "unpublished"
        else:
            status = ("current", "previous")[position] if position < 2 else "kept"
        shift = manifest.get("shift")
        psi = shift.get("psi") if isinstance(shift, dict) else None
        directory = run_dir(scores_dir, run_id)
        summaries.append(RunSummary(
            run_id, manifest.get("created_at"), manifest.get("model_id"), manifest.get("users"),
            None if psi is None else float(psi), _size([directory]), status,
            stamp.get("at") if isinstance(stamp, dict) else None,
        ))  # fmt: skip
    return summaries


@dataclass(frozen=True)
class PruneReport:
    """What :func:`prune_runs` did: the runs whose data it removed and the runs kept."""

    keep: int
    removed: dict[str, int]  # run id → bytes freed, oldest run first
    kept: list[str]  # published runs still holding their data, newest first

    @property
    def freed_bytes(self) -> int:
        return sum(self.removed.values())

    def as_manifest(self) -> dict[str, Any]:
        """What a publish that applied retention records in its manifest."""
        return {"keep": self.keep, "pruned": list(self.removed), "freed_bytes": self.freed_bytes}


def prune_runs(paths: DataDir, keep: int, *, store: GraphStore) -> PruneReport:
    """Remove the scores and model inputs of every published run but the newest ``keep``.

    Publish order is :func:`published_runs`. Never touched, whatever ``keep`` says: the
    current run and the one before it, the run the graph holds (``score_run``) or is
    being given in batches (``pending_score_run``, Neo4j), the run a ``rescore`` is
    resuming (``scores/resume/``), and every run not on the published chain. A pruned
    run keeps its manifest, marked ``pruned`` (when, why, bytes freed), so the history
    stays listable and a reader of its scores gets :class:`RunPruned`.

    Crash-safe: each run is marked in its manifest (an atomic replace) before anything
    goes, then each part is renamed out of the run into a temporary sibling in ``runs/``
    (which recovery sweeps) and deleted. A kill leaves every run whole or marked pruned,
    oldest runs first, as a larger ``keep`` would have; the next call finishes the
    removal of a marked run's leftover parts.
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < MIN_KEEP:
        raise InvalidArgument(
            f"keep must be a whole number of runs, at least {MIN_KEEP} (the current run and "
            f"the one before it), not {keep!r}"
        )
    with paths.writing():
        scores_dir = paths.scores
        chain = published_runs(scores_dir)
        protected = _protected_runs(scores_dir, store, chain)
        removed: dict[str, int] = {}
        for run_id in reversed(chain[keep:]):  # oldest first
            if run_id not in protected:
                freed = _prune_run(run_dir(scores_dir, run_id), keep)
                if freed is not None:
                    removed[run_id] = freed
        kept = [r for r in chain if PRUNED not in _manifest_or_empty(run_dir(scores_dir, r))]
    return PruneReport(keep, removed, kept)


def _protected_runs(scores_dir: Path, store: GraphStore, chain: list[str]) -> set[str]:
    """Runs :func:`prune_runs` never touches (see there)."""
    meta = read_meta(store)
    return set(chain[:MIN_KEEP]) | {
        run_id for run_id in (meta.get(SCORE_RUN), meta.get(PENDING_RUN), _resuming(scores_dir))
        if run_id
    }  # fmt: skip


def _resuming(scores_dir: Path) -> str | None:
    """The run a killed ``rescore`` will resume (``scores/resume/``), if any."""
    try:
        return str(json.loads((scores_dir / RESUME / STATE_FILE).read_text())["run_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no rescore in progress


def _discard_unpublished_runs(scores_dir: Path, keep: set[str]) -> list[str]:
    """Remove the runs a command killed between staging its run and the graph's write left:
    never published (off the :func:`published_runs` chain), staged after the current run,
    and not in ``keep`` (a run the graph holds in part, a rescore's). Returns their ids."""
    runs_dir, current = scores_dir / RUNS, current_run(scores_dir)
    if not runs_dir.is_dir():
        return []
    since = str(_manifest_or_empty(run_dir(scores_dir, current)).get("created_at", "")) if (
        current and _is_run_name(current)) else ""  # fmt: skip
    chain = set(published_runs(scores_dir))
    discarded = []
    for directory in sorted(runs_dir.iterdir()):
        name = directory.name
        if not directory.is_dir() or not _is_run_name(name) or name in chain or name in keep:
            continue
        staged_at = _manifest_or_empty(directory).get("created_at")
        # An older or undated run may be a published one from before manifests named the
        # run before them: never touched.
        if isinstance(staged_at, str) and staged_at > since:
            _discard(directory)
            discarded.append(name)
    return discarded


def _prune_run(directory: Path, keep: int) -> int | None:
    """Mark one run pruned and remove its data parts; returns the bytes freed (None when an
    earlier prune had finished it)."""
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    parts = [directory / name for name in DATA_PARTS if (directory / name).exists()]
    if PRUNED in manifest and not parts:
        return None
    freed = _size(parts)
    if PRUNED not in manifest:
        # Marked before anything goes: from here on a reader hears that the run was pruned,
        # never that a part it expected is missing.
        stamp = {"at": datetime.now(UTC).isoformat(timespec="seconds"),
                 "reason": "retention", "keep": keep, "freed_bytes": freed}  # fmt: skip
        write_text(directory / MANIFEST_FILE,
                   json.dumps({**manifest, PRUNED: stamp}, indent=2, default=str))  # fmt: skip
        failpoint("prune:run-marked")
    for part in parts:
        aside = temporary_sibling(directory)  # beside the run in runs/: recovery sweeps it
        os.rename(part, aside)
        failpoint("prune:part-aside")
        if aside.is_dir():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            aside.unlink(missing_ok=True)
    fsync_path(directory)
    return freed


def _size(paths: list[Path]) -> int:
    """Bytes of the files at ``paths`` (files, or folders walked), each inode counted once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for path in paths:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            try:
                info = file.stat()
            except FileNotFoundError:  # removed meanwhile (a listing beside a prune)
                continue
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    return total


def recover(paths: DataDir, store: GraphStore) -> list[str]:
    """Finish or discard what a killed command left; returns what was done, in words.

    Runs only while no other command writes to the directory (what it finds
    half-written may be that command's work in progress): then it does nothing
    and says so. Never raises on a mismatch it cannot mend:
    :func:`check_consistent` says so to the commands that depend on it, while
    ``ingest`` can still repair it.
    """
    try:
        with exclusive(paths.lock, wait=False):
            return _recover(paths, store)
    except Busy as busy:
        return [f"recovery skipped: another command is writing ({busy})"]


def _recover(paths: DataDir, store: GraphStore) -> list[str]:
    history_dir, scores_dir = paths.history, paths.scores
    for directory in (paths.root, paths.models, paths.features, scores_dir, scores_dir / RUNS,
                      history_dir):  # fmt: skip
        sweep(directory)
    versions = paths.graph_versions()
    versions.prune()
    if versions.current() != paths.legacy_graph:  # the single-file store has been copied
        for legacy in (paths.legacy_graph, paths.root / "graph.wal"):
            if legacy.is_file():
                legacy.unlink()
    done: list[str] = []
    meta = read_meta(store)
    graph_load, pending = meta.get(LOAD_ID), meta.get(PENDING_LOAD)
    # A load the graph holds in part (batched store): its staged version is what resumes it.
    keep = frozenset({pending}) if pending and (history_dir / pending).is_dir() else frozenset()
    if graph_load and graph_load != current_load_id(history_dir):
        if (history_dir / graph_load).is_dir():
            publish_version(history_dir, graph_load, keep)
            done.append(f"finished load {graph_load} (history pointer rolled forward)")
    elif history_dir.is_dir():
        prune_versions(history_dir, keep)  # versions staged by loads killed before any commit
    point_rejects(paths.rejects, history_dir)  # a kill between the pointer and the link
    if pending:
        done.append(
            f"load {pending} is half-finished in the graph; the next ingest "
            + ("completes it" if keep else "abandons it (its staged history is gone)")
        )
    # A run the graph holds in part (batched store): reported only, and the next
    # ``score`` completes it (see the module docstring for why not here).
    pending_run = meta.get(PENDING_RUN)
    if pending_run:
        staged = (run_dir(scores_dir, pending_run) / MANIFEST_FILE).exists()
        done.append(
            f"scoring run {pending_run} is half-written in the graph (users hold it or the "
            f"previous run); the next score "
            + ("completes it" if staged else "abandons it (its staged run is gone)")
        )
    graph_run = meta.get(SCORE_RUN)
    if graph_run and graph_run != current_run(scores_dir):
        if (run_dir(scores_dir, graph_run) / MANIFEST_FILE).exists():
            write_pointer(scores_dir / POINTER, graph_run)
            done.append(f"finished scoring run {graph_run} (scores pointer rolled forward)")
    keep_runs = {run_id for run_id in (pending_run, _resuming(scores_dir)) if run_id}
    for run_id in _discard_unpublished_runs(scores_dir, keep_runs):
        done.append(f"discarded scoring run {run_id} (staged by a command killed before "
                    "publishing it)")  # fmt: skip
    return done


def check_consistent(paths: DataDir, store: GraphStore) -> str | None:
    """Raise unless the graph and the history hold the same, whole load; returns its id.

    A scoring run half-written in the graph (Neo4j, ``pending_score_run``) is
    not refused: ``features`` reads earlier scores from the published Parquet
    run, which a pending run never is; :func:`recover` reports it and the next
    ``score`` completes it.
    """
    meta = read_meta(store)
    graph_load, pending = meta.get(LOAD_ID), meta.get(PENDING_LOAD)
    if pending:
        raise CreditGraphError(
            f"the graph holds part of load {pending} (a load stopped half-way): "
            "run `creditgraph ingest` (e.g. on the same files) to complete it first"
        )
    history_load = current_load_id(paths.history)
    if graph_load != history_load and history_load is not None:
        raise CreditGraphError(
            f"the graph holds load {graph_load or 'none'} but the history holds {history_load}: "
            "the store is not the one this data directory was loaded into; "
            "re-run `creditgraph ingest` into it"
        )
    return history_load
