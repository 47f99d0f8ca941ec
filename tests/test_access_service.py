"""The access API over real HTTP on loopback: uvicorn in a thread, real SQLite, real scores."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest

from creditgraph.access import (
    ParquetScoreSource,
    add_partner,
    issue_subject_token,
    revoke_partner,
    revoke_subject_token,
    verify_audit,
)
from creditgraph.access.audit import AuditEntry, all_entries
from creditgraph.access.db import AccessDB
from creditgraph.access.scopes import DISCLOSED, Scope
from creditgraph.access.service import create_app, running_server

SCORED_AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
UNAUTHORIZED = b'{"detail":"invalid_credentials"}'


class Clock:
    """Real UTC time plus an offset the test can move forward (for expiry)."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


class Caller:
    """One identity's view of the server, sharing the world's HTTP connection pool."""

    def __init__(self, http: httpx.Client, headers: dict[str, str]) -> None:
        self.http, self.headers = http, headers

    def get(self, url: str, **kw: object) -> httpx.Response:
        return self.http.get(url, headers=self.headers, **kw)  # type: ignore[arg-type]

    def post(self, url: str, **kw: object) -> httpx.Response:
        return self.http.post(url, headers=self.headers, **kw)  # type: ignore[arg-type]

    def delete(self, url: str, **kw: object) -> httpx.Response:
        return self.http.delete(url, headers=self.headers, **kw)  # type: ignore[arg-type]

    def __enter__(self) -> Caller:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@dataclass
class World:
    http: httpx.Client
    db_path: Path
    clock: Clock
    hotel: str
    hotel_key: str
    landlord: str
    landlord_key: str
    alice_token: str
    bob_token: str

    def client(self, **headers: str) -> Caller:
        return Caller(self.http, headers)

    def as_hotel(self) -> Caller:
        return self.client(**{"X-API-Key": self.hotel_key})

    def as_landlord(self) -> Caller:
        return self.client(**{"X-API-Key": self.landlord_key})

    def as_alice(self) -> Caller:
        return self.client(Authorization=f"Bearer {self.alice_token}")

    def grant(
        self,
        scope: str,
        *,
        partner: str | None = None,
        purpose: str = "hotel_deposit",
        days: float = 7,
        **extra: object,
    ) -> dict:
        expires = self.clock() + timedelta(days=days)
        body = {
            "partner_id": partner or self.hotel,
            "purpose": purpose,
            "scope": scope,
            "expires_at": expires.isoformat(),
            **extra,
        }
        with self.as_alice() as c:
            response = c.post("/v1/grants", json=body)
        assert response.status_code == 201, response.text
        return response.json()


def ask(
    client: Caller,
    scope: str,
    *,
    subject: str = "alice",
    purpose: str = "hotel_deposit",
    threshold: int | None = None,
) -> httpx.Response:
    body: dict[str, object] = {"subject_id": subject, "purpose": purpose, "scope": scope}
    if threshold is not None:
        body["threshold"] = threshold
    return client.post("/v1/lookup", json=body)


def lookup_of(scope: str, client: Caller) -> httpx.Response:
    return ask(client, scope, threshold=600 if scope == "threshold" else None)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    scores = pd.DataFrame({
        "user_id": ["alice", "bob", "carol"],
        "score": [712.4, 641.0, float("nan")],
        "pd": [0.012, 0.05, float("nan")],
        "scored_at": [SCORED_AT] * 3,
        "model_id": ["m1"] * 3,
        "f_credit_history": [40.0, -10.0, 0.0],
        "f_behaviour": [12.5, 3.0, 0.0],
        "f_capacity": [-8.0, 1.0, 0.0],
        "f_characteristics": [2.0, 0.0, 0.0],
        "f_relationships": [16.0, -20.0, 0.0],
        "reasons": ["high card utilisation; short credit history", "", None],
    })  # fmt: skip
    scores.to_parquet(tmp_path / "latest.parquet")
    db_path = tmp_path / "access.sqlite"
    hotel, hotel_key = add_partner(db_path, "Grand Hotel")
    landlord, landlord_key = add_partner(db_path, "City Lettings")
    alice = issue_subject_token(db_path, "alice")
    bob = issue_subject_token(db_path, "bob")
    clock = Clock()
    app = create_app(db_path, ParquetScoreSource(tmp_path / "latest.parquet"), clock=clock)
    with running_server(app) as url, httpx.Client(base_url=url, timeout=5) as http:
        yield World(http, db_path, clock, hotel, hotel_key, landlord, landlord_key, alice, bob)


