"""Cypher investigations: headers, exact answers on a hand-made graph, the synthetic world, safety.

Exact answers come from ``hand``, a world small enough to check on paper
(below); the synthetic world (2,000 users, loaded by the real ingest pipeline)
checks each investigation against the same answer computed with pandas or
networkx. Where a query has an embedded sibling, the Neo4j text is compared
with it on the same hand-made graph when ``NEO4J_URI`` is set.

Hand-made world (* = defaulted, ? = outcome unknown; the newest sign-up is b5, 2024-06-30)::

    community 1 (old accounts but n1):     a6 ── a7* ── a3* ── a4 ── a5*
                                           |            |
                             n1? ── a8* ── a1 ── a2 ────+      (also a8 ── a2)
    community 2 (signed up 2024-05/06):    b1* ── b2*,  b1 ── b3,  b2 ── b3,  b3 ── b4,  b5
    community 3: o1, o2? (business owners, no friends)

    devices: d1 = {b1, b2, b3, b4, a4}, d6 = {b1, b2, b3, b4}, d2 = {b4, b5}, d4 = {n1, a8},
             d5 = {a2, a3}, d3 = {a1}
    transfers: a1→a2, a2⇄a4, b1⇄b2, b1→b2→b3→b1, n1→a8
    merchants: o1 owns m1 (paid by a1, a2, a3*, a8*) and m2 (a1, b1*, b2*); o2 owns m3 (a2)
    public records (open unless said): a2 r1 1000 + r2 250, a3 r3 9000 (satisfied) + r6 300,
             a4 r4 500, n1 r5 700, b1 r7 400 (dismissed)
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any, get_args

import ladybug
import networkx as nx
import numpy as np
import pandas as pd
import pytest
from test_store_contract import NEO4J_SKIP_REASON
from typer.testing import CliRunner, Result

from creditgraph import queries
from creditgraph.cli import FormatOpt, app
from creditgraph.errors import QueryError, ReadOnlyViolation
from creditgraph.graph.algorithms import pagerank
from creditgraph.graph.embedded import EmbeddedStore
from creditgraph.graph.network import FriendGraph
from creditgraph.graph.readonly import check_read_only, strip_literals
from creditgraph.graph.store import GraphStore
from creditgraph.ingest.load import load_directory
from creditgraph.ingest.synthetic import generate_world
from creditgraph.queries.library import ROOT, parse_header
from creditgraph.queries.runner import FORMATS, jsonable
from creditgraph.settings import load_settings

SPECS = queries.list()
NAMES = [s.name for s in SPECS]
WITH_SIBLING = [s.name for s in SPECS if s.embedded_path is not None]
LATEST_SIGNUP = "2024-06-30"


# -- the hand-made world ------------------------------------------------------------------------
def _edges(pairs: list[tuple[str, str]], **columns: list) -> pd.DataFrame:
    frame = pd.DataFrame(pairs, columns=["src", "dst"])
    for name, values in columns.items():
        frame[name] = values
    return frame


def build_hand_world(store: GraphStore) -> None:
    """Load the world drawn in the module docstring, scores and graph properties included."""
    store.ensure_schema()
    users = pd.DataFrame(
        [  # user_id, signup, defaulted, community, score, prev_score, pagerank, occupation
            ("a1", "2019-03-01", False, 1, 620.0, 700.0, 1.2, "employee"),
            ("a2", "2018-05-10", False, 1, 640.0, 650.0, 1.8, "employee"),
            ("a3", "2020-01-15", True, 1, 480.0, 470.0, 2.5, "employee"),
            ("a4", "2017-07-07", False, 1, 700.0, 700.0, 0.9, "employee"),
            ("a5", "2021-02-02", True, 1, 430.0, 520.0, 0.5, "student"),
            ("a6", "2019-09-09", False, 1, 710.0, 690.0, 0.7, "employee"),
            ("a7", "2022-04-04", True, 1, 500.0, 505.0, 0.6, "employee"),
            ("a8", "2020-10-10", True, 1, 450.0, 458.0, 1.0, "unemployed"),
            ("n1", "2024-06-01", None, 1, 600.0, None, 0.4, "student"),
            ("b1", "2024-05-01", True, 2, 450.0, 600.0, 1.1, "student"),
            ("b2", "2024-05-03", True, 2, 470.0, 482.0, 1.0, "student"),
            ("b3", "2024-05-20", False, 2, 520.0, 520.0, 1.3, "student"),
            ("b4", "2024-06-10", False, 2, 560.0, None, 0.8, "student"),
            ("b5", LATEST_SIGNUP, False, 2, 580.0, None, 0.3, "student"),
            ("o1", "2015-01-01", False, 3, 800.0, 790.0, 0.9, "business_owner"),
            ("o2", "2016-01-01", None, 3, 750.0, 763.0, 0.9, "business_owner"),
        ],
        columns=["user_id", "signup_date", "defaulted", "community", "score", "prev_score",
                 "pagerank", "occupation"],
    )  # fmt: skip
    users["signup_date"] = pd.to_datetime(users["signup_date"])
    users["defaulted"] = users["defaulted"].astype("boolean")
    store.upsert_nodes("User", users[["user_id", "signup_date", "defaulted", "occupation"]])
    store.upsert_nodes(
        "Merchant",
        pd.DataFrame(
            {
                "merchant_id": ["m1", "m2", "m3"],
                "category": ["grocery", "restaurant", "apparel"],
                "city": ["Ashford", "Ashford", "Brookvale"],
                "opened_date": pd.to_datetime(["2018-01-01", "2019-01-01", "2020-01-01"]),
            }
        ),
    )
    store.upsert_nodes("Device", pd.DataFrame({"device_id": [f"d{i}" for i in range(1, 7)]}))
    friends = [("a1", "a2"), ("a2", "a3"), ("a3", "a4"), ("a4", "a5"), ("a1", "a6"),
               ("a6", "a7"), ("a7", "a3"), ("a1", "a8"), ("a8", "a2"), ("n1", "a8"),
               ("b1", "b2"), ("b1", "b3"), ("b2", "b3"), ("b3", "b4")]  # fmt: skip
    store.upsert_edges("FRIEND", _edges(friends, since=pd.Timestamp("2023-01-01")))
    transfers = [("a1", "a2", 2, 100.0), ("a2", "a4", 1, 50.0), ("a4", "a2", 1, 40.0),
                 ("b1", "b2", 3, 300.0), ("b2", "b1", 2, 250.0), ("b2", "b3", 1, 120.0),
                 ("b3", "b1", 1, 110.0), ("n1", "a8", 1, 20.0)]  # fmt: skip
    store.upsert_edges(
        "TRANSFER",
        _edges([t[:2] for t in transfers], n=[t[2] for t in transfers],
               amount=[t[3] for t in transfers]),
    )  # fmt: skip
    pays = [("a1", "m1", 3, 30.0), ("a2", "m1", 1, 10.0), ("a3", "m1", 2, 50.0),
            ("a8", "m1", 1, 5.0), ("a1", "m2", 1, 20.0), ("b1", "m2", 4, 80.0),
            ("b2", "m2", 1, 15.0), ("a2", "m3", 2, 40.0)]  # fmt: skip
    store.upsert_edges(
        "PAYS", _edges([p[:2] for p in pays], n=[p[2] for p in pays], amount=[p[3] for p in pays])
    )
    store.upsert_edges("OWNS", _edges([("o1", "m1"), ("o1", "m2"), ("o2", "m3")]))
    uses = [("b1", "d1"), ("b2", "d1"), ("b3", "d1"), ("b4", "d1"), ("a4", "d1"),
            ("b4", "d2"), ("b5", "d2"), ("a1", "d3"), ("n1", "d4"), ("a8", "d4"),
            ("a2", "d5"), ("a3", "d5"), ("b1", "d6"), ("b2", "d6"), ("b3", "d6"),
            ("b4", "d6")]  # fmt: skip
    store.upsert_edges("USES", _edges(uses))
    records = [("a2", "r1", "court_judgment", "2022-01-01", 1000.0, "open", None),
               ("a2", "r2", "tax_arrears", "2023-05-01", 250.0, "open", None),
               ("a3", "r3", "bankruptcy", "2020-01-01", 9000.0, "satisfied", "2021-06-01"),
               ("a4", "r4", "court_judgment", "2021-01-01", 500.0, "open", None),
               ("n1", "r5", "enforcement_list", "2024-01-01", 700.0, "open", None),
               ("a3", "r6", "tax_arrears", "2023-02-01", 300.0, "open", None),
               ("b1", "r7", "court_judgment", "2024-05-01", 400.0, "dismissed", None)]  # fmt: skip
    record = pd.DataFrame(records, columns=["user_id", "record_id", "kind", "filed_date",
                                            "amount", "status", "satisfied_date"])  # fmt: skip
    record[["filed_date", "satisfied_date"]] = record[["filed_date", "satisfied_date"]].apply(
        pd.to_datetime
    )
    store.upsert_nodes("PublicRecord", record.drop(columns="user_id").assign(source="court"))
    owners = record[["user_id", "record_id"]].set_axis(["src", "dst"], axis=1)
    store.upsert_edges("HAS_RECORD", owners)
    props = users.set_index("user_id")[["score", "prev_score", "community", "pagerank"]]
    props = props.assign(
        pd=(1 / (1 + np.exp((props["score"] - 500) / 50))).round(4),
        model_id="m-new",
        prev_model_id=np.where(props["prev_score"].notna(), "m-old", None),
    )
    store.write_properties("User", props)


@pytest.fixture(scope="module")
def hand() -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(None)
    build_hand_world(store)
    yield store
    store.close()


def rows(frame: pd.DataFrame, *columns: str) -> list[tuple]:
    """The chosen columns as plain tuples (lists, dates and missing values made comparable)."""
    picked = frame[list(columns)] if columns else frame
    return [tuple(jsonable(v) for v in row) for row in picked.itertuples(index=False)]


# One call per investigation on the hand-made world: the exact tests and the Neo4j comparison.
HAND_CALLS: dict[str, dict[str, Any]] = {
    "friend_cluster": {"user_id": "a1", "hops": 2},
    "defaulters_nearby": {"user_id": "a1"},
    "shortest_friend_path": {"from_user": "a1", "to_user": "a5"},
    "defaulter_exposure": {},
    "community_risk": {"community": 1},
    "top_pagerank": {"community": 1, "limit": 3},
    "shared_merchants": {"user_a": "a1", "user_b": "a2"},
    "risky_merchants": {"min_customers": 2},
    "owner_customer_quality": {"owner_id": "o1"},
    "score_drops": {},
    "shared_devices": {},
    "reciprocal_transfers": {},
    "new_accounts_near_defaulters": {},
    "fraud_rings": {},
    "open_record_exposure": {},
}


# -- the library and its headers ------------------------------------------------------------------
def test_library_has_a_dozen_documented_investigations():
    assert len(SPECS) >= 12
    assert set(HAND_CALLS) == set(NAMES), "every investigation needs a hand-world call"
    for spec in SPECS:
        assert spec.path.parent.parent == ROOT and spec.topic == spec.path.parent.name
        assert spec.description and f"query run {spec.name}" in spec.example
        for p in spec.params:
            if p.required:
                assert f"{p.name}=" in spec.example, f"{spec.name}: example lacks {p.name}"


@pytest.mark.parametrize("name", NAMES)
def test_header_declares_exactly_the_parameters_used(name):
    spec = queries.describe(name)
    texts = [spec.text("neo4j")] + ([spec.text("embedded")] if spec.embedded_path else [])
    for text in texts:
        used = set(re.findall(r"\$([A-Za-z_]\w*)", strip_literals(text)))
        assert used == set(spec.param_names), f"{name}: declared {spec.param_names}, uses {used}"


@pytest.mark.parametrize("name", NAMES)
def test_header_lines_follow_the_linter_format(name):
    spec = queries.describe(name)
    header = []
    for line in spec.path.read_text().splitlines():
        if not line.startswith("//"):
            break
        header.append(line)
    assert header[0] == f"// name: {name}"
    params = [line for line in header if line.startswith("// params:")]
    pattern = re.compile(r"^// params: [a-z_]+ \((str|int|float|bool|date), [^)]+\): \S.*$")
    assert params == ["// params: none"] or all(pattern.match(line) for line in params), params


@pytest.mark.parametrize("name", NAMES)
def test_every_text_passes_the_read_only_guard(name):
    spec = queries.describe(name)
    check_read_only(spec.text("neo4j"))
    check_read_only(spec.text("embedded"))


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("// params: none\n// description: d\n// example: e\n", "name:"),
        ("// name: other\n// params: none\n// description: d\n// example: e\n", "file name"),
        ("// name: q\n// description: d\n// example: e\n", "params: none"),
        ("// name: q\n// params: k int 2 meaning\n// description: d\n// example: e\n", "bad"),
        ("// name: q\n// params: k (long, 2): m\n// description: d\n// example: e\n", "type"),
        ("// name: q\n// params: k (int, two): m\n// description: d\n// example: e\n", "int"),
        ("// name: q\n// params: timeout_s (int, 2): m\n// description: d\n// example: e\n",
         "reserved"),
        ("// name: q\n// params: none\n// example: e\n", "description"),
        ("// name: q\n// params: limit (float, 2): m\n// description: d\n// example: e\n",
         "must be an int"),
    ],
)  # fmt: skip
def test_malformed_headers_are_refused(tmp_path, header, message):
    path = tmp_path / "q.cypher"
    path.write_text(header + "MATCH (u:User) RETURN u.user_id AS id\n")
    with pytest.raises(QueryError, match=message):
        parse_header(path)


def test_describe_list_show_and_catalogue():
    spec = queries.describe("friend_cluster")
    assert spec.param("hops").default == 2 and spec.param("user_id").required
    assert spec.signature() == "user_id: str, hops: int = 2, limit: int = 200"
    assert queries.describe("network/friend_cluster") is spec
    with pytest.raises(QueryError, match="did you mean friend_cluster"):
        queries.describe("friend_clusters")
    with pytest.raises(QueryError, match="no investigation"):
        queries.describe("fraud/friend_cluster")
    shown = queries.show("shortest_friend_path")
    assert "shortestPath(" in shown and "SHORTEST 1..6" in shown
    table = queries.catalogue()
    assert table["name"].tolist() == NAMES and table["description"].str.len().min() > 10


def test_readme_lists_every_investigation():
    readme = (ROOT.parent / "README.md").read_text()  # the project README
    for spec in SPECS:
        assert f"`{spec.name}`" in readme and spec.description in readme, spec.name


def test_dialect_comes_from_the_store(hand):
    assert queries.dialect_of(hand) == "embedded"
    assert queries.dialect_of(_FakeStore()) == "neo4j"
    assert queries.dialect_of(type("S", (), {"dialect": "embedded"})()) == "embedded"


# -- exact answers on the hand-made world ---------------------------------------------------------
def test_friend_cluster_by_hops(hand):
    two = queries.run(hand, "friend_cluster", user_id="a1", hops=2)
    assert rows(two, "user_id", "hops") == [
        ("a2", 1), ("a6", 1), ("a8", 1), ("a3", 2), ("a7", 2), ("n1", 2),
    ]  # fmt: skip
    assert rows(two.head(1), "score", "defaulted") == [(640.0, False)]
    assert rows(two.tail(1), "defaulted") == [(None,)]  # n1's outcome is unknown
    one = queries.run(hand, "friend_cluster", user_id="a1", hops=1)
    assert one["user_id"].tolist() == ["a2", "a6", "a8"]
    three = queries.run(hand, "friend_cluster", user_id="a1", hops=3)
    assert rows(three.tail(1), "user_id", "hops") == [("a4", 3)]  # a5 is 4 hops away
    assert queries.run(hand, "friend_cluster", user_id="nobody").empty


def test_defaulters_nearby_gives_every_path_within_two_hops(hand):
    found = queries.run(hand, "defaulters_nearby", user_id="a1")
    assert rows(found) == [
        ("a8", 1, ["a1", "a8"]),
        ("a3", 2, ["a1", "a2", "a3"]),
        ("a7", 2, ["a1", "a6", "a7"]),
        ("a8", 2, ["a1", "a2", "a8"]),
    ]  # a5 (4 hops) and a3 via a8-a2 (3 hops) are too far


def test_shortest_friend_path(hand):
    path = queries.run(hand, "shortest_friend_path", from_user="a1", to_user="a5")
    assert rows(path) == [(4, ["a1", "a2", "a3", "a4", "a5"], [620.0, 640.0, 480.0, 700.0, 430.0])]
    assert queries.run(hand, "shortest_friend_path", from_user="a1", to_user="b1").empty


def test_defaulter_exposure(hand):
    found = queries.run(hand, "defaulter_exposure", min_defaulted=2)
    assert rows(found, "user_id", "friends", "defaulted_friends", "defaulted_share") == [
        ("a4", 2, 2, 1.0), ("a2", 3, 2, 0.667), ("b3", 3, 2, 0.667),
    ]  # fmt: skip
    assert len(queries.run(hand, "defaulter_exposure")) == 10


def test_community_risk(hand):
    summary = queries.run(hand, "community_risk", community=1)
    assert rows(summary) == [(1, 9, 9, 570.0, 430.0, 0.3249, 8, 4, 0.5, 3)]
    assert list(summary.columns) == [
        "community", "members", "scored", "mean_score", "min_score", "mean_pd", "labelled",
        "defaulters", "default_rate", "low_score_members",
    ]  # fmt: skip
    strict = queries.run(hand, "community_risk", community=1, low_score=460)
    assert strict["low_score_members"].tolist() == [2]
    assert rows(queries.run(hand, "community_risk", community=99), "members") == [(0,)]


def test_top_pagerank(hand):
    top = queries.run(hand, "top_pagerank", community=1, limit=3)
    assert rows(top, "user_id", "pagerank", "friends") == [
        ("a3", 2.5, 3), ("a2", 1.8, 3), ("a1", 1.2, 3),
    ]  # fmt: skip


def test_shared_merchants(hand):
    shared = queries.run(hand, "shared_merchants", user_a="a1", user_b="a2")
    assert rows(shared) == [("m1", "grocery", "Ashford", 3, 30.0, 1, 10.0)]
    assert queries.run(hand, "shared_merchants", user_a="a1", user_b="a1").empty


def test_risky_merchants(hand):
    ranked = queries.run(hand, "risky_merchants", min_customers=2)
    assert rows(ranked, "merchant_id", "customers", "defaulters", "default_rate") == [
        ("m2", 3, 2, 0.6667), ("m1", 4, 2, 0.5),
    ]  # fmt: skip
    assert rows(ranked, "mean_customer_score") == [(513.3,), (547.5,)]
    assert queries.run(hand, "risky_merchants").empty  # default: 5 customers


def test_owner_customer_quality(hand):
    quality = queries.run(hand, "owner_customer_quality", owner_id="o1")
    assert rows(
        quality, "merchant_id", "owner_score", "customers", "repeat_customers", "payments",
        "revenue", "mean_customer_score", "low_score_customers", "default_rate",
    ) == [
        ("m2", 800.0, 3, 1, 6, 115.0, 513.3, 2, 0.6667),
        ("m1", 800.0, 4, 2, 7, 95.0, 547.5, 2, 0.5),
    ]  # fmt: skip


def test_score_drops(hand):
    drops = queries.run(hand, "score_drops", min_drop=50)
    assert rows(drops, "user_id", "prev_model_id", "model_id", "prev_score", "score") == [
        ("b1", "m-old", "m-new", 600.0, 450.0),
        ("a5", "m-old", "m-new", 520.0, 430.0),
        ("a1", "m-old", "m-new", 700.0, 620.0),
    ]
    everyone = queries.run(hand, "score_drops")
    assert everyone["score_drop"].tolist() == [150, 90, 80, 13, 12, 10, 8, 5]  # no rises, no ties


def test_shared_devices(hand):
    devices = queries.run(hand, "shared_devices")
    assert rows(devices) == [
        ("d1", 5, 2, "2017-07-07", "2024-06-10"),
        ("d6", 4, 2, "2024-05-01", "2024-06-10"),
    ]


def test_reciprocal_transfers(hand):
    loops = queries.run(hand, "reciprocal_transfers")
    assert rows(loops) == [
        (2, ["b1", "b2"], 5, 550.0),
        (2, ["a2", "a4"], 2, 90.0),
        (3, ["b1", "b2", "b3"], 5, 530.0),
    ]
    big = queries.run(hand, "reciprocal_transfers", min_amount=100)
    assert rows(big, "members") == [(["b1", "b2"],), (["b1", "b2", "b3"],)]


def test_new_accounts_near_defaulters(hand):
    found = queries.run(hand, "new_accounts_near_defaulters")
    assert rows(found, "user_id", "defaulter_friends", "device_sharers", "transfer_partners") == [
        ("b3", 2, 2, 2), ("b1", 1, 1, 1), ("b2", 1, 1, 1), ("n1", 1, 1, 1), ("b4", 0, 2, 0),
    ]  # fmt: skip
    # b5 is new too, but linked to no defaulter.
    # 40 days back from the newest sign-up (2024-06-30) reaches 2024-05-21: b4 and n1 only.
    assert queries.run(hand, "new_accounts_near_defaulters", recent_days=40)[
        "user_id"
    ].tolist() == ["n1", "b4"]


def test_fraud_rings(hand):
    rings = queries.run(hand, "fraud_rings")
    assert rows(rings) == [(["b1", "b2", "b3", "b4"], 4, ["d1", "d6"], 4, 0.667, 4, 2)]
    assert queries.run(hand, "fraud_rings", min_size=5).empty  # a4 on d1 is not recent
    assert queries.run(hand, "fraud_rings", recent_days=30).empty


def test_open_record_exposure(hand):
    found = queries.run(hand, "open_record_exposure")
    assert rows(found) == [  # a3's satisfied r3 and b1's dismissed r7 are not open
        ("a2", 2, 1250.0, "2023-05-01", 3, 1, 2, 100.0, 640.0),  # a1 sent a2 100
        ("n1", 1, 700.0, "2024-01-01", 1, 0, 1, 0.0, 600.0),
        ("a4", 1, 500.0, "2021-01-01", 2, 1, 2, 0.0, 700.0),  # a2 -> a4: not a friend
        ("a3", 1, 300.0, "2023-02-01", 3, 2, 1, 0.0, 480.0),
    ]
    assert list(found.columns) == [
        "user_id", "open_records", "amount_open", "latest_filed", "friends",
        "friends_with_open_records", "defaulted_friends", "received_from_friends", "score",
    ]  # fmt: skip
    assert queries.run(hand, "open_record_exposure", min_amount=600)["user_id"].tolist() == [
        "a2", "n1",
    ]  # fmt: skip


@pytest.mark.parametrize("name", WITH_SIBLING)
def test_neo4j_text_matches_sibling_wherever_embedded_can_run_it(hand, name):
    """A sibling must exist because the dialects differ: the Neo4j text fails here, or agrees."""
    spec = queries.describe(name)
    values = spec.bind(HAND_CALLS[name])
    try:
        main = hand.query(spec.text("neo4j"), values)
    except QueryError:
        return  # the embedded engine cannot run the Neo4j text: the sibling is needed
    assert rows(main) == rows(queries.run(hand, name, **HAND_CALLS[name]))


# -- the runner: parameters, limits, timeouts ----------------------------------------------------
def test_parameter_errors_name_the_parameter_and_type(hand):
    with pytest.raises(QueryError, match="unknown parameter 'depth' for friend_cluster"):
        queries.run(hand, "friend_cluster", user_id="a1", depth=2)
    with pytest.raises(QueryError, match="needs parameter 'user_id' \\(str\\)"):
        queries.run(hand, "friend_cluster")
    with pytest.raises(QueryError, match="'hops' of friend_cluster expects int, got '2'"):
        queries.run(hand, "friend_cluster", user_id="a1", hops="2")
    with pytest.raises(QueryError, match="'hops' of friend_cluster expects int, got True"):
        queries.run(hand, "friend_cluster", user_id="a1", hops=True)
    with pytest.raises(QueryError, match="'user_id' of friend_cluster expects str, got 7"):
        queries.run(hand, "friend_cluster", user_id=7)
    with pytest.raises(QueryError, match="'min_drop' of score_drops expects float"):
        queries.run(hand, "score_drops", min_drop="a lot")
    # ints are fine where floats are expected, and a mapping works like keywords
    assert len(queries.run(hand, "score_drops", {"min_drop": 50})) == 3


def test_limit_caps_rows_and_sets_the_declared_limit(hand, monkeypatch):
    assert len(queries.run(hand, "friend_cluster", user_id="a1", limit=2)) == 2
    assert len(queries.run(hand, "shared_devices", limit=1)) == 1
    # a query without $limit is still truncated
    assert len(queries.run(hand, "reciprocal_transfers", limit=2)) == 2
    sent: dict[str, Any] = {}
    monkeypatch.setattr(hand, "query", lambda text, params: sent.update(params) or pd.DataFrame())
    queries.run(hand, "score_drops", limit=7)
    assert sent["limit"] == 7
    for bad in (0, -1):
        with pytest.raises(QueryError, match="limit must be a positive int, got"):
            queries.run(hand, "score_drops", limit=bad)
    for bad in (2.5, True):
        with pytest.raises(QueryError, match="'limit' of score_drops expects int"):
            queries.run(hand, "score_drops", limit=bad)
        with pytest.raises(QueryError, match="limit must be a positive int, got"):
            queries.run(hand, "shared_merchants", user_a="a1", user_b="a2", limit=bad)


class _FakeStore:
    """Records what ``query`` receives; optionally takes ``timeout_s``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict, float | None]] = []

    def query(self, cypher: str, params: dict | None = None) -> pd.DataFrame:
        self.calls.append((cypher, dict(params or {}), None))
        return pd.DataFrame({"x": [1, 2, 3]})


