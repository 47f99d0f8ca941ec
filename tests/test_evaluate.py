"""Bring-your-own-graph evaluation through the CLI, on real files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from creditgraph.cli import app
from creditgraph.graph.network import FriendGraph
from creditgraph.graph.store import EdgeArrays
from creditgraph.scoring.evaluate import CANDIDATES, SearchBudget

SMALL = ["--max-rounds", "60"]  # the CLI's limits, small: the tests check behaviour, not accuracy


def _table(tmp_path: Path, n: int = 400, seed: int = 0) -> tuple[Path, Path]:
    """Nodes whose label follows a feature and a homophilous graph (friends share risk)."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 20, n)
    risk = rng.normal(size=20)[group] + rng.normal(scale=0.5, size=n)
    label = (risk + rng.normal(scale=0.7, size=n) > 1.0).astype(int)
    nodes = pd.DataFrame({
        "id": [f"n{i}" for i in range(n)],
        "x1": risk + rng.normal(scale=1.5, size=n),
        "colour": rng.choice(["red", "green", "blue"], n),
        "target": label,
    })  # fmt: skip
    src = rng.integers(0, n, 3000)
    # Each edge joins two members of the same group (a test fixture, not a hot path).
    order = np.argsort(group, kind="stable")
    start = np.searchsorted(group[order], group[src])
    size = np.bincount(group, minlength=20)[group[src]]
    dst = order[start + rng.integers(0, size)]
    edges = pd.DataFrame({"src": nodes["id"].to_numpy()[src], "dst": nodes["id"].to_numpy()[dst]})
    nodes.to_csv(tmp_path / "nodes.csv", index=False)
    edges.to_csv(tmp_path / "edges.csv", index=False)
    return tmp_path / "nodes.csv", tmp_path / "edges.csv"