def last_lookup(world: World) -> AuditEntry:
    with AccessDB(world.db_path) as db:
        return [e for e in all_entries(db) if e.event == "lookup"][-1]


# -- granted --------------------------------------------------------------------------------
@pytest.mark.parametrize("scope", ["threshold", "band", "score", "full"])
def test_valid_grant_answers_exactly_the_fields_of_its_scope(world: World, scope: str) -> None:
    grant = world.grant(scope)
    with world.as_hotel() as hotel:
        response = lookup_of(scope, hotel)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"purpose", "scope", "answer"}
    assert set(body["answer"]) == set(DISCLOSED[Scope(scope)])
    entry = last_lookup(world)
    assert (
        entry.outcome,
        entry.partner_id,
        entry.subject_id,
        entry.purpose,
        entry.scope,
        entry.grant_id,
        entry.fields,
    ) == (
        "granted",
        world.hotel,
        "alice",
        "hotel_deposit",
        scope,
        grant["grant_id"],
        DISCLOSED[Scope(scope)],
    )


def test_answers_hold_the_right_values(world: World) -> None:
    world.grant("full")
    with world.as_hotel() as hotel:
        full = ask(hotel, "full").json()["answer"]
        band = ask(hotel, "band").json()["answer"]
    assert full["score"] == 712
    assert datetime.fromisoformat(full["scored_at"]) == SCORED_AT
    assert full["factors"] == {
        "credit_history": 40.0,
        "behaviour": 12.5,
        "capacity": -8.0,
        "characteristics": 2.0,
        "relationships": 16.0,
    }
    assert full["reasons"] == ["high card utilisation", "short credit history"]
    assert band == {"band_low": 700, "band_high": 750}


def test_threshold_scope_never_reveals_the_score(world: World) -> None:
    world.grant("threshold")
    with world.as_hotel() as hotel:
        yes = ask(hotel, "threshold", threshold=700)
        again = ask(hotel, "threshold", threshold=700)
        probe = ask(hotel, "threshold", threshold=710)  # a second cut-off would narrow it down
        wider = ask(hotel, "band")
    assert (
        yes.json()
        == again.json()
        == {"purpose": "hotel_deposit", "scope": "threshold", "answer": {"meets_threshold": True}}
    )
    for text in (yes.text, again.text):
        assert "712" not in text and 'score"' not in text and "factor" not in text
    assert probe.status_code == wider.status_code == 403


@pytest.mark.parametrize("scope", ["band", "full"])
def test_a_binary_search_under_a_wider_grant_learns_one_bit(world: World, scope: str) -> None:
    grant = world.grant(scope)
    low, high, asked = 350, 950, []
    with world.as_hotel() as hotel:
        for _ in range(9):  # nine halvings of 350-950 would pin the score to within 2 points
            cut = (low + high) // 2
            response = ask(hotel, "threshold", threshold=cut)
            asked.append((cut, response.status_code, response.content))
            if response.status_code == 200 and response.json()["answer"]["meets_threshold"]:
                low = cut
            else:
                high = cut
        assert ask(hotel, "threshold", threshold=650).status_code == 200  # its cut-off, again
        assert ask(hotel, scope).status_code == 200  # the grant still answers its own scope
    answered = [(cut, status) for cut, status, _ in asked if status == 200]
    assert answered == [(650, 200)]  # the first cut-off asked is the grant's only one
    refusals = {content for _, status, content in asked if status != 200}
    assert refusals == {b'{"detail":"no_active_grant"}'}  # 8 probes, each the uniform 403
    with AccessDB(world.db_path) as db:
        probes = [e for e in all_entries(db) if e.event == "lookup"][1:9]
    assert [(e.outcome, e.scope, e.reason, e.grant_id) for e in probes] == [
        ("refused", "threshold", "threshold_mismatch", None)
    ] * 8
    with world.as_alice() as alice:
        [listed] = alice.get("/v1/grants").json()
    assert (listed["grant_id"], listed["threshold"]) == (grant["grant_id"], 650)


