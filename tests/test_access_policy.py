"""Partner scenarios as policies: the shipped file, refusals with reasons, decision answers.

Over real HTTP on loopback (uvicorn in a thread) with a real SQLite access database.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import httpx
import pandas as pd
import pytest
from test_access_scores import frame, publish
from test_access_service import Clock
from typer.testing import CliRunner

from creditgraph.access import add_partner, issue_subject_token, rotate_partner_key, verify_audit
from creditgraph.access.audit import AuditEntry, all_entries
from creditgraph.access.db import AccessDB
from creditgraph.access.grants import create_grant, list_grants
from creditgraph.access.policy import Policies, PolicyRefused, default_policies, load_policies
from creditgraph.access.scopes import Scope
from creditgraph.access.scores import ParquetScoreSource
from creditgraph.access.service import create_app, running_server
from creditgraph.cli import app as cli
from creditgraph.errors import ConfigError
from creditgraph.scoring.scale import ScoreScale

SCORES = {"alice": 712.4, "bob": 641.0, "cleo": 320.0}
SCENARIOS = ("hotel_stay", "car_rental", "tenant_check", "employment_check", "dating_match",
             "loan", "phone_contract")  # fmt: skip


def _scores(path: Path) -> Path:
    n = len(SCORES)
    pd.DataFrame({
        "user_id": list(SCORES), "score": list(SCORES.values()), "pd": [0.02] * n,
        "scored_at": [datetime(2025, 3, 1, tzinfo=UTC)] * n, "model_id": ["m1"] * n,
        **{f"f_{f}": [1.0] * n for f in
           ("credit_history", "behaviour", "capacity", "characteristics", "relationships")},
        "reasons": ["Instalments not paid on time"] * n,
    }).to_parquet(path)  # fmt: skip
    return path


@dataclass
class Site:
    """A running access API: one partner, subjects alice, bob and cleo."""

    http: httpx.Client
    db_path: Path
    clock: Clock
    partner: str
    key: str
    tokens: dict[str, str]

    def grant(self, subject: str, purpose: str, scope: str, days: float = 7, **extra: object):
        expires = (self.clock() + timedelta(days=days)).isoformat()
        body = {"partner_id": self.partner, "purpose": purpose, "scope": scope,
                "expires_at": expires, **extra}  # fmt: skip
        headers = {"Authorization": f"Bearer {self.tokens[subject]}"}
        return self.http.post("/v1/grants", json=body, headers=headers)

    def ask(self, subject: str, purpose: str, scope: str, threshold: int | None = None):
        body: dict[str, object] = {"subject_id": subject, "purpose": purpose, "scope": scope}
        if threshold is not None:
            body["threshold"] = threshold
        return self.http.post("/v1/lookup", json=body, headers={"X-API-Key": self.key})

    def log(self, subject: str) -> list[dict]:
        headers = {"Authorization": f"Bearer {self.tokens[subject]}"}
        return self.http.get("/v1/access-log", headers=headers).json()

    def entries(self, event: str) -> list[AuditEntry]:
        with AccessDB(self.db_path) as db:
            return [e for e in all_entries(db) if e.event == event]


@contextmanager
def site(
    tmp_path: Path, policies: Policies | None = None, scale: ScoreScale | None = None
) -> Iterator[Site]:
    db_path = tmp_path / "access.sqlite"
    if not db_path.exists():
        add_partner(db_path, "Grand Hotel")
    with AccessDB(db_path) as db, db.reading() as conn:
        partner = conn.execute("SELECT partner_id FROM partners").fetchone()[0]
    key = rotate_partner_key(db_path, partner)
    tokens = {name: issue_subject_token(db_path, name) for name in SCORES}
    clock = Clock()
    scores = ParquetScoreSource(_scores(tmp_path / "scores.parquet"))
    server = create_app(db_path, scores, clock=clock, policies=policies, scale=scale)
    with running_server(server) as url, httpx.Client(base_url=url, timeout=5) as http:
        yield Site(http, db_path, clock, partner, key, tokens)


def _policies(text: str, tmp_path: Path, name: str = "policies.toml") -> Policies:
    path = tmp_path / name
    path.write_text(text)
    return load_policies(path)


# -- the shipped file --------------------------------------------------------------------------
def test_the_shipped_policies_name_every_scenario_within_the_rules() -> None:
    policies = default_policies()
    assert set(SCENARIOS) <= set(policies.purposes)
    scale = ScoreScale()
    for name in SCENARIOS:
        policy = policies.for_purpose(name)
        assert 1 <= policy.max_days <= 366
        assert policy.discloses_reasons == (policy.scope is Scope.FULL)
        if policy.threshold is not None:  # a yes/no purpose: a cut-off on the scale, two words
            assert scale.min_score <= policy.threshold <= scale.max_score
            assert policy.decision is not None and policy.yes != policy.no
    dating = policies.for_purpose("dating_match")
    assert Scope.THRESHOLD.covers(dating.scope)  # never more than threshold
    hotel = policies.for_purpose("hotel_stay")
    assert (hotel.scope, hotel.yes) == (Scope.DECISION, "waive_deposit")
    # What the file says is what loads (the file is the operator's documentation).
    shipped = tomllib.loads(
        resources.files("creditgraph.access").joinpath("policies.toml").read_text("utf-8")
    )
    for name, table in shipped["purposes"].items():
        policy = policies.for_purpose(name)
        assert (policy.title, policy.scope.value, policy.max_days, policy.threshold,
                policy.yes, policy.no) == (
            table["title"], table["scope"], table["max_days"], table.get("threshold"),
            table.get("yes"), table.get("no"),
        )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('[purposes.spa]\nscope = "band"\nmax_days = 30\ncolour = "red"', "unknown keys"),
        ('[purposes.spa]\nscope = "all"\nmax_days = 30', "scope must be one of"),
        ('[purposes.spa]\nscope = "band"', "max_days is required"),
        ('[purposes.spa]\nscope = "band"\nmax_days = 400', "max_days must be 1-366"),
        ('[purposes.spa]\nscope = "decision"\nmax_days = 30', "needs a threshold"),
        (
            '[purposes.spa]\nscope = "band"\nmax_days = 30\nthreshold = 600\nyes = "ok"',
            "threshold, yes and no together",
        ),  # fmt: skip
        (
            '[purposes.spa]\nscope = "band"\nmax_days = 30\nthreshold = 990\nyes = "a"\nno = "b"',
            "outside the score range 350-950",
        ),  # fmt: skip
        ('[purposes.Spa]\nscope = "band"\nmax_days = 30', "snake_case"),
        ('[unlisted]\nallowed = true\nscope = "decision"\nmax_days = 30', "no decision"),
        ("[purposes.spa\n", "not valid TOML"),
    ],
)
def test_a_bad_policy_file_is_refused_naming_the_key(
    tmp_path: Path, text: str, complaint: str
) -> None:
    with pytest.raises(ConfigError, match=complaint) as refused:
        _policies(text, tmp_path)
    assert str(tmp_path / "policies.toml") in str(refused.value)


# -- grants are checked against the policy -------------------------------------------------------
@pytest.mark.parametrize(
    ("purpose", "scope", "days", "threshold", "reason"),
    [
        ("hotel_stay", "threshold", 7, None, "scope_exceeds_policy"),
        ("dating_match", "full", 7, None, "scope_exceeds_policy"),
        ("car_rental", "decision", 31, None, "duration_exceeds_policy"),
        ("hotel_stay", "decision", 7, 600, "threshold_below_policy"),
        ("loan", "decision", 7, None, "no_decision_in_policy"),
    ],
)
def test_a_grant_asking_more_than_its_purpose_allows_is_refused_with_the_reason(
    tmp_path: Path, purpose: str, scope: str, days: int, threshold: int | None, reason: str
) -> None:
    with site(tmp_path) as s:
        refused = s.grant("alice", purpose, scope, days=days, threshold=threshold)
        assert s.grant("alice", purpose, "decision" if purpose != "loan" else "full").is_success
        log = s.log("alice")
    assert refused.status_code == 403
    body = refused.json()
    assert body["detail"] == reason and body["reason"]  # the code, and why in words
    assert s.partner not in refused.text  # built from the policy, never from what was sent
    refusals = [e for e in s.entries("grant_created") if e.outcome == "refused"]
    assert [(e.subject_id, e.reason) for e in refusals] == [("alice", reason)]
    assert (log[1]["event"], log[1]["outcome"], log[1]["reason"]) == (
        "grant_created", "refused", reason
    )  # fmt: skip
    assert verify_audit(s.db_path).ok


def test_a_yes_no_grant_holds_the_policy_cut_off_or_a_higher_one(tmp_path: Path) -> None:
    with site(tmp_path) as s:
        default = s.grant("alice", "hotel_stay", "decision").json()
        higher = s.grant("bob", "hotel_stay", "decision", threshold=700).json()
        custom = s.grant("alice", "rental", "score").json()  # unlisted: no cut-off until asked
    assert (default["threshold"], higher["threshold"], custom["threshold"]) == (650, 700, None)


# -- lookups: the decision form and the policy's limits ------------------------------------------
def test_hotel_decision_answers_the_word_never_the_score(tmp_path: Path) -> None:
    with site(tmp_path) as s:
        for subject in ("alice", "bob"):
            assert s.grant(subject, "hotel_stay", "decision").status_code == 201
        answers = {who: s.ask(who, "hotel_stay", "decision") for who in ("alice", "bob")}
        wider = s.ask("alice", "hotel_stay", "threshold", threshold=650)
        log = s.log("alice")
    assert {who: r.json() for who, r in answers.items()} == {
        "alice": {"purpose": "hotel_stay", "scope": "decision",
                  "answer": {"decision": "waive_deposit"}},  # 712 ≥ 650
        "bob": {"purpose": "hotel_stay", "scope": "decision",
                "answer": {"decision": "require_deposit"}},  # 641 < 650
    }  # fmt: skip
    for response in answers.values():
        assert "712" not in response.text and "641" not in response.text
    assert (wider.status_code, wider.json()["detail"]) == (403, "scope_exceeds_policy")
    granted = [e for e in s.entries("lookup") if e.outcome == "granted"]
    assert [(e.subject_id, e.scope, e.fields) for e in granted] == [
        ("alice", "decision", ("decision",)), ("bob", "decision", ("decision",))
    ]  # fmt: skip
    # Alice reads who looked: the partner's answered decision and its refused wider question.
    assert [(e["event"], e["outcome"], e["scope"], e["reason"], e["fields_disclosed"])
            for e in log[:2]] == [
        ("lookup", "refused", "threshold", "scope_exceeds_policy", []),
        ("lookup", "granted", "decision", None, ["decision"]),
    ]  # fmt: skip


def test_a_policy_refusal_is_the_same_for_every_subject_and_reads_no_grant(tmp_path: Path) -> None:
    with site(tmp_path) as s:
        s.grant("alice", "dating_match", "threshold")
        granted_subject = s.ask("alice", "dating_match", "band")
        unknown_subject = s.ask("nobody", "dating_match", "band")
    assert granted_subject.status_code == unknown_subject.status_code == 403
    assert granted_subject.content == unknown_subject.content
    assert granted_subject.json()["detail"] == "scope_exceeds_policy"
    assert [(e.subject_id, e.reason, e.grant_id) for e in s.entries("lookup")] == [
        ("alice", "scope_exceeds_policy", None), ("nobody", "scope_exceeds_policy", None)
    ]  # fmt: skip


def test_one_cut_off_per_grant_holds_for_decisions_and_thresholds(tmp_path: Path) -> None:
    with site(tmp_path) as s:
        s.grant("bob", "tenant_check", "band")  # cut-off 600 from the policy
        decision = s.ask("bob", "tenant_check", "decision")
        same = s.ask("bob", "tenant_check", "threshold", threshold=600)
        probe = s.ask("bob", "tenant_check", "threshold", threshold=650)
        band = s.ask("bob", "tenant_check", "band")
    assert decision.json()["answer"] == {"decision": "accept_without_guarantor"}  # 641 ≥ 600
    assert same.json()["answer"] == {"meets_threshold": True}
    assert (probe.status_code, probe.content) == (403, b'{"detail":"no_active_grant"}')
    assert band.json()["answer"] == {"band_low": 600, "band_high": 650}
    assert [e.reason for e in s.entries("lookup") if e.outcome == "refused"] == [
        "threshold_mismatch"
    ]


def test_a_tightened_policy_binds_grants_made_before(tmp_path: Path) -> None:
    loose = _policies(
        '[purposes.spa]\nscope = "score"\nmax_days = 90', tmp_path, "loose.toml"
    )  # fmt: skip
    tight = _policies(
        '[purposes.spa]\nscope = "band"\nmax_days = 30', tmp_path, "tight.toml"
    )  # fmt: skip
    with site(tmp_path, loose) as s:
        assert s.grant("alice", "spa", "score", days=60).status_code == 201
    with site(tmp_path, tight) as s:
        score = s.ask("alice", "spa", "score")
        band = s.ask("alice", "spa", "band")
        s.clock.offset = timedelta(days=31)  # inside the grant's 60 days, past the policy's 30
        late = s.ask("alice", "spa", "band")
        grants = s.http.get(
            "/v1/grants", headers={"Authorization": f"Bearer {s.tokens['alice']}"}
        ).json()
    assert (score.status_code, score.json()["detail"]) == (403, "scope_exceeds_policy")
    assert band.json()["answer"] == {"band_low": 700, "band_high": 750}
    assert (late.status_code, late.content) == (403, b'{"detail":"no_active_grant"}')
    assert [e.reason for e in s.entries("lookup")][-3:] == [
        "scope_exceeds_policy", None, "expired_by_policy"
    ]  # fmt: skip
    assert grants[0]["scope"] == "score"  # the grant itself is unchanged


def _listed(s: Site, subject: str) -> dict[str, dict]:
    """The subject's grants as ``GET /v1/grants`` shows them, by purpose."""
    headers = {"Authorization": f"Bearer {s.tokens[subject]}"}
    return {g["purpose"]: g for g in s.http.get("/v1/grants", headers=headers).json()}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _spa(tmp_path: Path, days: int, *, unlisted: bool = True) -> Policies:
    """spa lasts at most ``days``, gym 30; other purposes allowed (366 days) or refused."""
    text = (f'[purposes.spa]\nscope = "band"\nmax_days = {days}\n'
            '[purposes.gym]\nscope = "band"\nmax_days = 30\n')  # fmt: skip
    if unlisted:
        text += '[unlisted]\nallowed = true\nscope = "full"\nmax_days = 366\n'
    return _policies(text, tmp_path, f"spa-{days}-{unlisted}.toml")


