"""What the fraud-team notebooks share: the configured data, cluster views, rings, score drops.

The notebooks call these functions, :mod:`creditgraph.queries` and
:mod:`creditgraph.pipeline`, never Cypher of their own. Interactive views use
``neo4j-viz`` (the ``notebooks`` extra): one self-contained HTML page per view,
nothing fetched at run time; every view also has a static matplotlib picture
(PNG) for CI and for reading a notebook on GitHub. Only ids, scores and graph
facts are shown, never names or phones.

>>> ws = open_workspace(default_data_dir="../creditgraph-data")  # doctest: +SKIP
>>> cluster = views.friend_cluster(ws.store, "u0000042")  # doctest: +SKIP
>>> interactive(views.subgraph(ws.store, list(cluster)))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pandas as pd

from creditgraph import catalog, pipeline, queries
from creditgraph.errors import DataMissing
from creditgraph.graph import views
from creditgraph.graph.store import GraphStore
from creditgraph.scoring.dictionary import FACTORS
from creditgraph.scoring.explain import explain_user
from creditgraph.scoring.model import CreditModel
from creditgraph.settings import Settings, load_settings

if TYPE_CHECKING:
    from neo4j_viz import VisualizationGraph

# Score bands (Sesame Credit's, on the 350–950 scale): (lowest score, name, colour).
BANDS: tuple[tuple[float, str, str], ...] = (
    (350.0, "350–549 poor", "#d73027"),
    (550.0, "550–599 fair", "#fc8d59"),
    (600.0, "600–649 good", "#fee08b"),
    (650.0, "650–699 very good", "#91cf60"),
    (700.0, "700–950 excellent", "#1a9850"),
)
UNSCORED = ("unscored", "#bdbdbd")
DEVICE_COLOUR = "#6a51a3"
EDGE_COLOURS = {views.FRIEND: "#9e9e9e", views.TRANSFER: "#ff7f00", views.USES: "#6a51a3"}
RING_FEATURES = (
    "shared_device_users", "new_friends_share", "new_account_triangles",
    "reciprocal_transfer_partners",
)  # fmt: skip


# -- the configured data --------------------------------------------------------------
@dataclass
class Workspace:
    """The settings and the open store a notebook works on; ``close()`` when done."""

    settings: Settings
    store: GraphStore

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def open_workspace(default_data_dir: str | Path = "creditgraph-data") -> Workspace:
    """Open the data the CLI would: ``CREDITGRAPH_DATA_DIR``, ``CREDITGRAPH_STORE``, ``NEO4J_URI``.

    ``default_data_dir`` applies only where neither the environment nor a
    settings file names a data directory (a notebook runs from ``notebooks/``;
    the demo writes ``../creditgraph-data``).
    """
    settings = load_settings()
    if "CREDITGRAPH_DATA_DIR" not in os.environ and settings.data_dir == Settings().data_dir:
        settings = load_settings(data_dir=Path(default_data_dir))
    return Workspace(settings, pipeline.open_configured_store(settings))


# -- bands and explanations -----------------------------------------------------------
def score_band(score: float | None) -> str:
    """The band a score falls in (``unscored`` for a missing score)."""
    if score is None or pd.isna(score):
        return UNSCORED[0]
    return next(name for low, name, _ in reversed(BANDS) if score >= low)


def band_colour(score: float | None) -> str:
    band = score_band(score)
    return next((colour for _, name, colour in BANDS if name == band), UNSCORED[1])


def explained(settings: Settings, user_ids: Sequence[str]) -> pd.DataFrame:
    """One row per user of the published run: score, band, PD, five factor points, reasons."""
    rows = []
    for user_id in user_ids:
        e = pipeline.explain(settings, user_id)
        rows.append({"user_id": user_id, "score": round(e.score, 1), "band": score_band(e.score),
                     "pd": round(e.pd, 4), **{f: round(p, 1) for f, p in e.factors.items()},
                     "reasons": "; ".join(e.reasons)})  # fmt: skip
    return pd.DataFrame(rows, columns=["user_id", "score", "band", "pd", *FACTORS, "reasons"])


def node_table(graph: nx.MultiGraph) -> pd.DataFrame:
    """The users of a :func:`views.subgraph` as a frame indexed by user id, with their band."""
    users = {n: d for n, d in graph.nodes(data=True) if d.get("kind") == views.USER}
    frame = pd.DataFrame.from_dict(users, orient="index").drop(columns="kind")
    frame["band"] = [score_band(s) for s in frame["score"]]
    return frame.rename_axis("user_id")


# -- interactive and static views -----------------------------------------------------
def _plain(value: object) -> object:
    """A JSON-friendly property value (dates as ISO text, numpy scalars as Python ones)."""
    if isinstance(value, date | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


def interactive(graph: nx.MultiGraph, *, centre: str | None = None) -> VisualizationGraph:
    """A neo4j-viz graph of a :func:`views.subgraph`: click a node or edge to see its properties.

    Users are coloured by score band and sized by PageRank; known defaulters
    are captioned ``✖``; shared devices, friendships and transfers have their
    own colours (transfers are directed and as wide as the log of the amount).
    Render with ``.render()`` in a notebook or :func:`save_html`.
    """
    from neo4j_viz import Node, Relationship, VisualizationGraph

    # model_validate: neo4j-viz's models are pydantic ones (mypy sees no keyword defaults).
    ranks = [d.get("pagerank") or 0.0 for _, d in graph.nodes(data=True)]
    top = max(ranks, default=0.0) or 1.0
    nodes = []
    for node_id, data in graph.nodes(data=True):
        properties = {k: _plain(v) for k, v in data.items() if v is not None}
        if data.get("kind") == views.DEVICE:
            node = {"id": node_id, "caption": "device", "size": 6, "color": DEVICE_COLOUR}
        else:
            properties["band"] = score_band(data.get("score"))
            size = 8 + 24 * (data.get("pagerank") or 0.0) / top + (8 if node_id == centre else 0)
            mark = " ✖" if data.get("defaulted") else ""
            node = {"id": node_id, "caption": f"{node_id}{mark}", "size": size,
                    "color": band_colour(data.get("score"))}  # fmt: skip
        nodes.append(Node.model_validate({**node, "properties": properties}))
    relationships = []
    for i, (a, b, data) in enumerate(graph.edges(data=True)):
        kind = data["kind"]
        source, target = (data["src"], data["dst"]) if kind == views.TRANSFER else (a, b)
        width = 1.0 + np.log1p(data.get("amount") or 0.0) / 2 if kind == views.TRANSFER else 1.0
        properties = {
            k: _plain(v) for k, v in data.items() if v is not None and k not in ("src", "dst")
        }
        relationships.append(Relationship.model_validate({
            "id": f"{kind}:{i}", "source": source, "target": target, "caption": kind,
            "color": EDGE_COLOURS[kind], "width": float(width), "properties": properties,
        }))  # fmt: skip
    view = VisualizationGraph(nodes=nodes, relationships=relationships)
    legend: dict[Any, Any] = {name: colour for _, name, colour in BANDS}
    view.set_legend(
        nodes={**legend, "device": DEVICE_COLOUR}, relationships=dict[Any, Any](EDGE_COLOURS)
    )
    return view


def save_html(view: VisualizationGraph, path: Path) -> Path:
    """Write a view as one self-contained HTML page (the library's scripts are inlined)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(view.render(height="700px").data, encoding="utf-8")
    return path


_DATA_TAG = '<script type="application/json" id="neo4j-viz-data">'


def view_data(html: str) -> dict[str, Any]:
    """The graph data a saved view embeds (``nodes``, ``relationships``, options)."""
    start = html.index(_DATA_TAG) + len(_DATA_TAG)
    return dict(json.loads(html[start : html.index("</script>", start)]))


def plot_graph(
    graph: nx.MultiGraph, *, centre: str | None = None, ax: plt.Axes | None = None,
    title: str | None = None, seed: int = 42, position: dict[str, Any] | None = None,
) -> plt.Axes:  # fmt: skip
    """The static picture of :func:`interactive`: same colours, black ring = known defaulter.

    ``position`` (node → x, y) keeps two pictures of one neighbourhood aligned.
    """
    ax = ax or plt.subplots(figsize=(8, 6.5))[1]
    position = position or layout(graph, seed=seed)
    ranks = [d.get("pagerank") or 0.0 for _, d in graph.nodes(data=True)]
    top = max(ranks, default=0.0) or 1.0
    for kind, colour in EDGE_COLOURS.items():
        edges = [(a, b) for a, b, k in graph.edges(data="kind") if k == kind]
        nx.draw_networkx_edges(graph, position, edgelist=edges, ax=ax, edge_color=colour,
                               alpha=0.6 if kind != views.FRIEND else 0.3,
                               width=1.6 if kind == views.TRANSFER else 0.8)  # fmt: skip
    users = [n for n, k in graph.nodes(data="kind") if k == views.USER]
    devices = [n for n, k in graph.nodes(data="kind") if k == views.DEVICE]
    nx.draw_networkx_nodes(
        graph, position, nodelist=users, ax=ax,
        node_color=[band_colour(graph.nodes[n].get("score")) for n in users],
        node_size=[40 + 400 * (graph.nodes[n].get("pagerank") or 0.0) / top
                   + (200 if n == centre else 0) for n in users],
        edgecolors=["black" if graph.nodes[n].get("defaulted") else "none" for n in users],
        linewidths=1.5,
    )  # fmt: skip
    nx.draw_networkx_nodes(graph, position, nodelist=devices, ax=ax, node_shape="s",
                           node_color=DEVICE_COLOUR, node_size=30)  # fmt: skip
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=n) for _, n, c in BANDS]
    handles += [plt.Line2D([], [], color=c, label=k) for k, c in EDGE_COLOURS.items()]
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    devices_said = f"{len(devices)} shared device{'' if len(devices) == 1 else 's'}"
    ax.set_title(title or f"{len(users)} users, {devices_said} "
                          "(size = PageRank, black ring = defaulted)", fontsize=9)  # fmt: skip
    ax.axis("off")
    return ax


