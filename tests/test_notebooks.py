"""The fraud-team notebooks and the views they share, on a small world scored twice.

The world (1,500 users, real embedded store, real XGBoost models) is built once
per session by :func:`creditgraph.explore.example_world`: a first load, training
and scoring run; then a second load that befriends good payers with known
defaulters, a new model and a second scoring run, so the graph holds
``prev_score`` for ``score_drops``. Every notebook is executed top to bottom
with nbclient against it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import networkx as nx
import pytest
from test_store_contract import NEO4J_SKIP_REASON

from creditgraph import explore, pipeline, queries
from creditgraph.graph import views

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="session")
def scored_twice(tmp_path_factory: pytest.TempPathFactory) -> dict:
    world = explore.example_world(tmp_path_factory.mktemp("notebook-world"), users=1500, seed=11)
    settings = world.settings
    scores = settings.paths.read_scores()
    assert scores is not None and len(scores) == 1500
    return {"settings": settings, "ties": world.new_ties}


@pytest.fixture
def workspace(scored_twice: dict, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CREDITGRAPH_DATA_DIR", str(scored_twice["settings"].data_dir))
    monkeypatch.setenv("CREDITGRAPH_STORE", "embedded")
    with explore.open_workspace() as ws:
        yield ws


# -- the stored notebooks ---------------------------------------------------------------
def test_notebooks_are_stored_without_outputs() -> None:
    assert {p.name for p in NOTEBOOKS} >= {"friend_clusters.ipynb", "fraud_rings.ipynb",
                                           "score_drops.ipynb", "community_risk.ipynb"}  # fmt: skip
    dirty = [
        f"{path.name} cell {i}"
        for path in NOTEBOOKS
        for i, cell in enumerate(json.loads(path.read_text())["cells"])
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]
    assert not dirty, "strip outputs before committing (see README, Notebooks):\n" + "\n".join(
        dirty
    )


def test_notebooks_hold_no_cypher() -> None:
    """Cells call the library; a Cypher clause in a cell means logic was copied in."""
    for path in NOTEBOOKS:
        for cell in json.loads(path.read_text())["cells"]:
            source = "".join(cell["source"]) if cell["cell_type"] == "code" else ""
            assert "MATCH" not in source and ".query(" not in source, path.name


def _execute(path: Path, data_dir: Path, store: str) -> None:
    """Run every cell of a notebook, in order, in a real kernel; fail on any cell error."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    # The kernel draws with the inline backend (PNG outputs), whatever the test process uses.
    env = {
        "CREDITGRAPH_DATA_DIR": str(data_dir),
        "CREDITGRAPH_STORE": store,
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    client = NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no static picture"
    views_html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any(explore.view_data(h)["nodes"] for h in views_html if "neo4j-viz-data" in h), (
        "no interactive view with nodes"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_end_to_end(path: Path, scored_twice: dict) -> None:
    _execute(path, scored_twice["settings"].data_dir, "embedded")


@pytest.mark.neo4j
@pytest.mark.skipif(not os.environ.get("NEO4J_URI"), reason=NEO4J_SKIP_REASON)
def test_notebooks_run_on_neo4j(tmp_path: Path) -> None:
    """The same notebooks with CREDITGRAPH_STORE=neo4j, on a small world loaded into a test
    server (emptied first; one holding more than a test world is refused)."""
    from test_store_contract import _open_neo4j

    _open_neo4j().close()
    world = explore.example_world(tmp_path, users=200, seed=11, store_spec="neo4j")
    for path in NOTEBOOKS:
        _execute(path, world.settings.data_dir, "neo4j")


# -- the views and helpers the notebooks use -------------------------------------------
def test_friend_cluster_view(workspace) -> None:  # type: ignore[no-untyped-def]
    store = workspace.store
    user = store.node_ids("User")[0]
    cluster = views.friend_cluster(store, user)
    friends = store.query(
        "MATCH (u:User {user_id: $id})-[:FRIEND]-(f:User) RETURN count(DISTINCT f) AS n",
        {"id": user},
    )["n"].iloc[0]
    assert cluster.nodes[user]["centre"] and cluster.degree(user) == friends
    assert all(350 <= cluster.nodes[n]["score"] <= 950 for n in cluster)
    assert views.plot_cluster(cluster).get_title().startswith("friend cluster")


def test_subgraph_has_every_edge_kind_once(workspace) -> None:  # type: ignore[no-untyped-def]
    """Friendships, transfers and shared devices among a ring's members, checked with Cypher."""
    store = workspace.store
    ring = explore.rank_rings(workspace, recent_days=400, min_size=3).iloc[0]["members"]
    graph = views.subgraph(store, ring)
    kinds = nx.get_edge_attributes(graph, "kind")
    pairs = store.query(
        "MATCH (a:User)-[:FRIEND]-(b:User) WHERE a.user_id IN $ids AND b.user_id IN $ids "
        "AND a.user_id < b.user_id RETURN count(DISTINCT [a.user_id, b.user_id]) AS n",
        {"ids": ring},
    )["n"].iloc[0]
    assert sum(k == views.FRIEND for k in kinds.values()) == pairs
    shared = {n for n, k in graph.nodes(data="kind") if k == views.DEVICE}
    assert shared, "a ring is built from shared devices"
    assert all(graph.degree(d) >= 2 for d in shared)
    assert {n for n, k in graph.nodes(data="kind") if k == views.USER} == set(ring)


def test_interactive_view_carries_bands_and_edge_kinds(workspace, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = workspace.store
    ring = explore.rank_rings(workspace, recent_days=400).iloc[0]["members"]
    graph = views.subgraph(store, ring)
    view = explore.interactive(graph, centre=ring[0])
    assert len(view.nodes) == graph.number_of_nodes()
    assert len(view.relationships) == graph.number_of_edges()
    users = {n.id: n for n in view.nodes if n.properties["kind"] == views.USER}
    for user_id, node in users.items():
        assert node.properties["band"] == explore.score_band(graph.nodes[user_id]["score"])
        assert node.caption.endswith("✖") == bool(graph.nodes[user_id]["defaulted"])
    html = explore.save_html(view, tmp_path / "ring.html").read_text()
    data = explore.view_data(html)
    assert len(data["nodes"]) == graph.number_of_nodes()
    assert explore.save_png(graph, tmp_path / "ring.png").stat().st_size > 10_000


def test_score_bands() -> None:
    assert [explore.score_band(s) for s in (350, 549.9, 550, 699, 700, 950)] == [
        "350–549 poor", "350–549 poor", "550–599 fair", "650–699 very good",
        "700–950 excellent", "700–950 excellent"]  # fmt: skip
    assert explore.score_band(None) == explore.score_band(float("nan")) == "unscored"


def test_rings_ranked_with_ring_features(workspace) -> None:  # type: ignore[no-untyped-def]
    rings = explore.rank_rings(workspace, recent_days=400, min_size=3)
    raw = queries.run(workspace.store, "fraud_rings", recent_days=400, min_size=3)
    assert len(rings) == len(raw) > 0
    assert rings["ring_rank"].is_monotonic_decreasing
    inputs = pipeline.read_inputs(workspace.settings)
    first = rings.iloc[0]
    assert first["shared_device_users"] == pytest.approx(
        inputs.loc[first["members"], "shared_device_users"].mean())  # fmt: skip


def test_score_drops_explained_by_new_ties(workspace, scored_twice) -> None:  # type: ignore[no-untyped-def]
    before, after = explore.runs(workspace.settings)
    assert before is not None and before.model.model_id != after.model.model_id
    drops = queries.run(workspace.store, "score_drops", limit=20)
    assert len(drops) > 0
    befriended = set(scored_twice["ties"]["src"])
    user = next(u for u in drops["user_id"] if u in befriended)
    moves = explore.factor_moves(before, after, user)
    assert moves.loc["score", "change"] == pytest.approx(
        -drops.set_index("user_id").loc[user, "score_drop"], abs=0.1)  # fmt: skip
    change = explore.neighbourhood_change(workspace, before, after, user)
    new = set(scored_twice["ties"].loc[scored_twice["ties"]["src"] == user, "dst"])
    assert set(change.friends.index[change.friends["new_tie"]]) == new
    assert change.before.number_of_edges() == change.after.number_of_edges() - len(new)
    still = {b for _, b, k in change.before.edges(user, data="kind") if k == views.FRIEND}
    assert not still & new and still | new == set(change.friends.index)
    assert not explore.feature_moves(before, after, user).empty


def test_community_table_matches_the_investigation(workspace) -> None:  # type: ignore[no-untyped-def]
    table = explore.community_table(workspace.settings)
    community = int(table.index[0])
    summary = queries.run(workspace.store, "community_risk", community=community).iloc[0]
    assert table.loc[community, "members"] == summary["members"]
    assert table.loc[community, "mean_score"] == pytest.approx(summary["mean_score"], abs=0.1)
    members = explore.community_members(workspace.settings, community, limit=5)
    top = queries.run(workspace.store, "top_pagerank", community=community, limit=5)
    assert members == top["user_id"].tolist()


def test_workspace_reads_the_environment_like_the_cli(scored_twice, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    data_dir = scored_twice["settings"].data_dir
    monkeypatch.chdir(tmp_path)  # no creditgraph.toml here
    monkeypatch.delenv("CREDITGRAPH_DATA_DIR", raising=False)
    monkeypatch.setenv("CREDITGRAPH_STORE", "embedded")
    with explore.open_workspace(default_data_dir=data_dir) as ws:
        assert ws.settings.data_dir == data_dir
        assert len(ws.store.node_ids("User")) == 1500
    monkeypatch.setenv("CREDITGRAPH_DATA_DIR", str(data_dir))
    with explore.open_workspace(default_data_dir=tmp_path / "elsewhere") as ws:
        assert ws.settings.data_dir == data_dir
