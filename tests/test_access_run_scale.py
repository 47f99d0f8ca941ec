"""The partner API answers on the scale of the run it serves, not on the configured one.

A model keeps the scale it was trained with, so a published run's scores are points of
that scale whatever ``[scale]`` says when ``serve`` starts. One synthetic world goes
through the real pipeline (ingest, features, two real models, two published runs): run A
scored on the default 350–950 scale, run B on a 300–850 scale whose anchors put the
riskiest users below 350. Each test serves a copy of that data directory over real HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from test_access_cli import _free_port
from test_access_policy import Site
from test_access_service import Clock
from typer.testing import CliRunner

from creditgraph import catalog, pipeline
from creditgraph.access import add_partner, issue_subject_token
from creditgraph.access.db import AccessDB
from creditgraph.access.grants import create_grant
from creditgraph.access.policy import Policies, load_policies
from creditgraph.access.scopes import Scope
from creditgraph.access.scores import ParquetScoreSource, current_scale, published_scale
from creditgraph.access.service import create_app, running_server
from creditgraph.cli import app as cli
from creditgraph.durable import write_pointer
from creditgraph.scoring.scale import ScoreScale
from creditgraph.settings import load_settings

CONFIGURED = ScoreScale()  # what serve is started with in every test: 350–950
OTHER = ScoreScale(base_score=600, base_odds=20, points_to_double_odds=80,
                   min_score=300, max_score=850)  # fmt: skip
# A yes/no purpose whose cut-off lies on OTHER's range only (900: on the configured one only).
SPA = '[purposes.spa_day]\nscope = "decision"\nmax_days = 30\nthreshold = {}\n' \
      'yes = "no_deposit"\nno = "deposit"\n[unlisted]\nallowed = true\nscope = "full"\n' \
      "max_days = 366\n"  # fmt: skip


@dataclass(frozen=True)
class Runs:
    """One data directory holding run "A" (default scale) and run "B" (OTHER), B current."""

    data: Path
    run_id: dict[str, str]
    scores: dict[str, pd.Series]  # by user id
    model_id: dict[str, str]

    def serving(self, tmp_path: Path, run: str) -> Path:
        """A copy of the data directory whose current run is ``run``."""
        data = tmp_path / "data"
        shutil.copytree(self.data, data)
        write_pointer(data / "scores" / "CURRENT", self.run_id[run])
        return data

    def subjects(self) -> dict[str, str]:
        """Below 320 on run B (so off the configured range), and well inside it."""
        b = self.scores["B"]
        low, middle = str(b.idxmin()), str((b - 600).abs().idxmin())
        assert b[low] < 320 and 550 < b[middle] < 650  # what the tests below rely on
        return {"low": low, "middle": middle}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("run-scale")
    settings = load_settings(data_dir=root / "data", store="memory", seed=3)
    pipeline.generate(settings, root / "in", users=1500)
    found = Runs(root / "data", {}, {}, {})
    with pipeline.open_configured_store(settings) as store:
        pipeline.ingest(settings, store, root / "in")
        features = pipeline.build_features(settings, store)
        for name, scale in (("A", CONFIGURED), ("B", OTHER)):
            on_scale = replace(settings, scale=scale)
            model = pipeline.train(on_scale, store, features).model
            inputs = pipeline.model_inputs(on_scale, store, model, features)
            scores = pipeline.score_users(model, inputs)
            pipeline.write_scores(on_scale, store, scores, inputs)
            found.run_id[name] = str(catalog.current_run(settings.paths.scores))
            found.scores[name] = scores["score"]
            found.model_id[name] = model.model_id
    return found


@contextmanager
def site(data: Path, subjects: list[str], policies: Policies | None = None) -> Iterator[Site]:
    """What `serve` builds, on loopback: the data directory's published run, configured 350–950."""
    db_path = data / "access" / "access.sqlite"
    partner, key = add_partner(db_path, "Spa")
    tokens = {subject: issue_subject_token(db_path, subject) for subject in subjects}
    clock = Clock()
    source = ParquetScoreSource(data / "scores", recheck_s=0)
    server = create_app(db_path, source, clock=clock, policies=policies, scale=CONFIGURED)
    with running_server(server) as url, httpx.Client(base_url=url, timeout=5) as http:
        yield Site(http, db_path, clock, partner, key, tokens)