def layout(graph: nx.MultiGraph, *, seed: int = 42) -> dict[str, Any]:
    """Deterministic spring-layout positions for :func:`plot_graph`."""
    return dict(nx.spring_layout(nx.Graph(graph), seed=seed))


def save_png(graph: nx.MultiGraph, path: Path, **options: Any) -> Path:
    """The static picture of a view as a PNG (for CI and for GitHub, which runs no scripts)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, ax = plt.subplots(figsize=(8, 6.5))
    plot_graph(graph, ax=ax, **options)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


# -- rings ------------------------------------------------------------------------------
def rank_rings(
    ws: Workspace, *, recent_days: int = 180, min_size: int = 3, limit: int = 50
) -> pd.DataFrame:
    """Candidate rings (``fraud_rings``) ranked with the members' ring features.

    Adds each ring's mean ring features (from the published run's model
    inputs), the transfer loops (``reciprocal_transfers``) wholly inside it,
    and ``ring_rank``: the mean percentile of friend density, loops and the
    ring features across candidates (1 = most ring-like). Best first.
    """
    rings = queries.run(ws.store, "fraud_rings", recent_days=recent_days, min_size=min_size,
                        limit=limit)  # fmt: skip
    if rings.empty:
        return rings.assign(loops=[], ring_rank=[], **{f: [] for f in RING_FEATURES})
    inputs = pipeline.read_inputs(ws.settings)
    loops = queries.run(ws.store, "reciprocal_transfers", limit=10_000)["members"]
    rings["members"] = rings["members"].map(list)
    for feature in RING_FEATURES:
        rings[feature] = [inputs[feature].reindex(m).mean() for m in rings["members"]]
    rings["loops"] = [sum(set(loop) <= set(m) for loop in loops) for m in rings["members"]]
    signals = ["friend_density", "loops", *RING_FEATURES]
    rings["ring_rank"] = rings[signals].rank(pct=True).mean(axis=1).round(3)
    return rings.sort_values(["ring_rank", "size"], ascending=False).reset_index(drop=True)


def transfer_flows(graph: nx.MultiGraph) -> pd.DataFrame:
    """The transfers of a :func:`views.subgraph`: src, dst, transfers, amount (largest first)."""
    rows = [{"src": d["src"], "dst": d["dst"], "transfers": d.get("transfers"),
             "amount": d.get("amount")}
            for _, _, d in graph.edges(data=True) if d["kind"] == views.TRANSFER]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["src", "dst", "transfers", "amount"])
    return frame.sort_values("amount", ascending=False).reset_index(drop=True)


def plot_flows(flows: pd.DataFrame, *, ax: plt.Axes | None = None) -> plt.Axes:
    """A two-column flow plot: senders left, receivers right, band width ∝ amount."""
    ax = ax or plt.subplots(figsize=(7, 5))[1]
    senders = sorted(flows["src"].unique())
    receivers = sorted(flows["dst"].unique())
    y_src = {u: float(i) for i, u in enumerate(senders)}
    y_dst = {u: i * (max(len(senders) - 1, 1) / max(len(receivers) - 1, 1))
             for i, u in enumerate(receivers)}  # fmt: skip
    top = flows["amount"].max() if len(flows) else 1.0
    for row in flows.itertuples(index=False):
        ax.plot([0, 1], [y_src[row.src], y_dst[row.dst]], color=EDGE_COLOURS[views.TRANSFER],
                alpha=0.6, lw=1 + 12 * row.amount / top, solid_capstyle="butt")  # fmt: skip
    for user, y_at in y_src.items():
        ax.text(-0.02, y_at, user, ha="right", va="center", fontsize=8)
    for user, y_at in y_dst.items():
        ax.text(1.02, y_at, user, ha="left", va="center", fontsize=8)
    ax.set_xlim(-0.35, 1.35)
    ax.set_title(f"money flows: {len(flows)} sender→receiver pairs, "
                 f"{flows['amount'].sum():,.0f} in all (width ∝ amount)")  # fmt: skip
    ax.axis("off")
    return ax


def plot_signups(members: pd.DataFrame, *, ax: plt.Axes | None = None) -> plt.Axes:
    """Sign-up timeline of a node table: one dot per member, coloured by band."""
    ax = ax or plt.subplots(figsize=(8, 2.5))[1]
    ordered = members.sort_values("signup_date")
    dates = pd.to_datetime(ordered["signup_date"])
    rings = ["black" if d else "none" for d in ordered["defaulted"]]
    colours = [band_colour(s) for s in ordered["score"]]
    ax.scatter(dates, range(len(ordered)), c=colours, edgecolors=rings, s=60)
    ax.set_yticks(range(len(ordered)), ordered.index, fontsize=7)
    ax.set_title("sign-ups (colour = band, black ring = defaulted)")
    return ax


# -- score drops ------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """One published scoring run: its id, model, scores and model inputs (indexed by user)."""

    run_id: str
    model: CreditModel
    scores: pd.DataFrame
    inputs: pd.DataFrame


def _run(settings: Settings, run_id: str) -> Run:
    directory = catalog.run_dir(settings.paths.scores, run_id)
    scores = catalog.read_run(directory, catalog.SCORES).set_index("user_id")
    inputs = catalog.read_run(directory, catalog.INPUTS).set_index("user_id")
    model_id = str(catalog.read_manifest(settings.paths.scores, run_id)["model_id"])
    return Run(run_id, pipeline.load_model(settings, model_id), scores, inputs)


def runs(settings: Settings) -> tuple[Run | None, Run]:
    """(previous, current) published runs; previous is None after the first run."""
    current = catalog.current_run(settings.paths.scores)
    if current is None:
        raise DataMissing("nothing scored yet; run `creditgraph score` first")
    previous = catalog.read_manifest(settings.paths.scores, current).get("previous_run")
    if not previous or not catalog.run_dir(settings.paths.scores, str(previous)).is_dir():
        return None, _run(settings, current)
    return _run(settings, str(previous)), _run(settings, current)


def factor_moves(before: Run, after: Run, user_id: str) -> pd.DataFrame:
    """Score and the five factor points in both runs, and how much each moved."""
    names = ["score", *(f"f_{f}" for f in FACTORS)]
    frame = pd.DataFrame({"before": before.scores.loc[user_id, names].astype(float),
                          "after": after.scores.loc[user_id, names].astype(float)})  # fmt: skip
    frame["change"] = frame["after"] - frame["before"]
    return frame.round(1)


def feature_moves(before: Run, after: Run, user_id: str, *, top: int = 10) -> pd.DataFrame:
    """The features whose points moved most between the runs (exact TreeSHAP, both models)."""
    old = explain_user(before.model, before.inputs, user_id).top_features.set_index("feature")
    new = explain_user(after.model, after.inputs, user_id).top_features.set_index("feature")
    frame = pd.DataFrame({
        "factor": new["factor"].combine_first(old["factor"]),
        "value_before": old["value"], "value_after": new["value"],
        "points_before": old["points"], "points_after": new["points"],
    }).fillna({"points_before": 0.0, "points_after": 0.0})  # fmt: skip
    frame["points_change"] = frame["points_after"] - frame["points_before"]
    return frame.reindex(frame["points_change"].abs().sort_values(ascending=False).index).head(top)


@dataclass(frozen=True)
class NeighbourhoodChange:
    """A user's friends before and after: graphs to draw side by side, and one row per friend."""

    before: nx.MultiGraph
    after: nx.MultiGraph
    friends: pd.DataFrame  # since, new_tie, prev_score, score, defaulted, known_before/_after


