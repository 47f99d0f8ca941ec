"""The synthetic world: deterministic, schema-conformant, and with the planted risk in place."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from creditgraph.ingest import synthetic
from creditgraph.ingest.schemas import SCHEMAS
from creditgraph.ingest.synthetic import WORLD_DESCRIPTION, WORLD_TRUTH_COLUMNS, generate_world

N = 2_000
SEED = 7
ID_PATTERN = {"user_id": r"u\d{7}", "merchant_id": r"m\d{7}", "account_id": r"a\d{7}"}
ID_PATTERN |= {"owner_id": ID_PATTERN["user_id"], "src": ID_PATTERN["user_id"]}
ID_PATTERN |= {"dst": ID_PATTERN["user_id"], "device_id": r"d[0-9a-f]{10}"}
ID_PATTERN |= {"payment_id": r"p\d{7}", "transfer_id": r"t\d{7}", "record_id": r"r\d{7}"}


@pytest.fixture(scope="module")
def world() -> dict[str, pd.DataFrame]:
    return generate_world(N, seed=SEED)


@pytest.fixture(scope="module")
def truth(world: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return world["truth"].set_index("user_id")


@pytest.fixture(scope="module")
def observation(world: dict[str, pd.DataFrame]) -> pd.Series:
    return world["labels"].set_index("user_id")["observation_date"]


def _kind_ok(series: pd.Series, kind: str) -> bool:
    checks = {
        "str": lambda s: pd.api.types.is_string_dtype(s) and s.map(type).eq(str).all(),
        "int": pd.api.types.is_integer_dtype,
        "float": pd.api.types.is_float_dtype,
        "bool": pd.api.types.is_bool_dtype,
        "date": lambda s: (
            pd.api.types.is_datetime64_dtype(s) and s.dropna().eq(s.dropna().dt.normalize()).all()
        ),
    }
    return bool(checks[kind](series))


def test_same_seed_same_world_and_other_seed_differs(world: dict[str, pd.DataFrame]) -> None:
    again = generate_world(N, seed=SEED)
    assert list(again) == list(world)
    for name, frame in world.items():
        pd.testing.assert_frame_equal(again[name], frame, obj=name)
    other = generate_world(N, seed=SEED + 1)
    assert not other["labels"].equals(world["labels"])
    assert not other["friendships"].equals(world["friendships"])


def test_every_table_conforms_to_its_schema(world: dict[str, pd.DataFrame]) -> None:
    assert set(world) == {*SCHEMAS, "truth"}
    for name, schema in SCHEMAS.items():
        frame = world[name]
        expected = [c for c in schema.columns if not c.personal]  # the world holds no PII
        assert list(frame.columns) == [c.name for c in expected], name
        assert len(frame) > 0, name
        for column in expected:
            values = frame[column.name]
            where = f"{name}.{column.name}"
            if column.required:
                assert values.notna().all(), where
            assert _kind_ok(values, column.kind), (where, values.dtype)
            if column.allowed is not None:
                assert set(values.unique()) <= set(column.allowed), where
            if column.min is not None:
                assert values.min() >= column.min, where
            if column.max is not None:
                assert values.max() <= column.max, where
            if column.name in ID_PATTERN:
                assert values.str.fullmatch(ID_PATTERN[column.name]).all(), where
            if column.not_before is not None:
                assert not (values < frame[column.not_before]).any(), where
            if column.given_when is not None:
                when, allowed = column.given_when
                assert values.notna().equals(frame[when].isin(allowed)), where
        if schema.key:
            assert not frame.duplicated(list(schema.key)).any(), name
        if schema.event_id:
            assert frame[schema.event_id].notna().all() and frame[schema.event_id].is_unique
        for column, target in schema.references.items():
            (target_key,) = SCHEMAS[target].key
            assert frame[column].isin(world[target][target_key]).all(), f"{name}.{column}"
        if {"src", "dst"} <= set(frame.columns):
            assert (frame["src"] != frame["dst"]).all(), name
    truth = world["truth"]
    assert list(truth.columns) == [c for c, _ in WORLD_TRUTH_COLUMNS]
    for column, kind in WORLD_TRUTH_COLUMNS:
        assert _kind_ok(truth[column], kind), column
    assert truth["user_id"].equals(world["users"]["user_id"])


def test_event_ids_number_the_rows_in_order(world: dict[str, pd.DataFrame]) -> None:
    """Payments and transfers carry ids 1..n in row order (payments by user then date,
    transfers by date), so a re-sent file is idempotent and a corrected row updates."""
    for name, prefix in (("payments", "p"), ("transfers", "t")):
        frame = world[name]
        number = frame[f"{name[:-1]}_id"].str.removeprefix(prefix).astype(int)
        assert number.tolist() == list(range(1, len(frame) + 1)), name
    assert world["transfers"]["date"].is_monotonic_increasing
    payments = world["payments"]
    assert payments["user_id"].is_monotonic_increasing
    assert (payments.groupby("user_id")["date"].diff().dropna() >= pd.Timedelta(0)).all()


def test_friendships_one_row_per_unordered_pair(world: dict[str, pd.DataFrame]) -> None:
    fr = world["friendships"]
    low = fr["src"].where(fr["src"] < fr["dst"], fr["dst"])
    high = fr["dst"].where(fr["src"] < fr["dst"], fr["src"])
    assert not pd.DataFrame({"a": low, "b": high}).duplicated().any()
    assert (fr["src"] < fr["dst"]).all()  # canonical order
    degree = pd.concat([fr["src"], fr["dst"]]).value_counts()
    assert 7 <= 2 * len(fr) / N <= 13  # average degree ~10
    assert degree.max() > 4 * degree.median()  # heavy tail


def test_merchant_owners_are_distinct_business_people(world: dict[str, pd.DataFrame]) -> None:
    merchants, users = world["merchants"], world["users"].set_index("user_id")
    assert merchants["owner_id"].is_unique
    assert (
        users.loc[merchants["owner_id"], "occupation"]
        .isin(["business_owner", "self_employed"])
        .all()
    )
    assert abs(len(merchants) - N / 25) <= 1


def test_history_on_or_before_observation_date(
    world: dict[str, pd.DataFrame], observation: pd.Series
) -> None:
    dated = {
        "repayments": [("user_id", "due_date")],
        "bills": [("user_id", "month")],
        "balances": [("user_id", "month")],
        "payments": [("user_id", "date")],
        "devices": [("user_id", "first_seen")],
        "transfers": [("src", "date"), ("dst", "date")],
        "friendships": [("src", "since"), ("dst", "since")],
        "public_records": [("user_id", "filed_date"), ("user_id", "satisfied_date")],
    }
    for name, pairs in dated.items():
        for user_column, date_column in pairs:
            frame = world[name]
            limit = frame[user_column].map(observation)
            dated_rows = frame[date_column].notna()
            assert (frame[date_column] <= limit)[dated_rows].all(), f"{name}.{date_column}"
    assert set(observation.unique()) == {pd.Timestamp("2024-12-31"), pd.Timestamp("2025-06-30")}
    assert 0.4 < (observation == pd.Timestamp("2024-12-31")).mean() < 0.6
    users = world["users"].set_index("user_id")
    assert (users["signup_date"] <= observation.reindex(users.index)).all()


def test_thin_file_share_and_definition(
    world: dict[str, pd.DataFrame], truth: pd.DataFrame
) -> None:
    assert 0.33 <= truth["thin_file"].mean() <= 0.47
    with_history = set(world["repayments"]["user_id"])
    assert (truth.index.isin(with_history) == ~truth["thin_file"]).all()
    ages = world["users"].set_index("user_id")["age"]
    assert ages[truth["thin_file"]].mean() < ages[~truth["thin_file"]].mean()


def test_default_rate_and_rings(world: dict[str, pd.DataFrame], truth: pd.DataFrame) -> None:
    labels = world["labels"].set_index("user_id")["defaulted"]
    assert 0.06 <= labels.mean() <= 0.12
    in_ring = truth["ring_id"] >= 0
    assert truth.loc[in_ring, "ring_id"].nunique() >= 3
    assert truth.loc[in_ring, "ring_id"].value_counts().between(5, 12).all()
    ring_rate, other_rate = labels[in_ring].mean(), labels[~in_ring].mean()
    assert ring_rate > 0.5 and ring_rate > 4 * other_rate
    # Ring members are recent accounts that share devices with each other.
    users = world["users"].set_index("user_id")
    obs = world["labels"].set_index("user_id")["observation_date"]
    age_days = (obs - users["signup_date"]).dt.days[in_ring]
    assert age_days.max() <= 190
    devices = world["devices"]
    ring_of = devices["user_id"].map(truth["ring_id"])
    shared = devices[ring_of >= 0].groupby("device_id")["user_id"].nunique()
    assert (shared >= 5).sum() >= truth.loc[in_ring, "ring_id"].nunique()


def test_friends_credit_correlates(world: dict[str, pd.DataFrame], truth: pd.DataFrame) -> None:
    fr = world["friendships"]
    src = truth["latent_credit"].reindex(fr["src"]).to_numpy()
    dst = truth["latent_credit"].reindex(fr["dst"]).to_numpy()
    assert np.corrcoef(src, dst)[0, 1] > 0.3
    same = (
        truth["community"].reindex(fr["src"]).to_numpy()
        == truth["community"].reindex(fr["dst"]).to_numpy()
    )
    assert 0.65 <= same.mean() <= 0.9


def test_latent_credit_drives_lateness(world: dict[str, pd.DataFrame], truth: pd.DataFrame) -> None:
    rep = world["repayments"]
    late = (rep["days_late"] > 0).groupby(rep["user_id"]).mean()
    assert np.corrcoef(late, truth["latent_credit"].reindex(late.index))[0, 1] < -0.3
    assert (rep["days_late"] >= 90).any() and (rep["amount_paid"] < rep["amount_due"]).any()


def test_graph_informs_thin_file_users(world: dict[str, pd.DataFrame], truth: pd.DataFrame) -> None:
    """Thin-file users have no repayments, but their friends' lateness and the default
    rate of their merchants' other customers both track their hidden credit."""
    thin = truth.index[truth["thin_file"]]
    latent = truth.loc[thin, "latent_credit"]
    rep, fr = world["repayments"], world["friendships"]
    late = (rep["days_late"] > 0).groupby(rep["user_id"]).mean()
    ends = pd.DataFrame(
        {"user": pd.concat([fr["src"], fr["dst"]]), "friend": pd.concat([fr["dst"], fr["src"]])}
    )
    friends_late = ends["friend"].map(late).groupby(ends["user"]).mean().reindex(thin)
    known = friends_late.notna()
    assert known.mean() > 0.8
    assert np.corrcoef(friends_late[known], latent[known])[0, 1] < -0.2

    labels = world["labels"].set_index("user_id")["defaulted"]
    pairs = world["payments"][["user_id", "merchant_id"]].drop_duplicates()
    pairs["d"] = pairs["user_id"].map(labels)
    by_merchant = pairs.groupby("merchant_id")["d"].agg(["sum", "count"])
    total = pairs["merchant_id"].map(by_merchant["sum"]) - pairs["d"]  # leave the user out
    others = pairs["merchant_id"].map(by_merchant["count"]) - 1
    rate = (total / others.where(others > 0)).groupby(pairs["user_id"]).mean().reindex(thin)
    known = rate.notna()
    assert np.corrcoef(rate[known], latent[known])[0, 1] < -0.2