def _band(score: float, scale: ScoreScale) -> dict[str, int]:
    """The 50-point band by hand: the score's, within the scale's range (top band holds its end)."""
    low = min(max(int(score + 0.5) // 50 * 50, scale.min_score), scale.max_score - 50)
    return {"band_low": int(low), "band_high": int(low) + 50}


def test_a_run_records_the_scale_it_was_scored_on(runs: Runs) -> None:
    scores_dir = runs.data / "scores"
    for run, scale in (("A", CONFIGURED), ("B", OTHER)):
        assert catalog.read_manifest(scores_dir, runs.run_id[run])["scale"] == asdict(scale)
        assert published_scale(catalog.run_dir(scores_dir, runs.run_id[run]) / "scores") == scale
    # What grants are checked against: the run published now (B), loaded or not.
    assert current_scale(scores_dir) == OTHER == ParquetScoreSource(scores_dir).served_scale()
    assert current_scale(runs.data / "nothing-published") is None


def test_bands_follow_the_run_served_not_the_configured_scale(runs: Runs, tmp_path: Path) -> None:
    subjects = runs.subjects()
    b = runs.scores["B"]
    with site(runs.serving(tmp_path, "B"), list(subjects.values())) as s:
        for subject in subjects.values():
            assert s.grant(subject, "rental", "band").status_code == 201
        bands = {name: s.ask(subject, "rental", "band").json()["answer"]
                 for name, subject in subjects.items()}  # fmt: skip
    # Scored below 350 on a 300–850 scale: in 300–350, never lifted into 350–400.
    assert bands["low"] == {"band_low": 300, "band_high": 350}
    assert bands["middle"] == _band(b[subjects["middle"]], OTHER)


def test_a_run_on_the_configured_scale_answers_as_before(runs: Runs, tmp_path: Path) -> None:
    a = runs.scores["A"]
    lowest, highest = str(a.idxmin()), str(a.idxmax())
    with site(runs.serving(tmp_path, "A"), [lowest, highest]) as s:
        answers = {}
        for subject in (lowest, highest):
            s.grant(subject, "rental", "band")
            s.grant(subject, "hotel_stay", "decision")
            band = s.ask(subject, "rental", "band").json()["answer"]
            answers[subject] = (band, s.ask(subject, "hotel_stay", "decision").json()["answer"])
    for subject in (lowest, highest):
        word = "waive_deposit" if int(a[subject] + 0.5) >= 650 else "require_deposit"
        assert answers[subject] == (_band(a[subject], CONFIGURED), {"decision": word})
    assert answers[lowest][0] == {"band_low": 350, "band_high": 400}  # clipped at 350
    assert answers[highest][1] == {"decision": "waive_deposit"}


def test_a_run_switched_under_a_running_server_is_answered_on_its_scale(
    runs: Runs, tmp_path: Path
) -> None:
    subjects = runs.subjects()
    data = runs.serving(tmp_path, "A")
    path = tmp_path / "policies.toml"
    path.write_text(SPA.format(900))  # on run A's 350–950; off run B's 300–850
    policies = load_policies(path, scale=CONFIGURED)
    low = subjects["low"]
    with site(data, [low], policies) as s:
        s.grant(low, "rental", "band")
        assert s.grant(low, "spa_day", "decision").status_code == 201
        assert s.ask(low, "spa_day", "decision").json()["answer"] == {"decision": "deposit"}
        _rescore_on_other(s, data, runs, low)
        refused = s.ask(low, "spa_day", "decision")
        uses = s.http.get("/v1/grants", headers={"Authorization": f"Bearer {s.tokens[low]}"})
    assert refused.status_code == 403
    assert refused.json() == {
        "detail": "threshold_outside_scale",
        "reason": "this purpose's cut-off 900 lies outside the score range 300-850 of the "
        "scores served; the policy needs revising",
    }
    entry = [e for e in s.entries("lookup") if e.purpose == "spa_day"][-1]
    assert (entry.outcome, entry.reason, entry.fields) == ("refused", "threshold_outside_scale", ())
    spa = [g for g in uses.json() if g["purpose"] == "spa_day"]
    assert [g["uses"] for g in spa] == [1]  # the refused lookup spent nothing


def _rescore_on_other(s: Site, data: Path, runs: Runs, low: str) -> None:
    """Publish run B under the running server; returns once it answers from it (``low``, the
    subject below 320 on B, holds a ``rental`` band grant: its band drops to 300-350)."""
    write_pointer(data / "scores" / "CURRENT", runs.run_id["B"])  # a rescore on OTHER
    deadline = time.monotonic() + 10
    while (band := s.ask(low, "rental", "band").json()["answer"])["band_low"] != 300:
        assert time.monotonic() < deadline, f"still {band}: the new run's scale is not used"
        time.sleep(0.05)


def _grants(s: Site, subject: str) -> dict[str, dict]:
    """The subject's grants as ``GET /v1/grants`` shows them, by purpose (one each)."""
    headers = {"Authorization": f"Bearer {s.tokens[subject]}"}
    return {g["purpose"]: g for g in s.http.get("/v1/grants", headers=headers).json()}


OFF_SCALE = (
    "this lookup's cut-off (the one asked, or the one the grant holds) lies outside the "
    "score range 300-850 of the scores served; no answer is given at it"
)


def test_a_grant_cut_off_is_checked_against_the_run_served(runs: Runs, tmp_path: Path) -> None:
    """Granting on run B (300-850) while `serve` was configured 350-950: the subject's own
    cut-off and the purpose's are both read on run B's range."""
    low = runs.subjects()["low"]
    path = tmp_path / "policies.toml"
    path.write_text(SPA.format(900))  # read when serve started on a run of 350–950
    with site(runs.serving(tmp_path, "B"), [low], load_policies(path, scale=CONFIGURED)) as s:
        off = s.grant(low, "rental", "threshold", threshold=900)
        spa = s.grant(low, "spa_day", "decision")  # the purpose's 900
        on = s.grant(low, "rental", "threshold", threshold=320)  # off 350–950, on run B's
        listed = _grants(s, low)
        log = s.log(low)
    assert (off.status_code, off.json()) == (
        422, {"detail": "threshold must lie within the score range 300-850 of the scores served"}
    )  # fmt: skip
    assert (spa.status_code, spa.json()["detail"]) == (403, "threshold_outside_scale")
    assert "900 lies outside the score range 300-850" in spa.json()["reason"]
    assert on.status_code == 201
    assert list(listed) == ["rental"] and listed["rental"]["threshold"] == 320
    refused = [e.reason for e in s.entries("grant_created") if e.outcome == "refused"]
    assert refused == ["invalid_grant", "threshold_outside_scale"]
    assert [(e["outcome"], e["reason"]) for e in log[1:3]] == [
        ("refused", "threshold_outside_scale"), ("refused", "invalid_grant")
    ]  # fmt: skip


def test_a_threshold_asked_off_the_run_scale_is_refused_and_fixes_nothing(
    runs: Runs, tmp_path: Path
) -> None:
    middle = runs.subjects()["middle"]
    b = runs.scores["B"]
    with site(runs.serving(tmp_path, "B"), [middle]) as s:
        s.grant(middle, "rental", "band")  # no cut-off yet: the first question fixes it
        refused = s.ask(middle, "rental", "threshold", threshold=900)  # on 350–950, off B's
        answered = s.ask(middle, "rental", "threshold", threshold=600)
        rental = _grants(s, middle)["rental"]
    assert (refused.status_code, refused.json()) == (
        403, {"detail": "threshold_outside_scale", "reason": OFF_SCALE}
    )  # fmt: skip
    # The refused question neither spent the grant nor fixed its cut-off at 900.
    assert answered.json()["answer"] == {"meets_threshold": int(b[middle] + 0.5) >= 600}
    assert (rental["uses"], rental["threshold"]) == (1, 600)
    entries = s.entries("lookup")[-2:]
    assert [(e.outcome, e.reason, e.fields, e.grant_id) for e in entries] == [
        ("refused", "threshold_outside_scale", (), None),
        ("granted", None, ("meets_threshold",), rental["grant_id"]),
    ]  # fmt: skip


def test_a_grant_cut_off_off_a_later_run_scale_is_refused_at_lookup_and_kept(
    runs: Runs, tmp_path: Path
) -> None:
    """A cut-off valid when granted (900 on run A) and off the run published since (B): the
    answers at it are refused, unspent; the grant stays, and answers what needs no cut-off."""
    low = runs.subjects()["low"]
    data = runs.serving(tmp_path, "A")
    with site(data, [low]) as s:
        s.grant(low, "rental", "band")
        assert s.grant(low, "tenant_check", "band", threshold=900).status_code == 201
        before = s.ask(low, "tenant_check", "decision").json()["answer"]
        _rescore_on_other(s, data, runs, low)
        decision = s.ask(low, "tenant_check", "decision")
        threshold = s.ask(low, "tenant_check", "threshold", threshold=900)
        band = s.ask(low, "tenant_check", "band")
        tenant = _grants(s, low)["tenant_check"]
    assert before == {"decision": "ask_for_guarantor"}
    for refused in (decision, threshold):
        assert (refused.status_code, refused.json()) == (
            403, {"detail": "threshold_outside_scale", "reason": OFF_SCALE}
        )  # fmt: skip
    assert band.json()["answer"] == {"band_low": 300, "band_high": 350}
    assert (tenant["status"], tenant["threshold"], tenant["uses"]) == ("active", 900, 2)
    reasons = [e.reason for e in s.entries("lookup") if e.purpose == "tenant_check"]
    assert reasons == [None, "threshold_outside_scale", "threshold_outside_scale", None]


def test_partner_policies_reads_cut_offs_on_the_published_run_scale(
    runs: Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`creditgraph partner policies` checks the file as `serve` would: on run B's 300–850
    (configured: 350–950), and on the configured scale when no run is published."""
    data = runs.serving(tmp_path, "B")
    path = tmp_path / "policies.toml"
    monkeypatch.setenv("CREDITGRAPH_POLICIES", str(path))
    monkeypatch.chdir(tmp_path)

    def policies(cut_off: int, data_dir: Path) -> tuple[int, str]:
        path.write_text(SPA.format(cut_off))
        result = CliRunner().invoke(cli, ["partner", "policies", "--data-dir", str(data_dir)])
        return result.exit_code, " ".join(result.output.split())

    code, said = policies(320, data)  # on run B's range only
    assert code == 0, said
    assert "spa_day" in said and "320" in said
    assert "cut-offs read on the published run's scale 300–850" in said
    code, said = policies(900, data)  # on the configured range only
    assert code == 2 and "threshold 900 is outside the score range 300-850" in said
    assert "cut-offs read on the published run's scale 300–850" in said
    empty = tmp_path / "empty"
    code, said = policies(320, empty)  # nothing published: the configured scale, as before
    assert code == 2 and "threshold 320 is outside the score range 350-950" in said
    assert "cut-offs read on the configured scale 350–950" in said
    assert "(published run: none yet)" in said
    code, said = policies(900, empty)
    assert code == 0 and "spa_day" in said, said


def _taken_port() -> socket.socket:
    """A listening socket: a server that gets as far as binding its port fails there."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def _refused_serve(
    data: Path, cut_off: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """What `creditgraph serve` says when it refuses to start with SPA at ``cut_off``."""
    path = tmp_path / "policies.toml"
    path.write_text(SPA.format(cut_off))
    monkeypatch.setenv("CREDITGRAPH_POLICIES", str(path))
    monkeypatch.chdir(tmp_path)
    with _taken_port() as taken:
        port = str(taken.getsockname()[1])
        result = CliRunner().invoke(cli, ["serve", "--data-dir", str(data), "--port", port])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, said
    return said


def test_serve_refuses_a_cut_off_outside_the_run_scale(
    runs: Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = runs.serving(tmp_path, "B")
    # 900: fine on the configured 350–950, off the run's 300–850
    said = _refused_serve(data, 900, tmp_path, monkeypatch)
    assert "threshold 900 is outside the score range 300-850" in said
    assert "cut-offs read on the published run's scale 300–850" in said
    assert "not on the configured 350–950" in said


def test_a_run_recorded_before_scales_reads_its_model_else_warns(
    runs: Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = runs.serving(tmp_path, "B")
    run = catalog.run_dir(data / "scores", runs.run_id["B"])
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["scale"]  # as a run published before runs recorded their scale
    (run / "manifest.json").write_text(json.dumps(manifest))
    assert published_scale(run / "scores") == OTHER  # its model's: a model id covers its scale
    shutil.rmtree(data / "models" / runs.model_id["B"])
    assert published_scale(run / "scores") is None  # nothing says: the configured one is used
    # 320: on the run's scale, but serve can no longer know it
    said = _refused_serve(data, 320, tmp_path, monkeypatch)
    assert "records no scale" in said and "threshold 320 is outside the score range 350-950" in said


def test_serve_answers_a_run_on_another_scale_than_configured(runs: Runs, tmp_path: Path) -> None:
    """`creditgraph serve` end to end: started on settings of 350–950 over run B (300–850),
    with a cut-off only run B's scale holds; bands and decisions follow run B."""
    subjects = runs.subjects()
    data = runs.serving(tmp_path, "B")
    path = tmp_path / "policies.toml"
    path.write_text(SPA.format(320))
    db_path = data / "access" / "access.sqlite"
    partner, key = add_partner(db_path, "Spa")
    expires = datetime.now(UTC) + timedelta(days=7)
    with AccessDB(db_path) as db:
        for subject in subjects.values():
            create_grant(db, subject_id=subject, partner_id=partner, purpose="spa_day",
                         scope=Scope.DECISION, expires_at=expires,
                         policies=load_policies(path, scale=OTHER))  # fmt: skip
            create_grant(db, subject_id=subject, partner_id=partner, purpose="rental",
                         scope=Scope.BAND, expires_at=expires)  # fmt: skip
    port = _free_port()
    settings_free = {k: v for k, v in os.environ.items() if not k.startswith("CREDITGRAPH_")}
    server = subprocess.Popen(
        [sys.executable, "-c", "from creditgraph.cli import main; main()", "serve",
         "--data-dir", str(data), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path,
        env={**settings_free, "CREDITGRAPH_POLICIES": str(path)},
    )  # fmt: skip
    answers: dict[str, tuple[dict, dict]] = {}
    try:
        deadline = time.monotonic() + 120  # a busy machine imports slowly
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            for name, subject in subjects.items():
                band = _answer(http, server, key, deadline, subject, "rental", "band")
                word = _answer(http, server, key, deadline, subject, "spa_day", "decision")
                answers[name] = (band, word)
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0].decode()
    b = runs.scores["B"]
    assert answers["low"] == ({"band_low": 300, "band_high": 350}, {"decision": "deposit"})
    assert answers["middle"] == (_band(b[subjects["middle"]], OTHER), {"decision": "no_deposit"})
    assert "cut-offs read on the published run's scale 300–850" in " ".join(output.split())


def _answer(http: httpx.Client, server: subprocess.Popen[bytes], key: str, deadline: float,
            subject: str, purpose: str, scope: str) -> dict:  # fmt: skip
    """The answer of one lookup, once the server is up and its scores loaded."""
    while True:
        assert server.poll() is None, server.communicate()[0].decode()
        assert time.monotonic() < deadline, "serve did not answer"
        try:
            body = {"subject_id": subject, "purpose": purpose, "scope": scope}
            answer = http.post("/v1/lookup", headers={"X-API-Key": key}, json=body)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        if answer.status_code == 503:  # still loading
            time.sleep(0.1)
            continue
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["answer"])
