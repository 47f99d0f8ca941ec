"""Label-aware features never see the label of the row they describe."""

from __future__ import annotations

import numpy as np
import pandas as pd

from creditgraph.graph.network import FriendGraph
from creditgraph.graph.store import EdgeArrays
from creditgraph.scoring.features.exposure import exposure_features


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
