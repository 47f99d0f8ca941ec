"""Lookup latency of the access API on loopback under a fixed, open-loop request rate.

Builds a throwaway world (a scores file, partners, grants), starts ``creditgraph serve``'s
server in its own process on 127.0.0.1, then sends lookups at a fixed rate whatever the
answers' pace (open loop) and reports latency percentiles. Latency runs from each
request's *scheduled* time, so a stalled server cannot hide its queue (no coordinated
omission). Every lookup does the real grant check and the fsync'd audit append; a share
of them are refused (no grant, another purpose), which is audited the same way.

It then times the start-up of the real ``creditgraph serve`` over a data directory holding
a published run of ``--startup-users`` scores (1M by default): how long until ``/healthz``
answers, and until the first granted lookup does (the scores load in the background).

    .venv/bin/python benchmarks/access_latency.py --rate 200 --seconds 10
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import multiprocessing
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from creditgraph.access import add_partner, issue_subject_token, verify_audit
from creditgraph.access.db import AccessDB, default_db_path
from creditgraph.access.grants import create_grant
from creditgraph.access.scopes import Scope
from creditgraph.access.scores import FACTORS
from creditgraph.catalog import POINTER, RUNS, SCORES_FILE
from creditgraph.durable import write_parquet, write_pointer

PURPOSES = ("hotel_deposit", "rental", "dating")


def synthetic_scores(users: int, seed: int) -> pd.DataFrame:
    """A scores file as the scoring run writes it, for ``users`` subjects ``user-0000000``…"""
    rng = np.random.default_rng(seed)
    reasons = np.array(["high utilisation; short history", "late bill payments", ""])
    return pd.DataFrame({
        "user_id": [f"user-{i:07d}" for i in range(users)],
        "score": rng.uniform(350, 950, users).round(1),
        "pd": rng.uniform(0.001, 0.4, users),
        "scored_at": datetime(2025, 3, 1, tzinfo=UTC),
        "model_id": "bench",
        **{f"f_{name}": rng.normal(0, 20, users).round(2) for name in FACTORS},
        "reasons": reasons[rng.integers(0, len(reasons), users)],
    })  # fmt: skip


def build_world(root: Path, *, users: int, granted: int, seed: int) -> tuple[Path, Path, str, list]:
    """Scores for ``users`` subjects; ``granted`` of them grant the partner one purpose."""
    scores = synthetic_scores(users, seed)
    ids = scores["user_id"].tolist()
    scores_path = root / "latest.parquet"
    scores.to_parquet(scores_path)
    db_path = root / "access.sqlite"
    partner_id, api_key = add_partner(db_path, "Benchmark Hotel")
    add_partner(db_path, "Another Partner")
    issue_subject_token(db_path, ids[0])
    cases: list[dict] = []
    expires = datetime.now(UTC) + timedelta(days=30)
    scopes = list(Scope)
    with AccessDB(db_path) as db, db.transaction():  # one commit for all grants
        for i, subject in enumerate(ids[:granted]):
            scope, purpose = scopes[i % 4], PURPOSES[i % 3]
            create_grant(
                db,
                subject_id=subject,
                partner_id=partner_id,
                purpose=purpose,
                scope=scope,
                expires_at=expires,
            )
            body: dict[str, object] = {
                "subject_id": subject,
                "purpose": purpose,
                "scope": scope.value,
            }
            if scope is Scope.THRESHOLD:
                body["threshold"] = 600
            cases.append(body)
    return db_path, scores_path, api_key, cases


def _serve(db_path: Path, scores_path: Path, port: int, durable: bool) -> None:
    """The server process: the real app, plus a header with the time spent inside it."""
    import uvicorn

    from creditgraph.access.scores import ParquetScoreSource
    from creditgraph.access.service import create_app, settle_heap

    app = create_app(db_path, ParquetScoreSource(scores_path), durable=durable)

    @app.middleware("http")
    async def timing(request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        response.headers["X-Server-Ms"] = f"{(time.perf_counter() - started) * 1000:.3f}"
        return response

    settle_heap()  # as serve() does
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def measure_startup(root: Path, *, users: int, seed: int, timeout: float = 300.0) -> dict:
    """Seconds from launching ``creditgraph serve`` until /healthz answers, and until the first
    granted lookup does, over a data directory holding a published run of ``users`` scores."""
    data_dir = root / "startup"
    scores_dir = data_dir / "scores"
    write_parquet(scores_dir / RUNS / "bench-1" / SCORES_FILE, synthetic_scores(users, seed))
    write_pointer(scores_dir / POINTER, "bench-1")
    db_path = default_db_path(data_dir)
    partner_id, api_key = add_partner(db_path, "Start-up Hotel")
    subject = f"user-{users - 1:07d}"  # the last row: found only once the whole file is in
    with AccessDB(db_path) as db:
        create_grant(
            db,
            subject_id=subject,
            partner_id=partner_id,
            purpose="rental",
            scope=Scope.SCORE,
            expires_at=datetime.now(UTC) + timedelta(days=1),
        )
    body = json.dumps({"subject_id": subject, "purpose": "rental", "scope": "score"}).encode()
    headers = {"X-API-Key": api_key, "Content-Type": "application/json"}
    port = free_port()
    command = [
        sys.executable,
        "-c",
        "from creditgraph.cli import main; main()",
        "serve",
        "--data-dir",
        str(data_dir),
        "--store",
        "embedded",
        "--port",
        str(port),
    ]
    started = time.perf_counter()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert server.stderr is not None  # piped
    healthz_s = lookup_s = None
    try:
        while lookup_s is None:
            if server.poll() is not None or time.perf_counter() - started > timeout:
                raise RuntimeError(f"serve did not start: {server.stderr.read().decode()[-500:]}")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                if healthz_s is None:
                    conn.request("GET", "/healthz")
                    if conn.getresponse().status == 200:
                        healthz_s = time.perf_counter() - started
                    continue
                conn.request("POST", "/v1/lookup", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    lookup_s = time.perf_counter() - started
                elif response.status != 503:  # 503 score_unavailable: still loading
                    raise RuntimeError(f"lookup answered {response.status} during start-up")
            except OSError:  # not listening yet
                time.sleep(0.01)
            finally:
                conn.close()
    finally:
        server.terminate()
        server.wait(10)
    return {"users": users, "healthz_s": healthz_s, "first_lookup_s": lookup_s,
            "bytecode_cached": not sys.dont_write_bytecode}  # fmt: skip


def run_load(
    port: int, api_key: str, bodies: list[bytes], rate: float, seconds: float, workers: int
) -> tuple[list[float], list[float], list[float], Counter, float]:
    """Send ``rate`` lookups/s for ``seconds``; returns latencies (ms) and status counts."""
    local = threading.local()
    headers = {"X-API-Key": api_key, "Content-Type": "application/json"}
    latencies: list[float] = []
    service: list[float] = []
    server: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()

    def send(scheduled: float, body: bytes) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        started = time.perf_counter()
        try:
            conn.request("POST", "/v1/lookup", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
            inside = float(response.getheader("X-Server-Ms", "nan"))
        except OSError:
            local.conn = None
            status, inside = -1, float("nan")
        done = time.perf_counter()
        with lock:
            latencies.append((done - scheduled) * 1000)
            service.append((done - started) * 1000)
            server.append(inside)
            statuses[status] += 1

    total = int(rate * seconds)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        start = time.perf_counter() + 0.2
        for i in range(total):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, scheduled, bodies[i % len(bodies)])
    elapsed = time.perf_counter() - start
    return latencies, service, server, statuses, total / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="lookups per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the run")
    parser.add_argument("--users", type=int, default=100_000, help="subjects with a score")
    parser.add_argument("--grants", type=int, default=5_000, help="subjects who granted")
    parser.add_argument(
        "--refused-share", type=float, default=0.2, help="share of lookups with no matching grant"
    )
    parser.add_argument("--workers", type=int, default=8, help="client threads")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--no-fsync",
        action="store_true",
        help="serve with durable=False (synchronous=NORMAL): no fsync per commit",
    )
    parser.add_argument(
        "--startup-users",
        type=int,
        default=1_000_000,
        help="scored users in the start-up measurement (0: skip it)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line too")
    args = parser.parse_args(argv)

    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cg-access-bench-") as tmp:
        db_path, scores_path, api_key, cases = build_world(
            Path(tmp), users=args.users, granted=args.grants, seed=args.seed
        )
        rng = random.Random(args.seed)
        bodies = []
        for _ in range(int(args.rate * args.seconds)):
            body = dict(rng.choice(cases))
            if rng.random() < args.refused_share:  # another purpose, or nobody granted
                body["purpose"] = "dating" if body["purpose"] != "dating" else "rental"
            bodies.append(json.dumps(body).encode())
        gc.collect()
        gc.freeze()  # keep the client's own collector pauses out of the figures
        port = free_port()
        server = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(db_path, scores_path, port, not args.no_fsync), daemon=True
        )
        server.start()
        try:
            wait_ready(port)
            latencies, service, inside, statuses, achieved = run_load(
                port, api_key, bodies, args.rate, args.seconds, args.workers
            )
        finally:
            server.terminate()
            server.join(5)
        report = verify_audit(db_path)
        startup = (
            measure_startup(Path(tmp), users=args.startup_users, seed=args.seed)
            if args.startup_users
            else None
        )

    lat = np.array(latencies)
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    print(
        f"access lookups on 127.0.0.1: {len(lat)} requests at {achieved:.1f}/s "
        f"(target {args.rate:g}/s for {args.seconds:g} s), {args.workers} client threads"
    )
    print(
        f"  machine: {os.cpu_count()} CPUs shared by client and server; "
        f"load average before the run {load:.2f}"
    )
    mode = "durable=False, no fsync per commit" if args.no_fsync else "durable, fsync per commit"
    print(f"  audit commits: {mode}")
    print(f"  statuses: {dict(sorted(statuses.items()))}")
    print(
        f"  latency ms (from scheduled send): p50 {p50:.2f}  p95 {p95:.2f}  p99 {p99:.2f}"
        f"  max {lat.max():.2f}  mean {statistics.fmean(latencies):.2f}"
    )
    print(
        f"  service time ms (from actual send): p50 {np.percentile(service, 50):.2f}  "
        f"p99 {np.percentile(service, 99):.2f}"
    )
    print(
        f"  time inside the app ms: p50 {np.nanpercentile(inside, 50):.2f}  "
        f"p99 {np.nanpercentile(inside, 99):.2f}  max {np.nanmax(inside):.2f}"
    )
    print(f"  audit log: {report.entries} entries, chain {'verified' if report.ok else 'BROKEN'}")
    ok = p99 <= 20.0 and report.ok and -1 not in statuses
    print(f"  target p99 <= 20 ms: {'met' if ok else 'NOT met'}")
    if startup:
        print(
            f"start-up of `creditgraph serve` over {startup['users']:,} scored users: "
            f"/healthz after {startup['healthz_s']:.2f} s, first granted lookup after "
            f"{startup['first_lookup_s']:.2f} s"
        )
        if not startup["bytecode_cached"]:
            print("  (PYTHONDONTWRITEBYTECODE is set: every start compiles all its imports anew)")
    if args.json:
        print(
            json.dumps(
                {
                    "rate": achieved,
                    "p50_ms": p50,
                    "p95_ms": p95,
                    "p99_ms": p99,
                    "max_ms": float(lat.max()),
                    "statuses": dict(statuses),
                    "audit_entries": report.entries,
                    "audit_ok": report.ok,
                    "startup": startup,
                }
            )
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