def neighbourhood_change(
    ws: Workspace, before: Run, after: Run, user_id: str
) -> NeighbourhoodChange:
    """The user's friends now, and as the previous run saw them.

    The previous run's ``friend_count`` says how many ties are new; they are
    the newest by ``since`` (the date a friendship formed). Both graphs ring
    the outcomes as loaded now (the graph keeps no earlier labels); the table's
    ``known_before``/``known_after`` say which outcomes each run's model trained
    on (None where it had none), so a default new to the model shows. Scores
    in ``before`` are the previous run's.
    """
    friends = queries.run(ws.store, "friend_cluster", user_id=user_id, hops=1, limit=500)
    after_graph = views.subgraph(ws.store, [user_id, *friends["user_id"]], transfers=True)
    friend_edges = {
        b: (key, d.get("since"))
        for _, b, key, d in after_graph.edges(user_id, keys=True, data=True)
        if d["kind"] == views.FRIEND
    }
    table = pd.DataFrame(
        {"since": pd.Series({u: since for u, (_, since) in friend_edges.items()}, dtype="object")}
    ).rename_axis("user_id")
    grew = int(
        after.inputs.loc[user_id, "friend_count"] - before.inputs.loc[user_id, "friend_count"]
    )
    newest = table["since"].sort_values(ascending=False).index[: max(grew, 0)]
    table["new_tie"] = table.index.isin(newest)
    table["prev_score"] = before.scores["score"].reindex(table.index).round(1)
    table["score"] = after.scores["score"].reindex(table.index).round(1)
    table["defaulted"] = [after_graph.nodes[u].get("defaulted") for u in table.index]
    table["known_before"] = _known(before.model, table.index)
    table["known_after"] = _known(after.model, table.index)
    before_graph = after_graph.copy()
    before_graph.remove_edges_from([(user_id, u, friend_edges[u][0]) for u in newest])
    for node, data in before_graph.nodes(data=True):
        if data.get("kind") == views.USER:
            data["score"] = _plain(before.scores["score"].get(node))
    ordered = table.sort_values(["new_tie", "score"], ascending=[False, True])
    return NeighbourhoodChange(before_graph, after_graph, ordered)


