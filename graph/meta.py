"""Bookkeeping kept inside the graph: which load and which scoring run it holds.

Written in the same transaction as the data it describes, so the graph itself
says which history version (``load_id``) and scoring run (``score_run``) it
matches; the data directory compares them with its own pointers.
"""

from __future__ import annotations

import pandas as pd

from creditgraph.errors import QueryError
from graph.schema import META
from graph.store import GraphStore

LOAD_ID = "load_id"
SCORE_RUN = "score_run"


def read_meta(store: GraphStore) -> dict[str, str]:
    """Every bookkeeping value the graph holds (empty for a new or older graph)."""
    try:
        rows = store.query(f"MATCH (m:{META.label}) RETURN m.name AS name, m.value AS value")
    except QueryError:  # no Meta table yet: a store made before bookkeeping existed
        return {}
    return dict(zip(rows["name"].astype(str), rows["value"].astype(str), strict=True))


def write_meta(store: GraphStore, **values: str) -> None:
    """Set bookkeeping values, inside the ``store.atomic()`` block of the data they describe."""
    frame = pd.DataFrame({"name": list(values), "value": [str(v) for v in values.values()]})
    store.upsert_nodes(META.label, frame)
