"""Bring-your-own-graph evaluation through the CLI, on real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from creditgraph.cli import app


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
        "--folds", "2", "--train-frac", "0.5", "--json", str(out),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["splits"] == 2
    prevalence = pd.read_csv(nodes)["target"].mean()
    for run in ("features_only", "with_graph"):
        assert set(data[run]["roc_auc"]) == set(data[run]["pr_auc"]) == {"mean", "std"}
        assert 0.5 < data[run]["roc_auc"]["mean"] <= 1.0
        assert prevalence < data[run]["pr_auc"]["mean"] <= 1.0  # better than chance
    lift = data["with_graph"]["roc_auc"]["mean"] - data["features_only"]["roc_auc"]["mean"]
    assert data["lift"]["roc_auc"] == pytest.approx(lift)
    assert len(data["per_split"]["with_graph"]) == 2


def test_evaluate_without_edges_runs_features_only(tmp_path):
    nodes, _ = _table(tmp_path)
    out = tmp_path / "result.json"
    result = CliRunner().invoke(app, [
        "evaluate", str(nodes), "--id", "id", "--label", "target", "--folds", "2",
        "--json", str(out),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert "with_graph" not in data and "lift" not in data


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
        "--splits", str(tmp_path / "splits.csv"), "--json", str(out),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["splits"] == 2


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
    from creditgraph.scoring.evaluate import CANDIDATES, SearchBudget, evaluate, read_nodes
    from creditgraph.scoring.splits import random_splits

    nodes, _ = _table(tmp_path)
    features, labels = read_nodes(nodes, "id", "target")
    budget = SearchBudget(candidates=CANDIDATES[:1], max_rounds=20, patience=5, inner_folds=2)
    result = evaluate(features, labels, None, random_splits(labels, 2, 0.5, 0), 0, budget=budget)
    assert len(result.features_only) == 2
    assert all(0.5 < run["roc_auc"] <= 1 for run in result.features_only)
