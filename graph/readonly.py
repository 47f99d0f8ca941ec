"""Refuse Cypher that is not a plain read, before it runs.

An allow-list, not a deny-list. The statement is split into tokens (string
literals, backticked names, parameters and comments never count as keywords)
and every word standing where a clause starts must be a read clause:
``MATCH``, ``OPTIONAL MATCH``, ``WHERE``, ``WITH``, ``UNWIND``, ``RETURN``,
``ORDER BY``, ``SKIP``/``OFFSET``, ``LIMIT``, ``UNION [ALL]``, ``CALL { … }``
or ``CALL`` of a procedure in :data:`ALLOWED_PROCEDURES`. ``COUNT``/``EXISTS``/
``COLLECT { … }`` subqueries and ``CASE … END`` are checked the same way inside.
Anything else where a clause starts (``CREATE``, ``COMMENT ON``, ``ANALYZE``,
``UNINSTALL``, ``SHOW``, ``TERMINATE``, a keyword a later engine adds…) is refused.

Second lines: a word that writes (``SET``, ``DELETE``…) is refused wherever it
stands (an identifier spelled like one must be backticked), so are calls of
``gds.``/``apoc.``/``dbms.`` functions (``RETURN gds.graph.project(…)`` fills the
GDS catalog) and ``nextval()``, and a second statement. Values always travel as
parameters, so they never reach this text. The stores add their own layer:
Neo4j runs reads in a READ session; commands that never write open the
embedded database read-only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from creditgraph.errors import InvalidArgument, ReadOnlyViolation

# Clauses a read may use; each must stand where a clause starts.
READ_CLAUSES: Final = frozenset(
    {"MATCH", "OPTIONAL", "WHERE", "WITH", "UNWIND", "RETURN", "ORDER", "SKIP", "OFFSET",
     "LIMIT", "UNION", "CALL", "YIELD"}
)  # fmt: skip
# Read-only procedures an investigation may CALL; anything else is refused.
ALLOWED_PROCEDURES: Final = frozenset({"table_info", "show_tables", "db.labels",
                                       "db.relationshiptypes"})  # fmt: skip
# Refused wherever they stand, even where an identifier could be (second line of defence;
# not ``COMMENT``: ladybug's ``show_tables()`` yields a column of that name).
WRITE_KEYWORDS: Final = frozenset(
    {
        "CREATE", "MERGE", "SET", "DELETE", "DETACH", "NODETACH", "REMOVE", "DROP", "ALTER",
        "COPY", "LOAD", "IMPORT", "EXPORT", "INSTALL", "UNINSTALL", "ATTACH", "USE", "BEGIN",
        "COMMIT", "ROLLBACK", "CHECKPOINT", "FOREACH", "TRUNCATE", "GRANT", "DENY", "REVOKE",
        "START", "STOP", "TERMINATE", "INSERT", "UPDATE",
    }
)  # fmt: skip
# Function namespaces (and functions) a read may not call: they change state or the server.
_FORBIDDEN_NAMESPACES: Final = ("gds.", "apoc.", "dbms.")
_FORBIDDEN_FUNCTIONS: Final = frozenset({"nextval"})

# Where a query (or subquery) starts, and what each keyword must be followed by.
_QUERY_START: Final = frozenset({"MATCH", "OPTIONAL", "WITH", "UNWIND", "RETURN", "CALL"})
_STRING_WITH: Final = frozenset({"WITH"})  # STARTS WITH, ENDS WITH: not the clause
_NEXT: Final = {
    "OPTIONAL": frozenset({"MATCH", "CALL"}),
    "ORDER": frozenset({"BY"}),
    "STARTS": _STRING_WITH,
    "ENDS": _STRING_WITH,
    "UNION": _QUERY_START | {"ALL", "DISTINCT"},
    "NULLS": frozenset({"FIRST", "LAST"}),  # ORDER BY x DESC NULLS LAST
}
# Besides clauses, the words that may follow a finished expression.
_INFIX: Final = frozenset(
    {"AS", "AND", "OR", "XOR", "IS", "IN", "CONTAINS", "STARTS", "ENDS", "WHEN", "THEN",
     "ELSE", "END", "ASC", "ASCENDING", "DESC", "DESCENDING", "SHORTEST", "TRAIL", "ACYCLIC",
     "WALK", "GROUPS", "PATH", "PATHS", "NULLS"}
)  # fmt: skip
_AFTER_EXPRESSION: Final = READ_CLAUSES | _INFIX
_ENDS_EXPRESSION: Final = frozenset(
    {"END", "ASC", "ASCENDING", "DESC", "DESCENDING", "GROUPS", "PATH", "PATHS", "FIRST", "LAST"}
)
# Keywords that leave the next word in operand position when met as an operand.
# (WHERE: ladybug filters a variable-length relationship with ``(r, n | WHERE …)``.)
_PREFIX: Final = frozenset({"NOT", "DISTINCT", "CASE", "WHEN", "WHERE"})
_SUBQUERY: Final = frozenset({"CALL", "COUNT", "EXISTS", "COLLECT"})

_TOKEN = re.compile(
    r"""(?P<comment>//[^\r\n]*|/\*.*?(?:\*/|\Z))
    |(?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    |(?P<name>`(?:[^`]|``)*`)
    |(?P<param>\$(?:\w+|`(?:[^`]|``)*`))
    |(?P<number>\d\w*(?:\.\d\w*)?)
    |(?P<word>[^\W\d]\w*(?:\.[^\W\d]\w*)*)
    |(?P<space>\s+)
    |(?P<symbol>.)""",
    re.VERBOSE | re.DOTALL,
)
_LITERALS = re.compile(
    r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`|//[^\r\n]*|/\*.*?\*/", re.DOTALL
)

# Scanner states: what the next word may be.
_CLAUSE, _END, _OPERAND, _ALIAS, _PROC = "clause", "end", "operand", "alias", "proc"


@dataclass(frozen=True)
class Token:
    """One lexical token of a statement (comments and whitespace are dropped)."""

    kind: str  # string, name, param, number, word or symbol
    text: str
    start: int
    end: int


@dataclass
class Scan:
    """What :func:`scan` learnt: the clauses at each depth and where the statement ends."""

    clauses: list[tuple[str, int]] = field(default_factory=list)  # (KEYWORD, bracket depth)
    end: int = 0  # offset just after the last token before a final ``;``


def strip_literals(cypher: str) -> str:
    """Replace string literals, quoted names and comments with blanks of equal length."""
    return _LITERALS.sub(lambda m: " " * len(m.group(0)), cypher)


def tokens(cypher: str) -> list[Token]:
    """The statement's tokens, without comments and whitespace."""
    return [
        Token(str(m.lastgroup), m.group(0), m.start(), m.end())
        for m in _TOKEN.finditer(cypher)
        if m.lastgroup not in ("comment", "space")
    ]


def check_read_only(cypher: str) -> None:
    """Raise :class:`ReadOnlyViolation` unless ``cypher`` is one statement of read clauses."""
    scan(cypher)


def scan(cypher: str) -> Scan:
    """Check ``cypher`` as :func:`check_read_only` does and return its clause structure."""
    toks = tokens(cypher)
    semicolons = [i for i, t in enumerate(toks) if t.text == ";"]
    if semicolons and semicolons[0] != len(toks) - 1:
        raise ReadOnlyViolation("only one statement may be sent at a time")
    if semicolons:
        toks = toks[:-1]
    result = Scan(end=toks[-1].end if toks else 0)
    state: str = _CLAUSE
    allowed: frozenset[str] = _QUERY_START  # in _CLAUSE state: the words that may come next
    depth = 0
    for i, tok in enumerate(toks):
        prev = toks[i - 1] if i else None
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if tok.kind == "word":
            _check_call(tok, nxt)
            upper = tok.text.upper()
            if state == _PROC:
                _check_procedure(tok.text)
                state = _END
            elif prev is not None and prev.kind == "symbol" and prev.text in ".:":
                state = _END  # a property, label or type name: never a clause
            elif state in (_OPERAND, _ALIAS):
                if upper in WRITE_KEYWORDS:
                    raise ReadOnlyViolation(
                        f"{upper} would change the graph or the server; this path is read-only"
                        " (backtick a name spelled like it)"
                    )
                state = _OPERAND if state == _OPERAND and upper in _PREFIX else _END
            else:  # where a clause (or, after an expression, an infix keyword) must stand
                permitted = allowed if state == _CLAUSE else _AFTER_EXPRESSION
                if upper not in permitted:
                    raise _not_a_read(upper, permitted)
                if upper in READ_CLAUSES and not (state == _CLAUSE and allowed is _STRING_WITH):
                    result.clauses.append((upper, depth))
                state, allowed = _after_keyword(upper, allowed)
        elif tok.kind == "name" and state == _PROC:
            _check_procedure(tok.text[1:-1].replace("``", "`"))
            state = _END
        elif tok.kind != "symbol":
            state = _END  # a literal, parameter, number or backticked name
        elif tok.text in "([":
            depth += 1
            state = _OPERAND
        elif tok.text == "{":
            depth += 1
            opens = state == _PROC or _opens_subquery(toks[max(i - 2, 0) : i])
            state, allowed = (_CLAUSE, _QUERY_START) if opens else (_OPERAND, allowed)
        elif tok.text in ")]}":
            depth -= 1
            state = _END
        elif tok.text == "*":
            state = _OPERAND if state == _END else _END  # a product, or RETURN * / count(*)
        else:
            state = _OPERAND
    return result


def _opens_subquery(before: list[Token]) -> bool:
    """Whether a ``{`` after these tokens opens a subquery (``CALL (x) {``, ``COUNT {``…)."""
    if not before:
        return False
    prev = before[-1]
    if prev.text == ")":
        return True
    after_dot = len(before) == 2 and before[0].text in (".", ":")  # a label or key, not a keyword
    return prev.kind == "word" and prev.text.upper() in _SUBQUERY and not after_dot


def _after_keyword(upper: str, allowed: frozenset[str]) -> tuple[str, frozenset[str]]:
    """The scanner state after a keyword that stood where a clause (or infix word) may."""
    if upper in ("ALL", "DISTINCT") and allowed is _NEXT["UNION"]:
        return _CLAUSE, _QUERY_START
    if upper in _NEXT:
        return _CLAUSE, _NEXT[upper]
    if upper == "AS":
        return _ALIAS, _QUERY_START
    if upper == "CALL":
        return _PROC, _QUERY_START
    if upper in _ENDS_EXPRESSION:
        return _END, _QUERY_START
    return _OPERAND, _QUERY_START


def _not_a_read(upper: str, permitted: frozenset[str]) -> ReadOnlyViolation:
    if upper in WRITE_KEYWORDS:
        return ReadOnlyViolation(
            f"{upper} would change the graph or the server; this path is read-only"
        )
    clauses = "MATCH, OPTIONAL MATCH, WHERE, WITH, UNWIND, RETURN, ORDER BY, SKIP, LIMIT, "
    clauses += "UNION, CALL { … } and allowed procedures"
    expected = ", ".join(sorted(permitted)) if len(permitted) < 4 else clauses
    return ReadOnlyViolation(f"{upper} is not a read clause; this path allows only {expected}")


def _check_call(tok: Token, nxt: Token | None) -> None:
    """Refuse a call of a GDS/APOC/dbms function or of ``nextval()``."""
    if nxt is None or nxt.text != "(":
        return
    lower = tok.text.lower()
    if lower.startswith(_FORBIDDEN_NAMESPACES) or lower in _FORBIDDEN_FUNCTIONS:
        raise ReadOnlyViolation(f"{tok.text}() may change the server's state; "
                                "this path is read-only")  # fmt: skip


def _check_procedure(name: str) -> None:
    if name.lower() not in ALLOWED_PROCEDURES:
        raise ReadOnlyViolation(f"procedure {name!r} is not on the read-only allow-list")


def with_limit(cypher: str, limit: int) -> str:
    """``cypher`` with ``LIMIT limit`` appended where that keeps its first rows the same.

    Only a single query whose last clause is a top-level ``RETURN`` (maybe with
    ``ORDER BY``/``SKIP``) and no ``LIMIT`` of its own gets one; a ``UNION``, or a
    statement that already limits itself, comes back unchanged (callers still trim).
    """
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise InvalidArgument(f"limit must be a positive int, got {limit!r}")
    found = scan(cypher)
    top = [keyword for keyword, depth in found.clauses if depth == 0]
    if "UNION" in top or "RETURN" not in top:
        return cypher
    tail = top[len(top) - top[::-1].index("RETURN") :]
    if any(keyword not in ("ORDER", "SKIP", "OFFSET") for keyword in tail):
        return cypher
    return f"{cypher[: found.end]} LIMIT {limit}{cypher[found.end :]}"
