"""Graph algorithms over the exported arrays: ranking, structure, communities, projections.

Every function takes a :class:`~graph.network.FriendGraph`, relationship
arrays or incidence matrices (:func:`graph.network.incidence`) and returns
plain numbers per node (or per group): what the numbers are used for is up to
the caller.

- ranking: :func:`pagerank` (plain, personalised, several walks in one batch);
- structure: :func:`component_sizes`, :func:`coreness`, :func:`triangle_counts`;
- communities: :func:`leiden`, :func:`group_density`;
- relationship arrays: :func:`incident_totals`, :func:`partner_counts`,
  :func:`reciprocal_counts`;
- incidence matrices (bipartite projections): :func:`projection_degree`,
  :func:`co_member_mean`, :func:`member_totals`, :func:`member_mean`.
"""

from __future__ import annotations

import random

import igraph as ig
import numpy as np
import scipy.sparse as sp

from creditgraph.graph.network import FriendGraph, distinct_pairs


# -- ranking ---------------------------------------------------------------------
def pagerank(
    adjacency: sp.csr_matrix,
    *,
    damping: float = 0.85,
    personalization: np.ndarray | None = None,
    tol: float = 1e-10,
    max_iter: int = 200,
    symmetric: bool = False,
) -> np.ndarray:
    """PageRank by power iteration (row = source), networkx's conventions.

    ``personalization`` may be one vector (n,) or several as columns (n, k):
    all k walks then share each sparse product. Dangling nodes spread their
    mass by the personalization (uniform without one), as networkx does.
    ``symmetric=True`` promises ``adjacency`` equals its transpose (an undirected
    graph, as :class:`FriendGraph` keeps it), which saves transposing it.
    """
    n = adjacency.shape[0]
    if n == 0:
        return np.zeros(0)
    if personalization is None:
        teleport = np.full((n, 1), 1.0 / n)
    else:
        teleport = np.asarray(personalization, dtype=float).reshape(n, -1)
        totals = teleport.sum(axis=0)
        teleport = np.divide(teleport, totals, out=np.zeros_like(teleport), where=totals > 0)
    out = np.asarray(adjacency.sum(axis=1)).ravel()
    inverse = np.divide(1.0, out, out=np.zeros(n), where=out > 0)
    if sp.issparse(adjacency) and adjacency.format == "csr" and adjacency.has_canonical_format:
        # transition[i, j] = adjacency[j, i] * inverse[j], each entry scaled once: the same
        # values and sorted layout as the general form below, without a sparse product
        # (and, when the matrix is its own transpose, without transposing it).
        structure = adjacency if symmetric else adjacency.T.tocsr()
        transition = sp.csr_matrix(
            (structure.data * inverse[structure.indices], structure.indices, structure.indptr),
            shape=(n, n),
        )
    else:
        transition = (sp.diags(inverse) @ adjacency).T.tocsr()
    dangling = out == 0
    any_dangling = bool(dangling.any())
    rest = (1 - damping) * teleport
    rank = teleport.copy()
    for _ in range(max_iter):  # iterations, not nodes: each step is one sparse product
        # new = damping * (transition @ rank + spill * teleport) + rest, in place (with no
        # dangling node the spill is 0 and adding 0.0 changes nothing).
        new = transition @ rank
        if any_dangling:
            new += rank[dangling].sum(axis=0) * teleport
        new *= damping
        new += rest
        np.subtract(new, rank, out=rank)  # the old rank is not needed any more
        converged = np.abs(rank, out=rank).sum(axis=0).max() < n * tol
        rank = new
        if converged:
            break
    return rank.ravel() if personalization is None or np.ndim(personalization) == 1 else rank


# -- structure -------------------------------------------------------------------
def component_sizes(graph: FriendGraph) -> np.ndarray:
    """Nodes in each node's connected component (int)."""
    # igraph's components on the view built anyway for transitivity/coreness: the same
    # partition as scipy's connected_components, which transposes the matrix first (~20x slower).
    labels = np.asarray(graph.igraph.connected_components().membership, dtype=np.int64)
    return np.bincount(labels)[labels]


def coreness(graph: FriendGraph) -> np.ndarray:
    """Largest k such that the node is in the k-core (as float)."""
    return np.asarray(graph.igraph.coreness(), dtype=float)


def triangle_counts(graph: FriendGraph) -> np.ndarray:
    """Triangles through each node: local transitivity × neighbour pairs (0 below 2 neighbours).

    Computed from the shared transitivity (float, exact up to rounding).
    """
    transitivity = np.nan_to_num(graph.local_transitivity, nan=0.0)
    return transitivity * (graph.degree * (graph.degree - 1) / 2)


