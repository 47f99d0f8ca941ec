"""A plain networkx implementation of the graph features: the reference for speed and values.

    python benchmarks/networkx_reference.py [--users 100000] [--degree 20] [--seed 0]

Builds one synthetic world (``graph_features.make_world``), computes every
graph feature family with the vectorised implementation in
``scoring.features`` (on ``graph.algorithms``) and again with the plain
networkx / Python code below, on the same arrays, and prints the seconds of
each per family, the speed-up ratios (target >= 50x) and the largest
difference of every column (the communities differ by design: Leiden there,
networkx's Louvain here, so only their timing is compared).

The reference is idiomatic networkx: graphs built from the relationship
lists, networkx's own algorithms where it has one (pagerank, personalized
pagerank, connected components, clustering, core numbers, triangles,
Louvain), and plain loops over nodes and their neighbours for the
aggregates. ``tests/test_networkx_reference.py`` checks it agrees with the
vectorised features on a small graph.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import Stages  # noqa: E402
from graph_features import World, make_world  # noqa: E402

from creditgraph.scoring.features.exposure import LabelContext, exposure_from_labels  # noqa: E402
from creditgraph.scoring.features.friends import FRIEND_AVERAGED  # noqa: E402
from creditgraph.scoring.features.rings import NEW_ACCOUNT_DAYS  # noqa: E402

FRIEND_FLAGS = (("thin_file", "friends_thin_file_share"),
                ("past_default", "friends_past_default_share"))  # fmt: skip


@dataclass
class NxGraphs:
    """The world as networkx graphs; users are nodes 0..n-1 (their positions in the arrays)."""

    n: int
    friends: nx.Graph  # edge attributes since (date), src_interactions, dst_interactions
    transfers: nx.MultiDiGraph  # one edge per transfer, attribute amount
    devices: nx.Graph  # bipartite: users 0..n-1, devices n.. (n + device number)
    pays: nx.Graph  # bipartite: users 0..n-1, merchants n.. (n + merchant number)
    owns: nx.Graph  # bipartite: owners 0..n-1, merchants n..


def build_graphs(world: World) -> NxGraphs:
    n = world.n
    friends = nx.Graph()
    friends.add_nodes_from(range(n))
    f = world.friends
    since = f.properties["since"].astype("datetime64[D]").astype(object)  # datetime.date
    src_interactions = f.properties["src_interactions"].tolist()
    dst_interactions = f.properties["dst_interactions"].tolist()
    rows = zip(f.src.tolist(), f.dst.tolist(), since, src_interactions, dst_interactions,
               strict=True)  # fmt: skip
    for a, b, day, sa, da in rows:
        if a != b:
            friends.add_edge(a, b, since=day, src_interactions=sa, dst_interactions=da)
    transfers = nx.MultiDiGraph()
    transfers.add_nodes_from(range(n))
    t = world.transfers
    for a, b, amount in zip(t.src.tolist(), t.dst.tolist(),
                            t.properties["amount"].tolist(), strict=True):  # fmt: skip
        transfers.add_edge(a, b, amount=amount)
    return NxGraphs(
        n, friends, transfers,
        _bipartite(n, world.devices.src, world.devices.dst, len(world.devices.target_ids)),
        _bipartite(n, world.pays.src, world.pays.dst, len(world.pays.target_ids)),
        _bipartite(n, world.owns.src, world.owns.dst, len(world.owns.target_ids)),
    )  # fmt: skip


def _bipartite(n: int, users: np.ndarray, targets: np.ndarray, n_targets: int) -> nx.Graph:
    graph = nx.Graph()
    graph.add_nodes_from(range(n + n_targets))
    graph.add_edges_from((u, n + t) for u, t in zip(users.tolist(), targets.tolist(), strict=True))
    return graph


def _nan_ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


# ----------------------------------------------------------------------------- families


def ties(g: NxGraphs, as_of: pd.Timestamp) -> dict[str, list]:
    today = as_of.date()
    out: dict[str, list] = {k: [] for k in (
        "friend_count", "interaction_strength", "reciprocity", "tie_age_days",
        "transfer_out_amount", "transfer_in_amount", "transfer_counterparties")}  # fmt: skip
    for u in range(g.n):
        strength = mutual = age = 0.0
        for _, tie in g.friends[u].items():
            strength += tie["src_interactions"] + tie["dst_interactions"]
            mutual += tie["src_interactions"] > 0 and tie["dst_interactions"] > 0
            age += (today - tie["since"]).days
        degree = g.friends.degree(u)
        out["friend_count"].append(degree)
        out["interaction_strength"].append(strength)
        out["reciprocity"].append(_nan_ratio(mutual, degree))
        out["tie_age_days"].append(_nan_ratio(age, degree))
        out["transfer_out_amount"].append(g.transfers.out_degree(u, weight="amount"))
        out["transfer_in_amount"].append(g.transfers.in_degree(u, weight="amount"))
        partners = set(g.transfers.successors(u)) | set(g.transfers.predecessors(u))
        out["transfer_counterparties"].append(len(partners))
    return out


def position(g: NxGraphs) -> dict[str, list]:
    rank = nx.pagerank(g.friends, alpha=0.85, tol=1e-9)
    size = {}
    for component in nx.connected_components(g.friends):
        for u in component:
            size[u] = len(component)
    clustering = nx.clustering(g.friends)
    core = nx.core_number(g.friends)
    return {
        "pagerank_scaled": [rank[u] * g.n for u in range(g.n)],
        "component_size": [size[u] for u in range(g.n)],
        "clustering": [
            clustering[u] if g.friends.degree(u) >= 2 else math.nan for u in range(g.n)
        ],  # fmt: skip
        "coreness": [core[u] for u in range(g.n)],
    }


def friends(
    g: NxGraphs, tabular: pd.DataFrame, previous: pd.DataFrame | None = None
) -> dict[str, list]:
    """Mean of each column over a user's friends who have it (NaN if none), and the mean and
    minimum of friends' previous own-file scores (score minus relationships points)."""
    columns = [c for c in FRIEND_AVERAGED if c in tabular] + [f for f, _ in FRIEND_FLAGS]
    names = [f"friends_mean_{c}" for c in FRIEND_AVERAGED if c in tabular]
    names += [name for _, name in FRIEND_FLAGS]
    values = tabular[columns].to_numpy(dtype=float)
    means = np.full((g.n, len(columns)), np.nan)
    for u in range(g.n):
        neighbours = list(g.friends[u])
        if not neighbours:
            continue
        rows = values[neighbours]
        known = ~np.isnan(rows)
        count = known.sum(axis=0)
        total = np.where(known, rows, 0.0).sum(axis=0)
        means[u] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    out = {name: means[:, i].tolist() for i, name in enumerate(names)}
    own = {}
    if previous is not None:
        for position, user in enumerate(tabular.index):
            if user in previous.index:
                own[position] = previous.at[user, "score"] - previous.at[user, "f_relationships"]
    scored = [[own[v] for v in g.friends[u] if v in own] for u in range(g.n)]
    out["friends_prev_score_mean"] = [sum(s) / len(s) if s else math.nan for s in scored]
    out["friends_prev_score_min"] = [min(s) if s else math.nan for s in scored]
    return out


