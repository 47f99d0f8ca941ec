"""The data directory: where everything lives, typed reads and writes, and recovery.

:class:`DataDir` is the one place that knows the layout (README, "The data
directory"); everything else asks it for a path or a frame.


A scoring run is published whole: its files are written under
``scores/runs/<run_id>/`` aside, the graph store takes the scores and records
``score_run`` (:meth:`GraphStore.publish_properties`), and only then does the
one-line pointer ``scores/CURRENT`` switch to the run. The partner API's
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
    read_pointer,
    staged_directory,
    sweep,
    temporary_sibling,
    write_parquet,
    write_pointer,
    write_text,
)
from creditgraph.errors import CreditGraphError, DataMissing
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
    def features(self) -> Path:
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
        """Keep ``features`` (indexed by user id), stamped with the load they were built from."""
        frame = features.reset_index()
        frame.attrs = {"load_id": load_id}  # kept in the Parquet metadata
        return write_parquet(self.features, frame)

    def read_features(self) -> pd.DataFrame:
        """The kept features; refuses features built from another load than the current one."""
        if not self.features.exists():
            raise DataMissing(f"no features at {self.features}; run `creditgraph features` first")
        frame = pd.read_parquet(self.features)
        built_from, current = frame.attrs.get("load_id"), current_load_id(self.history)
        if current is not None and built_from != current:
            raise CreditGraphError(
                f"features were built from load {built_from or 'unknown'} but the current load "
                f"is {current}; run `creditgraph features` first"
            )
        return frame.set_index("user_id")

    def read_scores(self) -> pd.DataFrame | None:
        """The published run's scores, or None before the first scoring run."""
        return read_current(self.scores)

    def published_model_id(self) -> str | None:
        """The model the published run was scored with (None before the first run)."""
        run_id = current_run(self.scores)
        return None if run_id is None else str(read_manifest(self.scores, run_id)["model_id"])

    def read_inputs(self) -> pd.DataFrame:
        """The model inputs of the published run, indexed by user id."""
        inputs = read_current(self.scores, INPUTS_FILE)
        if inputs is None:
            raise DataMissing("nothing scored yet; run `creditgraph score` first")
        return inputs.set_index("user_id")


RUNS = "runs"
POINTER = "CURRENT"
SCORES_FILE = "scores.parquet"
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


def current_scores_path(scores_dir: Path) -> Path | None:
    """The published scores file (None when nothing is published yet)."""
    run_id = current_run(scores_dir)
    if run_id is not None:
        return run_dir(scores_dir, run_id) / SCORES_FILE
    legacy = scores_dir / LEGACY_SCORES
    return legacy if legacy.exists() else None


def read_current(scores_dir: Path, file: str = SCORES_FILE) -> pd.DataFrame | None:
    """A file of the published run (``scores.parquet`` or ``inputs.parquet``), or None."""
    run_id = current_run(scores_dir)
    if run_id is not None:
        path = run_dir(scores_dir, run_id) / file
    else:
        path = scores_dir / (LEGACY_SCORES if file == SCORES_FILE else file)
    return pd.read_parquet(path) if path.exists() else None


def read_manifest(scores_dir: Path, run_id: str) -> dict[str, Any]:
    return json.loads((run_dir(scores_dir, run_id) / MANIFEST_FILE).read_text())


@dataclass(frozen=True)
class PublishedRun:
    run_id: str
    directory: Path


def publish_run(
    scores_dir: Path,
    store: GraphStore,
    *,
    scores: pd.DataFrame,
    inputs: pd.DataFrame,
    store_rows: pd.DataFrame,
    manifest: dict[str, Any],
) -> PublishedRun:
    """Publish one scoring run whole: files aside → graph (with ``score_run``) → pointer.

    ``scores`` and ``inputs`` are indexed by user id; ``store_rows`` are the
    properties written onto ``User`` nodes. On the embedded store the graph
    takes them in one transaction; on Neo4j in resumable batches (a kill
    half-way is completed by :func:`finish_pending_run`, which needs
    ``store_rows`` to be :func:`store_rows` of the staged files).
    """
    run_id = manifest.get("run_id") or new_run_id(str(manifest.get("model_id", "model")))
    final = run_dir(scores_dir, run_id)
    with staged_directory(final) as staged:
        write_parquet(staged / SCORES_FILE, scores.rename_axis("user_id").reset_index())
        write_parquet(staged / INPUTS_FILE, inputs.rename_axis("user_id").reset_index())
        (staged / MANIFEST_FILE).write_text(
            json.dumps({**manifest, "run_id": run_id}, indent=2, default=str)
        )
    failpoint("score:run-staged")
    store.publish_properties("User", store_rows, run_id=run_id)
    failpoint("score:graph-committed")
    _switch_pointer(scores_dir, run_id)
    return PublishedRun(run_id, final)


def _switch_pointer(scores_dir: Path, run_id: str) -> None:
    write_pointer(scores_dir / POINTER, run_id)
    (scores_dir / LEGACY_SCORES).unlink(missing_ok=True)


# The model inputs a run writes onto User nodes besides its scores.
STORE_INPUTS = ("pagerank_scaled", "community")


