"""Bring your own graph: does a graph add anything over the node features alone?

Any node table (id, label, every other column a feature: numbers as they are,
strings as XGBoost categoricals) and optional ``src,dst`` edge list. For each
split, two models are trained on the same rows — features only, and features
plus graph features (:mod:`scoring.lift_features`) — and scored on the same
test rows. Every choice (feature set, depth, learning rate, rounds) is made on
training rows only: by early stopping on the split's validation rows when it
has some, else by inner stratified K-fold CV of the training rows.

How it stays fast, also beside other jobs: the graph and its label-independent
families are built once per run and only the label family once per split;
inner CV boosts its folds in lockstep and stops them together (as
``xgboost.cv``), on data matrices without column names (XGBoost checks names
in Python on every round: a third of the time); the with-graph run reuses the
features-only fits; and every XGBoost fit runs on one thread while
``threads`` fits run side by side in a thread pool (XGBoost releases the GIL).
Independent fits need no OpenMP barrier, whose threads spin while another
process holds a core (a split with two busy processes on 2 cores took 3× as
long at XGBoost's default threads). Every setting and feature set of a split
is validated on the same folds, so they compare pairwise. Results do not
depend on ``threads``.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from creditgraph.errors import SchemaError
from creditgraph.graph.network import FriendGraph
from creditgraph.graph.store import EdgeArrays
from creditgraph.scoring.boosting import boost, boost_folds
from creditgraph.scoring.lift_features import (
    label_features,
    neighbour_features,
    structure_features,
)
from creditgraph.scoring.splits import Split

# Candidate settings, simplest first; inner validation on the training rows picks one per
# split by the one-standard-error rule: the simplest setting whose inner ROC-AUC is within
# one standard error of the best. Small tables (German credit) then get shallow depth-2
# trees, which generalise better than the deeper setting that wins by noise; larger ones
# (Amazon) keep deep trees only when they are clearly better. The shallow setting learns
# slowly (0.02: +0.004 ROC-AUC on German credit over 0.05, over 5 seeds); deeper ones
# learn faster, which costs less where they win, on more rows.
CANDIDATES: tuple[dict, ...] = (
    {"max_depth": 2, "eta": 0.02, "min_child_weight": 3, "subsample": 0.7,
     "colsample_bytree": 0.5, "lambda": 1.0},
    {"max_depth": 4, "eta": 0.05, "min_child_weight": 5, "subsample": 0.7,
     "colsample_bytree": 0.3, "lambda": 3.0},
    {"max_depth": 6, "eta": 0.1, "min_child_weight": 1, "subsample": 0.8,
     "colsample_bytree": 0.8, "lambda": 1.0},
)  # fmt: skip

FEATURES = "features"  # the node features alone: the simplest feature set
VALID_BLOCKS = 5  # given validation rows are scored in this many blocks for a standard error
# A graph feature set replaces the node features alone only when its inner ROC-AUC is
# higher by more than this many standard errors of the paired difference: with 4 inner
# folds a one-error margin let inner-CV noise pick a graph that then lost on test rows
# (Amazon, seed 3: lift -0.0009 at one error, -0.0005 at two); a graph that helps
# clears two easily (the 12k-node benchmark graph: +0.09).
GRAPH_MARGIN = 2.0


@dataclass(frozen=True)
class SearchBudget:
    """How hard model selection tries; tests pass small ones, users keep the defaults."""

    candidates: tuple[dict, ...] = CANDIDATES
    max_rounds: int = 2000
    # Early-stopping patience in learning-rate units: patience / eta rounds (80 at eta
    # 0.05), so a slow learner gets as long to recover as a fast one.
    patience: float = 4.0
    inner_folds: int = 4
    refits: int = 3  # fits averaged for the test predictions after inner CV (seeds differ)

    def patience_rounds(self, params: dict) -> int:
        return max(5, math.ceil(self.patience / params["eta"]))


BASE_PARAMS = {
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "tree_method": "hist",
    "max_cat_to_onehot": 64,
    "nthread": 1,  # one thread per fit; fits run side by side (see the module docstring)
}


def default_threads() -> int:
    """Fits in flight by default: one more than the cores this process may run on.

    The extra fit keeps every core busy while another thread holds the GIL (or the
    main thread computes a split's label family), and beside busy processes it keeps a
    fair share of the machine (2 cores, two busy loops, 12k-node benchmark: 1.83× the
    quiet time against 2.01× with one fit per core; the same quiet time).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores) + 1