class _TimedStore(_FakeStore):
    def query(
        self, cypher: str, params: dict | None = None, timeout_s: float | None = None
    ) -> pd.DataFrame:
        self.calls.append((cypher, dict(params or {}), timeout_s))
        return pd.DataFrame({"x": [1, 2, 3]})


def test_timeout_reaches_stores_that_take_one():
    store = _TimedStore()
    queries.run(store, "score_drops", timeout_s=2.5)
    queries.run_cypher(store, "MATCH (u:User) RETURN u.user_id AS id", timeout_s=1)
    assert [c[2] for c in store.calls] == [2.5, 1]
    with pytest.raises(QueryError, match="timeout_s must be a positive number of seconds"):
        queries.run(store, "score_drops", timeout_s=0)


def test_timeout_on_a_store_without_one_warns_and_runs():
    store = _FakeStore()
    with pytest.warns(UserWarning, match="takes no timeout_s"):
        frame = queries.run(store, "score_drops", timeout_s=1.0, limit=2)
    assert len(frame) == 2 and store.calls[0][1]["limit"] == 2


def test_runner_picks_the_text_for_the_store_dialect(hand, monkeypatch):
    neo4j = _FakeStore()
    queries.run(neo4j, "fraud_rings")
    assert "duration({days: $recent_days})" in neo4j.calls[0][0]
    sent: list[str] = []
    monkeypatch.setattr(hand, "query", lambda text, params: sent.append(text) or pd.DataFrame())
    queries.run(hand, "fraud_rings")
    queries.run(hand, "score_drops")  # no sibling: the one text serves both
    assert "to_days($recent_days)" in sent[0]
    assert sent[1] == queries.describe("score_drops").path.read_text()


