"""Every Cypher statement we can send, checked by Neo4j's own parser (no server needed).

One node process lints everything at once (the store's statements, the query
library and a few deliberately broken statements that must be caught), so the
~1 s parser start is paid once. The linter is part of ``make test``; when the
npm package is missing these tests fail with the install command rather than
skip, so CI cannot pass without running them.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cypher_lint import (
    INSTALL_HINT,
    LinterUnavailable,
    LintProblem,
    declared_parameters,
    lint_statements,
    query_files,
)

from creditgraph.graph.neo4j.statements import all_statements
from creditgraph.graph.readonly import with_limit

STORE = [tuple(s) for s in all_statements()]
LIBRARY = query_files()
BROKEN = [
    ("broken:syntax", "MATCH (n:User RETURN n", {}),
    ("broken:undeclared_parameter", "MATCH (n:User {user_id: $user}) RETURN n", {}),
    (
        "broken:unknown_procedure",
        "CALL gds.pageRank.mutat($graph, {}) YIELD x RETURN x",
        {"graph": "g"},
    ),
    (
        "broken:wrong_yield",
        "CALL gds.wcc.mutate($graph, {}) YIELD componentId RETURN 1",
        {"graph": "g"},
    ),
    ("broken:unknown_function", "RETURN toStirng(1) AS s", {}),
]
# The library as sent with a row limit: where LIMIT is pushed into the text it must still parse.
LIMITED = [(f"limited:{name}", limited, params) for name, text, params in LIBRARY
           if (limited := with_limit(text, 1000)) != text]  # fmt: skip
CLEAN = [("clean:read", "MATCH (n:User) WHERE n.age > $age RETURN n.user_id AS id", {"age": 30})]


@pytest.fixture(scope="module")
def problems() -> dict[str, list[LintProblem]]:
    started = time.perf_counter()
    try:
        found = lint_statements(STORE + LIBRARY + LIMITED + BROKEN + CLEAN)
    except LinterUnavailable as exc:
        pytest.fail(f"{exc} (the Cypher linter must run; install it with: {INSTALL_HINT})")
    elapsed = time.perf_counter() - started
    by_name: dict[str, list[LintProblem]] = {}
    for problem in found:
        by_name.setdefault(problem.name, []).append(problem)
    by_name["_elapsed"] = [LintProblem("_elapsed", 0, f"{elapsed:.1f}", 0, 0)]
    return by_name


@pytest.mark.parametrize("name", [s[0] for s in STORE])
def test_store_statement_is_clean(problems: dict[str, list[LintProblem]], name: str) -> None:
    # The store's own statements must not even warn (unknown label, cartesian product, ...).
    assert problems.get(name, []) == [], "\n".join(map(str, problems[name]))


@pytest.mark.parametrize("name", [s[0] for s in LIBRARY] or ["(no query files yet)"])
def test_query_file_parses(problems: dict[str, list[LintProblem]], name: str) -> None:
    errors = [p for p in problems.get(name, []) if p.is_error]
    assert errors == [], "\n".join(map(str, problems[name]))


@pytest.mark.parametrize("name", [s[0] for s in LIMITED])
def test_query_with_a_pushed_limit_parses(
    problems: dict[str, list[LintProblem]], name: str
) -> None:
    errors = [p for p in problems.get(name, []) if p.is_error]
    assert errors == [], "\n".join(map(str, problems[name]))


def test_limits_are_pushed_into_queries_without_one() -> None:
    assert {name.removeprefix("limited:") for name, _, _ in LIMITED} == {
        "queries/commerce/owner_customer_quality.cypher",
        "queries/commerce/shared_merchants.cypher",
        "queries/community/community_risk.cypher",
        "queries/network/shortest_friend_path.cypher",
    }


@pytest.mark.parametrize("name", [s[0] for s in BROKEN])
def test_a_broken_statement_fails(problems: dict[str, list[LintProblem]], name: str) -> None:
    assert any(p.is_error for p in problems.get(name, [])), f"{name} was not caught"


def test_a_clean_statement_passes_and_all_ran_in_one_process(
    problems: dict[str, list[LintProblem]],
) -> None:
    assert "clean:read" not in problems
    elapsed = float(problems["_elapsed"][0].message)
    assert elapsed < 60, f"linting took {elapsed:.1f} s"


def test_header_parameters_are_declared() -> None:
    text = (
        "// name: friend_cluster\n"
        "// params: user_id (str, required): the user at the centre (pseudonymous)\n"
        "// params: hops (int, 2): friendship hops to follow, 1 to 3\n"
        "// params: since (date, required): first day; min_score (float, 0.0): floor\n"
        "// description: A user's friends up to k hops away (with scores).\n"
        "// example: creditgraph query run friend_cluster --param user_id=u1\n"
        "MATCH (u:User {user_id: $user_id}) RETURN u\n"
        "// params: late (str, x): not in the header\n"
    )
    assert declared_parameters(text) == {
        "user_id": "x", "hops": 1, "since": "2024-01-31", "min_score": 0.5,
    }  # fmt: skip
    assert declared_parameters("// name: all\n// params: none\nMATCH (n) RETURN n") == {}


def test_query_files_skip_embedded_dialect(tmp_path: Path) -> None:
    topic = tmp_path / "queries" / "fraud"
    topic.mkdir(parents=True)
    (topic / "ring.cypher").write_text("// params: id (str, required): who\nRETURN $id AS id\n")
    (topic / "ring.embedded.cypher").write_text("RETURN $id AS id\n")
    assert query_files(tmp_path) == [
        (
            "queries/fraud/ring.cypher",
            "// params: id (str, required): who\nRETURN $id AS id\n",
            {"id": "x"},
        ),
    ]
    assert query_files(tmp_path / "nowhere") == []
