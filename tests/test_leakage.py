"""Label-aware features never see the label of the row they describe, and every row,
trained on or scored, sees the same share of the training labels: a training row its own
fold's label set, any other row the mean over the K sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from creditgraph.graph.network import FriendGraph
from creditgraph.graph.store import EdgeArrays
from creditgraph.scoring.features.exposure import FOLDS, exposure_features, fold_table


def _random_graph(n: int = 400, m: int = 2400, seed: int = 3) -> FriendGraph:
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"n{i}" for i in range(n)])
    return FriendGraph.from_arrays(
        EdgeArrays(rng.integers(0, n, m), rng.integers(0, n, m), ids, ids)
    )


def test_flipping_own_label_changes_none_of_own_features():
    graph = _random_graph()
    rng = np.random.default_rng(0)
    labels = pd.Series((rng.random(graph.n) < 0.2).astype(int), index=graph.ids)
    train = graph.ids[:300]
    before = exposure_features(graph, labels, train, seed=1)
    for node in list(train[:25]) + list(graph.ids[300:325]):  # training and held-out rows
        flipped = labels.copy()
        flipped[node] = 1 - flipped[node]
        after = exposure_features(graph, flipped, train, seed=1)
        pd.testing.assert_series_equal(before.loc[node], after.loc[node])


def test_test_labels_are_never_read():
    graph = _random_graph()
    labels = pd.Series(0, index=graph.ids)
    train = graph.ids[:300]
    base = exposure_features(graph, labels, train, seed=1)
    scrambled = labels.copy()
    scrambled.iloc[300:] = 1  # every non-training label changes
    pd.testing.assert_frame_equal(base, exposure_features(graph, scrambled, train, seed=1))


def test_exposure_carries_signal_from_training_labels():
    graph = _random_graph()
    labels = pd.Series(0, index=graph.ids)
    train = graph.ids[:300]
    bad_node = graph.ids[0]
    labels[bad_node] = 1
    out = exposure_features(graph, labels, train, seed=1)
    neighbours = graph.ids[graph.adjacency[0].indices]
    held_out_neighbours = [n for n in neighbours if n not in train]
    assert all(out.loc[n, "neighbour_default_share"] > 0 for n in held_out_neighbours)
    # The only defaulter's own label is hidden from it: it sees no exposure at all.
    assert out.loc[bad_node, "default_ppr"] == 0
    assert np.isnan(out.loc[bad_node, "neighbour_default_share"]) or (
        out.loc[bad_node, "neighbour_default_share"] == 0
    )


def test_training_and_scored_rows_know_the_same_share_of_their_friends():
    """A training row reads its own fold's label set, any other row the mean over the K sets,
    so a count means the same in the rows a model trains on and in the rows it scores. Were
    the others to read every training label, they would know K/(K−1) = 5/4 as many friends
    at the same degree."""
    graph = _random_graph(4000, 80_000, seed=5)  # mean degree 40
    rng = np.random.default_rng(6)
    labels = pd.Series((rng.random(graph.n) < 0.1).astype(int), index=graph.ids)
    is_train = rng.random(graph.n) < 0.6  # drawn apart from degree
    out = exposure_features(graph, labels, graph.ids[is_train], seed=1)
    known, degree = out["known_neighbours"].to_numpy(), graph.degree
    trained, scored = (known[rows].sum() / degree[rows].sum() for rows in (is_train, ~is_train))
    assert trained == pytest.approx(0.6 * (FOLDS - 1) / FOLDS, rel=0.03)
    assert scored == pytest.approx(trained, rel=0.02)
    # Exactly: a scored row knows (K−1)/K of its friends with a training label.
    every_label = graph.neighbour_sum(is_train.astype(float))
    np.testing.assert_allclose(known[~is_train], every_label[~is_train] * (FOLDS - 1) / FOLDS)
    # The personalised PageRanks are normalised over their seeds: no shift either.
    for column in ("default_ppr", "trust_ppr"):
        values = out[column].to_numpy()
        assert values[~is_train].mean() == pytest.approx(values[is_train].mean(), rel=0.05)


def test_a_scored_rows_share_is_the_mean_over_the_sets_that_define_it():
    """By hand: a scored row's share is the mean over the label sets in which it knows a
    friend; NaN only if no training label reaches it. A training row reads its fold's set."""
    # s: three trained friends (a bad, b and c good); t: one (a); u: none with a label;
    # e: trained, one trained friend (a). g…j: trained, alone (so that folds repeat).
    names = ["s", "t", "u", "a", "b", "c", "d", "e", "g", "h", "i", "j"]
    ids = pd.Index(names)
    pairs = [("s", "a"), ("s", "b"), ("s", "c"), ("t", "a"), ("u", "d"), ("e", "a")]
    ends = [ids.get_indexer([pair[end] for pair in pairs]) for end in (0, 1)]
    graph = FriendGraph.from_arrays(EdgeArrays(*ends, ids, ids))
    labels = pd.Series(0, index=ids)
    labels["a"] = 1
    train = pd.Index(["a", "b", "c", "e", "g", "h", "i", "j"])
    out = exposure_features(graph, labels, train, seed=3)
    fold = fold_table(ids, labels, train, seed=3)["fold"]
    # The draw this test is written for: b and c share a fold, e shares a's.
    assert fold["b"] == fold["c"] != fold["a"] == fold["e"]

    def in_set(f: int, friends: list[str]) -> float:
        known = [x for x in friends if fold[x] != f]  # set f hides fold f
        return sum(labels[x] for x in known) / len(known) if known else np.nan

    # s: 0/2 without a's fold, 1/1 without b's and c's, 1/3 in the three others: the mean,
    # 2/5, is not the share among every trained friend (1/3).
    by_set = [in_set(f, ["a", "b", "c"]) for f in range(FOLDS)]
    assert sorted(by_set) == pytest.approx([0, 1 / 3, 1 / 3, 1 / 3, 1])
    assert out.loc["s", "neighbour_default_share"] == pytest.approx(0.4)
    assert out.loc["s", "known_neighbours"] == pytest.approx(3 * (FOLDS - 1) / FOLDS)
    # t: one known friend, known in K−1 sets: its outcome is read, not NaN.
    assert out.loc["t", "neighbour_default_share"] == 1.0
    assert out.loc["t", "known_neighbours"] == pytest.approx((FOLDS - 1) / FOLDS)
    assert np.isnan(out.loc["u", "neighbour_default_share"])  # nothing known in any set
    assert out.loc["u", "known_neighbours"] == 0
    # e, a training row, reads its own fold's set alone, which hides its only known friend.
    assert np.isnan(out.loc["e", "neighbour_default_share"])
    assert out.loc["e", "known_neighbours"] == 0