def test_a_subject_may_fix_the_cut_off_of_a_band_grant(world: World) -> None:
    world.grant("band", threshold=700)
    with world.as_hotel() as hotel:
        assert ask(hotel, "threshold", threshold=690).status_code == 403
        assert ask(hotel, "threshold", threshold=700).json()["answer"] == {"meets_threshold": True}
        assert ask(hotel, "band").status_code == 200
    assert last_lookup(world).outcome == "granted"


def test_subject_may_fix_the_threshold(world: World) -> None:
    world.grant("threshold", threshold=750)
    with world.as_hotel() as hotel:
        assert ask(hotel, "threshold", threshold=600).status_code == 403
        assert ask(hotel, "threshold", threshold=750).json()["answer"] == {"meets_threshold": False}


def test_broader_grant_answers_a_narrower_question_with_only_its_fields(world: World) -> None:
    world.grant("full")
    with world.as_hotel() as hotel:
        response = ask(hotel, "threshold", threshold=800)
    assert response.json()["answer"] == {"meets_threshold": False}


def test_concurrent_lookups_spend_a_limited_grant_exactly(world: World) -> None:
    world.grant("band", max_uses=5)
    with ThreadPoolExecutor(max_workers=10) as pool:
        codes = list(pool.map(lambda _: lookup_of("band", world.as_hotel()).status_code, range(20)))
    assert sorted(codes) == [200] * 5 + [403] * 15
    with AccessDB(world.db_path) as db:
        outcomes = [e.outcome for e in all_entries(db) if e.event == "lookup"]
    assert sorted(outcomes) == ["granted"] * 5 + ["refused"] * 15
    assert verify_audit(world.db_path).ok


# -- refused ----------------------------------------------------------------------------------
def _no_grant(w: World) -> None:
    pass


def _expired(w: World) -> None:
    w.grant("score", days=1)
    w.clock.offset = timedelta(days=2)


def _revoked(w: World) -> None:
    grant = w.grant("score")
    with w.as_alice() as alice:
        assert alice.delete(f"/v1/grants/{grant['grant_id']}").status_code == 204


def _used_up(w: World) -> None:
    w.grant("score", max_uses=2)
    with w.as_hotel() as hotel:
        assert [ask(hotel, "score").status_code for _ in range(2)] == [200, 200]


def _other_partner(w: World) -> None:
    w.grant("score", partner=w.landlord)


def _other_purpose(w: World) -> None:
    w.grant("score", purpose="rental")


def _narrower_scope(w: World) -> None:
    w.grant("band")


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (_no_grant, "no_grant"),
        (_expired, "expired"),
        (_revoked, "revoked"),
        (_used_up, "used_up"),
        (_other_partner, "no_grant"),
        (_other_purpose, "purpose_mismatch"),
        (_narrower_scope, "scope_too_narrow"),
    ],
    ids=[
        "no-grant",
        "expired",
        "revoked",
        "used-up",
        "other-partner",
        "other-purpose",
        "narrower-scope",
    ],
)
def test_refusals_are_403_alike_and_audited(
    world: World, setup: Callable[[World], None], reason: str
) -> None:
    setup(world)
    with world.as_hotel() as hotel:
        refused = ask(hotel, "score")
        unknown = ask(hotel, "score", subject="nobody-at-all")
    assert refused.status_code == 403
    # The answer is byte-identical to the one for a subject who does not exist.
    assert refused.content == unknown.content == b'{"detail":"no_active_grant"}'
    with AccessDB(world.db_path) as db:
        lookups = [e for e in all_entries(db) if e.event == "lookup"][-2:]
    assert [(e.outcome, e.subject_id, e.reason, e.fields) for e in lookups] == [
        ("refused", "alice", reason, ()),
        ("refused", "nobody-at-all", "no_grant", ()),
    ]
    assert verify_audit(world.db_path).ok