def _known(model: CreditModel, user_ids: pd.Index) -> list[bool | None]:
    """The outcome ``model`` trained on for each user (None where it had none)."""
    labels = model.training_labels
    if labels is None:
        return [None] * len(user_ids)
    return [bool(labels[u]) if u in labels.index else None for u in user_ids]


# -- communities ------------------------------------------------------------------------
def community_table(settings: Settings, *, min_size: int = 5) -> pd.DataFrame:
    """Communities of the published run with at least ``min_size`` members, riskiest first.

    Columns: members, mean_score, low_score_share (< 550), labelled, default_rate.
    """
    inputs = pipeline.read_inputs(settings)
    frame = inputs[["community"]].join(published_scores(settings)["score"])
    frame["defaulted"] = pipeline.read_labels(settings).reindex(frame.index)
    table = frame.groupby("community").agg(
        members=("score", "size"), mean_score=("score", "mean"),
        low_score_share=("score", lambda s: (s < BANDS[1][0]).mean()),
        labelled=("defaulted", "count"), default_rate=("defaulted", "mean"),
    )  # fmt: skip
    table = table[table["members"] >= min_size].round(3)
    return table.sort_values(["default_rate", "mean_score"], ascending=[False, True])


def published_scores(settings: Settings) -> pd.DataFrame:
    """The published run's scores, indexed by user id."""
    scores = settings.paths.read_scores()
    if scores is None:
        raise DataMissing("nothing scored yet; run `creditgraph score` first")
    return scores.set_index("user_id")


