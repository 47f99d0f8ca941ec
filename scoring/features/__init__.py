"""Tabular feature families for the four non-graph factors.

Each family takes the kept history tables and each user's observation date and
returns a frame indexed by user id. Only records dated on or before a user's
observation date are used, so nothing from the performance window leaks in.
Missing stays missing (NaN): XGBoost learns where missing values go.
"""

from __future__ import annotations

import pandas as pd

from creditgraph.scoring.features.behaviour import behaviour_features
from creditgraph.scoring.features.capacity import capacity_features
from creditgraph.scoring.features.characteristics import characteristic_features
from creditgraph.scoring.features.dates import before_observation, observation_dates

__all__ = ["before_observation", "observation_dates", "tabular_features"]
from creditgraph.scoring.features.history import credit_history_features


def tabular_features(tables: dict[str, pd.DataFrame], observed: pd.Series) -> pd.DataFrame:
    """The four tabular families joined, one row per user (indexed by user id)."""
    return pd.concat(
        [
            credit_history_features(tables, observed),
            behaviour_features(tables, observed),
            capacity_features(tables, observed),
            characteristic_features(tables, observed),
        ],
        axis=1,
    ).reindex(observed.index)