def test_a_grant_lapsed_by_a_tightened_policy_is_listed_as_lapsed(tmp_path: Path) -> None:
    """The subject is not told a grant is active when every lookup with it is refused."""
    with site(tmp_path, _spa(tmp_path, 90)) as s:
        spa = s.grant("alice", "spa", "band", days=60).json()
        gym = s.grant("alice", "gym", "band", days=30).json()  # its policy's longest: unchanged
    with site(tmp_path, _spa(tmp_path, 30)) as s:
        s.clock.offset = timedelta(days=31)  # inside spa's own 60 days, past the policy's 30
        listed = _listed(s, "alice")
        refused = s.ask("alice", "spa", "band")
        log = s.log("alice")
        s.clock.offset = timedelta(days=61)  # past its own expiry too: the policy ended it first
        later = _listed(s, "alice")
    assert (refused.status_code, refused.content) == (403, b'{"detail":"no_active_grant"}')
    assert listed["spa"]["status"] == "expired_by_policy"
    # The subject reads the same word in the grant list and in the refusal's log entry.
    assert log[0]["reason"] == s.entries("lookup")[-1].reason == "expired_by_policy"
    assert _at(listed["spa"]["expires_at"]) == _at(spa["created_at"]) + timedelta(days=30)
    assert later["spa"]["status"] == "expired_by_policy"
    assert later["spa"]["expires_at"] == listed["spa"]["expires_at"]
    # A grant that ran its own full course under an unchanged policy simply expired.
    assert (listed["gym"]["status"], listed["gym"]["expires_at"]) == ("expired", gym["expires_at"])