def louvain(g: NxGraphs, seed: int = 42) -> list[set[int]]:
    return nx.community.louvain_communities(g.friends, seed=seed)


def community(g: NxGraphs, communities: list[set[int]]) -> dict[str, list]:
    membership, size, density = {}, {}, {}
    for c, members in enumerate(communities):
        internal = g.friends.subgraph(members).number_of_edges()
        possible = len(members) * (len(members) - 1) / 2
        for u in members:
            membership[u] = c
            size[u] = len(members)
            density[u] = internal / possible if possible > 0 else 0.0
    return {
        "community": [membership[u] for u in range(g.n)],
        "community_size": [size[u] for u in range(g.n)],
        "community_density": [density[u] for u in range(g.n)],
    }


def rings(g: NxGraphs, tabular: pd.DataFrame) -> dict[str, list]:
    age = tabular["account_age_days"].tolist()
    new = [a < NEW_ACCOUNT_DAYS for a in age]  # unknown age (NaN) is not new
    triangles = nx.triangles(g.friends)
    out: dict[str, list] = {k: [] for k in (
        "shared_device_users", "new_friends_share", "new_account_triangles",
        "reciprocal_transfer_partners")}  # fmt: skip
    for u in range(g.n):
        others = {w for device in g.devices[u] for w in g.devices[device]} - {u}
        out["shared_device_users"].append(len(others))
        neighbours = list(g.friends[u])
        out["new_friends_share"].append(
            sum(new[v] for v in neighbours) / len(neighbours) if neighbours else math.nan
        )
        out["new_account_triangles"].append(triangles[u] if new[u] else 0)
        both = set(g.transfers.successors(u)) & set(g.transfers.predecessors(u))
        out["reciprocal_transfer_partners"].append(len(both - {u}))
    return out


def _merchant_totals(g: NxGraphs, value: list[float]) -> tuple[dict, dict]:
    """Per merchant: sum and count of ``value`` over its customers who have one."""
    total, count = {}, {}
    for m in range(g.n, len(g.pays)):
        known = [value[c] for c in g.pays[m] if not math.isnan(value[c])]
        total[m], count[m] = sum(known), len(known)
    return total, count