def test_embedded_store_timeout_interrupts_a_long_query():
    store = EmbeddedStore(None, query_timeout_ms=100)
    store.ensure_schema()
    with pytest.raises(QueryError, match="Interrupted"):
        queries.run_cypher(
            store, "UNWIND range(1, 100000) AS x UNWIND range(1, 100000) AS y RETURN sum(x * y)"
        )
    store.close()


def test_limit_given_twice_must_agree(hand):
    assert len(queries.run(hand, "top_pagerank", {"community": 1, "limit": 2})) == 2
    assert len(queries.run(hand, "top_pagerank", {"community": 1, "limit": 2}, limit=2)) == 2
    with pytest.raises(QueryError, match="limit given twice \\(2 as a parameter, 3"):
        queries.run(hand, "top_pagerank", {"community": 1, "limit": 2}, limit=3)


def test_library_limit_goes_into_the_statement(hand, monkeypatch):
    """A query without ``$limit`` gets ``LIMIT n`` in its text; the store is told the limit."""
    sent: list[tuple[str, dict[str, Any]]] = []
    query = hand.query

    def spy(text: str, params: dict, **options: Any) -> pd.DataFrame:
        sent.append((text, options))
        return query(text, params, **options)

    monkeypatch.setattr(hand, "query", spy)
    assert len(queries.run(hand, "shared_merchants", user_a="a1", user_b="a2", limit=1)) == 1
    queries.run(hand, "score_drops", limit=2)
    assert len(queries.run(hand, "reciprocal_transfers", limit=1)) == 1
    (merchants, to_merchants), (drops, to_drops), (loops, _) = sent
    assert merchants.rstrip().endswith("merchant_id LIMIT 1") and to_merchants["limit"] == 1
    assert drops == queries.describe("score_drops").text("embedded")  # limits itself: $limit
    assert to_drops["limit"] == 2
    # UNION ALL: a LIMIT would bind its last part only, so the rows are trimmed afterwards.
    assert loops == queries.describe("reciprocal_transfers").text("embedded")