# -- communities -------------------------------------------------------------------
def leiden(
    graph: FriendGraph, *, seed: int = 42, iterations: int = 2, resolution: float = 1.0
) -> np.ndarray:
    """Community id per node (modularity Leiden, fixed seed so runs repeat exactly)."""
    if graph.n == 0:
        return np.zeros(0, dtype=np.int64)
    ig.set_random_number_generator(random.Random(seed))
    try:
        partition = graph.igraph.community_leiden(
            objective_function="modularity", resolution=resolution, n_iterations=iterations
        )
    finally:
        ig.set_random_number_generator(random)
    return np.asarray(partition.membership, dtype=np.int64)


def group_density(graph: FriendGraph, membership: np.ndarray) -> np.ndarray:
    """Per group id: edges inside the group / possible pairs inside it (0 for one node)."""
    size = np.bincount(membership)
    a, b = graph.edges[:, 0], graph.edges[:, 1]
    same = membership[a] == membership[b]
    internal = np.bincount(membership[a[same]], minlength=len(size)).astype(float)
    possible = size * (size - 1) / 2.0
    return np.divide(internal, possible, out=np.zeros_like(internal), where=possible > 0)


# -- relationship arrays (src → dst, repeats and both directions as stored) ----------
def incident_totals(
    src: np.ndarray, dst: np.ndarray, n: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """Per node, the sum of ``weights`` (1 each when None) over the edges touching it.

    Each edge counts at both of its ends, as for an undirected graph.
    """
    both = np.concatenate([src, dst])
    if weights is None:
        return np.bincount(both, minlength=n).astype(float)
    return np.bincount(both, weights=np.concatenate([weights, weights]), minlength=n)


def partner_counts(src: np.ndarray, dst: np.ndarray, n: int) -> np.ndarray:
    """Per node, the distinct nodes it has an edge with in either direction (float).

    A node's edge to itself counts twice, once at each end.
    """
    pairs = distinct_pairs(np.minimum(src, dst), np.maximum(src, dst))
    return np.bincount(pairs.ravel(), minlength=n).astype(float)


def reciprocal_counts(src: np.ndarray, dst: np.ndarray, n: int) -> np.ndarray:
    """Per node, the other nodes it has edges to in both directions (float)."""
    forward = sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    forward.data[:] = 1.0
    both = forward.multiply(forward.T).tocsr()
    both.setdiag(0)
    both.eliminate_zeros()
    return np.diff(both.indptr).astype(float)


# -- incidence matrices (rows × columns, 0/1) ------------------------------------------
def projection_degree(rows: sp.csr_matrix) -> np.ndarray:
    """Per row, the other rows sharing at least one column with it (float).

    The degree in the one-mode projection of the bipartite graph; a row is
    counted once however many columns it shares.
    """
    shared = (rows @ rows.T).tocsr()
    shared.setdiag(0)
    shared.eliminate_zeros()
    return np.diff(shared.indptr).astype(float)


def co_member_mean(rows: sp.csr_matrix, values: np.ndarray) -> np.ndarray:
    """Per row, the mean of ``values`` over the other members of its columns.

    ``values`` holds one number per row, NaN where missing (ignored). A member
    sharing several columns counts once per shared column; the row itself is
    left out. NaN where no other member has a value.
    """
    known = ~np.isnan(values)
    value = np.where(known, values, 0.0)
    column_sum, column_known = rows.T @ value, rows.T @ known.astype(float)
    own_columns = rows.sum(axis=1).A1
    total = rows @ column_sum - (own_columns * value)
    count = rows @ column_known - (own_columns * known)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def member_totals(outer: sp.csr_matrix, members: sp.csr_matrix, values: np.ndarray) -> np.ndarray:
    """Per row of ``outer``, the sum of ``values`` over the members of its columns.

    ``members`` says which rows belong to which column (same columns as
    ``outer``); ``values`` holds one number per member row, or several as
    (rows, k). A member of several of the row's columns counts once per column.
    """
    return outer @ (members.T @ values)


def member_mean(outer: sp.csr_matrix, members: sp.csr_matrix, values: np.ndarray) -> np.ndarray:
    """Per row of ``outer``, the mean of ``values`` (NaN ignored) over the members of its columns.

    Counted as in :func:`member_totals`; NaN where no member has a value.
    """
    known = ~np.isnan(values)
    column_sum = members.T @ np.where(known, values, 0.0)
    column_known = members.T @ known.astype(float)
    count = outer @ column_known
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (outer @ column_sum) / count, np.nan)
