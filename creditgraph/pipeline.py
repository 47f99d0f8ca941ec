"""The pipeline stages as plain functions: the one place that wires the layers together.

Each stage takes settings (and a store where it needs one) and returns a
typed result; the CLI and notebooks call these same functions. Files are read
and written through :class:`creditgraph.catalog.DataDir`, the computing is in
``scoring``, ``graph`` and ``ingest``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from creditgraph import catalog
from creditgraph.durable import failpoint
from creditgraph.errors import CreditGraphError, InvalidArgument
from creditgraph.graph.store import GraphStore
from creditgraph.graph.stores import open_store
from creditgraph.ingest.history import current_load_id
from creditgraph.ingest.load import LoadReport, Progress, load_directory
from creditgraph.ingest.schemas import DateWindow
from creditgraph.settings import Settings

# The model and graph libraries (XGBoost, scikit-learn, igraph: about 2 s) load in the
# stages that use them, so `ingest` and the other light commands start at once.
if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

    from creditgraph.graph.network import GraphData
    from creditgraph.scoring.explain import Explanation
    from creditgraph.scoring.model import CreditModel
    from creditgraph.scoring.report import Report
    from creditgraph.scoring.splits import Split

Step = Progress  # one progress-callback type for every stage
__all__ = ["LoadReport", "Step"]  # re-exported for the CLI and notebooks


def _quiet(_message: str) -> None:
    return None


def open_configured_store(settings: Settings, step: Step = _quiet) -> GraphStore:
    """Open the configured store and finish whatever a killed command left half-published.

    ``step`` hears what recovery did (a pointer rolled forward, a half-finished load).
    """
    versions = settings.paths.graph_versions()
    store = open_store(settings.store, versions=versions, batch_size=settings.batch_size)
    try:
        for done in catalog.recover(settings.paths, store):
            step(done)
    except BaseException:
        store.close()
        raise
    return store


# -- stages -----------------------------------------------------------------
def generate(settings: Settings, out_dir: Path, users: int | None = None) -> dict[str, int]:
    """Write a synthetic world to ``out_dir``; returns rows per file."""
    from creditgraph.ingest.synthetic import generate_world

    tables = generate_world(users or settings.demo_users, seed=settings.seed, out_dir=out_dir)
    return {name: len(frame) for name, frame in tables.items()}


def ingest(settings: Settings, store: GraphStore, source: Path, step: Step = _quiet) -> LoadReport:
    """Validate and load ``source`` into the store and the Parquet history."""
    with settings.paths.writing(waiting=step):
        return load_directory(
            source, store, settings.paths.history, settings.paths.rejects, step,
            window=DateWindow.of(settings.earliest_date, settings.latest_date),
        )  # fmt: skip


def build_features(
    settings: Settings, store: GraphStore, *, in_database: bool = False,
    data: GraphData | None = None, client: Client | None = None,
) -> pd.DataFrame | dd.DataFrame:  # fmt: skip
    """Tabular families ⨝ relationship families for every user; kept under ``features/``.

    Friends' previous scores come from the published scoring run, if any.
    ``in_database`` (Neo4j with GDS) computes PageRank, components, k-core,
    clustering and communities in the database instead of igraph; same columns.
    ``data`` passes relationships already exported from ``store`` (each stage
    otherwise exports them itself). ``client`` computes them on a Dask cluster
    (equal to the single-machine features; see :mod:`scoring.distributed`): the
    workers write the parts, and the result is a Dask frame reading them back.
    """
    with settings.paths.writing():
        if client is not None:
            return _cluster_features(settings, store, in_database, data, client)
        return _build_features(settings, store, in_database, data)


def _cluster_features(
    settings: Settings, store: GraphStore, in_database: bool, data: GraphData | None,
    client: Client,
) -> dd.DataFrame:  # fmt: skip
    from creditgraph.scoring.distributed.features import distributed_features, global_features
    from creditgraph.scoring.distributed.parts import read_partitions, write_partitions
    from creditgraph.scoring.distributed.tabular import read_user_ids, user_divisions

    paths = settings.paths
    load_id = catalog.check_consistent(paths, store)
    parts = paths.history_parts()  # paths only: the workers read the history
    user_ids = read_user_ids(parts)
    previous = paths.read_scores(columns=["score", "f_relationships"])
    # GDS's position columns, when asked for, go into the global families as they are: the
    # single machine's update of igraph's columns with them gives the same values.
    position = _in_database_position(store, settings.seed) if in_database else None
    communities = None if position is None else position.pop("community")
    from creditgraph.graph.network import GraphData

    data = data or GraphData.export(store)
    global_ = global_features(data.graph, seed=settings.seed, position=position,
                              communities=communities)  # fmt: skip
    partitions = cluster_partitions(client, len(user_ids))
    features = distributed_features(
        parts, user_ids, global_, partitions=partitions,
        previous_scores=None if previous is None else previous.set_index("user_id"),
    )  # fmt: skip
    built = paths.publish_features(
        lambda staged: write_partitions(features, staged, catalog.part_name), load_id,
        by_user_id=True,
    )  # fmt: skip
    kept = sorted(built.glob("part-*.parquet"))
    return read_partitions(kept, user_divisions(user_ids, partitions), sorted_ranges=True)


def cluster_partitions(client: Client, rows: int, per_partition: int = 250_000) -> int:
    """Partitions for ``rows`` on ``client``: at least one per worker, at most
    ``per_partition`` users each (about 1 GB of history in pandas; README, "Scaling out")."""
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    return max(workers, -(-rows // per_partition))


def _build_features(
    settings: Settings, store: GraphStore, in_database: bool, data: GraphData | None
) -> pd.DataFrame:
    from creditgraph.graph.network import GraphData
    from creditgraph.scoring.features import (
        observation_dates,
        relationship_features,
        tabular_features,
    )

    paths = settings.paths
    load_id = catalog.check_consistent(paths, store)
    tables = paths.read_tables()
    observed = observation_dates(tables)
    tabular = tabular_features(tables, observed)
    previous = paths.read_scores(columns=["score", "f_relationships"])
    # In the database: PageRank, components, k-core, clustering and communities; the
    # community family (size, density) is then computed on the database's communities.
    position = _in_database_position(store, settings.seed) if in_database else None
    graph = relationship_features(
        data or GraphData.export(store), tabular, observed.max(), seed=settings.seed,
        previous_scores=None if previous is None else previous.set_index("user_id"),
        communities=None if position is None else position.pop("community"),
    )  # fmt: skip
    if position is not None:
        graph.update(position.reindex(graph.index))
    features = tabular.join(graph.reindex(tabular.index))
    paths.write_features(features, load_id)
    return features


def _in_database_position(store: GraphStore, seed: int) -> pd.DataFrame:
    from creditgraph.graph.neo4j.gds import gds_features, has_gds
    from creditgraph.graph.neo4j.store import Neo4jStore

    if not isinstance(store, Neo4jStore) or not has_gds(store):
        raise CreditGraphError("--in-database needs a Neo4j store with the GDS plugin")
    return gds_features(store, seed=seed)


def export_neo4j_import(settings: Settings, out_dir: Path) -> Path:
    """Write the ingested graph as ``neo4j-admin`` import CSVs plus ``import.sh``."""
    from creditgraph.graph.neo4j.bulk_import import write_import_bundle
    from creditgraph.ingest.load import edge_frames, node_frames

    history = settings.paths.read_tables()
    return write_import_bundle({**node_frames(history), **edge_frames(history)}, out_dir)


def read_features(settings: Settings) -> pd.DataFrame:
    return settings.paths.read_features()


def read_labels(settings: Settings) -> pd.Series:
    return settings.paths.read_labels().set_index("user_id")["defaulted"].astype(int)


def split_for(settings: Settings, labels: pd.Series) -> Split:
    """The split the settings ask for: stratified random, or out of time."""
    from creditgraph.scoring.splits import split_users

    if settings.split == "time":
        observed = settings.paths.read_labels().set_index("user_id")["observation_date"]
        return split_users(labels, settings.seed, observed=observed)
    return split_users(labels, settings.seed)


@dataclass(frozen=True)
class TrainResult:
    model: CreditModel
    model_dir: Path
    test_metrics: dict[str, float]


def with_exposure(
    settings: Settings, data: GraphData, features: pd.DataFrame, labels: pd.Series,
    train_ids: pd.Index,
) -> pd.DataFrame:  # fmt: skip
    """Features plus the label-aware family (out-of-fold for ``train_ids``)."""
    from creditgraph.scoring.features import label_aware_features

    exposure = label_aware_features(data, features, labels, train_ids, seed=settings.seed)
    return features.join(exposure.reindex(features.index))


def train(
    settings: Settings, store: GraphStore, features: pd.DataFrame | None = None, *,
    data: GraphData | None = None, client: Client | None = None,
) -> TrainResult:  # fmt: skip
    """Train on the labelled users, report on the held-out test split, save the model.

    ``client`` grows the trees on a Dask cluster (``xgboost.dask``, same parameters).
    """
    from creditgraph.graph.network import GraphData
    from creditgraph.scoring.metrics import summary
    from creditgraph.scoring.model import train_model

    fit = None
    if client is not None:
        from creditgraph.scoring.distributed.training import cluster_fit

        fit = cluster_fit(client, cluster_partitions(client, len(read_labels(settings))))
    features = read_features(settings) if features is None else features
    labels = read_labels(settings).reindex(features.index).dropna().astype(int)
    split = split_for(settings, labels)
    data = data or GraphData.export(store)
    features = with_exposure(settings, data, features, labels, split.train)
    model = train_model(
        features.loc[labels.index], labels, train_index=split.train, valid_index=split.valid,
        scale=settings.scale, seed=settings.seed, calibration=settings.calibration, fit=fit,
    )  # fmt: skip
    test = features.loc[split.test]
    y_test = labels.loc[split.test].to_numpy()
    metrics = summary(y_test, model.predict_pd(test))
    thin = test["thin_file"].to_numpy() == 1
    if thin.any() and 0 < y_test[thin].sum() < thin.sum():
        metrics["roc_auc_thin_file"] = summary(y_test[thin], model.predict_pd(test[thin]))[
            "roc_auc"
        ]
    model.metrics["test"] = metrics
    with settings.paths.writing():
        return TrainResult(model, model.save(settings.paths.models), metrics)


def model_inputs(
    settings: Settings, store: GraphStore, model: CreditModel, features: pd.DataFrame, *,
    data: GraphData | None = None,
) -> pd.DataFrame:  # fmt: skip
    """What ``model`` scores: features plus label-aware ones from its training labels only."""
    from creditgraph.graph.network import GraphData

    if model.training_labels is None:
        return features
    labels = model.training_labels
    data = data or GraphData.export(store)
    return with_exposure(settings, data, features, labels, labels.index)


def score_users(
    model: CreditModel, features: pd.DataFrame, scored_at: pd.Timestamp | None = None, *,
    client: Client | None = None, chunk_size: int = 100_000,
) -> pd.DataFrame:  # fmt: skip
    """Scores, PDs, five factor points and reasons for every row of model inputs.

    ``scored_at`` stamps every row (default: now, to the second). ``client`` scores
    chunks of ``chunk_size`` rows on a Dask cluster: the same rows, the same numbers.
    """
    if scored_at is None:
        scored_at = pd.Timestamp(datetime.now(UTC).replace(tzinfo=None)).floor("s")
    if client is not None and len(features):
        from creditgraph.scoring.distributed.scores import as_chunks, returned, scored_chunks

        chunks = as_chunks(features, chunk_size)
        done = dict(scored_chunks(client, model, chunks, _score_chunk, returned,
                                  scored_at=scored_at))  # fmt: skip
        return pd.concat([done[i] for i in sorted(done)])
    return _score_chunk(model, features, scored_at)


def _score_chunk(
    model: CreditModel, features: pd.DataFrame, scored_at: pd.Timestamp
) -> pd.DataFrame:
    """Scores, factors and reasons of some users (one chunk), stamped ``scored_at``."""
    scored = model.score(features)
    scored["reasons"] = model.reasons(features)
    scored["model_id"] = model.model_id
    scored["scored_at"] = scored_at
    return scored


def write_scores(
    settings: Settings, store: GraphStore, scores: pd.DataFrame, inputs: pd.DataFrame
) -> Path:
    """Publish one scoring run whole (files, store, pointer); returns the run's directory.

    The model inputs are kept beside the scores so ``explain`` shows exactly
    what was scored.
    """
    return catalog.publish_scores(settings.paths, store, scores, inputs).directory


@dataclass(frozen=True)
class ScoreResult:
    model: CreditModel
    scores: pd.DataFrame  # at least the score and the five factor points, indexed by user id
    shift: dict[str, float] | None  # against the run published before (None for the first)
    directory: Path  # the published run
    retention: catalog.PruneReport | None = None  # what keep_runs removed after the publish
    warnings: list[str] = field(default_factory=list)  # e.g. retention failed (still published)


def score(
    settings: Settings, store: GraphStore, *, model_id: str | None = None,
    client: Client | None = None,
) -> ScoreResult:  # fmt: skip
    """Score every user with a saved model (default: the latest) and publish the run.

    On a cluster this is :func:`rescore` on the kept features (refused when missing or
    stale, never rebuilt): each chunk scored and kept by a worker, resumable; the
    driver reads back only the score and factor columns. After the publish, retention
    (``keep_runs``) prunes older runs (:func:`apply_retention`); the manifest records it.
    """
    model = load_model(settings, model_id)
    if client is not None:
        from creditgraph.scoring.dictionary import FACTORS

        done = rescore(settings, store, model_id=model.model_id, client=client, rebuild=False,
                       max_psi=float("inf"))  # fmt: skip
        columns = ["user_id", "score", *(f"f_{name}" for name in FACTORS)]
        scores = catalog.read_run(done.directory, columns=columns).set_index("user_id")
        return ScoreResult(model, scores, done.manifest.get("shift"), done.directory,
                           done.retention, done.warnings)  # fmt: skip
    inputs = model_inputs(settings, store, model, read_features(settings))
    scores = score_users(model, inputs)
    shift = compare_scores(settings, scores)
    with settings.paths.writing():  # the publish and its retention, with no command between
        directory = write_scores(settings, store, scores, inputs)
        warnings: list[str] = []
        retention = apply_retention(settings, store, warnings)
        if retention is not None or warnings:
            catalog.annotate_manifest(settings.paths.scores, directory.name,
                                      _retention_details(retention, warnings))  # fmt: skip
    return ScoreResult(model, scores, shift, directory, retention, warnings)


def apply_retention(
    settings: Settings, store: GraphStore, warnings: list[str]
) -> catalog.PruneReport | None:
    """Prune published runs down to ``keep_runs`` (None: keep every run; nothing done).

    Called right after a publish succeeded: a failure here must not read as a failed
    publish (a scheduler would run the job again), so it is added to ``warnings`` and the
    next publish tries again.
    """
    if settings.keep_runs is None:
        return None
    try:
        return catalog.prune_runs(settings.paths, settings.keep_runs, store=store)
    except (CreditGraphError, OSError) as exc:
        warnings.append(f"retention (keep_runs = {settings.keep_runs}) failed: {exc}")
        return None


def _retention_details(
    retention: catalog.PruneReport | None, warnings: list[str]
) -> dict[str, Any]:
    """What a publish's manifest records of the retention applied after it."""
    details: dict[str, Any] = {"warnings": warnings}
    if retention is not None:
        details["retention"] = retention.as_manifest()
    return details


