"""Rings: signals of dense groups of recent accounts sharing devices and moving money around.

| column | meaning | range |
|---|---|---|
| shared_device_users | other users seen on any of the user's devices | ≥ 0 |
| new_friends_share | share of friends whose account is under 180 days old | 0–1 |
| new_account_triangles | for an account under 180 days old, friend pairs who are friends | ≥ 0 |
| reciprocal_transfer_partners | people the user both sent money to and received money from | ≥ 0 |
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from creditgraph.graph.algorithms import projection_degree, reciprocal_counts, triangle_counts
from creditgraph.graph.network import FriendGraph, incidence
from creditgraph.graph.store import EdgeArrays

NEW_ACCOUNT_DAYS = 180


def ring_features(
    graph: FriendGraph,
    devices: EdgeArrays | None,
    transfers: EdgeArrays | None,
    account_age_days: np.ndarray,
) -> pd.DataFrame:
    """``account_age_days`` is aligned with ``graph.ids`` (NaN when unknown)."""
    n = graph.n
    new = (account_age_days < NEW_ACCOUNT_DAYS).astype(float)
    return graph.frame({
        "shared_device_users": _shared_device_users(devices, n),
        "new_friends_share": graph.neighbour_mean(new),
        "new_account_triangles": new * triangle_counts(graph),  # 0 below 2 friends
        "reciprocal_transfer_partners": _reciprocal_partners(transfers, n),
    })  # fmt: skip


def _shared_device_users(devices: EdgeArrays | None, n: int) -> np.ndarray:
    if devices is None or len(devices) == 0:
        return np.zeros(n)
    # Users per device minus the user, but a user counted once however many devices they share.
    return projection_degree(incidence(devices.src, devices.dst, (n, len(devices.target_ids))))


def _reciprocal_partners(transfers: EdgeArrays | None, n: int) -> np.ndarray:
    if transfers is None or len(transfers) == 0:
        return np.zeros(n)
    return reciprocal_counts(transfers.src, transfers.dst, n)
