"""Bring your own graph: does a graph add anything over the node features alone?

Any node table (id, label, every other column a feature: numbers as they are,
strings as XGBoost categoricals) and optional ``src,dst`` edge list. For each
split, two models are trained on the same rows — features only, and features
plus graph features — and scored on the same test rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import average_precision_score, roc_auc_score

from creditgraph.errors import SchemaError
from creditgraph.graph.network import FriendGraph
from creditgraph.graph.store import EdgeArrays
from creditgraph.scoring.boosting import boost
from creditgraph.scoring.features.exposure import exposure_features
from creditgraph.scoring.features.position import position_features
from creditgraph.scoring.splits import Split

# Candidate settings, simplest first; inner validation on the training rows picks one per
# run by the one-standard-error rule: the simplest setting whose inner-CV ROC-AUC is within
# one standard error of the best. Small tables (German credit) then get shallow depth-2
# trees, which generalise better than the deeper setting that wins by noise; larger ones
# (Amazon) keep deep trees only when they are clearly better.
CANDIDATES: tuple[dict, ...] = (
    {"max_depth": 2, "eta": 0.02, "min_child_weight": 3, "subsample": 0.7,
     "colsample_bytree": 0.5, "lambda": 1.0},
    {"max_depth": 4, "eta": 0.02, "min_child_weight": 5, "subsample": 0.7,
     "colsample_bytree": 0.3, "lambda": 3.0},
    {"max_depth": 6, "eta": 0.05, "min_child_weight": 1, "subsample": 0.8,
     "colsample_bytree": 0.8, "lambda": 1.0},
)  # fmt: skip


@dataclass(frozen=True)
class SearchBudget:
    """How hard model selection tries; tests pass small ones, users keep the defaults."""

    candidates: tuple[dict, ...] = CANDIDATES
    max_rounds: int = 3000
    patience: int = 200  # rounds without improvement before stopping; small-data AUC is noisy
    inner_folds: int = 5


BASE_PARAMS = {
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "tree_method": "hist",
    "max_cat_to_onehot": 64,
}


@dataclass
class Evaluation:
    """Per-split metrics for both runs, and their summary in the documented JSON shape."""

    features_only: list[dict[str, float]]
    with_graph: list[dict[str, float]] | None
    chosen: list[str] = field(default_factory=list)  # feature set the with-graph run used

    def as_dict(self) -> dict:
        def stats(runs: list[dict[str, float]]) -> dict:
            return {
                metric: {"mean": float(np.mean([r[metric] for r in runs])),
                         "std": float(np.std([r[metric] for r in runs]))}
                for metric in ("roc_auc", "pr_auc")
            }  # fmt: skip

        out: dict = {"features_only": stats(self.features_only), "splits": len(self.features_only)}
        if self.with_graph is not None:
            out["with_graph"] = stats(self.with_graph)
            out["with_graph"]["chosen"] = self.chosen
            out["per_split"] = {"features_only": self.features_only, "with_graph": self.with_graph}
            out["lift"] = {
                m: out["with_graph"][m]["mean"] - out["features_only"][m]["mean"]
                for m in ("roc_auc", "pr_auc")
            }
        return out


def read_nodes(path: Path, id_col: str, label_col: str) -> tuple[pd.DataFrame, pd.Series]:
    """Node features (indexed by id) and 0/1 labels; errors name the file and column."""
    nodes = _read_csv(path, low_memory=False)
    for column in (id_col, label_col):
        if column not in nodes.columns:
            raise SchemaError(
                f"column not found; columns are {list(nodes.columns)[:12]}…",
                file=path.name,
                field=column,
            )
    nodes[id_col] = nodes[id_col].astype(str)
    if nodes[id_col].duplicated().any():
        row = int(np.flatnonzero(nodes[id_col].duplicated())[0]) + 1
        raise SchemaError("duplicate id", file=path.name, row=row, field=id_col)
    labels = pd.to_numeric(nodes[label_col], errors="coerce")
    bad = ~labels.isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 1
        raise SchemaError(
            "label must be 0 or 1",
            file=path.name,
            row=row,
            field=label_col,
            value=nodes[label_col].iloc[row - 1],
        )
    nodes = nodes.set_index(id_col)
    features = nodes.drop(columns=[label_col])
    for column in features.columns:
        if not pd.api.types.is_numeric_dtype(features[column]):
            features[column] = features[column].astype("category")
    return features, labels.set_axis(nodes.index).astype(int)


def read_edges(path: Path, ids: pd.Index) -> EdgeArrays:
    edges = _read_csv(path, dtype=str)
    for column in ("src", "dst"):
        if column not in edges.columns:
            raise SchemaError("edge list needs src and dst columns", file=path.name, field=column)
    src, dst = ids.get_indexer(edges["src"]), ids.get_indexer(edges["dst"])
    unknown = (src < 0) | (dst < 0)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0]) + 1
        field = "src" if src[row - 1] < 0 else "dst"
        raise SchemaError(
            "id not in the node table",
            file=path.name,
            row=row,
            field=field,
            value=edges[field].iloc[row - 1],
        )
    return EdgeArrays(src, dst, ids, ids)


def read_splits(path: Path, id_col: str, ids: pd.Index) -> list[Split]:
    """Splits from a CSV: the id column and ``split_0..split_k`` holding train/valid/test."""
    table = _read_csv(path, dtype=str)
    if id_col not in table.columns:
        raise SchemaError(f"column not found; columns are {list(table.columns)[:12]}…",
                          file=path.name, field=id_col)  # fmt: skip
    if table[id_col].duplicated().any():
        row = int(np.flatnonzero(table[id_col].duplicated())[0]) + 1
        raise SchemaError("duplicate id", file=path.name, row=row, field=id_col)
    table = table.set_index(id_col).reindex(ids)
    columns = sorted(
        (c for c in table.columns if c.startswith("split_")), key=lambda c: int(c.split("_")[1])
    )
    if not columns:
        raise SchemaError("no split_<k> columns", file=path.name)
    return [Split(train=ids[table[c] == "train"], test=ids[table[c] == "test"],
                  valid=ids[table[c] == "valid"]) for c in columns]  # fmt: skip


def _read_csv(path: Path, **options: object) -> pd.DataFrame:
    """``pd.read_csv``; a missing, unreadable or malformed file is a SchemaError naming it."""
    try:
        return pd.read_csv(path, **options)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise SchemaError(f"cannot read: {exc}", file=path.name) from exc


def graph_features(
    graph: FriendGraph, features: pd.DataFrame, labels: pd.Series, train_ids: pd.Index, seed: int
) -> pd.DataFrame:
    """Structural + neighbour-mean + leakage-safe exposure features for every node."""
    numeric = features.select_dtypes("number")
    means = graph.neighbour_mean(numeric.to_numpy(dtype=float))
    neighbours = pd.DataFrame(
        means, index=graph.ids, columns=[f"nb_mean_{c}" for c in numeric.columns]
    )
    return pd.concat(
        [position_features(graph), neighbours,
         exposure_features(graph, labels, train_ids, seed=seed)], axis=1,
    )  # fmt: skip


@dataclass(frozen=True)
class Trial:
    """One candidate setting's inner-validation result."""

    auc: float
    se: float  # standard error of ``auc``; 0 when it comes from one validation set
    params: dict
    rounds: int