@dataclass(frozen=True)
class Run:
    """One split's test result and every choice behind it."""

    roc_auc: float
    pr_auc: float
    feature_set: str
    params: dict  # the candidate setting kept (depth, learning rate, …)
    rounds: int
    inner_auc: float  # the kept setting's inner ROC-AUC (validation rows or inner CV)
    inner_se: float
    inner: dict[str, float]  # every feature set's kept inner ROC-AUC
    seconds: float  # wall time from the split's first fit to its predictions


@dataclass
class Evaluation:
    """Per-split results of both runs, and their summary in the documented JSON shape."""

    features_only: list[Run]
    with_graph: list[Run] | None
    seconds: dict[str, float] = field(default_factory=dict)  # per stage, and in total
    threads: int = 1

    @property
    def chosen(self) -> list[str]:
        """The feature set the with-graph run used on each split."""
        return [run.feature_set for run in self.with_graph or []]

    def as_dict(self) -> dict:
        def stats(runs: list[Run]) -> dict:
            return {
                metric: {"mean": float(np.mean([getattr(r, metric) for r in runs])),
                         "std": float(np.std([getattr(r, metric) for r in runs]))}
                for metric in ("roc_auc", "pr_auc")
            }  # fmt: skip

        out: dict = {
            "features_only": stats(self.features_only),
            "splits": len(self.features_only),
            "per_split": {"features_only": [asdict(r) for r in self.features_only]},
            "threads": self.threads,
            "seconds": self.seconds,
        }
        if self.with_graph is not None:
            out["with_graph"] = stats(self.with_graph)
            out["with_graph"]["chosen"] = self.chosen
            out["per_split"]["with_graph"] = [asdict(r) for r in self.with_graph]
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


