"""Communities: the user's Leiden community of the friendship graph, deterministic by seed.

| column | meaning | range |
|---|---|---|
| community | community id (an identifier, not a model feature) | ≥ 0 |
| community_size | members of the user's community | ≥ 1 |
| community_density | internal ties / possible internal ties | 0–1 |

The partition comes from :func:`graph.algorithms.leiden`; the exposure
family reads ``community`` for its community default rate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from creditgraph.graph.algorithms import group_density
from creditgraph.graph.network import FriendGraph


def community_features(graph: FriendGraph, membership: np.ndarray) -> pd.DataFrame:
    """The community family for a partition (``membership``: community id per node)."""
    size = np.bincount(membership)
    density = group_density(graph, membership)
    return graph.frame({
        "community": membership,
        "community_size": size[membership].astype(float),
        "community_density": density[membership],
    })  # fmt: skip