def merchants(g: NxGraphs, tabular: pd.DataFrame) -> dict[str, list]:
    value = tabular["on_time_share"].tolist()
    total, count = _merchant_totals(g, value)
    out: dict[str, list] = {k: [] for k in (
        "merchant_customer_on_time_share", "owned_customer_count",
        "owned_customer_on_time_share")}  # fmt: skip
    for u in range(g.n):
        paid = list(g.pays[u])
        own_known = not math.isnan(value[u])
        # Other customers of the merchants paid: leave the user out of each merchant's total.
        s = sum(total[m] for m in paid) - (len(paid) * value[u] if own_known else 0.0)
        k = sum(count[m] for m in paid) - (len(paid) if own_known else 0)
        out["merchant_customer_on_time_share"].append(_nan_ratio(s, k))
        owned = list(g.owns[u])
        out["owned_customer_count"].append(sum(g.pays.degree(m) for m in owned))
        out["owned_customer_on_time_share"].append(
            _nan_ratio(sum(total[m] for m in owned), sum(count[m] for m in owned))
        )
    return out


def label_free(
    g: NxGraphs, world: World, communities: list[set[int]], stages: Stages | None = None
) -> pd.DataFrame:
    """Every label-free family; ``communities`` is the partition the community columns use."""
    stages = stages or Stages()
    tabular = world.tabular
    columns: dict[str, list] = {}
    with stages.stage("nx ties"):
        columns.update(ties(g, world.as_of))
    with stages.stage("nx position"):
        columns.update(position(g))
    with stages.stage("nx friends"):
        columns.update(friends(g, tabular, world.previous_scores))
    with stages.stage("nx community: features"):
        columns.update(community(g, communities))
    with stages.stage("nx rings"):
        columns.update(rings(g, tabular))
    with stages.stage("nx merchants"):
        columns.update(merchants(g, tabular))
    return pd.DataFrame(columns, index=world.tabular.index).astype(float)


def exposure(
    g: NxGraphs, bad: np.ndarray, known: np.ndarray, membership: list[int]
) -> dict[str, list]:
    """The exposure family for one label set (``bad``/``known`` per user, community per user)."""
    is_known = [bool(k) for k in known]
    is_bad = [bool(b) and k for b, k in zip(bad, is_known, strict=True)]
    known_1 = [sum(is_known[v] for v in g.friends[u]) for u in range(g.n)]
    bad_1 = [sum(is_bad[v] for v in g.friends[u]) for u in range(g.n)]
    known_2 = [sum(known_1[v] for v in g.friends[u]) for u in range(g.n)]
    bad_2 = [sum(bad_1[v] for v in g.friends[u]) for u in range(g.n)]

    def ppr(seeds: list[bool]) -> list[float]:
        if not any(seeds):
            return [0.0] * g.n
        start = {u: 1.0 for u in range(g.n) if seeds[u]}
        rank = nx.pagerank(g.friends, alpha=0.5, personalization=start, nstart=start,
                           tol=1e-8, max_iter=100)  # fmt: skip
        return [rank[u] * g.n for u in range(g.n)]

    community_bad: dict[int, int] = {}
    community_known: dict[int, int] = {}
    for u in range(g.n):
        c = membership[u]
        community_bad[c] = community_bad.get(c, 0) + is_bad[u]
        community_known[c] = community_known.get(c, 0) + is_known[u]
    merchant_bad = {m: sum(is_bad[c] for c in g.pays[m]) for m in range(g.n, len(g.pays))}
    merchant_known = {m: sum(is_known[c] for c in g.pays[m]) for m in range(g.n, len(g.pays))}

    def customer_rate(graph: nx.Graph, u: int) -> float:
        shops = list(graph[u])
        return _nan_ratio(sum(merchant_bad[m] for m in shops),
                          sum(merchant_known[m] for m in shops))  # fmt: skip

    return {
        "known_neighbours": known_1,
        "neighbour_default_share": [_nan_ratio(b, k) for b, k in zip(bad_1, known_1, strict=True)],
        "hop2_default_share": [_nan_ratio(b, k) for b, k in zip(bad_2, known_2, strict=True)],
        "default_ppr": ppr(is_bad),
        "trust_ppr": ppr([k and not b for k, b in zip(is_known, is_bad, strict=True)]),
        "community_default_rate": [
            _nan_ratio(community_bad[membership[u]], community_known[membership[u]])
            for u in range(g.n)
        ],
        "merchant_customer_default_rate": [customer_rate(g.pays, u) for u in range(g.n)],
        "owned_customer_default_rate": [customer_rate(g.owns, u) for u in range(g.n)],
    }


def training_labels(world: World) -> tuple[np.ndarray, np.ndarray]:
    """One label set: every training label known (the set scored rows outside training use)."""
    known = world.tabular.index.isin(world.train_ids)
    bad = known & (world.labels.reindex(world.tabular.index).to_numpy() == 1)
    return bad, known