def graph_families(graph: FriendGraph, features: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The label-independent families of every node (once per run): structure, and
    neighbours' feature aggregates."""
    return structure_features(graph), neighbour_features(graph, features)


def feature_sets(
    features: pd.DataFrame,
    structure: pd.DataFrame | None,
    neighbours: pd.DataFrame | None,
    labelled: pd.DataFrame | None,
) -> dict[str, pd.DataFrame]:
    """The feature sets a run may choose from, simplest first: node features alone, with
    structure and neighbours' labels, or with every graph family. A graph column named
    like a node feature is prefixed ``graph_``."""
    if structure is None or neighbours is None or labelled is None:
        return {FEATURES: features}
    structure, neighbours, labelled = (
        frame.rename(columns=lambda c: f"graph_{c}" if c in features.columns else c)
        for frame in (structure, neighbours, labelled)
    )
    return {
        FEATURES: features,
        "features+structure+labels": pd.concat([features, structure, labelled], axis=1),
        "features+graph": pd.concat([features, structure, neighbours, labelled], axis=1),
    }


@dataclass(frozen=True)
class Trial:
    """One candidate setting's inner-validation result."""

    auc: float
    se: float  # standard error of ``auc``
    params: dict
    rounds: int
    # ROC-AUC per inner fold (or validation block) at ``rounds``: the same folds for every
    # trial of a split, so two trials compare pairwise.
    scores: tuple[float, ...] = ()


def one_standard_error(trials: list[Trial]) -> Trial:
    """The first (simplest) trial within one standard error of the best one."""
    best = max(trials, key=lambda t: t.auc)
    return next(t for t in trials if t.auc >= best.auc - best.se)


def choose_feature_set(kept: dict[str, Trial], margin: float = GRAPH_MARGIN) -> str:
    """The best-validating feature set if it beats the node features alone by more than
    ``margin`` standard errors of their paired difference; otherwise the node features.

    The graph must earn its place: on a graph that carries nothing (the German
    similarity control) the run keeps the node features and their predictions.
    """
    name = max(kept, key=lambda k: kept[k].auc)
    base, best = kept[FEATURES], kept[name]
    paired = len(best.scores) == len(base.scores)
    se = _se(np.subtract(best.scores, base.scores)) if paired else max(best.se, base.se)
    return name if best.auc - base.auc > margin * se else FEATURES


@dataclass(frozen=True)
class _Design:
    """A feature set as one float32 matrix (categories as codes, missing as NaN).

    Data matrices built from it carry no column names: XGBoost converts and checks
    those on every boosting round, in Python (a third of the fitting time, holding the
    GIL, when they came from a DataFrame).
    """

    values: np.ndarray
    types: list[str] | None  # "q" or "c" per column, when some column is categorical

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _Design:
        categorical = [isinstance(t, pd.CategoricalDtype) for t in frame.dtypes]
        if not any(categorical):
            return cls(frame.to_numpy(dtype=np.float32), None)
        codes = frame.apply(lambda c: c.cat.codes.where(c.cat.codes >= 0) if c.dtype == "category"
                            else c)  # fmt: skip
        return cls(codes.to_numpy(dtype=np.float32), ["c" if c else "q" for c in categorical])

    def rows(self, positions: np.ndarray) -> _Design:
        return _Design(self.values[positions], self.types)


def _matrix(x: _Design, y: np.ndarray | None = None) -> xgb.DMatrix:
    return xgb.DMatrix(x.values, y, feature_types=x.types, enable_categorical=x.types is not None,
                       nthread=1)  # fmt: skip


def _se(scores: np.ndarray) -> float:
    return float(np.std(scores, ddof=1) / np.sqrt(len(scores))) if len(scores) > 1 else 0.0


def _cv_trial(
    params: dict, x: _Design, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]],
    budget: SearchBudget,
) -> Trial:  # fmt: skip
    """Inner CV of one setting on the training rows: the best round of the folds' mean."""
    matrices = [(_matrix(x.rows(f), y[f]), _matrix(x.rows(c), y[c])) for f, c in folds]
    history = boost_folds(params, matrices, budget.max_rounds,
                          patience=budget.patience_rounds(params))  # fmt: skip
    best = int(np.argmax(history.mean(axis=1)))
    scores = history[best]
    return Trial(float(scores.mean()), _se(scores), params, best + 1, tuple(map(float, scores)))


@dataclass(frozen=True)
class _Validated:
    """A setting early-stopped on the split's validation rows, and its test predictions."""

    trial: Trial
    test: np.ndarray


def _valid_trial(
    params: dict, fit: tuple[_Design, np.ndarray], check: tuple[_Design, np.ndarray],
    test: _Design, block: np.ndarray, budget: SearchBudget,
) -> _Validated:  # fmt: skip
    """Early stopping on the given validation rows; the standard error from their blocks."""
    valid = _matrix(*check)
    fitted = boost(params, _matrix(*fit), budget.max_rounds, valid=valid, maximize=True,
                   patience=budget.patience_rounds(params))  # fmt: skip
    pred, y = fitted.booster.predict(valid), check[1]
    scores = np.array([roc_auc_score(y[block == b], pred[block == b])
                       for b in range(block.max() + 1) if block.max() > 0])  # fmt: skip
    trial = Trial(fitted.best_score, _se(scores), params, fitted.rounds, tuple(map(float, scores)))
    return _Validated(trial, fitted.booster.predict(_matrix(test)))


def _refit(
    params: dict, rounds: int, x: _Design, y: np.ndarray, test: _Design, seeds: int
) -> np.ndarray:
    """Fit on every training row for the rounds inner CV chose; predict the test rows.

    With ``seeds`` > 1, the mean prediction of as many fits with other seeds
    (each subsamples other rows and columns): bagging that costs a few fits.
    """
    train, scored = _matrix(x, y), _matrix(test)
    return np.mean([boost({**params, "seed": params["seed"] + 1000 * k}, train, rounds)
                    .booster.predict(scored) for k in range(seeds)], axis=0)  # fmt: skip