def _trial(
    params: dict, train: xgb.DMatrix, check: xgb.DMatrix | None, seed: int, budget: SearchBudget
) -> Trial:
    """Inner validation of one setting: early stopping on ``check``, else stratified CV."""
    if check is not None:
        fitted = boost(params, train, budget.max_rounds, valid=check, patience=budget.patience,
                       maximize=True)  # fmt: skip
        return Trial(fitted.best_score, 0.0, params, fitted.rounds)
    # No validation rows: cross-validation estimates the AUC and round count; it keeps no
    # model (the one used is refitted below through boost), so it is not a training loop.
    history = pd.DataFrame(  # it is one already (as_pandas); typed as a dict or a frame
        xgb.cv(params, train, budget.max_rounds, nfold=budget.inner_folds, stratified=True,
               seed=seed, early_stopping_rounds=budget.patience, verbose_eval=False,
               maximize=True)
    )  # fmt: skip
    last = history.iloc[-1]
    se = float(last["test-auc-std"]) / np.sqrt(budget.inner_folds)
    return Trial(float(last["test-auc-mean"]), se, params, len(history))


def one_standard_error(trials: list[Trial]) -> Trial:
    """The first (simplest) trial within one standard error of the best one."""
    best = max(trials, key=lambda t: t.auc)
    return next(t for t in trials if t.auc >= best.auc - best.se)