def test_repayment_norms_shift_defaults_and_nothing_else(
    world: dict[str, pd.DataFrame], truth: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A community's repayment norm moves its members' default odds beyond their latent
    credit (log-odds ~ -1.7 latent + norm), and every behaviour table is the same world
    without it: only other members' defaults can reveal a norm."""
    assert (truth.groupby("community")["default_norm"].nunique() == 1).all()
    assert 0.6 < truth["default_norm"].std() < 0.8
    ordinary = truth.index[truth["ring_id"] < 0]
    defaulted = world["labels"].set_index("user_id")["defaulted"].reindex(ordinary)
    fit = LogisticRegression(C=np.inf).fit(
        truth.loc[ordinary, ["latent_credit", "default_norm"]], defaulted
    )
    latent_coef, norm_coef = fit.coef_[0]
    assert -2.2 < latent_coef < -1.2 and 0.6 < norm_coef < 1.4

    monkeypatch.setattr(synthetic, "_NORM_SD", 0.0)
    without = generate_world(N, seed=SEED)
    for name in SCHEMAS:
        if name != "labels":
            pd.testing.assert_frame_equal(without[name], world[name], obj=name)
    assert (without["truth"]["default_norm"] == 0).all()
    assert not without["labels"].equals(world["labels"])


def test_readme_describes_the_world_as_the_generator_does() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert WORLD_DESCRIPTION in readme


def test_merchants_outside_the_community_match_the_credit_tier(
    world: dict[str, pd.DataFrame], truth: pd.DataFrame
) -> None:
    """Each merchant's hidden tier is in its owner's truth row; users who shop outside
    their community pick merchants of their own credit tier far more often than chance."""
    owners = truth["owned_merchant_tier"] >= 0
    assert owners.sum() == len(world["merchants"])
    assert truth["credit_tier"].isin([0, 1, 2]).all()
    assert truth.groupby("credit_tier")["latent_credit"].mean().is_monotonic_increasing
    owner = world["merchants"].set_index("merchant_id")["owner_id"]
    pay = world["payments"]
    merchant_owner = pay["merchant_id"].map(owner)
    tier = merchant_owner.map(truth["owned_merchant_tier"]).to_numpy()
    outside = (merchant_owner.map(truth["community"])
               != pay["user_id"].map(truth["community"])).to_numpy()  # fmt: skip
    match = tier == pay["user_id"].map(truth["credit_tier"]).to_numpy()
    assert match[outside].mean() > 0.6  # chance: 1/3


def _normalised(frame: pd.DataFrame, columns: tuple[tuple[str, str], ...]) -> pd.DataFrame:
    out = {}
    for name, kind in columns:
        values = frame[name]
        if kind == "date":
            out[name] = pd.to_datetime(values).astype("datetime64[s]")
        elif kind == "str":
            out[name] = values.astype(object)
        else:
            out[name] = values.astype({"int": "int64", "float": "float64", "bool": "bool"}[kind])
    return pd.DataFrame(out)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_files_round_trip(tmp_path: Path, fmt: str) -> None:
    tables = generate_world(500, seed=3, out_dir=tmp_path, fmt=fmt)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.{fmt}" for n in tables)
    for name, frame in tables.items():
        columns = (
            WORLD_TRUTH_COLUMNS
            if name == "truth"
            else tuple((c.name, c.kind) for c in SCHEMAS[name].columns if not c.personal)
        )
        path = tmp_path / f"{name}.{fmt}"
        if fmt == "csv":
            strings = {c: str for c, k in columns if k in ("str", "date")}
            back = pd.read_csv(path, dtype=strings, keep_default_na=False)
            for column, kind in columns:
                if kind == "date":  # an optional date is left empty
                    given = back[column].loc[frame[column].notna().to_numpy()]
                    assert given.str.fullmatch(r"\d{4}-\d{2}-\d{2}").all(), column
                if kind == "bool":
                    assert set(pd.read_csv(path, dtype=str)[column]) <= {"true", "false"}
        else:
            back = pd.read_parquet(path, dtype_backend="pyarrow")
            for column, kind in columns:
                if kind == "date":
                    assert str(back[column].dtype).startswith("date32"), column
        assert list(back.columns) == [c for c, _ in columns], name
        pd.testing.assert_frame_equal(
            _normalised(back, columns), _normalised(frame, columns), obj=name
        )


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_world(500, out_dir=tmp_path, fmt="xlsx")
    with pytest.raises(ValueError):
        generate_world(10)


def test_a_one_community_world_has_no_community_effects() -> None:
    truth = generate_world(200, seed=4)["truth"]  # this seed draws one community of 200
    assert truth["community"].nunique() == 1
    assert (truth["default_norm"] == 0).all()
    assert np.isfinite(truth["latent_credit"]).all()
    assert abs(truth["latent_credit"].mean()) < 0.2


def test_description_names_every_file() -> None:
    for name in (*SCHEMAS, "truth"):
        assert f"`{name}`" in WORLD_DESCRIPTION
    assert re.search(r"How risk is planted", WORLD_DESCRIPTION)