def _blocks(y: np.ndarray, seed: int) -> np.ndarray:
    """Stratified block number of each validation row (fewer blocks than a class's rows)."""
    count = int(min(VALID_BLOCKS, (y == 0).sum(), (y == 1).sum()))
    block = np.zeros(len(y), dtype=int)
    if count < 2:
        return block
    rng = np.random.default_rng(seed)
    for value in (0, 1):  # two classes, not rows
        rows = np.flatnonzero(y == value)
        block[rows] = rng.permutation(len(rows)) % count
    return block


@dataclass
class _Job:
    """One split in flight: its feature sets, rows (positions) and inner fits submitted."""

    index: int
    sets: dict[str, _Design]
    rows: dict[str, np.ndarray]  # train, valid, test positions
    fits: dict[str, list[Future[Trial] | Future[_Validated]]]  # per feature set, per setting


def _submit(
    pool: ThreadPoolExecutor, index: int, split: Split, sets: dict[str, pd.DataFrame],
    y: np.ndarray, seed: int, budget: SearchBudget,
) -> _Job:  # fmt: skip
    """Queue one task per feature set and candidate setting: inner CV of the training rows,
    or early stopping on the split's validation rows when it has some."""
    index_of = sets[FEATURES].index
    designs = {name: _Design.of(frame) for name, frame in sets.items()}  # once per split
    rows = {name: index_of.get_indexer(ids) for name, ids in
            (("train", split.train), ("valid", split.valid), ("test", split.test))}  # fmt: skip
    params = [{**BASE_PARAMS, **c, "seed": seed} for c in budget.candidates]
    train, valid, test = rows["train"], rows["valid"], rows["test"]
    fits: dict[str, list[Future[Trial] | Future[_Validated]]] = {}
    if len(valid):
        block = _blocks(y[valid], seed)
        for name, frame in designs.items():
            fit, check = (frame.rows(train), y[train]), (frame.rows(valid), y[valid])
            fits[name] = [pool.submit(_valid_trial, p, fit, check, frame.rows(test), block, budget)
                          for p in params]  # fmt: skip
        return _Job(index, designs, rows, fits)
    y_train = y[train]
    count = min(budget.inner_folds, int(np.bincount(y_train, minlength=2).min()))
    if count < 2:
        raise SchemaError("a split's training rows need at least 2 rows of each label")
    folds = list(StratifiedKFold(count, shuffle=True, random_state=seed)
                 .split(np.zeros(len(train)), y_train))  # fmt: skip
    for name, frame in designs.items():
        x = frame.rows(train)
        fits[name] = [pool.submit(_cv_trial, p, x, y_train, folds, budget) for p in params]
    return _Job(index, designs, rows, fits)


def _finish(
    pool: ThreadPoolExecutor, job: _Job, y: np.ndarray, budget: SearchBudget, started: float
) -> tuple[Run, Run | None]:
    """Choose on the inner results, refit what needs it, and score the test rows."""
    train, test = job.rows["train"], job.rows["test"]
    kept: dict[str, tuple[int, Trial]] = {}
    for name, futures in job.fits.items():
        results = [f.result() for f in futures]
        trials = [r.trial if isinstance(r, _Validated) else r for r in results]
        trial = one_standard_error(trials)
        kept[name] = (trials.index(trial), trial)
    chosen = choose_feature_set({k: t for k, (_, t) in kept.items()}) if len(kept) > 1 else None
    predictions: dict[str, Future[np.ndarray] | np.ndarray] = {}
    for name in dict.fromkeys([FEATURES, chosen or FEATURES]):  # features-only serves both
        c, trial = kept[name]
        done = job.fits[name][c].result()
        if isinstance(done, _Validated):  # early-stopped on the split's own rows: no refit
            predictions[name] = done.test
        else:
            frame = job.sets[name]
            predictions[name] = pool.submit(
                _refit,
                trial.params,
                trial.rounds,
                frame.rows(train),
                y[train],
                frame.rows(test),
                budget.refits,
            )
    y_test = y[test]
    inner = {k: t.auc for k, (_, t) in kept.items()}

    def run(name: str) -> Run:
        p = predictions[name]
        p = p.result() if isinstance(p, Future) else p
        c, trial = kept[name]
        return Run(
            roc_auc=float(roc_auc_score(y_test, p)),
            pr_auc=float(average_precision_score(y_test, p)),
            feature_set=name, params=dict(budget.candidates[c]), rounds=trial.rounds,
            inner_auc=trial.auc, inner_se=trial.se, inner=inner,
            seconds=time.perf_counter() - started,
        )  # fmt: skip

    plain = run(FEATURES)
    return plain, (run(chosen) if chosen is not None else None)