def test_a_grant_within_a_tightened_policy_is_active_until_the_policy_ends_it(
    tmp_path: Path,
) -> None:
    with site(tmp_path, _spa(tmp_path, 90)) as s:
        spa = s.grant("alice", "spa", "band", days=60).json()
        gym = s.grant("alice", "gym", "band", days=7).json()  # within both policies
        rental = s.grant("alice", "rental", "band", days=60).json()  # unlisted, allowed then
    with site(tmp_path, _spa(tmp_path, 30, unlisted=False)) as s:
        s.clock.offset = timedelta(days=3)
        listed = _listed(s, "alice")
        answered = s.ask("alice", "spa", "band")
    assert answered.json()["answer"] == {"band_low": 700, "band_high": 750}
    assert listed["spa"]["status"] == "active"
    # Its expiry as shown: when it stops answering, the policy's 30 days, not the 60 given.
    assert _at(listed["spa"]["expires_at"]) == _at(spa["created_at"]) + timedelta(days=30)
    assert (listed["gym"]["status"], listed["gym"]["expires_at"]) == ("active", gym["expires_at"])
    # A purpose with no policy now (unlisted ones refused) is shown as before.
    assert (listed["rental"]["status"], listed["rental"]["expires_at"]) == (
        "active", rental["expires_at"]
    )  # fmt: skip