def compare_scores(settings: Settings, scores: pd.DataFrame) -> dict[str, float] | None:
    """How ``scores`` differ from the published run (None before the first one)."""
    previous = settings.paths.read_scores(columns=["score"])
    if previous is None:
        return None
    from creditgraph.scoring.metrics import score_shift

    return score_shift(previous.set_index("user_id")["score"], scores["score"],
                       top=settings.scale.max_score)  # fmt: skip


# -- the nightly job: rescore every user ----------------------------------------
StageProgress = Callable[[str, int, int], None]  # stage, done, total


@dataclass(frozen=True)
class RescoreResult:
    run_id: str
    directory: Path
    manifest: dict[str, Any]
    warnings: list[str]
    retention: catalog.PruneReport | None = None  # what keep_runs removed after the publish

    @property
    def scores(self) -> pd.DataFrame:
        """The published run's scores, factors and reasons, indexed by user id (read from its
        parts when asked for: the run never holds them all in memory)."""
        return catalog.read_run(self.directory).set_index("user_id")


def rescore(
    settings: Settings, store: GraphStore, *, model_id: str | None = None,
    chunk_size: int = 100_000, max_psi: float = 0.25, progress: StageProgress | None = None,
    client: Client | None = None, rebuild: bool = True,
) -> RescoreResult:  # fmt: skip
    """Features → scores, factors, reasons (in chunks) → write-back → publish, for every user.

    Resumable: the chunks a killed run finished are kept (``scores/resume/``) and a
    new call for the same model, load and inputs scores only the others, so the
    published run is the one an uninterrupted call would publish (same run id and
    ``scored_at``, the time the run started). Nothing is published until every chunk
    is scored; the chunks' parts then become the run's (:func:`catalog.publish_chunks`).
    The manifest records stage seconds, peak memory and the shift against the previous
    run; a PSI above ``max_psi`` is returned as a warning. ``client`` runs every stage
    on a Dask cluster: features built there if missing, each chunk's inputs assembled
    and scored by a worker, which keeps its parts (the same rows and scores as here).
    ``rebuild=False`` refuses missing or stale features instead of building them. After the
    publish, retention (``keep_runs``) prunes older runs (:func:`apply_retention`); the
    manifest records what it removed, and a failure of it is a warning, never a failed run.
    """
    if chunk_size < 1:
        raise InvalidArgument(f"chunk size must be at least 1, not {chunk_size}")
    tell = progress or (lambda _stage, _done, _total: None)
    seconds: dict[str, float] = {}
    with settings.paths.writing():
        with _stopwatch(seconds, "features"):
            tell("features", 0, 1)
            model = load_model(settings, model_id)
            data = None
            try:
                features = _kept_features(settings, client)  # refused unless from this load
            except CreditGraphError:
                if not rebuild:
                    raise
                from creditgraph.graph.network import GraphData

                data = GraphData.export(store)  # exported once: the model inputs need it too
                build_features(settings, store, data=data, client=client)
                features = _kept_features(settings, client)
            tell("features", 1, 1)
        with _stopwatch(seconds, "inputs"):
            tell("inputs", 0, 1)
            if isinstance(features, pd.DataFrame):
                chunks = input_chunks(settings, store, model, features, chunk_size, data=data)
            else:
                assert client is not None  # the features stay in their parts only on a cluster
                chunks = cluster_inputs(settings, store, model, features, chunk_size, client,
                                        data=data)  # fmt: skip
            del features, data  # neither is needed past here: memory for scoring
            tell("inputs", 1, 1)
        return _rescore(settings, store, model, chunks, max_psi, tell, seconds, client)