def community_members(settings: Settings, community: int, *, limit: int = 150) -> list[str]:
    """Members of a community, most central first (at most ``limit``)."""
    inputs = pipeline.read_inputs(settings)
    members = inputs.loc[inputs["community"] == community, ["pagerank_scaled"]].reset_index()
    ordered = members.sort_values(["pagerank_scaled", "user_id"], ascending=[False, True])
    return ordered["user_id"].head(limit).tolist()


# -- a small world to try the notebooks on ----------------------------------------------
@dataclass(frozen=True)
class ExampleWorld:
    """A synthetic world scored twice: its settings and the friendships the second load added."""

    settings: Settings
    new_ties: pd.DataFrame  # src (a good payer), dst (a known defaulter), since, interactions


def example_world(
    directory: Path, *, users: int = 2000, seed: int = 11, store_spec: str = "embedded"
) -> ExampleWorld:
    """Build a world in ``directory`` that every notebook has something to show on.

    Generate, load, train and score; then load the same files plus friendships
    dated after every other one, from 40 good payers to 3 known defaulters each,
    train a new model and score again (so ``score_drops`` has drops to explain).
    Deterministic for a ``seed``, apart from the ids of models and runs. ``store_spec``:
    where the graph goes (``embedded``, or ``neo4j`` as configured by ``NEO4J_URI``).
    """
    settings = load_settings(data_dir=directory / "data", store=store_spec, seed=seed)
    first, second = directory / "in", directory / "in-next"
    pipeline.generate(settings, first, users=users)
    with pipeline.open_configured_store(settings) as store:
        pipeline.ingest(settings, store, first)
        _train_and_score(settings, store)
        ties = _with_new_ties(first, second, seed)
        pipeline.ingest(settings, store, second)
        _train_and_score(settings, store)
    return ExampleWorld(settings, ties)


def _train_and_score(settings: Settings, store: GraphStore) -> None:
    raw = pipeline.build_features(settings, store)
    trained = pipeline.train(settings, store, raw)
    inputs = pipeline.model_inputs(settings, store, trained.model, raw)
    pipeline.write_scores(settings, store, pipeline.score_users(trained.model, inputs), inputs)


def _with_new_ties(source: Path, out: Path, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = pd.read_csv(source / "labels.csv")
    friendships = pd.read_csv(source / "friendships.csv")
    bad = labels.loc[labels["defaulted"] == 1, "user_id"].to_numpy()
    good = rng.choice(labels.loc[labels["defaulted"] == 0, "user_id"].to_numpy(), 40, replace=False)
    since = (pd.to_datetime(friendships["since"]).max() + pd.Timedelta(days=1)).date().isoformat()
    ties = pd.DataFrame(
        [{"src": g, "dst": b, "since": since, "src_interactions": 20, "dst_interactions": 20}
         for g in good for b in rng.choice(bad, 3, replace=False)]
    )  # fmt: skip
    shutil.copytree(source, out)
    pd.concat([friendships, ties]).to_csv(out / "friendships.csv", index=False)
    return ties
