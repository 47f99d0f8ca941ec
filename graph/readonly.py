"""Refuse Cypher that would write, before it runs.

The embedded engine has no read-only session, so read paths (investigations,
``creditgraph cypher``) check the statement text: string literals, backticked
names and comments are blanked out, then any write or admin keyword, or a
second statement, is refused. Values always travel as parameters, so they
never reach this text.
"""

from __future__ import annotations

import re

from creditgraph.errors import ReadOnlyViolation

WRITE_KEYWORDS = frozenset(
    {
        "CREATE", "MERGE", "SET", "DELETE", "DETACH", "REMOVE", "DROP", "ALTER",
        "COPY", "LOAD", "IMPORT", "EXPORT", "INSTALL", "ATTACH", "USE", "BEGIN",
        "COMMIT", "ROLLBACK", "CHECKPOINT", "FOREACH", "TRUNCATE", "GRANT", "DENY",
        "REVOKE", "START", "STOP", "TERMINATE", "INSERT", "UPDATE",
    }
)  # fmt: skip
# Read-only procedures an investigation may CALL; anything else is refused.
ALLOWED_PROCEDURES = frozenset({"table_info", "show_tables", "db.labels", "db.relationshiptypes"})

_LITERALS = re.compile(
    r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`|//[^\n]*|/\*.*?\*/", re.DOTALL
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def strip_literals(cypher: str) -> str:
    """Replace string literals, quoted names and comments with blanks of equal length."""
    return _LITERALS.sub(lambda m: " " * len(m.group(0)), cypher)


def check_read_only(cypher: str) -> None:
    """Raise :class:`ReadOnlyViolation` if ``cypher`` could write or holds several statements."""
    code = strip_literals(cypher)
    if ";" in code.strip().rstrip(";"):
        raise ReadOnlyViolation("only one statement may be sent at a time")
    words = _WORD.findall(code)
    for i, word in enumerate(words):
        upper = word.upper()
        if upper in WRITE_KEYWORDS:
            raise ReadOnlyViolation(f"{upper} would change the graph; this path is read-only")
        if upper == "CALL" and i + 1 < len(words):
            procedure = words[i + 1].lower()
            if procedure not in ALLOWED_PROCEDURES and words[i + 1] != "{":
                raise ReadOnlyViolation(
                    f"procedure {words[i + 1]!r} is not on the read-only allow-list"
                )
