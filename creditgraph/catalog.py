"""The data directory's published state: scoring runs, and recovery after a kill.

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
from creditgraph.errors import CreditGraphError
from creditgraph.graph.meta import LOAD_ID, PENDING_LOAD, SCORE_RUN, read_meta, write_meta
from creditgraph.graph.store import GraphStore
from creditgraph.ingest.history import current_load_id, prune_versions, publish_version

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


def recover(data_dir: Path, store: GraphStore) -> list[str]:
    """Finish or discard what a killed command left; returns what was done, in words.

    Never raises on a mismatch it cannot mend: :func:`check_consistent` says so
    to the commands that depend on it, while ``ingest`` can still repair it.
    """
    history_dir, scores_dir = data_dir / "history", data_dir / "scores"
    for directory in (data_dir, data_dir / "models", scores_dir, scores_dir / RUNS, history_dir):
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


def check_consistent(data_dir: Path, store: GraphStore) -> str | None:
    """Raise unless the graph and the history hold the same, whole load; returns its id."""
    meta = read_meta(store)
    graph_load, pending = meta.get(LOAD_ID), meta.get(PENDING_LOAD)
    if pending:
        raise CreditGraphError(
            f"the graph holds part of load {pending} (a load stopped half-way): "
            "run `creditgraph ingest` (e.g. on the same files) to complete it first"
        )
    history_load = current_load_id(data_dir / "history")
    if graph_load != history_load and history_load is not None:
        raise CreditGraphError(
            f"the graph holds load {graph_load or 'none'} but the history holds {history_load}: "
            "the store is not the one this data directory was loaded into; "
            "re-run `creditgraph ingest` into it"
        )
    return history_load