# 10^10 rows of which one in a thousand pass the filter: the engine can neither factorise
# them nor finish in reasonable time (about a minute, then the timeout). Only a LIMIT pushed
# into the statement brings the first rows back.
HUGE = "UNWIND range(1, 100000) AS x UNWIND range(1, 100000) AS y"
SPARSE = f"{HUGE} WITH x, y WHERE (x + y) % 1000 = 0 RETURN x, y"


def test_a_huge_result_with_a_limit_stops_after_the_limit(memory_store):
    frame = queries.run_cypher(memory_store, SPARSE, limit=5, timeout_s=20)
    assert len(frame) == 5 and ((frame["x"] + frame["y"]) % 1000 == 0).all()


def test_the_embedded_store_reads_only_the_rows_it_returns(memory_store, monkeypatch):
    """The engine factorises a cross join (10^10 rows here); reading must not flatten it."""
    convert = ladybug.QueryResult.get_as_arrow

    def guarded(result: ladybug.QueryResult, *args: Any, **kwargs: Any) -> Any:
        assert result.get_num_tuples() <= 1_000, "the whole result was converted"
        return convert(result, *args, **kwargs)

    monkeypatch.setattr(ladybug.QueryResult, "get_as_arrow", guarded)
    frame = memory_store.query(f"{HUGE} RETURN x, y", limit=5)  # as sent: no LIMIT in it
    assert len(frame) == 5 and frame.columns.tolist() == ["x", "y"]


