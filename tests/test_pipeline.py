"""End to end on a small synthetic world in the real embedded store, with a real XGBoost model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from creditgraph import catalog, durable, pipeline
from creditgraph.cli import app
from creditgraph.ingest.history import read_history
from creditgraph.scoring import metrics
from creditgraph.scoring.dictionary import FACTORS
from creditgraph.scoring.model import CreditModel
from creditgraph.scoring.splits import split_users
from creditgraph.settings import load_settings


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """A 3,000-user world taken through the whole pipeline once (on-disk embedded store)."""
    root = tmp_path_factory.mktemp("world")
    settings = load_settings(data_dir=root / "data", store="embedded", seed=7)
    pipeline.generate(settings, root / "in", users=3000)
    store = pipeline.open_configured_store(settings)
    report = pipeline.ingest(settings, store, root / "in")
    raw = pipeline.build_features(settings, store)
    trained = pipeline.train(settings, store, raw)
    features = pipeline.model_inputs(settings, store, trained.model, raw)
    scores = pipeline.score_users(trained.model, features)
    pipeline.write_scores(settings, store, scores, features)
    store.close()
    return {"settings": settings, "report": report, "features": features, "trained": trained,
            "scores": scores, "source": root / "in", "raw": raw}  # fmt: skip


def test_every_row_loads(world):
    assert world["report"].ok
    assert world["report"].nodes_written["User"] == 3000


def test_model_learns_and_scores_stay_in_range(world):
    metrics = world["trained"].test_metrics
    assert metrics["roc_auc"] > 0.7
    scores = world["scores"]["score"]
    assert len(scores) == 3000 and scores.between(350, 950).all()
    assert scores.std() > 40  # a real spread, not a constant


def test_factors_sum_to_score(world):
    scores = world["scores"]
    base = world["trained"].model.score(world["features"].head(1)).attrs["base_points"]
    total = base + scores[[f"f_{f}" for f in FACTORS]].sum(axis=1)
    np.testing.assert_allclose(total, scores["score"], atol=1e-6)


def test_every_tree_uses_one_factor(world):
    model = world["trained"].model
    nodes = model.booster.trees_to_dataframe()
    splits = nodes[nodes["Feature"] != "Leaf"]
    from creditgraph.scoring.dictionary import spec

    factors = splits.assign(f=splits["Feature"].map(lambda f: spec(f).factor))
    assert (factors.groupby("Tree")["f"].nunique() == 1).all()


def test_factor_points_match_exact_shap_per_factor(world):
    """Factor contributions equal exact TreeSHAP summed per factor (up to the baseline)."""
    model = world["trained"].model
    rows = world["features"].head(50)
    exact = model.feature_points(rows, exact=True)
    from creditgraph.scoring.dictionary import spec

    by_factor = exact.T.groupby(lambda f: spec(f).factor).sum().T
    scored = model.score(rows)
    inside = scored["score"].between(350, 950, inclusive="neither")  # clipping rescales points
    assert inside.sum() > 30
    for factor in FACTORS:
        difference = (scored[f"f_{factor}"] - by_factor.get(factor, 0.0))[inside]
        # SHAP's baseline is the cover-weighted mean, ours the training mean: a constant shift.
        assert difference.std() < 1e-4  # float32 leaf values


def test_save_load_gives_identical_scores(world, tmp_path):
    model = world["trained"].model
    directory = model.save(tmp_path)
    again = CreditModel.load(directory)
    features = world["features"]
    pd.testing.assert_frame_equal(model.score(features), again.score(features))
    assert again.model_id == model.model_id


def test_scores_do_not_depend_on_batch(world):
    model = world["trained"].model
    features = world["features"]
    whole = model.score(features)
    part = model.score(features.iloc[100:110])
    pd.testing.assert_frame_equal(whole.iloc[100:110], part)


def test_training_is_deterministic(world):
    store = pipeline.open_configured_store(world["settings"])
    try:
        again = pipeline.train(world["settings"], store, world["raw"])
    finally:
        store.close()
    assert again.model.model_id == world["trained"].model.model_id
    pd.testing.assert_frame_equal(
        again.model.score(world["features"]), world["trained"].model.score(world["features"])
    )


def test_scores_written_back_to_store_and_parquet(world):
    settings = world["settings"]
    store = pipeline.open_configured_store(settings)
    try:
        stored = store.query(
            "MATCH (u:User) RETURN u.user_id AS id, u.score AS score, u.model_id AS model "
            "ORDER BY id"
        ).set_index("id")
    finally:
        store.close()
    expected = world["scores"]["score"].sort_index()
    np.testing.assert_allclose(stored["score"].to_numpy(), expected.to_numpy())
    assert (stored["model"] == world["trained"].model.model_id).all()
    latest = catalog.read_current(settings.paths.scores)
    assert len(latest) == 3000 and {"reasons", "scored_at"} <= set(latest.columns)


def test_rebuilt_features_carry_friends_previous_own_file_scores(world):
    settings = world["settings"]
    assert world["raw"]["friends_prev_score_mean"].isna().all()  # nothing scored yet
    kept = settings.paths.features / catalog.POINTER  # the build these tests share
    saved = kept.read_text().strip()
    store = pipeline.open_configured_store(settings)
    try:
        rebuilt = pipeline.build_features(settings, store)
        friends = store.query(
            "MATCH (u:User)-[:FRIEND]-(v:User) RETURN u.user_id AS user, v.user_id AS friend"
        )
    finally:
        store.close()
        durable.write_pointer(kept, saved)  # the build before a rebuild is kept
    latest = catalog.read_current(settings.paths.scores).set_index("user_id")
    own_file = latest["score"] - latest["f_relationships"]
    expected = (friends.assign(own=own_file.reindex(friends["friend"]).to_numpy())
                .drop_duplicates(["user", "friend"]).groupby("user")["own"])  # fmt: skip
    users = expected.mean().index
    np.testing.assert_allclose(rebuilt.loc[users, "friends_prev_score_mean"], expected.mean())
    np.testing.assert_allclose(rebuilt.loc[users, "friends_prev_score_min"], expected.min())


def test_features_do_not_depend_on_load_order(world, tmp_path):
    """The same files loaded in another row order give the same features (Leiden included)."""
    source = tmp_path / "in"
    source.mkdir()
    for path in world["source"].glob("*.csv"):
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        table.sample(frac=1.0, random_state=3).to_csv(source / path.name, index=False)
    settings = load_settings(data_dir=tmp_path / "data", store="embedded", seed=7)
    with pipeline.open_configured_store(settings) as store:
        pipeline.ingest(settings, store, source)
        again = pipeline.build_features(settings, store)
    pd.testing.assert_frame_equal(again.loc[world["raw"].index], world["raw"])


def test_monotone_constraints_hold(world):
    """More 90+ day delinquencies never raises the score, all else equal."""
    model = world["trained"].model
    rows = world["features"].head(200)
    assert "late_90_count" in model.features
    previous = None
    for late in (0, 1, 2, 5, 10):
        current = model.score(rows.assign(late_90_count=float(late)))["score"].to_numpy()
        if previous is not None:
            assert (current <= previous + 1e-9).all()
        previous = current


def test_reingest_changes_nothing(world):
    settings = world["settings"]
    store = pipeline.open_configured_store(settings)
    try:
        report = pipeline.ingest(settings, store, world["source"])
    finally:
        store.close()
    assert sum(report.nodes_written.values()) == 0 and sum(report.edges_written.values()) == 0


def test_explain_cli(world):
    settings = world["settings"]
    user = world["scores"]["score"].idxmin()
    result = CliRunner().invoke(app, ["explain", user, "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 0, result.output
    assert user in result.output and "Credit history" in result.output
    explanation = pipeline.explain(settings, user)
    assert explanation.score == pytest.approx(world["scores"].loc[user, "score"])
    assert 1 <= len(explanation.reasons) <= 4
    assert sum(explanation.factors.values()) + explanation.base_points == pytest.approx(
        explanation.score
    )


def test_explain_unknown_user_is_a_clear_error(world):
    settings = world["settings"]
    result = CliRunner().invoke(app, ["explain", "nobody", "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 2 and "unknown user 'nobody'" in result.output


def test_cypher_cli_refuses_writes(world):
    settings = world["settings"]
    args = ["cypher", "MATCH (u:User) DETACH DELETE u", "--data-dir", str(settings.data_dir)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "read-only" in result.output
    count = CliRunner().invoke(
        app, ["cypher", "MATCH (u:User) RETURN count(u) AS n", "--data-dir",
              str(settings.data_dir)],
    )  # fmt: skip
    assert "3000" in count.output


def test_ingest_cli_exits_nonzero_on_rejects(tmp_path: Path):
    from conftest import tiny_world

    source = tiny_world(tmp_path / "in")
    users = pd.read_csv(source / "users.csv", dtype=str)
    users.loc[0, "age"] = "old"
    users.to_csv(source / "users.csv", index=False)
    result = CliRunner().invoke(app, ["ingest", str(source), "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 1
    assert "rejected" in result.output
    assert (tmp_path / "d" / "rejects" / "users.csv").exists()


def test_report_writes_html_and_plots(world):
    result = pipeline.report(world["settings"])
    html = result.path.read_text()
    for image in ("score_distribution.png", "roc.png", "calibration.png",
                  "factor_importance.png", "pd_per_band.png"):  # fmt: skip
        assert (result.path.parent / image).stat().st_size > 5000
        assert image in html
    assert result.headline["roc_auc"] == pytest.approx(world["trained"].test_metrics["roc_auc"])
    assert result.bands["users"].sum() == result.headline["n"]


def test_calibration_is_good_on_test_split(world):
    """The test split's ECE is no worse than a perfectly calibrated model's would often be.

    With ~600 test users ECE is noisy, so the bound is the 99th percentile of the
    ECE of labels drawn from the model's own PDs (what perfect calibration gives).
    """
    settings, model = world["settings"], world["trained"].model
    labels = pipeline.read_labels(settings)
    test = pipeline.split_for(settings, labels).test
    pd_ = model.predict_pd(world["features"].loc[test])
    observed = metrics.expected_calibration_error(labels.loc[test].to_numpy(), pd_)
    assert observed == pytest.approx(world["trained"].test_metrics["ece"])
    draws = np.random.default_rng(0).random((500, len(pd_))) < pd_
    null = [metrics.expected_calibration_error(y.astype(int), pd_) for y in draws]
    assert observed <= np.quantile(null, 0.99), (observed, np.quantile(null, [0.5, 0.99]))


def test_single_record_matches_batch(world):
    model = world["trained"].model
    features = world["features"]
    user = features.index[17]
    record = features.loc[user].to_dict()
    one = model.score_record(record)
    batch = world["scores"].loc[user]
    assert one["score"] == pytest.approx(batch["score"], abs=1e-9)
    for factor in FACTORS:
        assert one[f"f_{factor}"] == pytest.approx(batch[f"f_{factor}"], abs=1e-9)
    assert "; ".join(one["reasons"]) == batch["reasons"]


def test_out_of_time_split_tests_on_latest_cohort(world):

    settings = world["settings"]
    labels = pipeline.read_labels(settings)
    observed = settings.paths.read_labels().set_index("user_id")["observation_date"]
    split = split_users(labels, 1, observed=observed)
    latest = observed.max()
    assert (observed.loc[split.test] == latest).all()
    assert (observed.loc[split.train.append(split.valid)] < latest).all()
    assert not set(split.train) & set(split.valid)


def test_isotonic_calibration_round_trips_and_sums(world, tmp_path):
    from creditgraph.scoring.model import train_model

    features, labels = world["features"], pipeline.read_labels(world["settings"])
    split = split_users(labels, 3)
    with pytest.warns(UserWarning, match="isotonic"):
        model = train_model(features, labels, train_index=split.train, valid_index=split.valid,
                            scale=world["settings"].scale, calibration="isotonic")  # fmt: skip
    scored = model.score(features)
    total = scored.attrs["base_points"] + scored[[f"f_{f}" for f in FACTORS]].sum(axis=1)
    np.testing.assert_allclose(total, scored["score"], atol=1e-6)
    again = CreditModel.load(model.save(tmp_path))
    pd.testing.assert_frame_equal(again.score(features), scored)


def test_export_neo4j_import_bundle(world, tmp_path):
    from creditgraph.graph.neo4j.bulk_import import read_import_file

    settings = world["settings"]
    result = CliRunner().invoke(
        app, ["export", "neo4j-import", str(tmp_path / "bundle"), "--data-dir",
              str(settings.data_dir)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    script = (tmp_path / "bundle" / "import.sh").read_text()
    assert "database import full neo4j" in script and "--nodes=User=" in script
    users = read_import_file(tmp_path / "bundle" / "nodes-User.csv")
    assert len(users) == 3000


def test_in_database_features_refused_on_embedded_store(world):
    settings = world["settings"]
    result = CliRunner().invoke(
        app, ["features", "--in-database", "--data-dir", str(settings.data_dir)]
    )
    assert result.exit_code == 2 and "GDS" in result.output


def test_factor_margins_equal_their_trees_leaf_sums(world):
    """Each factor's margin is exactly the sum of its own trees' leaves (independent check)."""
    from creditgraph.scoring.design import design_matrix, dmatrix
    from creditgraph.scoring.dictionary import spec

    model = world["trained"].model
    rows = world["features"].head(200)
    data = dmatrix(design_matrix(rows, model.features, model.categories))
    leaves = model.booster.predict(data, pred_leaf=True).astype(int)
    nodes = model.booster.trees_to_dataframe()
    value = nodes.set_index(["Tree", "Node"])["Gain"]
    splits = nodes[nodes["Feature"] != "Leaf"]
    factor_of_tree = splits.groupby("Tree")["Feature"].first().map(lambda f: spec(f).factor)
    expected = np.zeros((len(rows), len(FACTORS)))
    for tree in range(leaves.shape[1]):  # a reference, not a hot path
        if tree in factor_of_tree.index:
            k = FACTORS.index(factor_of_tree[tree])
            expected[:, k] += value.loc[tree].reindex(leaves[:, tree]).to_numpy()
    np.testing.assert_allclose(model.factor_margins(rows), expected, atol=1e-4)


def test_demo_never_wipes_data_it_did_not_make(world):
    settings = world["settings"]
    result = CliRunner().invoke(app, ["demo", "--data-dir", str(settings.data_dir)])
    assert result.exit_code == 2 and "did not make" in " ".join(result.output.split())
    assert read_history(settings.paths.history, "users") is not None


def test_demo_runs_end_to_end(tmp_path):
    args = ["demo", "--users", "1500", "--data-dir", str(tmp_path / "demo")]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "roc_auc" in first.output and "score distribution" in first.output
    again = CliRunner().invoke(app, args)  # a demo directory may be rerun
    assert again.exit_code == 0, again.output
