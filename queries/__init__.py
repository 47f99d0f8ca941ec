"""Cypher investigations for analysts: a documented query library with a read-only runner.

>>> import queries
>>> [spec.name for spec in queries.list()][:2]  # doctest: +SKIP
>>> queries.describe("friend_cluster").params  # doctest: +SKIP
>>> queries.run(store, "friend_cluster", user_id="u0000042", hops=2)  # doctest: +SKIP

The investigations live in ``queries/<topic>/<name>.cypher`` (Neo4j 5 text) with
an ``<name>.embedded.cypher`` sibling where the embedded engine's dialect differs;
see :mod:`queries.library` for the header format and the project README for
the list.
"""

from __future__ import annotations

import pandas as pd

from creditgraph.queries.library import Param, QuerySpec, describe, list_queries, show
from creditgraph.queries.runner import dialect_of, format_result, parse_params, run, run_cypher

list = list_queries  # noqa: A001 - the documented name: ``queries.list()``


def catalogue() -> pd.DataFrame:
    """One row per investigation: name, topic, signature, description (for listings)."""
    return pd.DataFrame(
        [
            {
                "name": s.name,
                "topic": s.topic,
                "params": s.signature(),
                "description": s.description,
            }
            for s in list_queries()
        ],
        columns=["name", "topic", "params", "description"],
    )


__all__ = [
    "Param",
    "QuerySpec",
    "catalogue",
    "describe",
    "dialect_of",
    "format_result",
    "list",
    "list_queries",
    "parse_params",
    "run",
    "run_cypher",
    "show",
]