def test_rows_read_one_by_one_have_the_types_of_a_converted_result(hand):
    statement = (
        "MATCH (u:User) RETURN u.user_id AS id, u.signup_date AS signup, u.score AS score, "
        "u.prev_score AS prev, u.defaulted AS defaulted, [u.user_id] AS ids, "
        "sum(u.community) AS community, u AS node ORDER BY prev, id"
    )
    for n in (3, 15):  # 16 users: both read row by row
        read = hand.query(statement, limit=n)
        pd.testing.assert_frame_equal(read, hand.query(f"{statement} LIMIT {n}"))


# -- the command line: limits, formats, a read-only store -----------------------------------------
def _hand_data_dir(data: Path) -> Path:
    with EmbeddedStore(versions=load_settings(data_dir=data).paths.graph_versions()) as store:
        build_hand_world(store)
    return data


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory) -> Path:
    """A data directory whose embedded store holds the hand-made world."""
    return _hand_data_dir(tmp_path_factory.mktemp("cli"))


def _cli(data: Path, *args: str) -> Result:
    return CliRunner().invoke(app, [*args, "--data-dir", str(data)])


def test_cli_param_limit_wins_and_both_limits_must_agree(cli_dir):
    def ids(*args: str) -> list[str]:
        out = _cli(cli_dir, "query", "run", "top_pagerank", "--param", "community=1",
                   "--format", "json", *args)  # fmt: skip
        assert out.exit_code == 0, out.output
        return [row["user_id"] for row in json.loads(out.stdout)]

    assert ids("--param", "limit=2") == ["a3", "a2"]
    assert ids("--limit", "2") == ["a3", "a2"]
    assert ids("--limit", "2", "--param", "limit=2") == ["a3", "a2"]
    assert len(ids()) == 9  # the declared default (10) applies: community 1 has 9 users
    clash = _cli(cli_dir, "query", "run", "top_pagerank", "--param", "community=1",
                 "--param", "limit=2", "--limit", "3")  # fmt: skip
    assert clash.exit_code == 2 and "limit given twice" in " ".join(clash.output.split())


@pytest.mark.parametrize(
    "command",
    [["query", "run", "top_pagerank", "--param", "community=1"],
     ["cypher", "MATCH (u:User) RETURN u.user_id AS id"]],
)  # fmt: skip
def test_cli_format_is_checked_before_anything_runs(cli_dir, monkeypatch, command):
    def must_not_run(*args: Any, **kwargs: Any) -> pd.DataFrame:
        raise AssertionError("the statement ran before the format was checked")

    monkeypatch.setattr("creditgraph.queries.runner._read", must_not_run)
    out = _cli(cli_dir, *command, "--format", "xml")
    assert out.exit_code == 2 and isinstance(out.exception, SystemExit)
    assert "'xml' is not one of" in out.output and "Traceback" not in out.output
    assert get_args(get_args(FormatOpt)[0]) == FORMATS  # the choices are the formats