def test_grant_for_a_subject_without_a_score_answers_no_score(world: World) -> None:
    grant = {
        "partner_id": world.hotel,
        "purpose": "rental",
        "scope": "band",
        "expires_at": (world.clock() + timedelta(days=1)).isoformat(),
    }
    carol = issue_subject_token(world.db_path, "carol")
    with world.client(Authorization=f"Bearer {carol}") as c:
        assert c.post("/v1/grants", json=grant).status_code == 201
    with world.as_hotel() as hotel:
        response = ask(hotel, "band", subject="carol", purpose="rental")
    assert (response.status_code, response.json()) == (404, {"detail": "no_score"})
    assert last_lookup(world).reason == "no_score"


# -- authentication ------------------------------------------------------------------------------
def test_partners_and_subjects_need_live_credentials(world: World) -> None:
    world.grant("score")
    forged = world.hotel_key[:-4] + "AAAA"
    with world.client(**{"X-API-Key": forged}) as c:
        assert ask(c, "score").status_code == 401
    with world.client() as c:
        assert ask(c, "score").status_code == 401
        assert c.get("/v1/grants").status_code == 401
    with world.as_alice() as c:  # a subject token is not a partner key
        assert ask(c, "score").status_code == 401
    revoke_partner(world.db_path, world.hotel)
    with world.as_hotel() as hotel:
        assert ask(hotel, "score").status_code == 401
    revoke_subject_token(world.db_path, world.alice_token)
    with world.as_alice() as alice:
        assert alice.get("/v1/grants").status_code == 401


def test_refused_credentials_are_audited_with_the_key_id_only(world: World) -> None:
    forged = world.hotel_key[:-4] + "AAAA"
    guessed = "cgp_0123456789abcdef_" + "G" * 43
    revoke_partner(world.db_path, world.landlord)
    presented = [forged, guessed, None, "not a key at all", world.landlord_key]
    answers = []
    for key in presented:
        with world.client(**({"X-API-Key": key} if key else {})) as c:
            answers.append(ask(c, "score"))
    for response in answers:  # byte-identical refusals, as before
        assert (response.status_code, response.content) == (401, UNAUTHORIZED)
        assert response.headers["www-authenticate"] == "ApiKey"
    with AccessDB(world.db_path) as db:
        entries = [e for e in all_entries(db) if e.event == "lookup"]
    assert [(e.outcome, e.partner_id, e.subject_id, e.reason) for e in entries] == [
        ("refused", world.hotel, None, "wrong_secret"),
        ("refused", "0123456789abcdef", None, "unknown_credentials"),
        ("refused", None, None, "no_credentials"),
        ("refused", None, None, "malformed_credentials"),
        ("refused", world.landlord, None, "revoked_credentials"),
    ]
    raw = b"".join(p.read_bytes() for p in world.db_path.parent.glob("access.sqlite*"))
    assert forged.split("_", 2)[2].encode() not in raw and b"G" * 43 not in raw
    assert verify_audit(world.db_path).ok


def test_refused_subject_tokens_are_audited_for_their_owner(world: World) -> None:
    wrong = world.alice_token[:-4] + "AAAA"
    for token in (wrong, "cgs_0123456789abcdef_nope"):
        with world.client(Authorization=f"Bearer {token}") as c:
            response = c.get("/v1/grants")
        assert (response.status_code, response.content) == (401, UNAUTHORIZED)
    with AccessDB(world.db_path) as db:
        entries = [e for e in all_entries(db) if e.event == "subject_auth"]
    assert [(e.outcome, e.subject_id, e.reason) for e in entries] == [
        ("refused", "alice", "wrong_secret"),
        ("refused", None, "unknown_credentials"),
    ]
    with world.as_alice() as alice:  # alice sees someone tried her token
        log = alice.get("/v1/access-log").json()
    assert (log[0]["event"], log[0]["reason"]) == ("subject_auth", "wrong_secret")