def store_rows(
    scores: pd.DataFrame, inputs: pd.DataFrame, previous: pd.DataFrame | None
) -> pd.DataFrame:
    """The properties one run writes onto ``User`` nodes, a row per user in ``scores``' order.

    The score properties, network position (``pagerank``) and community (for
    investigations) and, when the model changed since ``previous`` (the
    published run's scores file, if any), its score and model as
    ``prev_score``/``prev_model_id``. ``scores`` and ``inputs`` are indexed by
    user id. A function of its arguments only, so a publish interrupted
    half-way is completed with exactly the rows it started with.
    """
    written = scores[list(SCORE_PROPERTIES)].copy()
    written["pagerank"] = inputs["pagerank_scaled"].reindex(written.index).astype(float)
    written["community"] = inputs["community"].reindex(written.index).astype("int64")
    if previous is not None and previous["model_id"].iloc[0] != scores["model_id"].iloc[0]:
        before = previous.set_index("user_id").reindex(written.index)
        written["prev_score"] = before["score"].astype(float)
        written["prev_model_id"] = before["model_id"].astype(object)
    return written


def publish_scores(
    paths: DataDir, store: GraphStore, scores: pd.DataFrame, inputs: pd.DataFrame, *,
    run_id: str | None = None, details: dict[str, Any] | None = None,
) -> PublishedRun:  # fmt: skip
    """Publish one scoring run of ``scores`` (indexed by user id) and the model inputs behind it.

    The store's users get :func:`store_rows`; the manifest records the model,
    the load, the count, the time, the run published before and ``details``.
    A run that an earlier publish left half-written in the graph (Neo4j) is
    completed and published first.
    """
    with paths.writing():
        return _publish_scores(paths, store, scores, inputs, run_id, details or {})


def _publish_scores(
    paths: DataDir, store: GraphStore, scores: pd.DataFrame, inputs: pd.DataFrame,
    run_id: str | None, details: dict[str, Any],
) -> PublishedRun:  # fmt: skip
    finish_pending_run(paths, store)
    if run_id is not None and run_id != current_run(paths.scores):
        _discard_staged_run(paths.scores, run_id)  # a killed attempt's files: staged afresh
    manifest = {
        "run_id": run_id,
        "model_id": str(scores["model_id"].iloc[0]),
        "load_id": current_load_id(paths.history),
        "users": len(scores),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "previous_run": current_run(paths.scores),
        **details,
    }
    written = store_rows(scores, inputs, read_current(paths.scores))
    return publish_run(paths.scores, store, scores=scores, inputs=inputs, store_rows=written,
                       manifest=manifest)  # fmt: skip


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
    time and the key of its inputs) and one Parquet file per finished chunk,
    each written aside and renamed. Nothing here is published: the run is
    published whole, then this directory is removed.
    """

    directory: Path
    state: dict[str, Any]

    @property
    def run_id(self) -> str:
        return str(self.state["run_id"])

    @property
    def scored_at(self) -> pd.Timestamp:
        return pd.Timestamp(self.state["scored_at"])

    def _chunk(self, index: int) -> Path:
        return self.directory / f"chunk-{index:05d}.parquet"

    def finished(self) -> set[int]:
        return {i for i in range(int(self.state["chunks"])) if self._chunk(i).exists()}

    def write_chunk(self, index: int, scores: pd.DataFrame) -> None:
        write_parquet(self._chunk(index), scores.rename_axis("user_id").reset_index())

    def scores(self) -> pd.DataFrame:
        """Every chunk's scores in chunk order, indexed by user id."""
        parts = [pd.read_parquet(self._chunk(i)) for i in range(int(self.state["chunks"]))]
        return pd.concat(parts, ignore_index=True).set_index("user_id")

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
    """The scores a run's ``prev_score`` came from: the run its manifest names, if kept.

    Otherwise (a legacy ``latest.parquet``, or none) what the pointer names, which is
    what it named when the run was staged: the pointer moves only once a run's graph
    write has finished, and every publish first finishes a pending one.
    """
    previous_run = manifest.get("previous_run")
    if previous_run and (run_dir(scores_dir, previous_run) / SCORES_FILE).exists():
        return pd.read_parquet(run_dir(scores_dir, previous_run) / SCORES_FILE)
    return read_current(scores_dir)


def finish_pending_run(
    paths: DataDir, store: GraphStore, progress: Callable[[str], None] | None = None
) -> str | None:
    """Complete the run the graph marks ``pending_score_run``, then publish it; returns its id.

    The store rows are rebuilt from the run's staged files (:func:`store_rows`)
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
    scores = pd.read_parquet(directory / SCORES_FILE).set_index("user_id")
    inputs = pd.read_parquet(directory / INPUTS_FILE, columns=["user_id", *STORE_INPUTS])
    previous = _previous_scores(paths.scores, read_manifest(paths.scores, pending))
    rows = store_rows(scores, inputs.set_index("user_id"), previous)
    store.publish_properties("User", rows, run_id=pending, progress=progress)
    _switch_pointer(paths.scores, pending)
    return pending


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
    for directory in (paths.root, paths.models, scores_dir, scores_dir / RUNS, history_dir):
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
