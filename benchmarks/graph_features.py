"""Time and peak memory of every graph feature family on a synthetic graph built as arrays.

    python benchmarks/graph_features.py [--users 1000000] [--degree 20] [--seed 0]

The graph is generated directly as arrays (no store): users in communities of
50-300 with ~80% of friendships inside the community, heavy-tailed
sociability, ``users * degree / 2`` undirected friendships; transfers along
friendships (~3 per user), devices (~1.5 uses per user, some shared),
merchants (users / 25) with payments (~8 per user) and one owner each, the
tabular columns the families read, labels (8% bad) and a 60% training set.
:class:`graph.network.GraphData` is built from those arrays and every family
(``scoring/features/``, on the algorithms of ``graph/``) is timed on its own
(seconds and peak RSS per stage), then the total is compared with the targets
(90 s, 6 GB at 1M users / 10M friendships).

``make_world`` is shared by ``benchmarks/networkx_reference.py`` and
``tests/test_networkx_reference.py``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import Stages  # noqa: E402

from creditgraph.graph.algorithms import leiden, pagerank  # noqa: E402
from creditgraph.graph.network import FriendGraph, GraphData, incidence  # noqa: E402
from creditgraph.graph.store import EdgeArrays  # noqa: E402
from creditgraph.scoring.features.community import community_features  # noqa: E402
from creditgraph.scoring.features.friends import FRIEND_AVERAGED, friend_features  # noqa: E402
from creditgraph.scoring.features.merchants import merchant_features  # noqa: E402
from creditgraph.scoring.features.position import position_features  # noqa: E402
from creditgraph.scoring.features.relationships import label_aware_features  # noqa: E402
from creditgraph.scoring.features.rings import ring_features  # noqa: E402
from creditgraph.scoring.features.ties import tie_features  # noqa: E402

TARGET_SECONDS = 90.0
TARGET_RSS_MIB = 6 * 1024.0
AS_OF = pd.Timestamp("2025-01-01")


@dataclass
class World:
    """Relationship arrays and tables of a synthetic world, as a store would export them."""

    friends: EdgeArrays  # properties since / src_interactions / dst_interactions
    transfers: EdgeArrays  # property amount
    devices: EdgeArrays  # USES: user -> device
    pays: EdgeArrays  # PAYS: user -> merchant (one row per payment, repeats possible)
    owns: EdgeArrays  # OWNS: user -> merchant
    tabular: pd.DataFrame  # indexed by user id
    labels: pd.Series  # 1 = bad, indexed by user id
    train_ids: pd.Index
    as_of: pd.Timestamp
    previous_scores: pd.DataFrame | None = None  # score, f_relationships of a previous run

    @property
    def n(self) -> int:
        return len(self.friends.source_ids)

    def graph_data(self) -> GraphData:
        """What :meth:`GraphData.export` would return for this world."""
        return GraphData(
            friends=self.friends,
            transfers=self.transfers,
            devices=self.devices,
            pays=self.merchant_matrix(self.pays),
            owns=self.merchant_matrix(self.owns),
            graph=FriendGraph.from_arrays(self.friends),
        )

    def merchant_matrix(self, arrays: EdgeArrays) -> sp.csr_matrix:
        return incidence(arrays.src, arrays.dst, (len(arrays.source_ids), len(arrays.target_ids)))


def _ids(prefix: str, count: int) -> pd.Index:
    return pd.Index(np.char.add(prefix, np.arange(count).astype(str)).astype(object))


def _weighted(rng: np.random.Generator, cum: np.ndarray, size: int) -> np.ndarray:
    """Indices drawn with probability proportional to the weights whose cumsum is ``cum``."""
    idx = np.searchsorted(cum, np.sort(rng.random(size)) * cum[-1], side="right")  # sorted: fast
    rng.shuffle(idx)
    return np.minimum(idx, len(cum) - 1)


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique's hash path is far slower on ~10M int64)."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


def _weighted_in_range(
    rng: np.random.Generator, cum: np.ndarray, start: np.ndarray, end: np.ndarray
) -> np.ndarray:
    """One index in ``[start, end)`` per row, by weight (``cum`` is the weights' cumsum)."""
    base = np.where(start > 0, cum[np.maximum(start - 1, 0)], 0.0)
    top = cum[end - 1]
    idx = np.searchsorted(cum, base + rng.random(len(start)) * (top - base), side="right")
    return np.clip(idx, start, end - 1)


def make_world(users: int, degree: float = 20.0, seed: int = 0) -> World:
    """A community-structured, heavy-tailed random world of ``users`` users (vectorised)."""
    rng = np.random.default_rng(seed)
    n = int(users)
    # Work in "block" positions where each community is a contiguous range, then map
    # positions to user numbers by a random permutation (ids are not sorted by community).
    sizes = rng.integers(50, 301, n // 50 + 2)
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n) + 1]
    sizes[-1] -= sizes.sum() - n
    start = np.cumsum(sizes) - sizes
    community = np.repeat(np.arange(len(sizes)), sizes)
    user_of = rng.permutation(n)  # block position -> user number

    # Friendships: both ends by heavy-tailed sociability, 80% inside the community.
    social = rng.pareto(2.2, n) + 1.0
    cum = np.cumsum(social)
    m = int(round(n * degree / 2))
    key = np.zeros(0, dtype=np.int64)
    for _ in range(8):  # oversample until enough distinct pairs: loops and repeats are dropped
        draw = int((m - len(key)) * 1.15) + 100
        src = _weighted(rng, cum, draw)
        dst = np.empty_like(src)
        inside = rng.random(draw) < 0.8
        c = community[src[inside]]
        dst[inside] = _weighted_in_range(rng, cum, start[c], start[c] + sizes[c])
        dst[~inside] = _weighted(rng, cum, int((~inside).sum()))
        lo, hi = np.minimum(src, dst), np.maximum(src, dst)
        keep = lo != hi
        key = _distinct(np.concatenate([key, lo[keep].astype(np.int64) * n + hi[keep]]))
        if len(key) >= m:
            break
    key = key[rng.permutation(len(key))[:m]]
    a, b = user_of[key // n], user_of[key % n]
    swap = rng.random(len(a)) < 0.5
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    m = len(a)
    strength = rng.lognormal(np.log(6.0), 0.9, m)
    reciprocation = rng.beta(3.0, 1.5, m)
    ids = _ids("u", n)
    friends = EdgeArrays(
        a, b, ids, ids,
        {"since": (AS_OF.to_datetime64().astype("datetime64[D]")
                   - rng.integers(0, 6 * 365, m).astype("timedelta64[D]")),
         "src_interactions": rng.poisson(strength),
         "dst_interactions": rng.poisson(strength * reciprocation)},
    )  # fmt: skip

    # Transfers (~3 per user) along friendships, more along strong ties.
    t = _weighted(rng, np.cumsum(strength + 1.0), 3 * n)
    forward = rng.random(3 * n) < 0.5
    transfers = EdgeArrays(
        np.where(forward, a[t], b[t]), np.where(forward, b[t], a[t]), ids, ids,
        {"amount": np.round(rng.lognormal(np.log(40.0), 1.0, 3 * n), 2)},
    )  # fmt: skip

    # Devices: 1-2 per user (1.5 on average); 88% private, 12% from a shared pool.
    per_user = 1 + (rng.random(n) < 0.5)
    dev_user = np.repeat(np.arange(n), per_user)
    shared = rng.random(len(dev_user)) < 0.12
    pool = max(n // 20, 1)
    device = np.empty(len(dev_user), dtype=np.int64)
    device[shared] = rng.integers(0, pool, int(shared.sum()))
    device[~shared] = pool + np.arange(int((~shared).sum()))
    devices = EdgeArrays(dev_user, device, ids, _ids("d", pool + int((~shared).sum())))

    # Merchants (n / 25), each owned by one user; merchants numbered in community order.
    n_m = max(n // 25, 1)
    owner_pos = np.sort(rng.integers(0, n, n_m))
    merchant_community = community[owner_pos]
    m_start = np.searchsorted(merchant_community, np.arange(len(sizes)))
    m_end = np.searchsorted(merchant_community, np.arange(len(sizes)), side="right")
    merchant_ids = _ids("m", n_m)
    owns = EdgeArrays(user_of[owner_pos], np.arange(n_m), ids, merchant_ids)
    # Payments (~8 per user): 60% at a merchant of the user's community, else by popularity.
    k = rng.poisson(8.0, n)
    payer = np.repeat(np.arange(n), k)  # block positions
    merchant = _weighted(rng, np.cumsum(rng.pareto(1.5, n_m) + 1.0), len(payer))
    pc = community[payer]
    local = (rng.random(len(payer)) < 0.6) & (m_end[pc] > m_start[pc])
    merchant[local] = rng.integers(m_start[pc[local]], m_end[pc[local]])
    pays = EdgeArrays(user_of[payer], merchant, ids, merchant_ids)

    # Tabular columns, by user number.
    risk = rng.normal(0.0, 0.6, len(sizes))[community[np.argsort(user_of)]] + rng.normal(0, 1, n)
    thin = rng.random(n) < 0.4
    on_time = np.clip(rng.beta(8.0, 1.5, n) - 0.05 * risk, 0.0, 1.0)
    on_time[thin] = np.nan
    max_late = np.where(thin, np.nan, np.floor(rng.exponential(12.0, n) * np.exp(0.3 * risk)))
    tabular = pd.DataFrame(
        {
            "on_time_share": on_time,
            "max_days_late": max_late,
            "shortfall_ratio": np.where(thin, np.nan, rng.beta(1.0, 8.0, n)),
            "bill_late_share": np.where(rng.random(n) < 0.2, np.nan, rng.beta(1.0, 6.0, n)),
            "balance_mean": np.round(rng.lognormal(7.0, 1.2, n), 2),
            "products_held": rng.poisson(2.0, n).astype(float),
            "account_age_days": np.where(
                rng.random(n) < 0.12, rng.integers(0, 180, n), rng.integers(180, 3650, n)
            ).astype(float),
            "real_name_verified": (rng.random(n) < 0.7).astype(float),
            "thin_file": thin.astype(float),
            "past_default": (~thin & (rng.random(n) < 0.05 * np.exp(0.5 * risk))).astype(float),
        },
        index=ids,
    )
    assert set(FRIEND_AVERAGED) <= set(tabular.columns)
    # Labels: 8% bad, more where risk (community and own) is high.
    score = risk + rng.logistic(0.0, 1.0, n)
    bad = score > np.quantile(score, 0.92)
    labels = pd.Series(bad.astype(int), index=ids, name="bad")
    train_ids = ids[np.sort(rng.permutation(n)[: int(0.6 * n)])]
    # A previous scoring run: 90% of users scored, relationships points part of the score.
    previous = pd.DataFrame(
        {"score": np.clip(np.round(650 - 60 * risk + rng.normal(0, 40, n)), 350, 950),
         "f_relationships": np.round(rng.normal(0, 25, n), 2)},
        index=ids,
    )[rng.random(n) < 0.9]  # fmt: skip
    return World(friends, transfers, devices, pays, owns, tabular, labels, train_ids, AS_OF,
                 previous)  # fmt: skip


def run(
    world: World, stages: Stages, *, seed: int = 42
) -> tuple[pd.DataFrame, pd.DataFrame, GraphData]:
    """Every family, timed on its own, in the order of ``relationship_features``.

    Returns the label-free features, the out-of-fold exposure and the :class:`GraphData`.
    """
    with stages.stage("friend graph (CSR)"):
        graph = FriendGraph.from_arrays(world.friends)
    with stages.stage("merchant matrices"):
        data = GraphData(
            friends=world.friends, transfers=world.transfers, devices=world.devices,
            pays=world.merchant_matrix(world.pays), owns=world.merchant_matrix(world.owns),
            graph=graph,
        )  # fmt: skip
    with stages.stage("igraph view"):
        graph.igraph  # noqa: B018  (built once, shared by clustering/coreness/Leiden)
    with stages.stage("align tabular"):
        aligned = world.tabular.reindex(graph.ids)
    with stages.stage("community: leiden"):
        membership = leiden(graph, seed=seed)
    with stages.stage("ties"):
        ties = tie_features(graph, data.friends, data.transfers, world.as_of)
    with stages.stage("position: clustering"):
        graph.local_transitivity  # noqa: B018  (igraph, computed once, shared with rings)
    with stages.stage("position: rest"):
        position = position_features(graph)
    with stages.stage("friends"):
        friends = friend_features(graph, aligned, world.previous_scores)
    with stages.stage("community: features"):
        community = community_features(graph, membership)
    with stages.stage("rings"):
        rings = ring_features(graph, data.devices, data.transfers,
                              aligned["account_age_days"].to_numpy(dtype=float))  # fmt: skip
    with stages.stage("merchants"):
        merchants = merchant_features(graph, data.pays, data.owns,
                                      aligned["on_time_share"].to_numpy(dtype=float))  # fmt: skip
    with stages.stage("assemble label-free"):
        features = pd.concat([ties, position, friends, community, rings, merchants], axis=1)
    with stages.stage("exposure (5 label sets)"):
        exposure = label_aware_features(data, features, world.labels, world.train_ids, seed=seed)
    return features, exposure, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--degree", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setup = Stages()
    with setup.stage("generate world (untimed)"):
        world = make_world(args.users, args.degree, args.seed)
    print(
        f"graph feature benchmark: {world.n:,} users, {len(world.friends):,} friendships, "
        f"{len(world.transfers):,} transfers, {len(world.devices):,} device uses, "
        f"{len(world.owns):,} merchants, {len(world.pays):,} payments\n"
    )
    stages = Stages()
    features, exposure, data = run(world, stages)
    total = stages.total()
    peak = max(rss for _, _, rss in stages.rows)
    scale = world.n / 1_000_000
    print(f"\n{'total (all families)':<28} {total:8.2f} s   peak RSS {peak:8.0f} MiB")
    print(f"columns: {features.shape[1]} label-free, {exposure.shape[1]} exposure; "
          f"{len(features):,} rows")  # fmt: skip
    print(f"target at 1M users: {TARGET_SECONDS:.0f} s, {TARGET_RSS_MIB:.0f} MiB")
    if scale != 1:
        print(f"(this run has {scale:g}x the users of the target; ratios are for this run)")
    print(f"time / target   {total / TARGET_SECONDS:6.2f}  "
          f"({'OK' if total <= TARGET_SECONDS else 'OVER'})")  # fmt: skip
    print(f"memory / target {peak / TARGET_RSS_MIB:6.2f}  "
          f"({'OK' if peak <= TARGET_RSS_MIB else 'OVER'})")  # fmt: skip
    print("\ndetail of 'position: rest', each part again on its own (not in the total):")
    detail, graph = Stages(), data.graph
    with detail.stage("  pagerank"):
        pagerank(graph.adjacency, tol=1e-9)
    with detail.stage("  connected components (igraph)"):
        graph.igraph.connected_components()
    with detail.stage("  coreness (igraph)"):
        graph.igraph.coreness()


if __name__ == "__main__":
    main()