def test_malformed_lookups_are_audited(world: World) -> None:
    with world.as_hotel() as hotel:
        bad_purpose = hotel.post(
            "/v1/lookup", json={"subject_id": "alice", "purpose": "Not A Purpose", "scope": "score"}
        )
        no_threshold = ask(hotel, "threshold")
    assert bad_purpose.status_code == no_threshold.status_code == 422
    with AccessDB(world.db_path) as db:
        entries = [e for e in all_entries(db) if e.event == "lookup"]
    assert [(e.outcome, e.partner_id, e.subject_id, e.reason) for e in entries] == [
        ("refused", world.hotel, None, "malformed_request")
    ] * 2


# -- request bodies --------------------------------------------------------------------------
BIG = {"subject_id": "x" * 5_000_000, "purpose": "hotel_deposit", "scope": "score"}


def test_unauthenticated_bodies_are_never_read(world: World) -> None:
    with world.client(**{"X-API-Key": "cgp_0123456789abcdef_guess"}) as c:
        big = c.post("/v1/lookup", json=BIG)
        malformed = c.post("/v1/lookup", json={"subject_id": 5, "scope": "everything"})
    with world.client(Authorization="Bearer cgs_0123456789abcdef_guess") as c:
        big_grant = c.post("/v1/grants", json=BIG)
    for response in (big, malformed, big_grant):
        assert (response.status_code, response.content) == (401, UNAUTHORIZED)


def test_bodies_over_16_kib_are_refused(world: World) -> None:
    world.grant("score")
    with world.as_hotel() as hotel:
        big = hotel.post("/v1/lookup", json=BIG)
        chunked = hotel.post(
            "/v1/lookup",
            content=iter([b'{"subject_id": "', b"y" * 20_000, b'", "scope": "score"}']),
        )
        fits = hotel.post(
            "/v1/lookup",
            content=json.dumps(
                {
                    "subject_id": "alice",
                    "purpose": "hotel_deposit",
                    "scope": "score",
                    "padding": "p" * 15_000,
                }
            ).encode(),
        )
    with world.as_alice() as alice:
        big_grant = alice.post("/v1/grants", json=BIG)
    for response in (big, chunked, big_grant):
        assert (response.status_code, response.content) == (413, b'{"detail":"body_too_large"}')
    assert fits.status_code == 200
    with AccessDB(world.db_path) as db:
        reasons = [(e.event, e.reason) for e in all_entries(db) if e.outcome == "refused"]
    assert reasons == [("lookup", "body_too_large")] * 2 + [("grant_created", "body_too_large")]


def test_errors_never_echo_what_was_sent(world: World) -> None:
    marks = ["MARK-subject" + "s" * 200, "MARK Purpose", "MARK-scope", "MARK-threshold"]
    with world.as_hotel() as hotel:
        fields = hotel.post(
            "/v1/lookup",
            json={
                "subject_id": marks[0],
                "purpose": marks[1],
                "scope": marks[2],
                "threshold": marks[3],
            },
        )
        broken = hotel.post("/v1/lookup", content=b'{"subject_id": "MARK-json')
    with world.as_alice() as alice:
        grant = alice.post(
            "/v1/grants",
            json={
                "partner_id": "MARK-partner",
                "purpose": "MARK Purpose",
                "scope": "MARK-scope",
                "expires_at": "MARK-date",
                "max_uses": "MARK-uses",
            },
        )
        query = alice.get("/v1/access-log", params={"limit": "MARK-limit"})
    for response in (fields, broken, grant, query):
        assert response.status_code == 422
        assert "MARK" not in response.text and "input" not in response.json()["detail"][0]
    assert {tuple(e["loc"]) for e in fields.json()["detail"]} == {
        ("body", "subject_id"),
        ("body", "purpose"),
        ("body", "scope"),
        ("body", "threshold"),
    }


