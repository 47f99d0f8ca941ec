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

Leakage rule: the training rows are dealt into K folds and label set f holds every
training label but fold f's. A training row reads its own fold's set (so its own label
never reaches its features); any other row (validation, test, every user scored later)
reads the mean of each column over the K sets (:func:`read_sets`). So a count such as
``known_neighbours`` is, for a scored row, exactly (K−1)/K of its count from every
training label, the share a training row sees: the counts mean the same in the rows a
model is trained on and in the rows it scores (reading every training label would give
the scored rows K/(K−1) = 5/4 as many known friends at the same degree). A ratio is
averaged over the sets where it is defined: NaN only where no set knows anyone, i.e.
where nothing is known from any training label; a scored user with a single known
friend reads that friend's outcome (defined in K−1 sets) rather than NaN. The mean
depends on nothing but the graph and the training labels: a user reads the same values
scored alone or in a batch, in any order, among any other users.
``tests/test_leakage.py`` proves both by flipping labels and by comparing the rows.
The K label sets are computed together: one batched sparse product per step serves
every fold. :mod:`scoring.lift_features` (``evaluate``) follows the same rule with the
same pieces.

The pieces are separate so that a Dask cluster can share them
(:mod:`scoring.distributed.exposure`): :func:`fold_table` draws the folds,
:func:`label_sets` and :func:`read_sets` state the rule per user, :func:`label_counts`
computes the count-based columns (a cluster computes them as joins over the edge
lists instead) and :func:`label_ppr` the two personalised PageRanks (global: a cluster
computes them here too, :func:`ppr_features`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from creditgraph.graph.algorithms import member_totals, pagerank
from creditgraph.graph.network import FriendGraph

PPR_DAMPING = 0.5  # exposure is local: half the walk's mass stays within ~2 hops
FOLDS = 5
COLUMNS = ("known_neighbours", "neighbour_default_share", "hop2_default_share", "default_ppr",
           "trust_ppr", "community_default_rate", "merchant_customer_default_rate",
           "owned_customer_default_rate")  # fmt: skip


@dataclass(frozen=True)
class LabelContext:
    """Everything a label can spread over: friends, communities, merchants paid and owned."""

    graph: FriendGraph
    community: np.ndarray | None = None  # community id per node
    pays: sp.csr_matrix | None = None  # users × merchants, 1 where the user paid
    owns: sp.csr_matrix | None = None  # users × merchants, 1 where the user owns


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` where ``den`` > 0, NaN elsewhere."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def fold_table(
    ids: pd.Index, labels: pd.Series, train_ids: pd.Index, *, folds: int = FOLDS, seed: int = 0
) -> pd.DataFrame:
    """The training users among ``ids`` (in ``train_ids`` order), indexed by user id: their
    ``fold`` (0..K-1, drawn at random) and ``defaulted`` (True where the label is 1).

    The one draw of the folds: the single-machine family and the cluster's both use it.
    """
    position = pd.Series(np.arange(len(ids)), index=ids)
    train_pos = position.reindex(train_ids).dropna().to_numpy(dtype=np.int64)
    train = ids[train_pos]
    return pd.DataFrame(
        {"fold": np.random.default_rng(seed).permutation(len(train_pos)) % folds,
         "defaulted": labels.reindex(train).to_numpy(dtype=float) == 1},
        index=train.rename("user_id"),
    )  # fmt: skip


def label_sets(table: pd.DataFrame, folds: int = FOLDS) -> tuple[np.ndarray, np.ndarray]:
    """(bad, known), rows × K booleans, of each row of :func:`fold_table` (``fold`` NaN: not
    a training user) under each label set: set f holds every training label but fold f's."""
    fold = table["fold"].to_numpy(dtype=float)
    known = ~np.isnan(fold)[:, None] & (fold[:, None] != np.arange(folds))
    return known & (table["defaulted"].to_numpy(dtype=float) == 1)[:, None], known


def read_sets(values: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Each row's value under the leakage rule, from ``values`` (rows × K: the value under
    each label set): its own fold's set for a training row (``fold`` f: set f hides it), the
    mean over the sets where the value is defined for any other (``fold`` NaN; NaN where no
    set defines it).

    >>> read_sets(np.array([[1.0, 2.0, 3.0], [0.0, np.nan, 1.0]]), np.array([2.0, np.nan]))
    array([3. , 0.5])
    """
    values = np.asarray(values, dtype=float)
    fold = np.asarray(fold, dtype=float)
    total, defined = np.zeros(len(values)), np.zeros(len(values))
    # Added set by set, in set order: one machine and a cluster sum the same numbers in
    # the same order, so their features are equal to the last bit.
    for column in values.T:
        known = ~np.isnan(column)
        total += np.where(known, column, 0.0)
        defined += known
    own = values[np.arange(len(values)), np.nan_to_num(fold).astype(np.int64)]
    return np.where(np.isnan(fold), ratio(total, defined), own)


def label_counts(ctx: LabelContext, bad: np.ndarray, known: np.ndarray) -> list[dict]:
    """The count-based exposure columns (all but the two PageRanks) for every node under each
    label set (columns of ``bad``/``known``)."""
    bad = (bad & known).astype(float)
    known_f = known.astype(float)
    graph = ctx.graph
    known_1, bad_1 = graph.neighbour_sum(known_f), graph.neighbour_sum(bad)
    known_2, bad_2 = graph.neighbour_sum(known_1), graph.neighbour_sum(bad_1)
    if ctx.pays is not None:  # every label set in one product: customers of the merchants
        paid_bad = member_totals(ctx.pays, ctx.pays, bad)
        paid_known = member_totals(ctx.pays, ctx.pays, known_f)
        if ctx.owns is not None:
            owned_bad = member_totals(ctx.owns, ctx.pays, bad)
            owned_known = member_totals(ctx.owns, ctx.pays, known_f)
    out = []
    for j in range(bad.shape[1]):
        columns = {
            "known_neighbours": known_1[:, j],
            "neighbour_default_share": ratio(bad_1[:, j], known_1[:, j]),
            "hop2_default_share": ratio(bad_2[:, j], known_2[:, j]),
        }
        if ctx.community is not None:
            rate = ratio(np.bincount(ctx.community, bad[:, j]),
                         np.bincount(ctx.community, known_f[:, j]))  # fmt: skip
            columns["community_default_rate"] = rate[ctx.community]
        if ctx.pays is not None:
            columns["merchant_customer_default_rate"] = ratio(paid_bad[:, j], paid_known[:, j])
            if ctx.owns is not None:
                columns["owned_customer_default_rate"] = ratio(owned_bad[:, j], owned_known[:, j])
        out.append(columns)
    return out


def label_ppr(graph: FriendGraph, bad: np.ndarray, known: np.ndarray) -> list[dict]:
    """``default_ppr`` and ``trust_ppr`` for every node under each label set: one batched
    personalised PageRank over the whole graph."""
    bad = (bad & known).astype(float)
    seeds = np.concatenate([bad, known.astype(float) - bad], axis=1)
    has_seed = seeds.sum(axis=0) > 0
    ppr = np.zeros_like(seeds)
    if has_seed.any():
        walks = pagerank(graph.adjacency, damping=PPR_DAMPING, personalization=seeds[:, has_seed],
                         tol=1e-8, max_iter=100, symmetric=True)  # fmt: skip
        ppr[:, has_seed] = walks * graph.n
    sets = bad.shape[1]
    return [{"default_ppr": ppr[:, j], "trust_ppr": ppr[:, sets + j]} for j in range(sets)]


def exposure_from_labels(ctx: LabelContext, bad: np.ndarray, known: np.ndarray) -> list[dict]:
    """Exposure columns for every node under each label set (columns of ``bad``/``known``)."""
    counts, walks = label_counts(ctx, bad, known), label_ppr(ctx.graph, bad, known)
    merged = [{**n, **w} for n, w in zip(counts, walks, strict=True)]
    return [{c: columns[c] for c in COLUMNS if c in columns} for columns in merged]


def per_row(results: list[dict], table: pd.DataFrame, ids: pd.Index) -> pd.DataFrame:
    """Each node's values (``ids`` order) under the leakage rule (:func:`read_sets`) from
    ``results`` (one dict of columns per label set), indexed by id."""
    fold = table["fold"].reindex(ids).to_numpy(dtype=float)
    return pd.DataFrame(
        {c: read_sets(np.stack([r[c] for r in results], axis=1), fold) for c in results[0]},
        index=ids,
    )


def exposure_features(
    ctx: LabelContext | FriendGraph,
    labels: pd.Series,
    train_ids: pd.Index,
    *,
    folds: int = FOLDS,
    seed: int = 0,
) -> pd.DataFrame:
    """Leakage-safe exposure features for every node.

    ``labels`` (1 = bad) is indexed by node id; only the entries in
    ``train_ids`` are ever read. A training row gets the values of its own fold's
    out-of-fold label set, every other row the mean over the K sets (see the module's
    leakage rule).
    """
    if isinstance(ctx, FriendGraph):
        ctx = LabelContext(ctx)
    ids = ctx.graph.ids
    table = fold_table(ids, labels, train_ids, folds=folds, seed=seed)
    bad, known = label_sets(table.reindex(ids), folds)
    return per_row(exposure_from_labels(ctx, bad, known), table, ids)


def ppr_features(graph: FriendGraph, table: pd.DataFrame, *, folds: int = FOLDS) -> pd.DataFrame:
    """``default_ppr`` and ``trust_ppr`` of every node under the leakage rule, from
    :func:`fold_table`'s ``table`` (what a cluster computes on one machine)."""
    bad, known = label_sets(table.reindex(graph.ids), folds)
    return per_row(label_ppr(graph, bad, known), table, graph.ids)
