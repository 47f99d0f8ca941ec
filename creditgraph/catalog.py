"""The data directory: where everything lives, typed reads and writes, and recovery.

:class:`DataDir` is the one place that knows the layout (README, "The data
directory"); everything else asks it for a path or a frame.


A scoring run is published whole: its files are written under
``scores/runs/<run_id>/`` aside, the graph store takes the scores and records
``score_run`` in one transaction, and only then does the one-line pointer
``scores/CURRENT`` switch to the run. The partner API, ``explain`` and the
next ``features`` read through that pointer, so they never see half a run.

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
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from creditgraph.durable import (
    failpoint,
    read_pointer,
    staged_directory,
    sweep,
    write_parquet,
    write_pointer,
)
from creditgraph.errors import CreditGraphError, DataMissing
from creditgraph.graph.meta import LOAD_ID, PENDING_LOAD, SCORE_RUN, read_meta, write_meta
from creditgraph.graph.schema import SCORE_PROPERTIES
from creditgraph.graph.store import GraphStore
from creditgraph.ingest.history import (
    current_load_id,
    load_tables,
    prune_versions,
    publish_version,
    read_history,
)


@dataclass(frozen=True)
class DataDir:
    """Every path of one data directory, and typed reads and writes of what it holds."""

    root: Path

    @property
    def graph(self) -> Path:  # the embedded store
        return self.root / "graph"

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
    properties written onto ``User`` nodes.
    """
    run_id = new_run_id(str(manifest.get("model_id", "model")))
    final = run_dir(scores_dir, run_id)
    with staged_directory(final) as staged:
        write_parquet(staged / SCORES_FILE, scores.rename_axis("user_id").reset_index())
        write_parquet(staged / INPUTS_FILE, inputs.rename_axis("user_id").reset_index())
        (staged / MANIFEST_FILE).write_text(
            json.dumps({"run_id": run_id, **manifest}, indent=2, default=str)
        )
    failpoint("score:run-staged")
    with store.atomic():
        store.write_properties("User", store_rows)
        write_meta(store, **{SCORE_RUN: run_id})
    failpoint("score:graph-committed")
    write_pointer(scores_dir / POINTER, run_id)
    (scores_dir / LEGACY_SCORES).unlink(missing_ok=True)
    return PublishedRun(run_id, final)


def publish_scores(
    paths: DataDir, store: GraphStore, scores: pd.DataFrame, inputs: pd.DataFrame
) -> PublishedRun:
    """Publish one scoring run of ``scores`` (indexed by user id) and the model inputs behind it.

    The store's users get the score properties, their network position and
    community (for investigations) and, when the model changed, the previous
    run's score; the manifest records the model, the load, the count and the time.
    """
    previous = read_current(paths.scores)
    written = scores[list(SCORE_PROPERTIES)].copy()
    written["pagerank"] = inputs["pagerank_scaled"].reindex(written.index).astype(float)
    written["community"] = inputs["community"].reindex(written.index).astype("int64")
    if previous is not None and previous["model_id"].iloc[0] != scores["model_id"].iloc[0]:
        before = previous.set_index("user_id").reindex(written.index)
        written["prev_score"] = before["score"].astype(float)
        written["prev_model_id"] = before["model_id"].astype(object)
    manifest = {
        "model_id": str(scores["model_id"].iloc[0]),
        "load_id": current_load_id(paths.history),
        "users": len(scores),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return publish_run(paths.scores, store, scores=scores, inputs=inputs, store_rows=written,
                       manifest=manifest)  # fmt: skip


def recover(paths: DataDir, store: GraphStore) -> list[str]:
    """Finish or discard what a killed command left; returns what was done, in words.

    Never raises on a mismatch it cannot mend: :func:`check_consistent` says so
    to the commands that depend on it, while ``ingest`` can still repair it.
    """
    history_dir, scores_dir = paths.history, paths.scores
    for directory in (paths.root, paths.models, scores_dir, scores_dir / RUNS, history_dir):
        sweep(directory)
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
    if pending:
        done.append(
            f"load {pending} is half-finished in the graph; the next ingest "
            + ("completes it" if keep else "abandons it (its staged history is gone)")
        )
    graph_run = meta.get(SCORE_RUN)
    if graph_run and graph_run != current_run(scores_dir):
        if (run_dir(scores_dir, graph_run) / MANIFEST_FILE).exists():
            write_pointer(scores_dir / POINTER, graph_run)
            done.append(f"finished scoring run {graph_run} (scores pointer rolled forward)")
    return done


def check_consistent(paths: DataDir, store: GraphStore) -> str | None:
    """Raise unless the graph and the history hold the same, whole load; returns its id."""
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