# ----------------------------------------------------------------------------- comparison

FAMILIES = {  # family -> (our stages, networkx stages)
    "build graphs": (("friend graph (CSR)", "merchant matrices", "igraph view", "align tabular"),
                     ("nx build graphs",)),
    "ties": (("ties",), ("nx ties",)),
    "position": (("position: clustering", "position: rest"), ("nx position",)),
    "friends": (("friends",), ("nx friends",)),
    "community": (("community: leiden", "community: features"),
                  ("nx community: louvain", "nx community: features")),
    "rings": (("rings",), ("nx rings",)),
    "merchants": (("merchants",), ("nx merchants",)),
    "exposure (1 label set)": (("exposure (1 label set)",), ("nx exposure (1 label set)",)),
}  # fmt: skip


def _seconds(stages: Stages, names: tuple[str, ...]) -> float:
    return sum(s for name, s, _ in stages.rows if name in names)


def main() -> None:
    from graph_features import run  # the vectorised families, timed the same way

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--degree", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    world = make_world(args.users, args.degree, args.seed)
    print(f"{world.n:,} users, {len(world.friends):,} friendships, "
          f"{len(world.transfers):,} transfers, {len(world.pays):,} payments\n")  # fmt: skip

    print("-- vectorised (scoring.features)")
    ours = Stages()
    features, _, data = run(world, ours)
    bad, known = training_labels(world)
    membership = features["community"].to_numpy(dtype=np.int64)
    with ours.stage("exposure (1 label set)"):
        ctx = LabelContext(data.graph, membership, data.pays, data.owns)
        our_exposure = pd.DataFrame(
            exposure_from_labels(ctx, bad[:, None], known[:, None])[0], index=data.graph.ids
        )

    print("\n-- networkx reference")
    theirs = Stages()
    start = time.perf_counter()
    with theirs.stage("nx build graphs"):
        g = build_graphs(world)
    with theirs.stage("nx community: louvain"):
        communities = louvain(g, seed=42)
    reference = label_free(g, world, communities, theirs)
    with theirs.stage("nx exposure (1 label set)"):
        nx_membership = reference["community"].astype(int).tolist()
        ref_exposure = pd.DataFrame(
            exposure(g, bad, known, nx_membership), index=world.tabular.index
        )
    print(f"networkx reference total {time.perf_counter() - start:.1f} s")

    print(f"\n{'family':<26} {'ours s':>9} {'networkx s':>11} {'speed-up':>9}")
    total_ours = total_theirs = 0.0
    for family, (our_names, their_names) in FAMILIES.items():
        a, b = _seconds(ours, our_names), _seconds(theirs, their_names)
        total_ours, total_theirs = total_ours + a, total_theirs + b
        print(f"{family:<26} {a:9.2f} {b:11.2f} {b / max(a, 1e-9):8.0f}x")
    ratio = total_theirs / total_ours
    print(f"{'total':<26} {total_ours:9.2f} {total_theirs:11.2f} {ratio:8.0f}x   "
          f"(target >= 50x: {'OK' if ratio >= 50 else 'NOT MET'})")  # fmt: skip
    all_sets = _seconds(ours, ("exposure (5 label sets)",))
    print(f"(ours, exposure for all 5 out-of-fold label sets: {all_sets:.2f} s)")

    # Same columns, same values (communities and what depends on them differ by design).
    # Personalized PageRank stops at a tolerance (L1 change < n * 1e-8): ours runs the default
    # and trust walks as one batch that stops when both have converged, networkx each alone.
    skip = {"community", "community_size", "community_density", "community_default_rate"}
    allowed = {"default_ppr": 1e-2, "trust_ppr": 1e-2}
    worst = 0.0
    for frame_ours, frame_ref in ((features, reference), (our_exposure, ref_exposure)):
        for column in frame_ref.columns:
            if column in skip:
                continue
            x = frame_ours[column].to_numpy(dtype=float)
            y = frame_ref[column].to_numpy(dtype=float)
            same_nan = np.array_equal(np.isnan(x), np.isnan(y))
            diff = np.nanmax(np.abs(x - y) / np.maximum(np.abs(y), 1e-12), initial=0.0)
            if column in allowed:
                print(f"  {column}: max relative difference {diff:.1e} (PageRank tolerance)")
            else:
                worst = max(worst, diff if same_nan else np.inf)
            if not same_nan or diff > allowed.get(column, 1e-6):
                print(f"  MISMATCH {column}: NaNs equal {same_nan}, max rel diff {diff:.2e}")
    print(f"values: largest relative difference over the other columns {worst:.1e}")


if __name__ == "__main__":
    main()
