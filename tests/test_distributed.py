"""The pipeline on a Dask cluster equals the single-machine run (issue 18).

One 20,000-user world, taken through the single-machine pipeline once, and one
``LocalCluster`` of two single-threaded worker processes, both per module.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from creditgraph import catalog, pipeline
from creditgraph.cli import app
from creditgraph.graph.network import GraphData
from creditgraph.scoring.dictionary import FACTORS
from creditgraph.settings import load_settings

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

USERS = 20_000
SCORED_AT = pd.Timestamp("2025-01-01 02:30:00")


@pytest.fixture(scope="module")
def client() -> Any:
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 dashboard_address=":0", silence_logs=logging.ERROR) as cluster,
        distributed.Client(cluster) as connected,
    ):  # fmt: skip
        yield connected


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Generated, ingested, featured, trained, scored and published once on one machine;
    features built again after the publish, so friends' previous scores are known."""
    root = tmp_path_factory.mktemp("dask-world")
    settings = load_settings(data_dir=root / "data", store="embedded", seed=7)
    pipeline.generate(settings, root / "in", users=USERS)
    store = pipeline.open_configured_store(settings)
    pipeline.ingest(settings, store, root / "in")
    data = GraphData.export(store)
    raw = pipeline.build_features(settings, store, data=data)
    trained = pipeline.train(settings, store, raw, data=data)
    inputs = pipeline.model_inputs(settings, store, trained.model, raw, data=data)
    pipeline.write_scores(settings, store, pipeline.score_users(trained.model, inputs), inputs)
    features = pipeline.build_features(settings, store, data=data)  # with previous scores
    yield {"settings": settings, "store": store, "data": data, "features": features,
           "trained": trained, "inputs": inputs}  # fmt: skip
    store.close()