def test_the_grant_a_tightened_policy_ends_first_is_spent_first(tmp_path: Path) -> None:
    """Two grants alike: the one whose uses go first is the one that stops answering first,
    by the policy now in force, not by the expiry each was given."""
    with site(tmp_path, _spa(tmp_path, 90)) as s:
        first = s.grant("alice", "spa", "band", days=60).json()  # its own expiry: day 60
        s.clock.offset = timedelta(days=20)
        second = s.grant("alice", "spa", "band", days=25).json()  # day 45: sooner
    with site(tmp_path, _spa(tmp_path, 30)) as s:  # first now lapses on day 30, second on 45
        s.clock.offset = timedelta(days=21)
        answered = s.ask("alice", "spa", "band")
    # What the test is about: the two orders differ.
    assert _at(second["expires_at"]) < _at(first["expires_at"])
    assert _at(first["created_at"]) + timedelta(days=30) < _at(second["expires_at"])
    assert answered.status_code == 200
    assert s.entries("lookup")[-1].grant_id == first["grant_id"]


def test_unlisted_purposes_follow_the_unlisted_rule(tmp_path: Path) -> None:
    closed = _policies(
        '[unlisted]\nallowed = false\n[purposes.spa]\nscope = "band"\nmax_days = 30', tmp_path
    )
    assert default_policies().for_purpose("rental").scope is Scope.FULL  # shipped: as before
    with site(tmp_path, closed) as s:
        grant = s.grant("alice", "rental", "band")
        ask = s.ask("alice", "rental", "band")
        listed = s.http.get("/v1/policies").json()
    assert (grant.status_code, grant.json()["detail"]) == (403, "unlisted_purpose")
    assert (ask.status_code, ask.json()["detail"]) == (403, "unlisted_purpose")
    assert [row["purpose"] for row in listed] == ["spa"]  # no unlisted rule: refused
    with AccessDB(tmp_path / "access.sqlite") as db, pytest.raises(PolicyRefused) as refused:
        create_grant(db, subject_id="alice", partner_id=s.partner, purpose="rental",
                     scope="band", expires_at=datetime.now(UTC) + timedelta(days=1),
                     policies=closed)  # fmt: skip
    assert refused.value.reason == "unlisted_purpose"
    with AccessDB(tmp_path / "access.sqlite") as db:
        assert list_grants(db, "alice") == []


