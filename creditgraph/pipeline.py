"""The pipeline stages as plain functions, and the one place that wires them.

Each stage takes settings (and a store where it needs one) and returns a
typed result; the CLI and notebooks call these same functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from pandas import DataFrame  # Explanation has a field named ``pd``

from creditgraph import catalog
from creditgraph.durable import write_parquet
from creditgraph.errors import ConfigError, CreditGraphError
from creditgraph.graph.network import GraphData
from creditgraph.graph.schema import SCORE_PROPERTIES
from creditgraph.graph.store import GraphStore
from creditgraph.graph.stores import open_store
from creditgraph.ingest.history import current_load_id, load_tables
from creditgraph.ingest.load import LoadReport, Progress, load_directory
from creditgraph.ingest.schemas import DateWindow
from creditgraph.scoring.dictionary import FACTORS
from creditgraph.scoring.features import (
    label_aware_features,
    observation_dates,
    relationship_features,
    tabular_features,
)
from creditgraph.scoring.metrics import summary
from creditgraph.scoring.model import CreditModel, latest_model, train_model
from creditgraph.scoring.splits import Split, split_users
from creditgraph.settings import Settings

Step = Progress  # one progress-callback type for every stage


def _quiet(_message: str) -> None:
    return None


def open_configured_store(settings: Settings) -> GraphStore:
    """Open the configured store and finish whatever a killed command left half-published."""
    store = open_store(settings.store, settings.store_path, batch_size=settings.batch_size)
    try:
        catalog.recover(settings.data_dir, store)
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
    return load_directory(
        source, store, settings.history_dir, settings.rejects_dir, step,
        window=DateWindow.of(settings.earliest_date, settings.latest_date),
    )  # fmt: skip


def build_features(
    settings: Settings, store: GraphStore, *, in_database: bool = False,
    data: GraphData | None = None,
) -> pd.DataFrame:  # fmt: skip
    """Tabular families ⨝ graph families for every user; kept as ``features.parquet``.

    Friends' previous scores come from the latest written scoring run, if any.

    ``in_database`` (Neo4j with GDS) computes PageRank, components, k-core,
    clustering and communities in the database instead of igraph; same columns.
    ``data`` passes relationships already exported from ``store`` (each stage
    otherwise exports them itself).
    """
    load_id = catalog.check_consistent(settings.data_dir, store)
    tables = load_tables(settings.history_dir)
    if "users" not in tables:
        raise CreditGraphError(f"no data in {settings.history_dir}; run `creditgraph ingest` first")
    observed = observation_dates(tables)
    tabular = tabular_features(tables, observed)
    previous = catalog.read_current(settings.scores_dir)
    graph = relationship_features(
        data or GraphData.export(store), tabular, observed.max(), seed=settings.seed,
        previous_scores=None if previous is None else previous.set_index("user_id"),
    )  # fmt: skip
    if in_database:
        graph.update(_in_database_position(store).reindex(graph.index))
    features = tabular.join(graph.reindex(tabular.index))
    frame = features.reset_index()
    frame.attrs = {"load_id": load_id}  # kept in the Parquet metadata; read_features checks it
    write_parquet(settings.data_dir / "features.parquet", frame)
    return features


def _in_database_position(store: GraphStore) -> pd.DataFrame:
    from creditgraph.graph.neo4j.gds import gds_features, has_gds
    from creditgraph.graph.neo4j.store import Neo4jStore

    if not isinstance(store, Neo4jStore) or not has_gds(store):
        raise CreditGraphError("--in-database needs a Neo4j store with the GDS plugin")
    return gds_features(store)


def export_neo4j_import(settings: Settings, out_dir: Path) -> Path:
    """Write the ingested graph as ``neo4j-admin`` import CSVs plus ``import.sh``."""
    from creditgraph.graph.neo4j.bulk_import import write_import_bundle
    from creditgraph.ingest.load import edge_frames, node_frames

    history = load_tables(settings.history_dir)
    if "users" not in history:
        raise CreditGraphError(f"no data in {settings.history_dir}; run `creditgraph ingest` first")
    return write_import_bundle({**node_frames(history), **edge_frames(history)}, out_dir)


def read_features(settings: Settings) -> pd.DataFrame:
    path = settings.data_dir / "features.parquet"
    if not path.exists():
        raise CreditGraphError(f"no features at {path}; run `creditgraph features` first")
    frame = pd.read_parquet(path)
    built_from, current = frame.attrs.get("load_id"), current_load_id(settings.history_dir)
    if current is not None and built_from != current:
        raise CreditGraphError(
            f"features were built from load {built_from or 'unknown'} but the current load is "
            f"{current}; run `creditgraph features` first"
        )
    return frame.set_index("user_id")


def split_for(settings: Settings, labels: pd.Series) -> Split:
    """The split the settings ask for (random or out of time)."""
    if settings.split == "time":
        tables = load_tables(settings.history_dir)
        observed = tables["labels"].set_index("user_id")["observation_date"]
        return split_users(labels, settings.seed, observed=observed)
    if settings.split != "random":
        raise ConfigError(f"split must be 'random' or 'time', not {settings.split!r}")
    return split_users(labels, settings.seed)


def read_labels(settings: Settings) -> pd.Series:
    tables = load_tables(settings.history_dir)
    if "labels" not in tables:
        raise CreditGraphError("no labels loaded: training needs a labels file (see README)")
    return tables["labels"].set_index("user_id")["defaulted"].astype(int)


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
    exposure = label_aware_features(data, features, labels, train_ids, seed=settings.seed)
    return features.join(exposure.reindex(features.index))


def train(
    settings: Settings, store: GraphStore, features: pd.DataFrame | None = None, *,
    data: GraphData | None = None,
) -> TrainResult:  # fmt: skip
    """Train on the labelled users, report on the held-out test split, save the model."""
    features = read_features(settings) if features is None else features
    labels = read_labels(settings).reindex(features.index).dropna().astype(int)
    split = split_for(settings, labels)
    data = data or GraphData.export(store)
    features = with_exposure(settings, data, features, labels, split.train)
    model = train_model(
        features.loc[labels.index], labels, train_index=split.train, valid_index=split.valid,
        scale=settings.scale, seed=settings.seed, calibration=settings.calibration,
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
    return TrainResult(model, model.save(settings.models_dir), metrics)


def model_inputs(
    settings: Settings, store: GraphStore, model: CreditModel, features: pd.DataFrame, *,
    data: GraphData | None = None,
) -> pd.DataFrame:  # fmt: skip
    """What ``model`` scores: features plus label-aware ones from its training labels only."""
    if model.training_labels is None:
        return features
    labels = model.training_labels
    data = data or GraphData.export(store)
    return with_exposure(settings, data, features, labels, labels.index)


def score_users(model: CreditModel, features: pd.DataFrame) -> pd.DataFrame:
    """Scores, PDs, five factor points and reasons for every row of model inputs."""
    scored = model.score(features)
    scored["reasons"] = model.reasons(features)
    scored["model_id"] = model.model_id
    scored["scored_at"] = pd.Timestamp(datetime.now(UTC).replace(tzinfo=None)).floor("s")
    return scored


def write_scores(
    settings: Settings, store: GraphStore, scores: pd.DataFrame, inputs: pd.DataFrame
) -> Path:
    """Publish one scoring run: Parquet under ``scores/runs/<run_id>/`` and the store, whole.

    The model inputs are kept beside the scores so ``explain`` shows exactly
    what was scored; returns the run's directory.
    """
    previous = catalog.read_current(settings.scores_dir)
    written = scores[list(SCORE_PROPERTIES)].copy()
    # Network position and community travel with the scores, for investigations.
    written["pagerank"] = inputs["pagerank_scaled"].reindex(written.index).astype(float)
    written["community"] = inputs["community"].reindex(written.index).astype("int64")
    if previous is not None and previous["model_id"].iloc[0] != scores["model_id"].iloc[0]:
        before = previous.set_index("user_id").reindex(written.index)
        written["prev_score"] = before["score"].astype(float)
        written["prev_model_id"] = before["model_id"].astype(object)
    manifest = {
        "model_id": str(scores["model_id"].iloc[0]),
        "load_id": current_load_id(settings.history_dir),
        "users": len(scores),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    published = catalog.publish_run(
        settings.scores_dir, store, scores=scores, inputs=inputs, store_rows=written,
        manifest=manifest,
    )  # fmt: skip
    return published.directory


def compare_scores(settings: Settings, scores: pd.DataFrame) -> dict[str, float] | None:
    """How ``scores`` differ from the latest written version (None when there is none)."""
    from creditgraph.scoring.metrics import psi

    previous = catalog.read_current(settings.scores_dir)
    if previous is None:
        return None
    before = previous.set_index("user_id")["score"].reindex(scores.index)
    both = before.notna()
    change = scores["score"][both] - before[both]
    return {
        "users_compared": float(both.sum()),
        "psi": psi(before[both].to_numpy(), scores["score"][both].to_numpy()),
        "mean_change": float(change.mean()),
        "share_moved_50_plus": float((change.abs() >= 50).mean()),
    }


def load_model(settings: Settings, model_id: str | None = None) -> CreditModel:
    if model_id:
        return CreditModel.load(settings.models_dir / model_id)
    return latest_model(settings.models_dir)


def report(settings: Settings, model: CreditModel | None = None):  # -> scoring.report.Report
    """Write the HTML model report for the held-out test split of the latest scoring run."""
    from creditgraph.scoring.report import write_report

    model = model or load_model(settings)
    inputs = read_inputs(settings)
    labels = read_labels(settings).reindex(inputs.index).dropna().astype(int)
    split = split_for(settings, labels)
    scored = model.score(inputs.loc[split.test])
    scored.attrs["inputs"] = inputs.loc[split.test]
    train_inputs = inputs.loc[split.train]
    age_group = pd.cut(inputs["age"], [0, 25, 40, 60, 200], labels=["18–25", "26–40", "41–60",
                                                                     "61+"])  # fmt: skip
    return write_report(
        model, scored, labels, settings.data_dir / "reports" / model.model_id,
        reference=(model.score(train_inputs), train_inputs), groups=age_group.astype(str),
    )  # fmt: skip


def read_inputs(settings: Settings) -> pd.DataFrame:
    """The model inputs of the latest scoring run."""
    inputs = catalog.read_current(settings.scores_dir, catalog.INPUTS_FILE)
    if inputs is None:
        raise CreditGraphError("nothing scored yet; run `creditgraph score` first")
    return inputs.set_index("user_id")


# -- explanation --------------------------------------------------------------
@dataclass(frozen=True)
class Explanation:
    """One user's score with its exact breakdown."""

    user_id: str
    score: float
    pd: float
    base_points: float
    factors: dict[str, float]
    reasons: list[str]
    top_features: DataFrame  # feature, factor, value, points (exact TreeSHAP)
    model_id: str


