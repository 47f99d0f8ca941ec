"""Feature families, one module each, for all five factors.

Tabular families (credit history and public records, behaviour, capacity,
characteristics) take the kept history tables and each user's observation date and
return a frame indexed by user id. Only records dated on or before a user's observation date
are used, so nothing from the performance window leaks in. Missing stays
missing (NaN): XGBoost learns where missing values go.

The relationships factor's families (ties, position, friends, community,
rings, merchants, exposure) read the relationships exported once as arrays
(:class:`graph.network.GraphData`) and use the graph algorithms of
:mod:`graph.algorithms`; :mod:`scoring.features.relationships` joins them.
Every column any family computes is declared in :mod:`scoring.dictionary`.
"""

from __future__ import annotations

import pandas as pd

from creditgraph.scoring.features.behaviour import behaviour_features
from creditgraph.scoring.features.capacity import capacity_features
from creditgraph.scoring.features.characteristics import characteristic_features
from creditgraph.scoring.features.dates import before_observation, observation_dates
from creditgraph.scoring.features.history import credit_history_features
from creditgraph.scoring.features.public_records import public_record_features
from creditgraph.scoring.features.relationships import (
    label_aware_features,
    relationship_features,
)

__all__ = [
    "before_observation",
    "label_aware_features",
    "observation_dates",
    "relationship_features",
    "tabular_features",
]


def tabular_features(tables: dict[str, pd.DataFrame], observed: pd.Series) -> pd.DataFrame:
    """The tabular families joined, one row per user (indexed by user id)."""
    return pd.concat(
        [
            credit_history_features(tables, observed),
            public_record_features(tables, observed),
            behaviour_features(tables, observed),
            capacity_features(tables, observed),
            characteristic_features(tables, observed),
        ],
        axis=1,
    ).reindex(observed.index)