def test_keys_and_tokens_are_stored_only_as_hashes(world: World) -> None:
    raw = b"".join(p.read_bytes() for p in world.db_path.parent.glob("access.sqlite*"))
    for secret in (world.hotel_key, world.landlord_key, world.alice_token, world.bob_token):
        assert secret.split("_", 2)[2].encode() not in raw  # the whole secret part


# -- the subject's side -----------------------------------------------------------------------
def test_subject_lists_and_revokes_grants_and_reads_who_looked(world: World) -> None:
    grant = world.grant("score", max_uses=5)
    with world.as_hotel() as hotel:
        ask(hotel, "score")
    with world.as_landlord() as landlord:
        ask(landlord, "band", purpose="rental")
    with world.as_alice() as alice:
        partners = alice.get("/v1/partners").json()
        listed = alice.get("/v1/grants").json()
        log = alice.get("/v1/access-log").json()
    assert {p["name"] for p in partners} == {"Grand Hotel", "City Lettings"}
    assert [(g["grant_id"], g["uses"], g["status"]) for g in listed] == [
        (grant["grant_id"], 1, "active")
    ]
    looks = [
        (e["partner_name"], e["outcome"], e["fields_disclosed"])
        for e in log
        if e["event"] == "lookup"
    ]
    assert looks == [
        ("City Lettings", "refused", []),
        ("Grand Hotel", "granted", ["score", "scored_at"]),
    ]
    with world.client(Authorization=f"Bearer {world.bob_token}") as bob:
        assert [e["event"] for e in bob.get("/v1/access-log").json()] == [
            "subject_token_issued"
        ]  # his own token, nothing about alice
        assert bob.delete(f"/v1/grants/{grant['grant_id']}").status_code == 404


@pytest.mark.parametrize(
    "change",
    [
        {"expires_at": "2000-01-01T00:00:00+00:00"},
        {"purpose": "Not A Purpose"},
        {"scope": "everything"},
        {"max_uses": 0},
        {"partner_id": "nope"},
        {"threshold": 2001},
    ],
)
def test_bad_grants_are_rejected(world: World, change: dict) -> None:
    body = {
        "partner_id": world.hotel,
        "purpose": "rental",
        "scope": "band",
        "expires_at": (world.clock() + timedelta(days=1)).isoformat(),
        **change,
    }
    with world.as_alice() as alice:
        assert alice.post("/v1/grants", json=body).status_code in (404, 422)
        assert alice.get("/v1/grants").json() == []


def test_a_subject_revokes_its_own_tokens(world: World) -> None:
    second = issue_subject_token(world.db_path, "alice")
    with world.as_alice() as alice:
        assert alice.delete("/v1/token").status_code == 204
        assert alice.get("/v1/grants").status_code == 401  # the token it used
    with world.client(Authorization=f"Bearer {second}") as c:
        assert c.get("/v1/grants").status_code == 200  # the other one still works
        third = issue_subject_token(world.db_path, "alice")
        assert c.delete("/v1/token", params={"all": "true"}).status_code == 204
        assert c.get("/v1/grants").status_code == 401
    with world.client(Authorization=f"Bearer {third}") as c:
        assert c.get("/v1/grants").status_code == 401
    with world.client(Authorization=f"Bearer {world.bob_token}") as bob:
        assert bob.get("/v1/grants").status_code == 200  # nobody else's
    with AccessDB(world.db_path) as db:
        revoked = [e.subject_id for e in all_entries(db) if e.event == "subject_token_revoked"]
    assert revoked == ["alice"] * 3


def test_openapi_docs_are_served(world: World) -> None:
    with world.client() as c:
        assert c.get("/docs").status_code == 200
        spec = json.loads(c.get("/openapi.json").text)
    paths = spec["paths"]
    assert {"/v1/lookup", "/v1/grants", "/v1/access-log", "/v1/token"} <= set(paths)
    body = paths["/v1/lookup"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"subject_id", "purpose", "scope", "threshold"} == set(body["properties"])
    assert (
        body["properties"]["scope"]["$ref"].removeprefix("#/components/schemas/")
        in (spec["components"]["schemas"])
    )