def test_cli_cypher_limit_stops_a_huge_result_early(cli_dir):
    out = _cli(cli_dir, "cypher", SPARSE, "--limit", "5", "--format", "json", "--timeout", "20")
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.stdout)) == 5


def test_cli_opens_the_embedded_store_read_only(tmp_path, monkeypatch):
    """With the text check switched off, the engine itself refuses: nothing persists."""
    data = _hand_data_dir(tmp_path / "data")
    for where in ("creditgraph.queries.runner.check_read_only",
                  "creditgraph.graph.embedded.check_read_only"):  # fmt: skip
        monkeypatch.setattr(where, lambda cypher: None)
    monkeypatch.setattr("creditgraph.queries.runner.with_limit", lambda cypher, limit: cypher)
    out = _cli(data, "cypher", "COMMENT ON TABLE User IS 'pwned'")
    assert out.exit_code == 2 and "read-only" in out.output
    counted = _cli(data, "cypher", "MATCH (u:User) RETURN count(u) AS n", "--format", "json")
    assert json.loads(counted.stdout) == [{"n": 16}]
    with EmbeddedStore(versions=load_settings(data_dir=data).paths.graph_versions()) as store:
        tables = store.query("CALL show_tables() RETURN name, comment")
    assert dict(zip(tables["name"], tables["comment"], strict=True))["User"] == ""
    missing = _cli(tmp_path / "empty", "cypher", "RETURN 1 AS x")
    assert missing.exit_code == 2 and "no embedded store" in missing.output
    assert not (tmp_path / "empty").exists()  # a read creates nothing


# -- read-only, for real ---------------------------------------------------------------------------
def snapshot(store: GraphStore) -> tuple:
    """Counts of every label and relationship type, and every user's score."""
    counts = tuple(
        int(store.query(f"MATCH (n:{label}) RETURN count(n) AS n")["n"].iloc[0])
        for label in ("User", "Merchant", "Device")
    ) + tuple(
        int(store.query(f"MATCH ()-[r:{rel}]->() RETURN count(r) AS n")["n"].iloc[0])
        for rel in ("FRIEND", "TRANSFER", "PAYS", "OWNS", "USES")
    )
    scores = store.query("MATCH (u:User) RETURN u.user_id AS id, u.score AS s ORDER BY id")
    return counts, tuple(scores.itertuples(index=False))


WRITES = [
    "MATCH (u:User) SET u.score = 950",
    "MATCH (u:User) DETACH DELETE u",
    "CREATE (:User {user_id: 'mallory'})",
    "MERGE (u:User {user_id: 'mallory'}) RETURN u",
    "MATCH (u:User) REMOVE u.score",
    "MATCH (u:User) RETURN u.user_id; MATCH (u:User) DETACH DELETE u",
    "COPY User FROM 'users.csv'",
    "ALTER TABLE User DROP score",
    "DROP TABLE FRIEND",
    "match (u:User) set u.score = 950 return u",
    "MATCH (u:User) WITH u LIMIT 1 CALL { WITH u DELETE u }",
    "CALL apoc.periodic.iterate('MATCH (u) RETURN u', 'DETACH DELETE u', {})",
]


@pytest.mark.parametrize("statement", WRITES)
def test_adhoc_writes_are_refused_and_change_nothing(hand, statement):
    before = snapshot(hand)
    with pytest.raises(ReadOnlyViolation):
        queries.run_cypher(hand, statement)
    assert snapshot(hand) == before


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("friend_cluster", {"user_id": "a1'}) DETACH DELETE u //"}),
        ("shared_merchants", {"user_a": "a1", "user_b": "a2' OR true SET m.city = 'x"}),
        ("shortest_friend_path", {"from_user": "a1\"}) MATCH (n) DETACH DELETE n //",
                                  "to_user": "a5"}),
        ("owner_customer_quality", {"owner_id": "o1'}) MATCH (n) DETACH DELETE n //"}),
    ],
)  # fmt: skip
def test_injection_through_parameter_values_changes_nothing(hand, name, params):
    before = snapshot(hand)
    frame = queries.run(hand, name, **params)
    assert snapshot(hand) == before
    assert frame.empty  # the whole value is compared with ids, as one string
    cli = queries.parse_params([f"{k}={v}" for k, v in params.items()], name)
    queries.run(hand, name, cli)
    assert snapshot(hand) == before


def test_adhoc_parameters_travel_as_values(hand):
    before = snapshot(hand)
    evil = "x' }) DETACH DELETE u //"
    found = queries.run_cypher(
        hand, "MATCH (u:User) WHERE u.user_id = $id RETURN u.user_id AS id", {"id": evil}
    )
    assert found.empty and snapshot(hand) == before


def test_a_library_text_that_writes_is_refused_before_it_runs(hand, tmp_path, monkeypatch):
    path = tmp_path / "wipe_scores.cypher"
    path.write_text(
        "// name: wipe_scores\n// params: none\n// description: d\n"
        "// example: creditgraph query run wipe_scores\n"
        "MATCH (u:User) SET u.score = null RETURN count(u) AS n\n"
    )
    monkeypatch.setattr("creditgraph.queries.runner.describe", lambda name: parse_header(path))
    before = snapshot(hand)
    with pytest.raises(ReadOnlyViolation, match="SET"):
        queries.run(hand, "wipe_scores")
    assert snapshot(hand) == before


# -- command-line helpers --------------------------------------------------------------------------
def test_parse_params_uses_declared_types():
    assert queries.parse_params(["user_id=007", "hops=3"], "friend_cluster") == {
        "user_id": "007",
        "hops": 3,
    }
    assert queries.parse_params(["min_drop=12.5", "limit=5"], "score_drops") == {
        "min_drop": 12.5,
        "limit": 5,
    }
    with pytest.raises(QueryError, match="'hops' of friend_cluster expects int, got 'two'"):
        queries.parse_params(["hops=two"], "friend_cluster")
    with pytest.raises(QueryError, match="unknown parameter 'depth'"):
        queries.parse_params(["depth=2"], "friend_cluster")
    with pytest.raises(QueryError, match="expected name=value"):
        queries.parse_params(["hops"], "friend_cluster")
    with pytest.raises(QueryError, match="given twice"):
        queries.parse_params(["hops=1", "hops=2"], "friend_cluster")


def test_parse_params_for_adhoc_cypher():
    assert queries.parse_params(
        ["n=3", "x=0.5", "flag=true", "id=u0001", "since:date=2024-01-31", "code:str=42", "e="]
    ) == {
        "n": 3,
        "x": 0.5,
        "flag": True,
        "id": "u0001",
        "since": date(2024, 1, 31),
        "code": "42",
        "e": "",
    }
    with pytest.raises(QueryError, match="unknown type 'long'"):
        queries.parse_params(["n:long=3"])
    with pytest.raises(QueryError, match="expects date"):
        queries.parse_params(["since:date=yesterday"])