def test_the_policies_are_public(tmp_path: Path) -> None:
    with site(tmp_path) as s:
        rows = s.http.get("/v1/policies").json()
    by_purpose = {row["purpose"]: row for row in rows}
    assert set(SCENARIOS) | {None} == set(by_purpose)
    assert by_purpose["hotel_stay"]["decision"] == {"yes": "waive_deposit", "no": "require_deposit"}
    assert rows == default_policies().rows()


def test_bands_follow_the_configured_scale(tmp_path: Path) -> None:
    fico_like = ScoreScale(base_score=660, base_odds=20, points_to_double_odds=40,
                           min_score=300, max_score=850)  # fmt: skip
    with site(tmp_path, scale=fico_like) as s:
        s.grant("cleo", "rental", "band")
        band = s.ask("cleo", "rental", "band")
    assert band.json()["answer"] == {"band_low": 300, "band_high": 350}  # 320 on a 300-850 scale


# -- the commands --------------------------------------------------------------------------------
def test_policy_commands_read_the_configured_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('[purposes.spa_day]\nscope = "threshold"\nmax_days = 14\n'
                    'threshold = 620\nyes = "no_deposit"\nno = "deposit"\n')  # fmt: skip
    monkeypatch.setenv("CREDITGRAPH_POLICIES", str(path))
    publish(tmp_path / "scores", "run-1", frame())
    runner = CliRunner()
    shown = runner.invoke(cli, ["partner", "policies", "--data-dir", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert "spa_day" in shown.output and "hotel_stay" not in shown.output
    said = " ".join(shown.output.split())  # run-1 records no scale and names no model
    assert "cut-offs read on the configured scale 350–950" in said and "records no scale" in said
    path.write_text('[purposes.spa_day]\nscope = "everything"\nmax_days = 14\n')
    served = runner.invoke(cli, ["serve", "--data-dir", str(tmp_path), "--port", "1"])
    assert served.exit_code == 2 and "scope must be one of" in served.output
    assert "Traceback" not in served.output