def assert_same_columns(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(actual.columns) == list(expected.columns)
    assert actual.index.equals(expected.index)
    for name in expected.columns:
        a, e = actual[name], expected[name]
        if isinstance(e.dtype, pd.CategoricalDtype):
            assert a.astype(object).equals(e.astype(object)), name
            continue
        np.testing.assert_allclose(a.to_numpy(dtype=float), e.to_numpy(dtype=float), rtol=1e-9,
                                   atol=1e-9, err_msg=name)  # fmt: skip


def test_features_equal_single_machine(world: dict[str, Any], client: Any) -> None:
    """Written by the workers as parts by user-id range; equal to one machine's (to 1e-9)."""
    settings, expected = world["settings"], world["features"]
    assert expected["friends_prev_score_mean"].notna().mean() > 0.5  # the previous run is used
    found = pipeline.build_features(settings, world["store"], data=world["data"], client=client)
    files = settings.paths.feature_files()
    assert files.by_user_id and len(files.parts) == found.npartitions == 2
    ids = [pd.read_parquet(part, columns=["user_id"])["user_id"] for part in files.parts]
    assert all(part.is_monotonic_increasing for part in ids)  # each part one sorted range
    assert ids[0].iloc[-1] < ids[1].iloc[0] and sum(map(len, ids)) == USERS
    assert_same_columns(found.compute().reindex(expected.index), expected)
    assert_same_columns(pipeline.read_features(settings), expected)  # in the users' order


def test_cluster_inputs_are_one_machines_chunks(
    world: dict[str, Any], client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers assemble each chunk of model inputs (features parts ⨝ exposure) exactly as
    one machine cuts them from the same features, with the same digest: from a cluster's
    parts (sorted user ranges) or one machine's (the workers shuffle them). The exposure
    family's counts are joins on the workers: the driver's function for them is never
    called (it raises here), only its personalised PageRanks run there."""
    from creditgraph.scoring.features import exposure, label_aware_features

    def on_the_driver(*_args: object) -> None:
        raise AssertionError("the driver counted the exposure family")

    settings, store, model = world["settings"], world["store"], world["trained"].model
    one_machine = catalog.DataDir(tmp_path)
    one_machine.write_features(world["features"], None)
    cases = [(settings.paths.feature_files(), pipeline.read_features(settings)),
             (one_machine.feature_files(), world["features"])]  # fmt: skip
    assert cases[0][0].by_user_id and not cases[1][0].by_user_id
    for files, features in cases:
        expected = pipeline.input_chunks(settings, store, model, features, 3_000,
                                         data=world["data"])  # fmt: skip
        with monkeypatch.context() as driver:
            driver.setattr(exposure, "label_counts", on_the_driver)
            found = pipeline.cluster_inputs(settings, store, model, files, 3_000, client,
                                            data=world["data"])  # fmt: skip
            sizes = found.frame.map_partitions(len).compute().tolist()
            computed = found.frame.compute()
        assert sizes == [3_000] * 6 + [2_000] and found.count == 7
        pd.testing.assert_frame_equal(computed, expected.frame, check_exact=True)
        assert (found.users, found.digest) == (USERS, expected.digest)
    # The exposure columns on their own: the model's training users' own folds' label sets,
    # the others' means over the K sets, as one machine computes them.
    labels = model.training_labels
    single = label_aware_features(world["data"], world["features"], labels, labels.index,
                                  seed=settings.seed)  # fmt: skip
    training = computed.index.isin(labels.index)
    assert 0 < training.sum() < USERS
    for rows in (training, ~training):
        found_rows = computed.loc[rows, list(single.columns)]
        assert found_rows.notna().any().all()  # every column computed for some users
        assert found_rows["neighbour_default_share"].notna().mean() > 0.5
        assert_same_columns(found_rows, single.loc[found_rows.index])


def test_exposure_counts_on_a_tiny_graph(client: Any) -> None:
    """By hand: duplicate, reversed and self friendships, repeated payments to one merchant,
    an ownerless merchant, an isolated user, labelled users outside training, a lone community:
    the workers' joins give what one machine's sparse products give, fold by fold."""
    import dask
    import dask.dataframe as dd

    from creditgraph.graph.network import FriendGraph, incidence
    from creditgraph.graph.store import EdgeArrays
    from creditgraph.scoring.distributed.exposure import cluster_exposure
    from creditgraph.scoring.distributed.tabular import by_user, user_divisions
    from creditgraph.scoring.features.exposure import LabelContext, exposure_features

    ids = pd.Index([f"u{i}" for i in range(10)], name="user_id")
    merchants = pd.Index(["m0", "m1", "m2"])
    friends = pd.DataFrame(
        {
            "src": ["u0", "u1", "u1", "u2", "u3", "u4", "u5", "u6", "u7"],
            "dst": ["u1", "u0", "u2", "u2", "u4", "u5", "u6", "u7", "u8"],
        }
    )
    payments = pd.DataFrame(
        {
            "user_id": ["u0", "u0", "u0", "u1", "u3", "u5", "u8", "u6"],
            "merchant_id": ["m0", "m0", "m0", "m0", "m1", "m1", "m1", "m2"],
        }
    )
    owners = pd.DataFrame({"owner_id": ["u2", None, "u2"], "merchant_id": ["m0", "m1", "m2"]})
    community = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 3])
    labels = pd.Series([1, 0, 0, 1, 0, 1, 1, 0, 1, 0], index=ids)
    train = pd.Index(["u5", "u0", "u1", "u3", "u4", "u6", "u8"])

    def matrix(rows: pd.DataFrame, user: str) -> Any:
        return incidence(ids.get_indexer(rows[user]), merchants.get_indexer(rows["merchant_id"]),
                         (len(ids), len(merchants)))  # fmt: skip

    ends = [ids.get_indexer(friends[end]) for end in ("src", "dst")]
    graph = FriendGraph.from_arrays(EdgeArrays(*ends, ids, ids))
    context = LabelContext(graph, community, matrix(payments, "user_id"),
                           matrix(owners.dropna(), "owner_id"))  # fmt: skip
    expected = exposure_features(context, labels, train, seed=3)
    with dask.config.set({"dataframe.convert-string": False}):
        users = by_user(
            pd.DataFrame({"user_id": ids, "community": community}),
            user_divisions(ids.to_series(), 3),
        )
        edges = {
            name: dd.from_pandas(frame, npartitions=2, sort=False)
            for name, frame in (
                ("friendships", friends),
                ("payments", payments),
                ("merchants", owners),
            )
        }
    found = cluster_exposure(users, graph, edges, labels, train, seed=3).compute()
    assert found.loc["u9", "known_neighbours"] == 0  # isolated
    assert found["owned_customer_default_rate"].notna().sum() == 1  # u2 alone owns
    assert_same_columns(found, expected)


def test_observation_dates_read_from_parts(world: dict[str, Any], client: Any) -> None:
    """The driver's dates (labels' columns, or a maximum on the cluster without labels)
    equal the single-machine ones; the history is read by the workers from its parts."""
    from creditgraph.scoring.distributed.features import observation_bounds
    from creditgraph.scoring.distributed.tabular import read_user_ids
    from creditgraph.scoring.features import observation_dates
    from creditgraph.scoring.features.dates import fallback_date

    parts = world["settings"].paths.history_parts()
    tables = world["settings"].paths.read_tables()
    ids = read_user_ids(parts)
    assert ids.equals(tables["users"]["user_id"])
    expected = (fallback_date(tables), observation_dates(tables).max())
    assert observation_bounds(parts, ids) == expected
    unlabelled = {name: files for name, files in parts.items() if name != "labels"}
    without = {name: frame for name, frame in tables.items() if name != "labels"}
    assert observation_bounds(unlabelled, ids) == (fallback_date(without),) * 2


def test_same_model_scores_identical(world: dict[str, Any], client: Any) -> None:
    model, inputs = world["trained"].model, world["inputs"]
    here = pipeline.score_users(model, inputs, SCORED_AT)
    there = pipeline.score_users(model, inputs, SCORED_AT, client=client, chunk_size=4_000)
    pd.testing.assert_frame_equal(there, here, check_exact=True)
    assert there["reasons"].str.len().gt(0).mean() > 0.5


def test_xgboost_dask_model_matches(world: dict[str, Any], client: Any) -> None:
    settings, single = world["settings"], world["trained"]
    trained = pipeline.train(settings, world["store"], world["features"], data=world["data"],
                             client=client)  # fmt: skip
    assert trained.model.params["monotone_constraints"] == single.model.params[
        "monotone_constraints"]  # fmt: skip
    assert trained.model.params["interaction_constraints"] == single.model.params[
        "interaction_constraints"]  # fmt: skip
    assert abs(trained.test_metrics["roc_auc"] - single.test_metrics["roc_auc"]) <= 0.005
    inputs = pipeline.model_inputs(settings, world["store"], trained.model, world["features"],
                                   data=world["data"])  # fmt: skip
    scored = trained.model.score(inputs)
    total = scored.attrs["base_points"] + scored[[f"f_{f}" for f in FACTORS]].sum(axis=1)
    np.testing.assert_allclose(total, scored["score"], rtol=0, atol=1e-9)


def test_rescore_survives_a_killed_worker(
    world: dict[str, Any], client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed by PID mid-run: its chunks rerun elsewhere, the run publishes the
    scores an undisturbed run gives. Every chunk's parts are written by the workers."""
    settings, model = world["settings"], world["trained"].model
    pids = client.run(os.getpid)
    killed: list[int] = []

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "score" and done >= 1 and not killed:
            killed.append(next(iter(pids.values())))
            os.kill(killed[0], signal.SIGKILL)

    def write_chunk(*_args: object) -> int:  # its name: a bound method pickles by name
        raise AssertionError("the driver wrote a chunk")

    monkeypatch.setattr(catalog.RunInProgress, "write_chunk", write_chunk)  # this process only
    result = pipeline.rescore(settings, world["store"], model_id=model.model_id,
                              chunk_size=1_000, progress=progress, client=client)  # fmt: skip
    assert killed and result.manifest["chunks"] == USERS // 1_000
    for table in (catalog.SCORES, catalog.INPUTS):
        assert len(catalog.run_files(result.directory, table)) == USERS // 1_000
    assert not (settings.paths.scores / catalog.RESUME).exists()
    features = pipeline.read_features(settings)
    inputs = pipeline.model_inputs(settings, world["store"], model, features, data=world["data"])
    started = result.scores["scored_at"].iloc[0]
    expected = pipeline.score_users(model, inputs.sort_index(), started)
    pd.testing.assert_frame_equal(result.scores, expected.rename_axis("user_id"),
                                  check_exact=True)  # fmt: skip
    published = settings.paths.read_scores().set_index("user_id")
    assert published["score"].equals(expected["score"].rename_axis("user_id"))
    kept = settings.paths.read_inputs()
    pd.testing.assert_frame_equal(kept, inputs.sort_index().rename_axis("user_id"),
                                  check_exact=True)  # fmt: skip
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker


def test_cli_scores_on_a_scheduler_address(world: dict[str, Any], client: Any) -> None:
    settings = world["settings"]
    world["store"].close()  # the command opens the store itself
    try:
        result = CliRunner().invoke(app, ["score", "--data-dir", str(settings.data_dir),
                                          "--cluster", client.scheduler.address])  # fmt: skip
    finally:
        world["store"] = pipeline.open_configured_store(settings)
    assert result.exit_code == 0, result.output
    assert "Dask: 2 workers; dashboard" in result.output
    bad = CliRunner().invoke(app, ["features", "--data-dir", str(settings.data_dir),
                                   "--cluster", "nowhere"])  # fmt: skip
    assert bad.exit_code == 2 and "tcp://host:8786" in bad.output


def test_nothing_imports_dask_without_a_cluster(world: dict[str, Any]) -> None:
    program = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from creditgraph import pipeline\n"
        "from creditgraph.cli import app\n"
        "result = CliRunner().invoke(app, ['explain', 'u0000042', '--data-dir', sys.argv[1]])\n"
        "assert result.exit_code == 0, result.output\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
        "assert not loaded, loaded\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CREDITGRAPH_DASK_SCHEDULER"}
    done = subprocess.run([sys.executable, "-c", program, str(world["settings"].data_dir)],
                          capture_output=True, text=True, env=env, cwd=Path.cwd())  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_in_database_position_joins_by_user_id(
    world: dict[str, Any], client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--in-database`` on a cluster: GDS's frame (by user id, in the server's own row order
    and community numbering) joins the workers' features as it updates one machine's.

    No GDS runs here: its frame is made from igraph's values of the same graph, reversed,
    with the communities renumbered, so a join by row position would fail.
    """
    from creditgraph.graph.algorithms import leiden
    from creditgraph.scoring.features.position import position_features

    settings, data = world["settings"], world["data"]
    graph = data.graph
    columns = ["pagerank_scaled", "component_size", "clustering", "coreness"]
    found = position_features(graph)[columns] * 1.5  # values igraph would not give
    found["community"] = 1000 - leiden(graph, seed=3)
    gds_like = found.iloc[::-1].rename_axis("user_id")
    monkeypatch.setattr(pipeline, "_in_database_position", lambda _store, _seed: gds_like.copy())
    expected = pipeline.build_features(settings, world["store"], in_database=True, data=data)
    used = expected["pagerank_scaled"].reindex(graph.ids).to_numpy()
    np.testing.assert_array_equal(used, found["pagerank_scaled"].to_numpy())  # GDS's, not igraph's
    cluster = pipeline.build_features(settings, world["store"], in_database=True, data=data,
                                      client=client)  # fmt: skip
    assert_same_columns(cluster.compute().reindex(expected.index), expected)
