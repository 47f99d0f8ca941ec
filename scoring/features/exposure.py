"""Exposure to default: label-aware features, computed only from labels a model could know.

| column | meaning | range |
|---|---|---|
| known_neighbours | friends whose outcome is known | ≥ 0 |
| neighbour_default_share | share of known friends who defaulted (NaN if none known) | 0–1 |
| hop2_default_share | the same over 2-hop walks | 0–1 |
| default_ppr | personalized PageRank from known defaulters, × n | ≥ 0 |
| trust_ppr | personalized PageRank from known good payers (TrustRank-style), × n | ≥ 0 |
| community_default_rate | default rate of the known members of the user's community | 0–1 |
| merchant_customer_default_rate | default rate of known customers of merchants paid | 0–1 |
| owned_customer_default_rate | owners: default rate of their merchants' known customers | 0–1 |

Leakage rule: for a training row the features use out-of-fold labels only (the
row's own fold is hidden), for any other row the training labels only. So a
row's own label never reaches its own features; ``tests/test_leakage.py``
proves it by flipping labels. All K+1 label sets are computed together: one
batched sparse product per step serves every fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from creditgraph.graph.algorithms import member_totals, pagerank
from creditgraph.graph.network import FriendGraph

PPR_DAMPING = 0.5  # exposure is local: half the walk's mass stays within ~2 hops


@dataclass(frozen=True)
class LabelContext:
    """Everything a label can spread over: friends, communities, merchants paid and owned."""

    graph: FriendGraph
    community: np.ndarray | None = None  # community id per node
    pays: sp.csr_matrix | None = None  # users × merchants, 1 where the user paid
    owns: sp.csr_matrix | None = None  # users × merchants, 1 where the user owns


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def exposure_from_labels(ctx: LabelContext, bad: np.ndarray, known: np.ndarray) -> list[dict]:
    """Exposure columns for every node under each label set (columns of ``bad``/``known``)."""
    bad = (bad & known).astype(float)
    known_f = known.astype(float)
    good = known_f - bad
    graph = ctx.graph
    known_1, bad_1 = graph.neighbour_sum(known_f), graph.neighbour_sum(bad)
    known_2, bad_2 = graph.neighbour_sum(known_1), graph.neighbour_sum(bad_1)
    n, sets = bad.shape
    seeds = np.concatenate([bad, good], axis=1)
    has_seed = seeds.sum(axis=0) > 0
    ppr = np.zeros_like(seeds)
    if has_seed.any():
        walks = pagerank(graph.adjacency, damping=PPR_DAMPING, personalization=seeds[:, has_seed],
                         tol=1e-8, max_iter=100, symmetric=True)  # fmt: skip
        ppr[:, has_seed] = walks * n
    if ctx.pays is not None:  # every label set in one product: customers of the merchants
        paid_bad = member_totals(ctx.pays, ctx.pays, bad)
        paid_known = member_totals(ctx.pays, ctx.pays, known_f)
        if ctx.owns is not None:
            owned_bad = member_totals(ctx.owns, ctx.pays, bad)
            owned_known = member_totals(ctx.owns, ctx.pays, known_f)
    out = []
    for j in range(sets):
        columns = {
            "known_neighbours": known_1[:, j],
            "neighbour_default_share": _ratio(bad_1[:, j], known_1[:, j]),
            "hop2_default_share": _ratio(bad_2[:, j], known_2[:, j]),
            "default_ppr": ppr[:, j],
            "trust_ppr": ppr[:, sets + j],
        }
        if ctx.community is not None:
            rate = _ratio(np.bincount(ctx.community, bad[:, j]),
                          np.bincount(ctx.community, known_f[:, j]))  # fmt: skip
            columns["community_default_rate"] = rate[ctx.community]
        if ctx.pays is not None:
            columns["merchant_customer_default_rate"] = _ratio(paid_bad[:, j], paid_known[:, j])
            if ctx.owns is not None:
                columns["owned_customer_default_rate"] = _ratio(owned_bad[:, j], owned_known[:, j])
        out.append(columns)
    return out


def exposure_features(
    ctx: LabelContext | FriendGraph,
    labels: pd.Series,
    train_ids: pd.Index,
    *,
    folds: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """Leakage-safe exposure features for every node.

    ``labels`` (1 = bad) is indexed by node id; only the entries in
    ``train_ids`` are ever read. Training rows get out-of-fold values (K
    folds), every other row values from all training labels.
    """
    if isinstance(ctx, FriendGraph):
        ctx = LabelContext(ctx)
    graph = ctx.graph
    position = pd.Series(np.arange(graph.n), index=graph.ids)
    train_pos = position.reindex(train_ids).dropna().to_numpy(dtype=np.int64)
    is_bad = np.zeros(graph.n, dtype=bool)
    is_bad[train_pos] = labels.reindex(graph.ids[train_pos]).to_numpy(dtype=float) == 1
    fold_of = np.random.default_rng(seed).permutation(len(train_pos)) % folds
    known = np.zeros((graph.n, folds + 1), dtype=bool)
    known[train_pos, :] = True
    for fold in range(folds):
        known[train_pos[fold_of == fold], fold + 1] = False  # hide the fold from itself
    bad = known & is_bad[:, None]
    results = exposure_from_labels(ctx, bad, known)
    out = pd.DataFrame(results[0], index=graph.ids)
    for fold in range(folds):
        rows = train_pos[fold_of == fold]
        out.iloc[rows] = pd.DataFrame(results[fold + 1]).iloc[rows].to_numpy()
    return out
