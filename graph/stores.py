"""Opening a store by name: the one module that knows every implementation.

:mod:`graph.store` holds only the protocol; the stores import it, and this
module imports them (lazily, so the embedded store never loads the Neo4j driver).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from creditgraph.errors import ConfigError
from creditgraph.graph.store import GraphStore
from creditgraph.graph.versions import GraphVersions


def open_store(
    spec: str = "embedded", path: Path | None = None, *, versions: GraphVersions | None = None,
    batch_size: int | None = None, read_only: bool = False,
) -> GraphStore:  # fmt: skip
    """Open a store from a spec: ``embedded``, ``memory``, ``neo4j`` or a URI.

    The embedded store lives in ``versions`` (crash-safe: see
    :mod:`graph.versions`) or, without, in the single file ``path``.
    ``read_only`` opens an embedded store so that the engine refuses writes.
    ``batch_size`` (rows per write transaction) applies to Neo4j; the embedded
    store writes each frame in one bulk ``COPY``.
    """
    if spec in ("embedded", "memory"):
        from creditgraph.graph.embedded import EmbeddedStore

        if spec == "memory":
            return EmbeddedStore()
        return EmbeddedStore(path, versions=versions, read_only=read_only)
    if spec == "neo4j" or "://" in spec:
        from creditgraph.graph.neo4j.store import Neo4jStore

        options: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
        return Neo4jStore.from_env(uri=None if spec == "neo4j" else spec, **options)
    raise ConfigError(f"unknown store {spec!r}: use 'embedded', 'memory', 'neo4j' or a bolt URI")