def _describe(run: Run) -> str:
    return (f"{run.roc_auc:.4f} ({run.feature_set}, depth {run.params.get('max_depth')}, "
            f"{run.rounds} rounds)")  # fmt: skip


def evaluate(
    features: pd.DataFrame,
    labels: pd.Series,
    edges: EdgeArrays | None,
    splits: list[Split],
    seed: int = 42,
    *,
    budget: SearchBudget = SearchBudget(),
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Evaluation:
    """Train and test with and without graph features on every split.

    The with-graph run may choose, on its training rows, between node features
    with every graph family, with the structural and label families only, or
    alone (see :func:`choose_feature_set`); each :class:`Run` records it.
    ``threads`` fits run side by side (default: :func:`default_threads`);
    ``progress`` receives one line per stage and per split.
    """
    say = progress or (lambda _: None)
    threads = threads or default_threads()
    clock = time.perf_counter()
    seconds: dict[str, float] = {}
    graph, structure, neighbours = None, None, None
    if edges is not None:
        if not edges.source_ids.equals(features.index):
            raise ValueError("the edge arrays must index the node table's ids")  # a caller's bug
        graph = FriendGraph.from_arrays(edges)
        seconds["graph"] = time.perf_counter() - clock
        structure, neighbours = graph_families(graph, features)
        seconds["graph_families"] = time.perf_counter() - clock - seconds["graph"]
        say(f"graph: {graph.n:,} nodes, {len(graph.edges):,} edges; built with its "
            f"structure and neighbour families in {time.perf_counter() - clock:.1f} s")  # fmt: skip
    y = labels.reindex(features.index).to_numpy(dtype=int)
    plain: list[Run] = []
    boosted: list[Run] | None = [] if graph is not None else None
    seconds["label_families"] = 0.0
    say(f"{len(splits)} splits, {len(budget.candidates)} settings, {threads} fits at a time")
    started = time.perf_counter()
    pool = ThreadPoolExecutor(threads, thread_name_prefix="evaluate")
    pending: deque[_Job] = deque()

    def finish() -> None:
        nonlocal started
        job = pending.popleft()
        run, graph_run = _finish(pool, job, y, budget, started)
        started = time.perf_counter()
        plain.append(run)
        line = f"split {job.index + 1}/{len(splits)}: features {_describe(run)}"
        if boosted is not None and graph_run is not None:
            boosted.append(graph_run)
            line += f"; with graph {_describe(graph_run)}"
        say(f"{line}; {run.seconds:.1f} s")

    try:
        for i, split in enumerate(splits):
            tick = time.perf_counter()
            labelled = (label_features(graph, labels, split.train, seed=seed + i)
                        if graph is not None else None)  # fmt: skip
            seconds["label_families"] += time.perf_counter() - tick
            sets = feature_sets(features, structure, neighbours, labelled)
            pending.append(_submit(pool, i, split, sets, y, seed + i, budget))
            if len(pending) > 1:  # one split queued ahead keeps every thread busy
                finish()
        while pending:
            finish()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    seconds["total"] = time.perf_counter() - clock
    # Model fits (inner CV, refits, predictions): the rest of the wall time.
    seconds["fits"] = seconds["total"] - sum(v for k, v in seconds.items() if k != "total")
    return Evaluation(plain, boosted, seconds, threads)
