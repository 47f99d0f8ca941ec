"""Bookkeeping kept inside the graph: which load and which scoring run it holds.

Written in the same transaction as the data it describes, so the graph itself
says which history version (``load_id``) and scoring run (``score_run``) it
matches; the data directory compares them with its own pointers.

A store that loads in resumable batches (Neo4j) also keeps ``pending_load``
(the load whose batches are being written, set before the first one) and
``load_progress`` (``<load_id> <kind> <name> <rows>``: how far it got, written
in the same transaction as each batch); both are cleared in the transaction
that sets ``load_id``. It publishes a run's node properties the same way:
``pending_score_run`` (the run whose batches are being written) and
``score_progress`` (``<run_id> <label> <rows>``), both cleared in the
transaction that sets ``score_run``.
"""

from __future__ import annotations

import pandas as pd

from creditgraph.errors import QueryError
from creditgraph.graph.schema import META
from creditgraph.graph.store import GraphStore

LOAD_ID = "load_id"
SCORE_RUN = "score_run"
PENDING_LOAD = "pending_load"
LOAD_PROGRESS = "load_progress"
PENDING_RUN = "pending_score_run"
RUN_PROGRESS = "score_progress"
# score_run by the name the store layer uses (graph/store.py and graph/embedded.py keep to
# graph words; tests/test_layers.py checks it).
PUBLISHED_RUN = SCORE_RUN
# The one statement that reads the bookkeeping (the Neo4j store lists it among its statements).
META_QUERY = f"MATCH (m:{META.label}) RETURN m.name AS name, m.value AS value"


def read_meta(store: GraphStore) -> dict[str, str]:
    """Every bookkeeping value the graph holds (empty for a new or older graph).

    A name whose value was cleared (``None``) is absent.
    """
    try:
        rows = store.query(META_QUERY)
    except QueryError:  # no Meta table yet: a store made before bookkeeping existed
        return {}
    if rows.empty:
        return {}
    rows = rows[rows["value"].notna()]
    return dict(zip(rows["name"].astype(str), rows["value"].astype(str), strict=True))


def write_meta(store: GraphStore, **values: str | None) -> None:
    """Set bookkeeping values (``None`` clears one), with the data they describe.

    Inside the ``store.atomic()`` block of that data, or (resumable loads) in
    the same batch transaction.
    """
    frame = pd.DataFrame(
        {"name": list(values), "value": [None if v is None else str(v) for v in values.values()]},
        dtype=object,
    )
    store.upsert_nodes(META.label, frame)
