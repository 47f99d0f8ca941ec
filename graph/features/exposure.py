"""Exposure to default: label-aware features, computed only from labels a model could know.

| column | meaning | range |
|---|---|---|
| known_neighbours | neighbours whose outcome is known | ≥ 0 |
| neighbour_default_share | share of known neighbours who defaulted (NaN if none known) | 0–1 |
| hop2_default_share | the same over 2-hop walks | 0–1 |
| default_ppr | personalized PageRank from known defaulters, × n | ≥ 0 |
| trust_ppr | personalized PageRank from known good payers (TrustRank-style), × n | ≥ 0 |

Leakage rule: for a training row the features use out-of-fold labels only (the
row's own fold is hidden), for any other row the training labels only. So a
node's own label never reaches its own features; ``tests/test_leakage.py``
proves it by flipping labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from graph.features.position import pagerank
from graph.network import FriendGraph

EXPOSURE_COLUMNS = (
    "known_neighbours", "neighbour_default_share", "hop2_default_share", "default_ppr",
    "trust_ppr",
)  # fmt: skip


def exposure_from_labels(graph: FriendGraph, bad: np.ndarray, known: np.ndarray) -> pd.DataFrame:
    """Exposure features for every node, given which labels are known and which are bad."""
    bad = (bad & known).astype(float)
    good = (known & ~bad.astype(bool)).astype(float)
    known_f = known.astype(float)
    a = graph.adjacency
    known_1, bad_1 = a @ known_f, a @ bad
    known_2, bad_2 = a @ known_1, a @ bad_1
    with np.errstate(invalid="ignore", divide="ignore"):
        share_1 = np.where(known_1 > 0, bad_1 / known_1, np.nan)
        share_2 = np.where(known_2 > 0, bad_2 / known_2, np.nan)
    n = graph.n
    default_ppr = pagerank(a, personalization=bad) * n if bad.any() else np.zeros(n)
    trust_ppr = pagerank(a, personalization=good) * n if good.any() else np.zeros(n)
    return graph.frame({
        "known_neighbours": known_1,
        "neighbour_default_share": share_1,
        "hop2_default_share": share_2,
        "default_ppr": default_ppr,
        "trust_ppr": trust_ppr,
    })  # fmt: skip


def exposure_features(
    graph: FriendGraph,
    labels: pd.Series,
    train_ids: pd.Index,
    *,
    folds: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """Leakage-safe exposure features for every node of ``graph``.

    ``labels`` (1 = bad) is indexed by node id; only the entries in
    ``train_ids`` are ever read. Training rows get out-of-fold values (K
    folds), every other row values from all training labels.
    """
    position = pd.Series(np.arange(graph.n), index=graph.ids)
    train_pos = position.reindex(train_ids).dropna().to_numpy(dtype=np.int64)
    bad = np.zeros(graph.n, dtype=bool)
    bad[train_pos] = labels.reindex(graph.ids[train_pos]).to_numpy(dtype=float) == 1
    known = np.zeros(graph.n, dtype=bool)
    known[train_pos] = True
    out = exposure_from_labels(graph, bad, known)
    fold_of = np.random.default_rng(seed).permutation(len(train_pos)) % folds
    for fold in range(folds):
        held_out = train_pos[fold_of == fold]
        visible = known.copy()
        visible[held_out] = False
        out.iloc[held_out] = exposure_from_labels(graph, bad, visible).iloc[held_out].to_numpy()
    return out
