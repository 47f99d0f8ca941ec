"""Position in the network: PageRank, component size, local clustering, k-core.

| column | meaning | range |
|---|---|---|
| pagerank_scaled | PageRank × n (1 = average node) | ≥ 0 |
| component_size | nodes in the user's connected component | ≥ 1 |
| clustering | share of a user's friend pairs who are friends (NaN below 2 friends) | 0–1 |
| coreness | largest k such that the user is in the k-core | ≥ 0 |

The same columns come from Neo4j's GDS with ``features --in-database``.
"""

from __future__ import annotations

import pandas as pd

from creditgraph.graph.algorithms import component_sizes, coreness, pagerank
from creditgraph.graph.network import FriendGraph


def position_features(graph: FriendGraph) -> pd.DataFrame:
    """Compute the position family for every node of ``graph``."""
    return graph.frame(
        {
            "pagerank_scaled": pagerank(graph.adjacency, tol=1e-9, symmetric=True) * graph.n,
            "component_size": component_sizes(graph).astype(float),
            "clustering": graph.local_transitivity.copy(),  # computed once, shared with rings
            "coreness": coreness(graph),
        }
    )
