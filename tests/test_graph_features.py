"""Graph features cross-checked against networkx and hand-computed answers on tiny graphs."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from creditgraph.graph.algorithms import (
    co_member_mean,
    group_density,
    incident_totals,
    member_mean,
    member_totals,
    pagerank,
    partner_counts,
    projection_degree,
    reciprocal_counts,
    triangle_counts,
)
from creditgraph.graph.network import FriendGraph, incidence
from creditgraph.graph.store import EdgeArrays
from creditgraph.scoring.features.friends import friend_features
from creditgraph.scoring.features.position import position_features
from creditgraph.scoring.features.ties import tie_features

IDS = pd.Index([f"u{i}" for i in range(7)], name="user_id")
# A triangle u0-u1-u2 with a tail u2-u3, a separate pair u4-u5, u6 isolated; one duplicate
# (reversed) pair and one self-loop that must be ignored.
SRC = np.array([0, 1, 2, 2, 4, 1, 3])
DST = np.array([1, 2, 0, 3, 5, 0, 3])


def _arrays() -> EdgeArrays:
    return EdgeArrays(SRC, DST, IDS, IDS)


def _nx() -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(range(7))
    g.add_edges_from((s, d) for s, d in zip(SRC, DST, strict=True) if s != d)
    return g


def test_adjacency_symmetric_simple():
    graph = FriendGraph.from_arrays(_arrays())
    assert (graph.adjacency != graph.adjacency.T).nnz == 0
    assert graph.degree.tolist() == [2, 2, 3, 1, 1, 1, 0]


def test_position_matches_networkx():
    graph = FriendGraph.from_arrays(_arrays())
    ours = position_features(graph)
    reference = _nx()
    pr = nx.pagerank(reference, alpha=0.85, tol=1e-12)
    np.testing.assert_allclose(ours["pagerank_scaled"] / 7, [pr[i] for i in range(7)], atol=1e-8)
    clustering = nx.clustering(reference)
    expected = [clustering[i] if reference.degree(i) >= 2 else np.nan for i in range(7)]
    np.testing.assert_allclose(ours["clustering"], expected)
    core = nx.core_number(reference)
    assert ours["coreness"].tolist() == [core[i] for i in range(7)]
    assert ours["component_size"].tolist() == [4, 4, 4, 4, 2, 2, 1]


def test_personalized_pagerank_matches_networkx():
    graph = FriendGraph.from_arrays(_arrays())
    seeds = np.array([0, 0, 0, 1, 0, 0, 0], dtype=float)
    ours = pagerank(graph.adjacency, personalization=seeds)
    theirs = nx.pagerank(
        _nx(), personalization={i: seeds[i] for i in range(7)}, tol=1e-12, max_iter=1000
    )
    np.testing.assert_allclose(ours, [theirs[i] for i in range(7)], atol=1e-8)


def test_ties_hand_computed():
    friends = EdgeArrays(
        np.array([0, 1]), np.array([1, 2]), IDS[:3], IDS[:3],
        {"since": np.array(["2024-01-01", "2024-06-01"], dtype="datetime64[D]"),
         "src_interactions": np.array([5, 0]), "dst_interactions": np.array([3, 7])},
    )  # fmt: skip
    transfers = EdgeArrays(
        np.array([0, 0, 2]),
        np.array([1, 1, 0]),
        IDS[:3],
        IDS[:3],
        {"amount": np.array([10.0, 5.0, 1.0])},
    )
    graph = FriendGraph.from_arrays(friends)
    ties = tie_features(graph, friends, transfers, pd.Timestamp("2024-12-31"))
    assert ties["friend_count"].tolist() == [1, 2, 1]
    assert ties["interaction_strength"].tolist() == [8, 15, 7]
    assert ties["reciprocity"].tolist() == [1.0, 0.5, 0.0]
    assert ties["tie_age_days"].tolist() == [365.0, (365 + 213) / 2, 213.0]
    assert ties["transfer_out_amount"].tolist() == [15.0, 0.0, 1.0]
    assert ties["transfer_in_amount"].tolist() == [1.0, 15.0, 0.0]
    assert ties["transfer_counterparties"].tolist() == [2, 1, 1]


def test_friend_means_ignore_missing_and_isolated():
    graph = FriendGraph.from_arrays(_arrays())
    tabular = pd.DataFrame(
        {"on_time_share": [1.0, 0.5, np.nan, 0.0, 0.2, 0.4, 0.9],
         "past_default": [0, 1, 0, 1, 0, 0, 1.0]},
        index=IDS,
    )  # fmt: skip
    out = friend_features(graph, tabular)
    # u2's friends are u0, u1, u3 -> mean(1.0, 0.5, 0.0); u3's only friend u2 is missing.
    assert out.loc["u2", "friends_mean_on_time_share"] == pytest.approx(0.5)
    assert np.isnan(out.loc["u3", "friends_mean_on_time_share"])
    assert np.isnan(out.loc["u6", "friends_mean_on_time_share"])
    assert out.loc["u2", "friends_past_default_share"] == pytest.approx(2 / 3)


def test_friends_previous_scores_use_own_file_points_only():
    graph = FriendGraph.from_arrays(_arrays())
    tabular = pd.DataFrame({"on_time_share": np.zeros(7)}, index=IDS)
    assert np.isnan(friend_features(graph, tabular)["friends_prev_score_mean"]).all()
    previous = pd.DataFrame(  # u1 was not scored; own-file score = score − relationships points
        {"score": [700.0, 800.0, 600.0, 500.0], "f_relationships": [20.0, 0.0, -30.0, 10.0]},
        index=["u0", "u2", "u3", "u4"],
    )
    out = friend_features(graph, tabular, previous)
    # u2's friends u0 (680), u1 (unscored), u3 (630).
    assert out.loc["u2", "friends_prev_score_mean"] == pytest.approx((680 + 630) / 2)
    assert out.loc["u2", "friends_prev_score_min"] == pytest.approx(630)
    # u3's only friend is u2 (800): its own score never enters its own features.
    assert out.loc["u3", "friends_prev_score_mean"] == pytest.approx(800)
    assert np.isnan(out.loc["u6", "friends_prev_score_min"])  # no friends


def test_graph_algorithms_hand_computed():
    graph = FriendGraph.from_arrays(_arrays())
    assert triangle_counts(graph).tolist() == [1, 1, 1, 0, 0, 0, 0]
    assert group_density(graph, np.array([0, 0, 0, 0, 1, 1, 2])).tolist() == [4 / 6, 1.0, 0.0]
    src, dst = np.array([0, 0, 1, 2, 2]), np.array([1, 1, 0, 0, 2])  # 0<->1 both ways, 2->0
    assert incident_totals(src, dst, 3).tolist() == [4, 3, 3]
    assert partner_counts(src, dst, 3).tolist() == [2, 1, 3]  # 2's edge to itself counts twice
    assert reciprocal_counts(src, dst, 3).tolist() == [1, 1, 0]
    # Rows 0, 1, 2 × columns a, b: 0 and 1 share a (twice for 0), 2 is alone on b.
    rows = incidence(np.array([0, 0, 1, 2]), np.array([0, 0, 0, 1]), (3, 2))
    assert rows.toarray().tolist() == [[1, 0], [1, 0], [0, 1]]
    assert projection_degree(rows).tolist() == [1, 1, 0]
    values = np.array([0.2, 0.6, np.nan])
    np.testing.assert_allclose(co_member_mean(rows, values), [0.6, 0.2, np.nan])
    owner = incidence(np.array([2]), np.array([0]), (3, 2))  # row 2 also owns column a
    assert member_totals(owner, rows, np.ones(3)).tolist() == [0, 0, 2]
    np.testing.assert_allclose(member_mean(owner, rows, values), [np.nan, np.nan, 0.4])