def _kept_features(
    settings: Settings, client: Client | None
) -> pd.DataFrame | catalog.FeatureFiles:
    """The kept features: read here, or (on a cluster) only where their parts are."""
    return read_features(settings) if client is None else settings.paths.feature_files()


@dataclass(frozen=True)
class InputChunks:
    """Model inputs of every user in chunks of ``chunk_size`` in user-id order: a frame
    here, or (on a cluster) a Dask frame whose partition ``i`` is chunk ``i``."""

    frame: pd.DataFrame | dd.DataFrame
    users: int
    chunk_size: int
    digest: str  # of every chunk's rows and the columns: a resumed run scores the same inputs

    @property
    def count(self) -> int:
        return -(-self.users // self.chunk_size)


def input_chunks(
    settings: Settings, store: GraphStore, model: CreditModel, features: pd.DataFrame,
    chunk_size: int, *, data: GraphData | None = None,
) -> InputChunks:  # fmt: skip
    """:func:`model_inputs` of every user, sorted by user id, in chunks of ``chunk_size``."""
    inputs = model_inputs(settings, store, model, features, data=data).sort_index()
    digests = [_chunk_digest(inputs.iloc[start : start + chunk_size])
               for start in range(0, len(inputs), chunk_size)]  # fmt: skip
    return InputChunks(inputs, len(inputs), chunk_size, _digest(digests, list(inputs.columns)))


def cluster_inputs(
    settings: Settings, store: GraphStore, model: CreditModel, features: catalog.FeatureFiles,
    chunk_size: int, client: Client, *, data: GraphData | None = None,
) -> InputChunks:  # fmt: skip
    """:func:`model_inputs` on a cluster, in the chunks one machine scores: the workers read
    the features' parts and compute the exposure family onto each chunk.

    The driver reads the features' ``user_id`` column (where chunks start), draws the
    folds of the model's training labels and computes the two personalised PageRanks
    (global: two numbers per user, sent by user id); the workers join the label sets over
    the history's edge lists for the rest (:mod:`scoring.distributed.exposure`), in the
    features' partitions (:func:`cluster_partitions`, not one per chunk: fewer, larger
    shuffles), and keep the result in memory (eight numbers per user), so the digests
    and the scoring read it rather than compute it again. The chunks' digests are
    computed by the workers.
    """
    from creditgraph.scoring.distributed.parts import chunk_divisions, read_partitions
    from creditgraph.scoring.distributed.scores import chunk_digests

    kept = features.read([])
    bounds = chunk_divisions(kept.index.to_series(), chunk_size)
    frame = read_partitions(features.parts, bounds, sorted_ranges=features.by_user_id)
    if model.training_labels is not None:
        from distributed import wait

        from creditgraph.graph.network import GraphData
        from creditgraph.scoring.distributed.exposure import cluster_exposure, exposure_edges
        from creditgraph.scoring.distributed.tabular import user_divisions

        labels = model.training_labels
        graph = (data or GraphData.export(store)).graph
        ranges = user_divisions(kept.index.to_series(), cluster_partitions(client, len(kept)))
        users = frame[["community"]].repartition(divisions=list(ranges))
        exposure = cluster_exposure(users, graph, exposure_edges(settings.paths.history_parts()),
                                    labels, labels.index, seed=settings.seed)  # fmt: skip
        exposure = client.persist(exposure)
        # Wait until it is held: the client builds a persisted graph in its offload thread,
        # and Python 3.11's cached_property takes one lock per property for every object,
        # so building the next graph here meanwhile can deadlock (seen in CI).
        wait(exposure)
        exposure = exposure.repartition(divisions=list(bounds))
        frame = frame.join(exposure, how="left")
    digests = chunk_digests(client, frame, _chunk_digest)
    return InputChunks(frame, len(kept), chunk_size, _digest(digests, list(frame.columns)))


def _rescore(
    settings: Settings, store: GraphStore, model: CreditModel, chunks: InputChunks,
    max_psi: float, tell: StageProgress, seconds: dict[str, float],
    client: Client | None = None,
) -> RescoreResult:  # fmt: skip
    paths = settings.paths
    key = {"model_id": model.model_id, "load_id": current_load_id(paths.history),
           "users": chunks.users, "inputs": chunks.digest}  # fmt: skip
    run = catalog.resume_or_start_run(paths, key, chunks=chunks.count)
    finished = run.finished()
    with _stopwatch(seconds, "score"):
        if isinstance(chunks.frame, pd.DataFrame):
            _score_here(model, chunks.frame, chunks.chunk_size, run, finished, tell)
        else:
            assert client is not None  # a Dask frame comes only with a client
            _score_on_cluster(client, model, chunks.frame, run, finished, tell)
        scores = run.read(["score"])  # one number per user: the shift against the last run
    shift = compare_scores(settings, scores)
    warnings = []
    if shift is not None and shift["psi"] > max_psi:
        warnings.append(f"PSI {shift['psi']:.3f} against the previous run is above {max_psi}")
    details = {
        "chunks": chunks.count, "chunk_size": chunks.chunk_size,
        "chunks_resumed": len(finished), "scored_at": run.scored_at.isoformat(),
        "shift": shift, "warnings": warnings,
    }  # fmt: skip
    with _stopwatch(seconds, "publish"):
        tell("publish", 0, 1)
        published = catalog.publish_chunks(paths, store, run, details)
        tell("publish", 1, 1)
    run.clear()
    retention = apply_retention(settings, store, warnings)
    extra = {"stage_seconds": seconds, "peak_memory_mib": _peak_memory_mib(),
             **_retention_details(retention, warnings)}  # fmt: skip
    catalog.annotate_manifest(paths.scores, published.run_id, extra)
    manifest = catalog.read_manifest(paths.scores, published.run_id)
    return RescoreResult(published.run_id, published.directory, manifest, warnings, retention)


def _score_here(
    model: CreditModel, inputs: pd.DataFrame, chunk_size: int, run: catalog.RunInProgress,
    finished: set[int], tell: StageProgress,
) -> None:  # fmt: skip
    """The chunks not yet finished, scored in this process, each kept as it is done."""
    for i in range(run.chunks):
        if i not in finished:
            chunk = inputs.iloc[i * chunk_size : (i + 1) * chunk_size]
            run.write_chunk(i, score_users(model, chunk, run.scored_at), chunk)
            failpoint("rescore:chunk-written")
        tell("score", i + 1, run.chunks)


def _score_on_cluster(
    client: Client, model: CreditModel, chunks: dd.DataFrame, run: catalog.RunInProgress,
    finished: set[int], tell: StageProgress,
) -> None:  # fmt: skip
    """The chunks not yet finished, scored on the cluster: the worker that scores a chunk
    writes its parts (the data directory is shared), the driver hears its row count."""
    from creditgraph.scoring.distributed.scores import scored_chunks

    done = len(finished)
    tell("score", done, run.chunks)
    kept = scored_chunks(client, model, chunks, _score_chunk, run.write_chunk,
                         scored_at=run.scored_at, skip=frozenset(finished))  # fmt: skip
    for _chunk, _rows in kept:
        failpoint("rescore:chunk-written")
        done += 1
        tell("score", done, run.chunks)


@contextmanager
def _stopwatch(seconds: dict[str, float], stage: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds[stage] = round(seconds.get(stage, 0.0) + time.perf_counter() - started, 3)


def _chunk_digest(frame: pd.DataFrame) -> str:
    """A fingerprint of one chunk's index and values."""
    hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def _digest(chunks: list[str], columns: list[str]) -> str:
    """A fingerprint of inputs from their chunks' (a resumed run must score the same inputs)."""
    return hashlib.sha256("".join([*chunks, ",".join(columns)]).encode()).hexdigest()[:16]


def _peak_memory_mib() -> float:
    """This process's peak resident memory so far."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def load_model(settings: Settings, model_id: str | None = None) -> CreditModel:
    from creditgraph.scoring.model import CreditModel, latest_model

    if model_id:
        return CreditModel.load(settings.paths.models / model_id)
    return latest_model(settings.paths.models)


def report(settings: Settings, model: CreditModel | None = None) -> Report:
    """Write the HTML model report for the held-out test split of the published run."""
    from creditgraph.scoring.report import write_report

    model = model or load_model(settings, settings.paths.published_model_id())
    inputs = read_inputs(settings)
    labels = read_labels(settings).reindex(inputs.index).dropna().astype(int)
    split = split_for(settings, labels)
    scored = model.score(inputs.loc[split.test])
    scored.attrs["inputs"] = inputs.loc[split.test]
    train_inputs = inputs.loc[split.train]
    age_group = pd.cut(inputs["age"], [0, 25, 40, 60, 200], labels=["18–25", "26–40", "41–60",
                                                                     "61+"])  # fmt: skip
    return write_report(
        model, scored, labels, settings.paths.report(model.model_id),
        reference=(model.score(train_inputs), train_inputs), groups=age_group.astype(str),
    )  # fmt: skip


def read_inputs(settings: Settings) -> pd.DataFrame:
    """The model inputs of the published scoring run."""
    return settings.paths.read_inputs()


def explain(settings: Settings, user_id: str, model: CreditModel | None = None) -> Explanation:
    """Score, PD, five factor points, reasons and the per-feature exact contributions.

    By default with the model of the published run, so it shows what partners see.
    """
    model = model or load_model(settings, settings.paths.published_model_id())
    from creditgraph.scoring.explain import explain_user

    return explain_user(model, read_inputs(settings), user_id)


# -- the main job ---------------------------------------------------------------
@dataclass(frozen=True)
class DemoResult:
    load: LoadReport
    train: TrainResult
    scores: pd.DataFrame
    timings: dict[str, float]


def run_demo(settings: Settings, step: Step = _quiet) -> DemoResult:
    """Generate → ingest → features → train → score → write back, on the configured store."""
    with settings.paths.writing(waiting=step):
        return _run_demo(settings, step)


def _run_demo(settings: Settings, step: Step) -> DemoResult:
    from creditgraph.graph.network import GraphData

    timings: dict[str, float] = {}
    started = time.perf_counter()

    def mark(name: str) -> None:
        nonlocal started
        now = time.perf_counter()
        timings[name] = now - started
        started = now

    world = settings.paths.world
    step("generating a synthetic world")
    generate(settings, world)
    mark("generate")
    store = open_configured_store(settings)
    try:
        step("ingesting")
        report = ingest(settings, store, world)
        mark("ingest")
        step("computing features")
        data = GraphData.export(store)  # once, for every stage below
        features = build_features(settings, store, data=data)
        mark("features")
        step("training")
        trained = train(settings, store, features, data=data)
        mark("train")
        step("scoring")
        inputs = model_inputs(settings, store, trained.model, features, data=data)
        scores = score_users(trained.model, inputs)
        mark("score")
        step("writing scores back")
        write_scores(settings, store, scores, inputs)
        mark("write back")
    finally:
        store.close()
    return DemoResult(report, trained, scores, timings)