def fit_predict(
    alternatives: dict[str, tuple[pd.DataFrame, pd.DataFrame]],
    train_y: pd.Series,
    valid: tuple[dict[str, pd.DataFrame], pd.Series] | None,
    seed: int,
    budget: SearchBudget = SearchBudget(),
) -> tuple[np.ndarray, str]:
    """Fit XGBoost and predict the test rows; choices made on training data only.

    ``alternatives`` maps a feature-set name to its (train, test) frames. For
    each feature set the budget's candidate settings are validated by early
    stopping on the ``valid`` rows when given, otherwise by inner stratified
    k-fold CV on the training rows, and one is kept by the one-standard-error
    rule; the feature set whose kept setting validates best is refitted and
    used. Returns the predictions and the chosen feature set's name. Test rows
    are never looked at.
    """
    kept: dict[str, Trial] = {}
    for name, (train_x, _) in alternatives.items():
        train = xgb.DMatrix(train_x, train_y, enable_categorical=True)
        check = (xgb.DMatrix(valid[0][name], valid[1], enable_categorical=True)
                 if valid is not None and len(valid[1]) else None)  # fmt: skip
        trials = [_trial({**BASE_PARAMS, **c, "seed": seed}, train, check, seed, budget)
                  for c in budget.candidates]  # fmt: skip
        kept[name] = one_standard_error(trials)
    name = max(kept, key=lambda k: kept[k].auc)
    train_x, test_x = alternatives[name]
    train = xgb.DMatrix(train_x, train_y, enable_categorical=True)
    booster = boost(kept[name].params, train, kept[name].rounds).booster
    return booster.predict(xgb.DMatrix(test_x, enable_categorical=True)), name


def feature_sets(features: pd.DataFrame, graph: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """The feature sets a run may choose from: node features alone, or with graph families."""
    if graph is None:
        return {"features": features}
    structural = [c for c in graph.columns if not c.startswith("nb_mean_")]
    return {
        "features+graph": features.join(graph),
        "features+structure": features.join(graph[structural]),
        "features": features,
    }


def evaluate(
    features: pd.DataFrame,
    labels: pd.Series,
    edges: EdgeArrays | None,
    splits: list[Split],
    seed: int = 42,
    *,
    budget: SearchBudget = SearchBudget(),
) -> Evaluation:
    """Train and test with and without graph features on every split.

    The with-graph run may choose, by inner CV on its training rows, between
    node features with all graph families, with the structural and
    label-aware families only, or alone; ``Evaluation.chosen`` records it.
    """
    graph = FriendGraph.from_arrays(edges) if edges is not None else None
    plain: list[dict[str, float]] = []
    boosted: list[dict[str, float]] | None = [] if graph is not None else None
    chosen: list[str] = []
    for i, split in enumerate(splits):
        extra = (graph_features(graph, features, labels, split.train, seed + i)
                 if graph is not None else None)  # fmt: skip
        runs = [(feature_sets(features, None), plain)]
        if boosted is not None:
            runs.append((feature_sets(features, extra), boosted))
        for sets, sink in runs:
            alternatives = {k: (v.loc[split.train], v.loc[split.test]) for k, v in sets.items()}
            valid = (
                ({k: v.loc[split.valid] for k, v in sets.items()}, labels.loc[split.valid])
                if len(split.valid) else None
            )  # fmt: skip
            p, name = fit_predict(alternatives, labels.loc[split.train], valid, seed + i, budget)
            y = labels.loc[split.test].to_numpy()
            sink.append({"roc_auc": float(roc_auc_score(y, p)),
                         "pr_auc": float(average_precision_score(y, p))})  # fmt: skip
            if sink is boosted:
                chosen.append(name)
    return Evaluation(plain, boosted, chosen)