def test_format_result_csv_json_table(hand):
    frame = queries.run(hand, "defaulters_nearby", user_id="a1", limit=2)
    assert queries.format_result(frame, "csv").splitlines() == [
        "defaulter_id,hops,path",
        'a8,1,"[""a1"", ""a8""]"',
        'a3,2,"[""a1"", ""a2"", ""a3""]"',
    ]
    devices = queries.run(hand, "shared_devices", limit=1)
    assert queries.format_result(devices, "json").replace(" ", "").replace("\n", "") == (
        '[{"device_id":"d1","users":5,"defaulters":2,'
        '"oldest_signup":"2017-07-07","newest_signup":"2024-06-10"}]'
    )
    cluster = queries.run(hand, "friend_cluster", user_id="a1", hops=2)
    assert '"defaulted": null' in queries.format_result(cluster, "json")  # n1: unknown
    table = queries.format_result(cluster, "table")
    assert table.splitlines()[0].split() == list(cluster.columns) and "2024-06-01" in table
    assert queries.format_result(cluster.head(0), "table") == "(no rows)"
    with pytest.raises(QueryError, match="unknown format 'xml'"):
        queries.format_result(cluster, "xml")


# -- the synthetic world, through the real ingest pipeline -----------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[tuple[EmbeddedStore, dict[str, pd.DataFrame]]]:
    """2,000 synthetic users loaded by ingest, plus the properties scoring writes back."""
    root: Path = tmp_path_factory.mktemp("world")
    tables = generate_world(2_000, seed=11, out_dir=root / "in")
    store = EmbeddedStore(None)
    load_directory(root / "in", store, root / "history", root / "rejects")
    truth = tables["truth"].set_index("user_id")
    graph = FriendGraph.from_arrays(store.export_edges("FRIEND"))
    score = (650 + 80 * truth["latent_credit"]).clip(350, 950).round(1)
    rng = np.random.default_rng(0)
    props = pd.DataFrame(
        {
            "community": truth["community"].astype("int64"),
            "pagerank": pd.Series(pagerank(graph.adjacency) * graph.n, index=graph.ids),
            "score": score,
            "pd": 1 / (1 + np.exp((score - 500) / 60)),
            "prev_score": (score + rng.normal(0, 20, len(score))).round(1),
            "model_id": "m2",
            "prev_model_id": "m1",
        },
        index=truth.index,
    )
    store.write_properties("User", props)
    tables["props"] = props
    yield store, tables
    store.close()


def _friends(tables: dict[str, pd.DataFrame]) -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(tables["users"]["user_id"])
    g.add_edges_from(tables["friendships"][["src", "dst"]].itertuples(index=False))
    return g


def _defaulted(tables: dict[str, pd.DataFrame]) -> set[str]:
    labels = tables["labels"]
    return set(labels.loc[labels["defaulted"].astype(bool), "user_id"])


def test_world_friend_cluster_and_paths_match_networkx(world):
    store, tables = world
    g = _friends(tables)
    bad = _defaulted(tables)
    hub = max(g.degree, key=lambda kv: kv[1])[0]
    far = nx.single_source_shortest_path_length(g, hub, cutoff=4)
    cluster = queries.run(store, "friend_cluster", user_id=hub, hops=2, limit=100_000)
    assert dict(zip(cluster["user_id"], cluster["hops"], strict=True)) == {
        u: d for u, d in far.items() if 1 <= d <= 2
    }
    nearby = queries.run(store, "defaulters_nearby", user_id=hub, limit=100_000)
    assert set(nearby["defaulter_id"]) == {u for u, d in far.items() if 1 <= d <= 2 and u in bad}
    for path in nearby["path"]:
        assert path[0] == hub and all(g.has_edge(a, b) for a, b in _steps(path))
    target = next(u for u, d in far.items() if d == 4)
    shortest = queries.run(store, "shortest_friend_path", from_user=hub, to_user=target)
    hops, path = shortest["hops"].iloc[0], list(shortest["path"].iloc[0])
    assert hops == 4 and path[0] == hub and path[-1] == target and len(path) == 5
    assert all(g.has_edge(a, b) for a, b in _steps(path))


def _steps(path: list[str]) -> list[tuple[str, str]]:
    return list(zip(path[:-1], path[1:], strict=True))


def test_world_fraud_rings_find_the_planted_rings(world):
    store, tables = world
    ring_of = tables["truth"].set_index("user_id")["ring_id"]
    # The world's two cohorts put some rings a year before the newest sign-up.
    rings = queries.run(store, "fraud_rings", recent_days=400)
    assert not rings.empty
    found = [set(m) for m in rings["members"]]
    for ring_id, members in ring_of[ring_of >= 0].groupby(ring_of):
        best = max(len(f & set(members.index)) for f in found)
        assert best >= len(members) / 2, f"ring {ring_id} not found"
    top = rings.head(3)
    for members in top["members"]:  # the densest candidates are real rings, one ring each
        assert ring_of.loc[list(members)].nunique() == 1 and ring_of.loc[members[0]] >= 0
    assert (rings["friend_density"].between(0, 1)).all()
    assert rings["friend_density"].is_monotonic_decreasing


def test_world_new_accounts_and_loops(world):
    store, tables = world
    users = tables["users"].set_index("user_id")
    bad = _defaulted(tables)
    new = queries.run(store, "new_accounts_near_defaulters", recent_days=400, limit=100_000)
    cutoff = users["signup_date"].max() - pd.Timedelta(days=400)
    assert len(new) > 10 and (pd.to_datetime(new["signup_date"]) >= cutoff).all()
    friends = tables["friendships"]
    for row in new.head(5).itertuples():
        mine = friends[(friends["src"] == row.user_id) | (friends["dst"] == row.user_id)]
        others = (set(mine["src"]) | set(mine["dst"])) - {row.user_id}
        assert row.defaulter_friends == len(others & bad)
    loops = queries.run(store, "reciprocal_transfers", limit=100_000)
    pairs = set(tables["transfers"][["src", "dst"]].itertuples(index=False, name=None))
    two = {tuple(m) for m in loops.loc[loops["loop_length"] == 2, "members"]}
    assert two == {(a, b) for a, b in pairs if a < b and (b, a) in pairs}
    for members in loops.loc[loops["loop_length"] == 3, "members"]:
        a, b, c = members
        assert {(a, b), (b, c), (c, a)} <= pairs
    assert (loops["total_amount"] > 0).all()


