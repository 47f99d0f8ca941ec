"""The graph-store protocol: the only thing the rest of creditgraph knows about a store.

Two implementations exist: :class:`graph.embedded.EmbeddedStore` (the default,
no server) and :class:`graph.neo4j.store.Neo4jStore` (production); both import
this module and it imports neither (:func:`graph.stores.open_store` picks one).
Nodes are addressed by their key property, relationships by ``src``/``dst`` key
columns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class EdgeArrays:
    """Relationships exported as integer arrays.

    ``src[i]`` and ``dst[i]`` are positions into ``source_ids`` / ``target_ids``
    (the key values of every node of the source / target label, so isolated
    nodes keep a position). ``properties`` holds one array per requested
    relationship property, aligned with ``src``.
    """

    src: np.ndarray
    dst: np.ndarray
    source_ids: pd.Index
    target_ids: pd.Index
    properties: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.src)


@dataclass
class LoadWritten:
    """What :meth:`GraphStore.bulk_load` wrote: nodes / relationships created or changed,
    and relationships removed.

    ``batches`` counts the batch transactions sent (0 on a store that loads
    all or nothing in one transaction); a resumed load sends only the batches
    an interrupted run of it had not committed, and counts only their changes.
    """

    nodes: dict[str, int] = field(default_factory=dict)
    edges: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    batches: int = 0


@dataclass
class PropertiesWritten:
    """What :meth:`GraphStore.publish_properties` wrote.

    ``nodes`` counts the nodes given properties by this call; ``batches`` the
    batch transactions it sent (0 on a store that writes all or nothing in one
    transaction). A resumed publish sends, and counts, only the batches an
    interrupted call with the same run id had not committed.
    """

    nodes: int = 0
    batches: int = 0


@runtime_checkable
class GraphStore(Protocol):
    """What every store does. Writes are serialised by the store itself."""

    dialect: str  # "embedded" or "neo4j": which text of a library query to send

    def ensure_schema(self) -> None:
        """Create node/relationship tables (or constraints) if they do not exist."""

    def upsert_nodes(self, label: str, frame: pd.DataFrame) -> int:
        """Insert new nodes and update changed ones, keyed by the label's key column.

        Returns the number of nodes inserted or changed; re-sending the same
        rows returns 0 and changes nothing.
        """

    def upsert_edges(self, rel: str, frame: pd.DataFrame) -> int:
        """Insert or update relationships given by ``src``/``dst`` key columns (one per pair)."""

    def node_ids(self, label: str) -> pd.Index:
        """Every key of ``label`` in key order, whatever order they were loaded in."""

    def export_edges(self, rel: str, properties: tuple[str, ...] = ()) -> EdgeArrays:
        """Every relationship of type ``rel`` as integer arrays (see :class:`EdgeArrays`)."""

    def bulk_load(
        self,
        nodes: Mapping[str, pd.DataFrame],
        edges: Mapping[str, pd.DataFrame],
        *,
        load_id: str,
        progress: Callable[[str], None] | None = None,
        removed: Mapping[str, pd.DataFrame] | None = None,
    ) -> LoadWritten:
        """Remove the ``removed`` relationships (``src``/``dst`` keys, by type; those not
        stored are ignored), upsert every node frame, then every relationship frame, and
        record ``load_id``.

        The graph's Meta ``load_id`` is set (and any ``pending_load`` cleared)
        only once every row has landed. The embedded store does it all in one
        transaction (all or nothing). Neo4j marks the load pending, then sends
        retried batch transactions, each recording its progress in the same
        transaction: called again with the same ``load_id`` and frames, it
        sends only the batches that have not committed (see :mod:`graph.meta`).
        """

    def write_properties(self, label: str, frame: pd.DataFrame) -> int:
        """Set properties on existing nodes: ``frame`` is indexed by key, one column a property."""

    def publish_properties(
        self,
        label: str,
        frame: pd.DataFrame,
        *,
        run_id: str,
        progress: Callable[[str], None] | None = None,
    ) -> PropertiesWritten:
        """Set a published run's properties (as :meth:`write_properties`) and record ``run_id``.

        The graph's Meta ``PUBLISHED_RUN`` (:mod:`graph.meta`) is set to
        ``run_id`` only once every row has landed. The embedded store does it
        in one transaction (all or nothing). Neo4j marks the run pending
        (``PENDING_RUN``), then sends retried batch transactions, each
        recording its progress (``RUN_PROGRESS``) in the same transaction, and
        a last one that sets ``PUBLISHED_RUN`` and clears both marks: called
        again with the same ``run_id`` and frame (same rows, same order), it
        sends only the batches that have not committed. Until then readers of
        the graph may see the run's properties on some nodes only.
        """

    def query(
        self, cypher: str, params: Mapping[str, Any] | None = None, *,
        timeout_s: float | None = None,
    ) -> pd.DataFrame:  # fmt: skip
        """Run one read-only, parameterised Cypher statement and return its rows."""

    def atomic(self) -> AbstractContextManager[None]:
        """A block whose writes all land or, on error, leave the store as it was.

        One transaction on both stores; a load goes through :meth:`bulk_load`
        instead, which on Neo4j never needs one transaction for all its rows.
        """

    def close(self) -> None:
        """Release the store."""

    def __enter__(self) -> GraphStore: ...

    def __exit__(self, *exc: object) -> None: ...
