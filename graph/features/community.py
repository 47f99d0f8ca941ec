"""Communities: Leiden partition of the friendship graph, deterministic by seed.

| column | meaning | range |
|---|---|---|
| community | community id (an identifier, not a model feature) | ≥ 0 |
| community_size | members of the user's community | ≥ 1 |
| community_density | internal ties / possible internal ties | 0–1 |
"""

from __future__ import annotations

import random

import igraph as ig
import numpy as np
import pandas as pd

from creditgraph.graph.network import FriendGraph


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


def community_features(graph: FriendGraph, membership: np.ndarray) -> pd.DataFrame:
    size = np.bincount(membership)
    a, b = graph.edges[:, 0], graph.edges[:, 1]
    same = membership[a] == membership[b]
    internal = np.bincount(membership[a[same]], minlength=len(size)).astype(float)
    possible = size * (size - 1) / 2.0
    density = np.divide(internal, possible, out=np.zeros_like(internal), where=possible > 0)
    return graph.frame({
        "community": membership,
        "community_size": size[membership].astype(float),
        "community_density": density[membership],
    })  # fmt: skip