def test_world_merchants(world):
    store, tables = world
    pays = tables["payments"].drop_duplicates(["user_id", "merchant_id"])
    outcome = tables["labels"].set_index("user_id")["defaulted"].astype(bool)
    per = pays.assign(bad=pays["user_id"].map(outcome)).groupby("merchant_id")["bad"]
    expected = per.sum() / per.size()
    risky = queries.run(store, "risky_merchants", min_customers=5, limit=1_000)
    assert len(risky) == int((per.size() >= 5).sum())
    assert dict(zip(risky["merchant_id"], risky["default_rate"], strict=True)) == pytest.approx(
        expected[per.size() >= 5].to_dict(),
        abs=5e-5 + 1e-12,  # rounded to 4 decimals
    )
    assert risky["default_rate"].is_monotonic_decreasing
    owner = tables["merchants"]["owner_id"].iloc[0]
    owned = tables["merchants"].loc[tables["merchants"]["owner_id"] == owner, "merchant_id"]
    quality = queries.run(store, "owner_customer_quality", owner_id=owner)
    assert set(quality["merchant_id"]) == set(owned)
    customers = pays[pays["merchant_id"].isin(owned)].groupby("merchant_id").size()
    assert quality.set_index("merchant_id")["customers"].to_dict() == customers.to_dict()
    by_user = pays.groupby("user_id")["merchant_id"].apply(set)
    a = by_user.index[0]
    b = next(u for u in by_user.index[1:] if by_user[a] & by_user[u])
    shared = queries.run(store, "shared_merchants", user_a=a, user_b=b)
    assert set(shared["merchant_id"]) == by_user[a] & by_user[b]


def test_world_devices_and_exposure(world):
    store, tables = world
    devices = tables["devices"].groupby("device_id")["user_id"].nunique()
    shared = queries.run(store, "shared_devices", min_users=3, limit=1_000)
    assert shared.set_index("device_id")["users"].to_dict() == devices[devices >= 3].to_dict()
    g = _friends(tables)
    bad = _defaulted(tables)
    exposure = queries.run(store, "defaulter_exposure", min_defaulted=3, limit=100_000)
    expected = {u: sum(f in bad for f in g[u]) for u in g if sum(f in bad for f in g[u]) >= 3}
    assert dict(zip(exposure["user_id"], exposure["defaulted_friends"], strict=True)) == expected


def test_world_open_record_exposure_matches_pandas(world):
    store, tables = world
    records = tables["public_records"]
    owed = records[records["status"] == "open"].groupby("user_id")["amount"].agg(["size", "sum"])
    found = queries.run(store, "open_record_exposure", limit=100_000).set_index("user_id")
    assert len(found) > 20 and set(found.index) == set(owed.index)
    assert found["amount_open"].is_monotonic_decreasing
    assert found["open_records"].to_dict() == owed["size"].to_dict()
    assert found["amount_open"].to_numpy() == pytest.approx(owed["sum"][found.index], abs=0.01)
    fr = tables["friendships"]
    ends = pd.DataFrame({"user": pd.concat([fr["src"], fr["dst"]]),
                         "friend": pd.concat([fr["dst"], fr["src"]])})  # fmt: skip
    mine = ends[ends["user"].isin(owed.index)]
    sent = tables["transfers"].groupby(["src", "dst"])["amount"].sum()
    mine = mine.assign(
        flagged=mine["friend"].isin(owed.index),
        bad=mine["friend"].isin(_defaulted(tables)),
        sent=sent.reindex(pd.MultiIndex.from_frame(mine[["friend", "user"]])).fillna(0).to_numpy(),
    )
    expected = mine.groupby("user").agg(
        friends=("friend", "size"), friends_with_open_records=("flagged", "sum"),
        defaulted_friends=("bad", "sum"), received_from_friends=("sent", "sum"),
    ).reindex(found.index, fill_value=0)  # fmt: skip
    for column in ("friends", "friends_with_open_records", "defaulted_friends"):
        assert found[column].tolist() == expected[column].tolist(), column
    assert found["received_from_friends"].to_numpy() == pytest.approx(
        expected["received_from_friends"].to_numpy(), abs=0.01
    )
    assert found["received_from_friends"].gt(0).any()


def test_world_communities_and_scores(world):
    store, tables = world
    props = tables["props"]
    outcome = tables["labels"].set_index("user_id")["defaulted"].astype(bool)
    community = int(props["community"].value_counts().index[0])  # the largest
    members = props.index[props["community"] == community]
    summary = queries.run(store, "community_risk", community=community)
    assert summary["members"].iloc[0] == len(members)
    assert summary["defaulters"].iloc[0] == int(outcome.loc[members].sum())
    assert summary["mean_score"].iloc[0] == pytest.approx(props.loc[members, "score"].mean(), 0.01)
    top = queries.run(store, "top_pagerank", community=community, limit=5)
    expected = props.loc[members, "pagerank"].sort_values(ascending=False).head(5)
    assert top["user_id"].tolist() == expected.index.tolist()
    drops = queries.run(store, "score_drops", min_drop=30, limit=100_000)
    fall = props["prev_score"] - props["score"]
    assert set(drops["user_id"]) == set(fall.index[(fall > 0) & (fall >= 30)])
    assert drops["score_drop"].is_monotonic_decreasing


def test_world_needs_scores_written_back():
    """Before scoring has written properties back, the error says what to do."""
    store = EmbeddedStore(None)
    store.ensure_schema()
    with pytest.raises(QueryError, match="score_drops reads User.score.*creditgraph score"):
        queries.run(store, "score_drops")
    store.close()


# -- Neo4j: the same rows from both dialects ------------------------------------------------------
@pytest.fixture(scope="module")
def neo4j_hand() -> Iterator[GraphStore]:
    from test_store_contract import _open_neo4j  # empties a test server; refuses real data

    store = _open_neo4j()
    build_hand_world(store)
    yield store
    store.close()


def _same(a: list[tuple], b: list[tuple]) -> bool:
    def equal(x: Any, y: Any) -> bool:
        if isinstance(x, list) and isinstance(y, list):
            return len(x) == len(y) and all(equal(i, j) for i, j in zip(x, y, strict=True))
        if isinstance(x, int | float) and isinstance(y, int | float):
            return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)
        return x == y

    return len(a) == len(b) and all(equal(list(x), list(y)) for x, y in zip(a, b, strict=True))


@pytest.mark.neo4j
@pytest.mark.skipif(not os.environ.get("NEO4J_URI"), reason=NEO4J_SKIP_REASON)
@pytest.mark.parametrize("name", NAMES)
def test_both_dialects_return_the_same_rows(hand, neo4j_hand, name):
    on_neo4j = queries.run(neo4j_hand, name, **HAND_CALLS[name])
    embedded = queries.run(hand, name, **HAND_CALLS[name])
    assert list(on_neo4j.columns) == list(embedded.columns)
    assert _same(rows(on_neo4j), rows(embedded)), (rows(on_neo4j), rows(embedded))
