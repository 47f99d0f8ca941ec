"""Graph feature families for ``evaluate``: what a graph adds to any node table.

Label-independent families are computed once per run; the label-aware family
once per split, from that split's training labels only.

| column | family | meaning |
|---|---|---|
| degree | structure | ties of the node |
| nb_mean_degree, degree_ratio | structure | neighbours' mean degree; degree ÷ it |
| pagerank_scaled, component_size, clustering, coreness | structure | :mod:`.features.position` |
| nb_mean_<c> | neighbours | mean of numeric feature ``c`` over the neighbours |
| hop2_mean_<c> | neighbours | the same over 2-hop walks |
| nb_diff_<c> | neighbours | ``c`` minus ``nb_mean_<c>`` (graphs whose neighbours differ) |
| nb_wmean_<c> | neighbours | neighbours weighted by 1 ÷ their degree |
| known_neighbours, bad_neighbours | labels | neighbours with a known outcome; bad ones |
| known_share | labels | known_neighbours ÷ degree |
| nb_bad_rate, nb_bad_rate_weighted | labels | bad share of known neighbours (1 ÷ degree weights) |
| hop2_bad_rate | labels | the same over 2-hop walks |
| default_ppr, trust_ppr | labels | personalised PageRank from known bad / good rows, × n |

Structure and neighbours do not depend on labels and are computed once per
run; labels once per split, from that split's training labels only.

Leakage rule of the label family: the main pipeline's, stated once in
:mod:`scoring.features.exposure` and drawn by its functions. The training rows are
dealt into K folds and label set k hides fold k. A training row in fold k reads
label set k (never its own label); every other row (validation, test, unlabelled)
reads each column's mean over the K label sets (a ratio: over the sets where it is
defined). So a count such as ``known_neighbours`` is (K−1)/K of the training labels'
in training and test rows alike (were test rows to read every training label, they
would have K/(K−1) as many known neighbours as training rows of the same degree).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from creditgraph.graph.algorithms import pagerank
from creditgraph.graph.network import FriendGraph
from creditgraph.scoring.features.exposure import (
    FOLDS,
    PPR_DAMPING,
    fold_table,
    label_sets,
    ratio,
    read_sets,
)
from creditgraph.scoring.features.position import position_features


def structure_features(graph: FriendGraph) -> pd.DataFrame:
    """Degree and position of every node (label-independent)."""
    degree = graph.degree
    nb_degree = ratio(graph.neighbour_sum(degree), degree)
    extra = graph.frame(
        {"degree": degree, "nb_mean_degree": nb_degree, "degree_ratio": ratio(degree, nb_degree)}
    )
    return pd.concat([extra, position_features(graph)], axis=1)


def neighbour_features(graph: FriendGraph, features: pd.DataFrame) -> pd.DataFrame:
    """1- and 2-hop, ego-minus-neighbour and degree-weighted means of the numeric features.

    Missing values are skipped (a mean over the neighbours that have one); NaN
    where no neighbour has a value.
    """
    numeric = features.select_dtypes("number")
    if numeric.empty:
        return graph.frame({})
    x = numeric.to_numpy(dtype=np.float64)
    one = graph.neighbour_mean(x).reshape(len(x), -1)
    two = graph.neighbour_mean(one).reshape(len(x), -1)
    # Neighbours weighted by 1/degree: a tie to a hub says less about the node than a
    # tie to someone with few ties (degree-normalised aggregation).
    inverse = np.divide(1.0, graph.degree, out=np.zeros(graph.n), where=graph.degree > 0)
    known = ~np.isnan(x)
    weighted_total = graph.neighbour_sum(np.where(known, x, 0.0) * inverse[:, None])
    weighted_count = graph.neighbour_sum(known * inverse[:, None])
    blocks = {
        "nb_mean": one,
        "hop2_mean": two,
        "nb_diff": x - one,
        "nb_wmean": ratio(weighted_total, weighted_count),
    }
    columns = [f"{prefix}_{c}" for prefix in blocks for c in numeric.columns]
    return pd.DataFrame(np.hstack(list(blocks.values())), index=graph.ids, columns=columns)


def label_features(
    graph: FriendGraph,
    labels: pd.Series,
    train_ids: pd.Index,
    *,
    folds: int = FOLDS,
    seed: int = 0,
) -> pd.DataFrame:
    """Neighbours' known outcomes for every node, from ``train_ids``' labels only.

    ``labels`` (1 = bad) is indexed by node id; only the entries of
    ``train_ids`` are read. See the module's leakage rule.
    """
    n = graph.n
    table = fold_table(graph.ids, labels, train_ids, folds=folds, seed=seed).reindex(graph.ids)
    bad_set, known = label_sets(table, folds)  # label set k hides fold k
    fold = table["fold"].to_numpy(dtype=float)
    known_f = known.astype(np.float64)
    bad = bad_set.astype(np.float64)
    inverse = np.divide(1.0, graph.degree, out=np.zeros(n), where=graph.degree > 0)
    # One batched product per step serves every label set: [known | bad | weighted …].
    one = graph.neighbour_sum(np.hstack([known_f, bad, known_f * inverse[:, None],
                                         bad * inverse[:, None]]))  # fmt: skip
    two = graph.neighbour_sum(one[:, : 2 * folds])
    seeds = np.hstack([bad, known_f - bad])
    ppr = np.zeros_like(seeds)
    has_seed = seeds.sum(axis=0) > 0
    if has_seed.any():
        ppr[:, has_seed] = n * pagerank(graph.adjacency, damping=PPR_DAMPING,
                                        personalization=seeds[:, has_seed], tol=1e-7,
                                        max_iter=50, symmetric=True)  # fmt: skip

    def sets(block: np.ndarray, k: int) -> np.ndarray:
        """The k-th block of ``folds`` columns: one value per label set."""
        return block[:, k * folds : (k + 1) * folds]

    # Each column per label set first, then the rule: a training row's own fold's set,
    # the mean over the sets for every other row.
    known_1, bad_1 = sets(one, 0), sets(one, 1)
    per_set = {
        "known_neighbours": known_1,
        "bad_neighbours": bad_1,
        "known_share": ratio(known_1, graph.degree[:, None]),
        "nb_bad_rate": ratio(bad_1, known_1),
        "nb_bad_rate_weighted": ratio(sets(one, 3), sets(one, 2)),
        "hop2_bad_rate": ratio(sets(two, 1), sets(two, 0)),
        "default_ppr": sets(ppr, 0),
        "trust_ppr": sets(ppr, 1),
    }
    return graph.frame({name: read_sets(values, fold) for name, values in per_set.items()})