def test_evaluate_writes_the_documented_json(tmp_path):
    nodes, edges = _table(tmp_path)
    out = tmp_path / "result.json"
    result = CliRunner().invoke(app, [
        "evaluate", str(nodes), str(edges), "--id", "id", "--label", "target",
        "--folds", "2", "--train-frac", "0.5", "--json", str(out), *SMALL,
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "split 1/2" in result.output and "split 2/2" in result.output  # progress, no terminal
    data = json.loads(out.read_text())
    assert data["splits"] == 2
    prevalence = pd.read_csv(nodes)["target"].mean()
    for run in ("features_only", "with_graph"):
        assert set(data[run]["roc_auc"]) == set(data[run]["pr_auc"]) == {"mean", "std"}
        assert 0.5 < data[run]["roc_auc"]["mean"] <= 1.0
        assert prevalence < data[run]["pr_auc"]["mean"] <= 1.0  # better than chance
    lift = data["with_graph"]["roc_auc"]["mean"] - data["features_only"]["roc_auc"]["mean"]
    assert data["lift"]["roc_auc"] == pytest.approx(lift)
    assert data["with_graph"]["chosen"] == [
        r["feature_set"] for r in data["per_split"]["with_graph"]
    ]
    for run in ("features_only", "with_graph"):  # every choice is on record
        for record in data["per_split"][run]:
            assert record["params"]["max_depth"] in {c["max_depth"] for c in CANDIDATES}
            assert 1 <= record["rounds"] <= 60 and 0.5 < record["inner_auc"] <= 1
            assert set(record["inner"]) >= {"features"}


def test_evaluate_without_edges_runs_features_only(tmp_path):
    nodes, _ = _table(tmp_path)
    out = tmp_path / "result.json"
    result = CliRunner().invoke(app, [
        "evaluate", str(nodes), "--id", "id", "--label", "target", "--folds", "2",
        "--json", str(out), *SMALL,
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert "with_graph" not in data and "lift" not in data
    assert [r["feature_set"] for r in data["per_split"]["features_only"]] == ["features"] * 2


def test_evaluate_takes_a_splits_file(tmp_path):
    nodes, edges = _table(tmp_path)
    ids = pd.read_csv(nodes)["id"]
    position = np.arange(len(ids))
    splits = pd.DataFrame({
        "id": ids,
        "split_0": np.where(position % 5 == 0, "test", np.where(position % 5 == 1, "valid",
                                                                  "train")),
        "split_1": np.where(position % 5 == 2, "test", "train"),
    })  # fmt: skip
    splits.to_csv(tmp_path / "splits.csv", index=False)
    out = tmp_path / "result.json"
    result = CliRunner().invoke(app, [
        "evaluate", str(nodes), str(edges), "--id", "id", "--label", "target",
        "--splits", str(tmp_path / "splits.csv"), "--json", str(out), *SMALL,
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["splits"] == 2
    # Split 0 has validation rows: its standard errors come from their blocks, not 0.
    assert data["per_split"]["features_only"][0]["inner_se"] > 0


def test_bad_label_names_file_row_and_field(tmp_path):
    nodes, _ = _table(tmp_path)
    frame = pd.read_csv(nodes)
    frame.loc[7, "target"] = 3
    frame.to_csv(nodes, index=False)
    result = CliRunner().invoke(app, ["evaluate", str(nodes), "--id", "id", "--label", "target"])
    assert result.exit_code == 2
    assert "nodes.csv" in result.output and "row 8" in result.output
    assert "'target'" in result.output


def test_one_standard_error_keeps_the_simplest_setting_within_noise():
    from creditgraph.scoring.evaluate import Trial, one_standard_error

    simple, medium, deep = (
        Trial(auc, 0.01, {"max_depth": depth}, 100)
        for auc, depth in ((0.780, 2), (0.785, 4), (0.792, 6))
    )
    assert one_standard_error([simple, medium, deep]) is medium  # 0.785 ≥ 0.792 − 0.01
    assert one_standard_error([simple, deep]) is deep  # 0.780 is more than one SE behind
    exact = Trial(0.79, 0.0, {"max_depth": 6}, 100)
    assert one_standard_error([Trial(0.789, 0.0, {}, 100), exact]) is exact


def test_the_search_budget_is_an_argument(tmp_path):
    from creditgraph.scoring.evaluate import evaluate, read_nodes
    from creditgraph.scoring.splits import random_splits

    nodes, _ = _table(tmp_path)
    features, labels = read_nodes(nodes, "id", "target")
    budget = SearchBudget(candidates=CANDIDATES[:1], max_rounds=20, patience=0.25, inner_folds=2)
    result = evaluate(features, labels, None, random_splits(labels, 2, 0.5, 0), 0, budget=budget)
    assert len(result.features_only) == 2
    assert all(0.5 < run.roc_auc <= 1 and run.rounds <= 20 for run in result.features_only)


def test_results_do_not_depend_on_the_thread_count(tmp_path):
    from creditgraph.scoring.evaluate import evaluate, read_edges, read_nodes
    from creditgraph.scoring.splits import random_splits

    nodes, edges = _table(tmp_path)
    features, labels = read_nodes(nodes, "id", "target")
    arrays = read_edges(edges, features.index)
    splits = random_splits(labels, 2, 0.5, 0)
    budget = SearchBudget(max_rounds=40, inner_folds=2)
    one, three = (evaluate(features, labels, arrays, splits, 0, budget=budget, threads=t)
                  for t in (1, 3))  # fmt: skip
    assert (one.threads, three.threads) == (1, 3)
    for a, b in ((one.features_only, three.features_only), (one.with_graph, three.with_graph)):
        assert [replace(r, seconds=0.0) for r in a] == [replace(r, seconds=0.0) for r in b]


def _random_graph(n: int, m: int, seed: int) -> FriendGraph:
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"n{i}" for i in range(n)])
    return FriendGraph.from_arrays(
        EdgeArrays(rng.integers(0, n, m), rng.integers(0, n, m), ids, ids)
    )


def test_known_neighbour_counts_are_not_shifted_between_training_and_test_rows():
    from creditgraph.scoring.features.exposure import FOLDS, exposure_features
    from creditgraph.scoring.lift_features import label_features

    graph = _random_graph(3000, 60_000, 0)  # mean degree 40
    rng = np.random.default_rng(1)
    labels = pd.Series(rng.integers(0, 2, graph.n), index=graph.ids)
    train = graph.ids[rng.random(graph.n) < 0.5]
    is_train = graph.ids.isin(train)

    def known_share(frame: pd.DataFrame) -> tuple[float, float]:
        known = frame["known_neighbours"].to_numpy()
        return tuple(known[rows].sum() / graph.degree[rows].sum() for rows in (is_train, ~is_train))

    expected = 0.5 * (FOLDS - 1) / FOLDS  # a share of the training labels is hidden
    found = label_features(graph, labels, train, seed=0)
    train_share, test_share = known_share(found)
    assert train_share == pytest.approx(expected, rel=0.03)
    assert test_share == pytest.approx(train_share, rel=0.02)
    # One rule, not two: the main pipeline's exposure family reads the very same label sets
    # the same way (a training row its fold's, the others the mean over the sets: the shares
    # are means of the sets' shares, not shares of the means).
    main = exposure_features(graph, labels, train, seed=0)
    for ours, theirs in (("known_neighbours", "known_neighbours"),
                         ("nb_bad_rate", "neighbour_default_share"),
                         ("hop2_bad_rate", "hop2_default_share")):  # fmt: skip
        pd.testing.assert_series_equal(found[ours], main[theirs], check_names=False)


def test_a_rows_own_label_never_reaches_its_label_features():
    from creditgraph.scoring.lift_features import label_features

    graph = _random_graph(300, 3000, 2)
    rng = np.random.default_rng(3)
    labels = pd.Series(rng.integers(0, 2, graph.n), index=graph.ids)
    train = graph.ids[:200]
    base = label_features(graph, labels, train, seed=0)
    for node in rng.choice(graph.ids[:200], 10, replace=False):  # ten flips, one at a time
        flipped = labels.copy()
        flipped[node] = 1 - flipped[node]
        changed = label_features(graph, flipped, train, seed=0)
        pd.testing.assert_series_equal(changed.loc[node], base.loc[node])
        assert not changed.equals(base)  # the flip reaches other rows' features
    flipped = labels.copy()
    flipped.iloc[200:] = 1 - flipped.iloc[200:]  # labels outside training are never read
    pd.testing.assert_frame_equal(label_features(graph, flipped, train, seed=0), base)


def test_graph_families_on_a_hand_computed_path():
    from creditgraph.scoring.lift_features import neighbour_features, structure_features

    ids = pd.Index(list("abcde"))  # a - b - c - d, and e alone
    graph = FriendGraph.from_arrays(EdgeArrays(np.array([0, 1, 2]), np.array([1, 2, 3]), ids, ids))
    x = pd.DataFrame({"x": [1.0, 2.0, 4.0, 8.0, 16.0], "kind": ["u"] * 5}, index=ids)
    nb = neighbour_features(graph, x.astype({"kind": "category"}))
    nan = np.nan
    expected = {
        "nb_mean_x": [2.0, 2.5, 5.0, 4.0, nan],
        "hop2_mean_x": [2.5, 3.5, 3.25, 5.0, nan],
        "nb_diff_x": [-1.0, -0.5, -1.0, 4.0, nan],
        "nb_wmean_x": [2.0, 2.0, 6.0, 4.0, nan],  # (1·1 + 4·½) ÷ (1 + ½) for b
    }
    assert list(nb.columns) == list(expected)  # numeric features only
    for column, values in expected.items():
        np.testing.assert_allclose(nb[column].to_numpy(), values)
    structure = structure_features(graph)
    np.testing.assert_allclose(structure["degree"], [1, 2, 2, 1, 0])
    np.testing.assert_allclose(structure["nb_mean_degree"], [2, 1.5, 1.5, 2, nan])
    np.testing.assert_allclose(structure["degree_ratio"], [0.5, 4 / 3, 4 / 3, 0.5, nan])


def test_the_graph_must_beat_the_node_features_by_more_than_noise():
    from creditgraph.scoring.evaluate import Trial, choose_feature_set

    base = Trial(0.800, 0.006, {}, 100, (0.79, 0.80, 0.81))
    noisy = Trial(0.805, 0.016, {}, 100, (0.80, 0.78, 0.835))  # gains 0.005 ± 0.013
    clear = Trial(0.830, 0.006, {}, 100, (0.82, 0.83, 0.84))  # gains 0.03 on every fold
    assert choose_feature_set({"features": base, "features+graph": noisy}) == "features"
    assert choose_feature_set({"features": base, "features+graph": clear}) == "features+graph"
    # Gains 0.008 on average with a paired standard error of 0.0046: 1.7 errors.
    between = Trial(0.808, 0.006, {}, 100, (0.79, 0.808, 0.826))
    assert choose_feature_set({"features": base, "features+graph": between}) == "features"
    assert choose_feature_set({"features": base, "g": between}, margin=1.0) == "g"
    worse = Trial(0.79, 0.006, {}, 100, (0.78, 0.79, 0.80))
    assert choose_feature_set({"features": base, "features+graph": worse}) == "features"


def test_inner_folds_boost_in_lockstep_and_stop_together():
    import xgboost as xgb

    from creditgraph.scoring.boosting import boost_folds

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4))
    y = (x[:, 0] + rng.normal(scale=2.0, size=600) > 0).astype(float)  # noisy: it overfits
    folds = [(xgb.DMatrix(x[rows], y[rows]), xgb.DMatrix(x[~rows], y[~rows]))
             for rows in (np.arange(600) % 2 == 0, np.arange(600) % 2 == 1)]  # fmt: skip
    params = {"objective": "binary:logistic", "eval_metric": "auc", "max_depth": 3, "eta": 0.3,
              "seed": 0, "nthread": 1}  # fmt: skip
    history = boost_folds(params, folds, 500, patience=5)
    best = int(np.argmax(history.mean(axis=1)))
    assert history.shape == (best + 1 + 5, 2)  # stopped 5 rounds after the mean's best
    for k, (train, valid) in enumerate(folds):  # each fold as xgboost.train alone fits it
        record: dict = {}
        xgb.train(params, train, len(history), evals=[(valid, "valid")], evals_result=record,
                  verbose_eval=False)  # fmt: skip
        np.testing.assert_allclose(history[:, k], record["valid"]["auc"], rtol=1e-6)
