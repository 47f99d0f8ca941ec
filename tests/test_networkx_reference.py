"""The vectorised graph features agree with a plain networkx implementation on a small world.

The reference lives in ``benchmarks/networkx_reference.py`` (it is also the
speed baseline); the world comes from ``benchmarks/graph_features.py``.
Communities are Leiden here and Louvain there, so the reference's community
columns are computed from our Leiden partition to compare the rest.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import networkx_reference as ref  # noqa: E402
from graph_features import World, make_world  # noqa: E402

from creditgraph.errors import DataMissing  # noqa: E402
from creditgraph.graph.store import EdgeArrays  # noqa: E402
from creditgraph.scoring.features.exposure import LabelContext, exposure_from_labels  # noqa: E402
from creditgraph.scoring.features.relationships import relationship_features  # noqa: E402


def _with_isolated_users(world: World, count: int = 12) -> World:
    """Drop every friendship of the first ``count`` users (degree 0: NaN ratios, dangling PPR)."""
    f = world.friends
    keep = (f.src >= count) & (f.dst >= count)
    friends = EdgeArrays(f.src[keep], f.dst[keep], f.source_ids, f.target_ids,
                         {k: v[keep] for k, v in f.properties.items()})  # fmt: skip
    return replace(world, friends=friends)


@pytest.fixture(scope="module", params=["plain", "isolated"])
def world(request: pytest.FixtureRequest) -> World:
    base = make_world(300, degree=20, seed=7)
    return base if request.param == "plain" else _with_isolated_users(base)


@pytest.fixture(scope="module")
def ours(world: World) -> tuple[pd.DataFrame, LabelContext]:
    data = world.graph_data()
    features = relationship_features(
        data, world.tabular, world.as_of, seed=42, previous_scores=world.previous_scores
    )
    ctx = LabelContext(data.graph, features["community"].to_numpy(dtype=np.int64), data.pays,
                       data.owns)  # fmt: skip
    return features, ctx


def _partition(membership: np.ndarray) -> list[set[int]]:
    return [set(np.flatnonzero(membership == c).tolist()) for c in np.unique(membership)]


# Personalized PageRank stops at a tolerance (L1 change < n * 1e-8): ours runs the default
# and trust walks as one batch that stops when both have converged, networkx each on its own,
# so they may stop an iteration apart. Everything else agrees to rounding.
LOOSE = {"default_ppr": 1e-4, "trust_ppr": 1e-4}


def _assert_columns_match(ours: pd.DataFrame, theirs: pd.DataFrame, columns) -> None:  # noqa: ANN001
    for column in columns:
        np.testing.assert_allclose(
            ours[column].to_numpy(dtype=float), theirs[column].to_numpy(dtype=float),
            rtol=LOOSE.get(column, 1e-9), atol=1e-12, equal_nan=True, err_msg=column,
        )  # fmt: skip


def test_label_free_features_match_networkx(world: World, ours) -> None:  # noqa: ANN001
    features, _ = ours
    g = ref.build_graphs(world)
    membership = features["community"].to_numpy(dtype=np.int64)
    theirs = ref.label_free(g, world, _partition(membership))
    assert set(theirs.columns) == set(features.columns)
    _assert_columns_match(features, theirs, [c for c in theirs.columns if c != "community"])


def test_exposure_matches_networkx(world: World, ours) -> None:  # noqa: ANN001
    features, ctx = ours
    g = ref.build_graphs(world)
    membership = features["community"].to_numpy(dtype=np.int64)
    label_sets = [ref.training_labels(world)]
    rng = np.random.default_rng(1)  # a second set: another known mask, other defaulters
    known = rng.random(world.n) < 0.5
    label_sets.append((known & (rng.random(world.n) < 0.2), known))
    for bad, known in label_sets:
        mine = pd.DataFrame(exposure_from_labels(ctx, bad[:, None], known[:, None])[0])
        theirs = pd.DataFrame(ref.exposure(g, bad, known, membership.tolist()))
        assert list(theirs.columns) == list(mine.columns)
        _assert_columns_match(mine, theirs, mine.columns)


def test_louvain_reference_is_a_partition(world: World) -> None:
    g = ref.build_graphs(world)
    communities = ref.louvain(g, seed=42)
    columns = ref.community(g, communities)
    assert sorted(u for c in communities for u in c) == list(range(world.n))
    assert all(0 <= d <= 1 for d in columns["community_density"])


def test_given_communities_drive_the_community_family(world: World) -> None:
    """Communities from elsewhere (GDS in the database: any integer ids) replace igraph's,
    and community size and density describe those same communities."""
    data = world.graph_data()
    ids = data.graph.ids
    given = pd.Series(9_000 + 13 * (np.arange(len(ids)) % 7), index=ids)  # GDS-like ids
    shuffled = given.sample(frac=1.0, random_state=0)  # any order: aligned by user id
    features = relationship_features(data, world.tabular, world.as_of, communities=shuffled)
    membership = features["community"].to_numpy(dtype=np.int64)
    assert _partition(membership) == _partition(given.reindex(features.index).to_numpy())
    theirs = ref.label_free(ref.build_graphs(world), world, _partition(membership))
    _assert_columns_match(features, theirs, ["community_size", "community_density"])
    with pytest.raises(DataMissing, match="no community for user"):
        relationship_features(data, world.tabular, world.as_of, communities=given.iloc[1:])
