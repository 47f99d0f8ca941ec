"""Public records as a credit-history source: validated, kept, in the graph, scored in plain words.

Validation and loading run on tiny hand-made files through the real ingest and the
embedded store; the features on hand-made tables with answers worked out on paper;
the model on a 4,000-user synthetic world through the real pipeline (embedded store,
real XGBoost), where the monotone directions and the wording are checked on what the
model actually does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import write_csv

from creditgraph import pipeline
from creditgraph.ingest.history import read_history
from creditgraph.ingest.load import load_directory, validate_directory
from creditgraph.ingest.schemas import RECORD_KIND
from creditgraph.ingest.synthetic import generate_world
from creditgraph.scoring.dictionary import FEATURES, spec
from creditgraph.scoring.features import observation_dates, tabular_features
from creditgraph.scoring.features.public_records import (
    OPEN_COLUMNS,
    PUBLIC_RECORD_COLUMNS,
    public_record_features,
)
from creditgraph.scoring.model import train_model
from creditgraph.settings import load_settings

GOOD = [
    {"user_id": "u1", "record_id": "r1", "kind": "court_judgment", "filed_date": "2022-03-01",
     "amount": 1200.0, "status": "open", "satisfied_date": None, "source": "district_court"},
    {"user_id": "u1", "record_id": "r2", "kind": "tax_arrears", "filed_date": "2021-01-15",
     "amount": 300.0, "status": "satisfied", "satisfied_date": "2021-09-30",
     "source": "tax_office"},
    {"user_id": "u2", "record_id": "r3", "kind": "bankruptcy", "filed_date": "2019-06-01",
     "amount": 20000.0, "status": "dismissed", "satisfied_date": None,
     "source": "insolvency_register"},
]  # fmt: skip


def _load(source: Path, store, tmp_path: Path):  # noqa: ANN001, ANN202
    return load_directory(source, store, tmp_path / "history", tmp_path / "rejects")


def _rejects(tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "rejects" / "public_records.csv"
    return pd.read_csv(path, dtype=str, keep_default_na=False)


# -- validation and loading -----------------------------------------------------------------------
def test_records_load_into_history_and_graph_and_a_reload_adds_nothing(
    tiny_dir, memory_store, tmp_path
):
    write_csv(tiny_dir, "public_records", GOOD)
    report = _load(tiny_dir, memory_store, tmp_path)
    assert report.ok
    assert report.nodes_written["PublicRecord"] == 3 and report.edges_written["HAS_RECORD"] == 3
    kept = read_history(tmp_path / "history", "public_records")
    assert kept["record_id"].tolist() == ["r1", "r2", "r3"]
    assert kept["satisfied_date"].isna().tolist() == [True, False, True]
    graph = memory_store.query(
        "MATCH (u:User)-[:HAS_RECORD]->(r:PublicRecord) "
        "RETURN u.user_id AS user_id, r.record_id AS id, r.kind AS kind, r.status AS status "
        "ORDER BY id"
    )
    assert graph.values.tolist() == [
        ["u1", "r1", "court_judgment", "open"],
        ["u1", "r2", "tax_arrears", "satisfied"],
        ["u2", "r3", "bankruptcy", "dismissed"],
    ]

    again = _load(tiny_dir, memory_store, tmp_path)
    assert again.nodes_written["PublicRecord"] == 0 and again.edges_written["HAS_RECORD"] == 0
    assert len(read_history(tmp_path / "history", "public_records")) == 3
    count = memory_store.query("MATCH (r:PublicRecord) RETURN count(r) AS n")["n"].iloc[0]
    assert count == 3

    # Paid later: the same record (same id) changes in place, in history and graph.
    paid = [{**GOOD[0], "status": "satisfied", "satisfied_date": "2024-05-01"}]
    write_csv(tiny_dir, "public_records", paid)
    assert _load(tiny_dir, memory_store, tmp_path).nodes_written["PublicRecord"] == 1
    kept = read_history(tmp_path / "history", "public_records").set_index("record_id")
    assert len(kept) == 3 and kept.loc["r1", "status"] == "satisfied"
    status = memory_store.query(
        "MATCH (r:PublicRecord {record_id: 'r1'}) RETURN r.status AS s, r.satisfied_date AS d"
    )
    assert status["s"].tolist() == ["satisfied"]
    assert str(status["d"].iloc[0])[:10] == "2024-05-01"


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"status": "satisfied", "satisfied_date": "2022-02-28"}, "satisfied_date",
         "before filed_date of the same row"),
        ({"kind": "parking_fine"}, "kind", "not one of ['court_judgment', 'enforcement_list'"),
        ({"status": "paid"}, "status", "not one of ['open', 'satisfied', 'dismissed']"),
        ({"user_id": "ghost"}, "user_id", "unknown users id (not in users file)"),
        ({"status": "satisfied"}, "satisfied_date", "required when status is satisfied"),
        ({"satisfied_date": "2023-01-01"}, "satisfied_date",
         "given only when status is satisfied"),
        ({"amount": "-5"}, "amount", "below minimum 0"),
        ({"filed_date": "2022-02-30"}, "filed_date", "not a valid date"),
        ({"record_id": "r2"}, "record_id", "duplicate key ['record_id']"),
        ({"source": None}, "source", "required value is missing"),
    ],
)  # fmt: skip
def test_a_bad_record_is_rejected_with_file_row_field_and_reason(
    tiny_dir, memory_store, tmp_path, change, field, reason
):
    """The third row (r1 with ``change``) is rejected; the good rows still load."""
    write_csv(tiny_dir, "public_records", [GOOD[1], GOOD[2], {**GOOD[0], **change}])
    report = _load(tiny_dir, memory_store, tmp_path)
    records = next(f for f in report.files if f.file == "public_records.csv")
    assert (records.rows_read, records.rows_loaded, records.rows_rejected) == (3, 2, 1)
    rejects = _rejects(tmp_path)
    assert rejects[["file", "row", "field"]].values.tolist() == [["public_records.csv", "3", field]]
    assert rejects["reason"].iloc[0].startswith(reason)
    kept = read_history(tmp_path / "history", "public_records")
    assert kept["record_id"].tolist() == ["r2", "r3"]


def test_an_invalid_status_is_not_also_judged_against_the_satisfied_date(
    tiny_dir, memory_store, tmp_path
):
    write_csv(tiny_dir, "public_records", [{**GOOD[1], "status": "paid"}])
    _load(tiny_dir, memory_store, tmp_path)
    assert _rejects(tmp_path)["field"].tolist() == ["status"]


# -- features -------------------------------------------------------------------------------------
def _records(*rows: tuple) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_id", "record_id", "kind", "filed_date", "amount",
                                        "status", "satisfied_date"])  # fmt: skip
    for column in ("filed_date", "satisfied_date"):
        frame[column] = pd.to_datetime(frame[column])
    return frame.assign(source="registry")


OBSERVED = pd.Series(
    pd.to_datetime(["2024-12-31", "2024-12-31", "2024-12-31", "2024-12-31"]),
    index=pd.Index(["u1", "u2", "u3", "u4"], name="user_id"),
)


def test_features_are_taken_as_of_the_observation_date():
    records = _records(
        ("u1", "r1", "court_judgment", "2024-06-30", 1000.0, "open", None),
        ("u1", "r2", "court_judgment", "2020-01-01", 500.0, "satisfied", "2021-01-01"),
        ("u1", "r3", "tax_arrears", "2023-01-01", 200.0, "satisfied", "2025-03-01"),  # paid later
        ("u1", "r4", "bankruptcy", "2025-02-01", 9000.0, "open", None),  # filed later
        ("u2", "r5", "enforcement_list", "2022-12-31", 50.0, "dismissed", None),
        ("u3", "r6", "tax_arrears", "2021-12-31", 80.0, "satisfied", "2022-06-01"),
    )
    out = public_record_features({"public_records": records}, OBSERVED)
    assert list(out.columns) == list(PUBLIC_RECORD_COLUMNS)
    u1, u2, u3, u4 = (out.loc[u] for u in OBSERVED.index)
    assert (u1["open_court_judgments"], u1["open_tax_arrears"], u1["open_bankruptcies"]) == (
        1.0, 1.0, 0.0,
    )  # fmt: skip
    assert u1["public_record_amount_outstanding"] == 1200.0
    assert u1["months_since_public_record"] == pytest.approx(184 / 30)  # 2024-06-30 → 12-31
    assert u1["public_record_satisfied_share"] == pytest.approx(1 / 3)
    # A dismissed record never counts: u2 is like u4, who has none.
    for nobody in (u2, u4):
        assert nobody[list(OPEN_COLUMNS.values())].sum() == 0
        assert nobody["public_record_amount_outstanding"] == 0
        assert np.isnan(nobody["months_since_public_record"])
        assert nobody["public_record_satisfied_share"] == 1.0
    assert u3["public_record_amount_outstanding"] == 0 and u3["public_record_satisfied_share"] == 1
    assert u3["months_since_public_record"] == pytest.approx(1096 / 30)


def test_without_the_file_there_are_no_public_record_columns():
    assert public_record_features({}, OBSERVED).columns.empty
    world = generate_world(300, seed=5)
    without = {name: frame for name, frame in world.items() if name != "public_records"}
    computed = tabular_features(without, observation_dates(without)).columns
    assert not set(PUBLIC_RECORD_COLUMNS) & set(computed)
    assert set(PUBLIC_RECORD_COLUMNS) <= set(tabular_features(world, observation_dates(world)))


def test_every_kind_has_its_own_column_and_plain_words():
    assert set(OPEN_COLUMNS) == set(RECORD_KIND)
    for name in PUBLIC_RECORD_COLUMNS:
        declared = spec(name)
        assert declared.factor == "credit_history" and declared.risk != 0, name
        assert declared.words and "_" not in declared.words, name  # words, not a column name
        assert declared.missing_words is None  # no record gives no reason
    assert spec("open_court_judgments").words == "An unpaid court judgment"
    assert len({spec(n).words for n in PUBLIC_RECORD_COLUMNS}) == len(PUBLIC_RECORD_COLUMNS)


def test_the_synthetic_records_follow_latent_credit():
    world = generate_world(4_000, seed=8)
    records, truth = world["public_records"], world["truth"].set_index("user_id")
    holders = truth.index.isin(records["user_id"])
    assert 0.02 < holders.mean() < 0.08
    assert truth.loc[holders, "latent_credit"].mean() < truth.loc[~holders, "latent_credit"].mean()
    assert set(records["status"]) == {"open", "satisfied", "dismissed"}
    assert set(records["kind"]) == set(RECORD_KIND)
    latent = records["user_id"].map(truth["latent_credit"])
    satisfied = records["status"] == "satisfied"
    assert latent[satisfied].mean() > latent[records["status"] == "open"].mean()
    assert not truth.loc[truth["ring_id"] >= 0].index.isin(records["user_id"]).any()


# -- the model: monotone, worded ------------------------------------------------------------------
@pytest.fixture(scope="module")
def scored() -> dict:
    """A real XGBoost model on the tabular families of a 12,000-user world (~500 users owe
    on a public record; the graph families would add nothing these tests look at)."""
    world = generate_world(12_000, seed=3)
    features = tabular_features(world, observation_dates(world))
    labels = world["labels"].set_index("user_id")["defaulted"].astype(int)
    settings = load_settings(seed=3)
    split = pipeline.split_for(settings, labels)
    model = train_model(features, labels, train_index=split.train, valid_index=split.valid,
                        scale=settings.scale, seed=3)  # fmt: skip
    return {"model": model, "inputs": features, "records": world["public_records"]}


def test_the_synthetic_records_validate_without_a_reject(tmp_path):
    tables = generate_world(1_000, seed=9, out_dir=tmp_path)
    validated = validate_directory(tmp_path)["public_records"]
    assert len(validated.rows) == len(tables["public_records"]) > 20
    assert validated.rejects.empty


def test_the_model_uses_every_public_record_feature_monotonically(scored):
    model, inputs = scored["model"], scored["inputs"]
    assert set(PUBLIC_RECORD_COLUMNS) <= set(model.features) <= set(FEATURES)
    on_file = inputs["months_since_public_record"].notna()
    sample = pd.concat([inputs[on_file], inputs[~on_file].sample(300, random_state=0)])
    base = model.predict_pd(sample)
    worse = {  # NaN months (no record) stays NaN: a direction orders values, not missingness
        **{c: sample[c] + 1 for c in OPEN_COLUMNS.values()},
        "public_record_amount_outstanding": sample["public_record_amount_outstanding"] * 2 + 5000,
        "months_since_public_record": sample["months_since_public_record"] / 4,
        "public_record_satisfied_share": sample["public_record_satisfied_share"] / 2,
    }
    for column, value in worse.items():
        assert spec(column).risk == (
            -1 if column in ("months_since_public_record", "public_record_satisfied_share") else 1
        )
        moved = model.predict_pd(sample.assign(**{column: value}))
        assert (moved >= base - 1e-9).all(), column


def test_users_without_a_record_never_hear_one_and_debtors_do(scored):
    """Every reason, not only the top four: a record's points are always worded as a record."""
    model, inputs, records = scored["model"], scored["inputs"], scored["records"]
    words = {spec(c).words for c in PUBLIC_RECORD_COLUMNS}
    reasons = model.reasons(inputs, top=len(model.features)).str.split("; ")
    heard = reasons.map(lambda rs: bool(set(rs) & words))
    counted = records[records["status"] != "dismissed"]["user_id"]
    none = ~inputs.index.isin(counted)
    assert none.sum() > 10_000 and not heard[none].any()
    debtors = (inputs["public_record_amount_outstanding"] > 0).to_numpy()
    assert debtors.sum() > 300
    assert heard[debtors].mean() > 0.9  # an open record pulls the score down
    assert not reasons[debtors].map(lambda rs: any("_" in r for r in rs)).any()  # no column names