def explain(settings: Settings, user_id: str, model: CreditModel | None = None) -> Explanation:
    """Score, PD, five factor points, reasons and the per-feature exact contributions."""
    from creditgraph.scoring.dictionary import spec

    model = model or load_model(settings)
    features = read_inputs(settings)
    if user_id not in features.index:
        raise CreditGraphError(f"unknown user {user_id!r}")
    row = features.loc[[user_id]]
    scored = model.score(row).iloc[0]
    points = model.feature_points(row, exact=True).iloc[0]
    table = pd.DataFrame(
        {
            "feature": points.index,
            "factor": [spec(f).factor for f in points.index],
            "value": [row.iloc[0][f] for f in points.index],
            "points": points.to_numpy(),
        }
    ).sort_values("points", key=np.abs, ascending=False)
    reasons = model.reasons(row, exact=True).iloc[0]
    return Explanation(
        user_id=user_id,
        score=float(scored["score"]),
        pd=float(scored["pd"]),
        base_points=float(model.score(row).attrs["base_points"]),
        factors={name: float(scored[f"f_{name}"]) for name in FACTORS},
        reasons=[r for r in reasons.split("; ") if r],
        top_features=table.reset_index(drop=True),
        model_id=model.model_id,
    )


# -- the main job ---------------------------------------------------------------
@dataclass(frozen=True)
class DemoResult:
    load: LoadReport
    train: TrainResult
    scores: pd.DataFrame
    timings: dict[str, float]


def run_demo(settings: Settings, step: Step = _quiet) -> DemoResult:
    """Generate → ingest → features → train → score → write back, on the configured store."""
    import time

    timings: dict[str, float] = {}
    started = time.perf_counter()

    def mark(name: str) -> None:
        nonlocal started
        now = time.perf_counter()
        timings[name] = now - started
        started = now

    world = settings.data_dir / "world"
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
