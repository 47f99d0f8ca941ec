"""In-database graph features on Neo4j with the Graph Data Science (GDS) plugin.

:func:`gds_features` projects every User and one User-User relationship type
natively, runs the algorithms in *mutate* mode, writes the results once as
``gds_<name>`` node properties, drops the projection (also on error) and reads
the written properties back in one ``MATCH``: the columns of the igraph path
(``position_features``) plus ``community``. GDS procedures manage their own
transactions, so they go through the store's auto-commit
:meth:`graph.neo4j.store.Neo4jStore.run_procedure`, never retried.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from creditgraph.errors import QueryError, StoreUnavailable
from creditgraph.graph.neo4j.statements import (
    CYPHER_GDS_DROP,
    CYPHER_GDS_MUTATE,
    CYPHER_GDS_VERSION,
    GDS_MAX_CONCURRENCY,
    GDS_PROPERTIES,
    GDS_WRITE_PREFIX,
    cypher_gds_personalized_pagerank,
    cypher_gds_project,
    cypher_gds_read,
    cypher_gds_write,
    ident,
)
from creditgraph.graph.neo4j.store import Neo4jStore
from creditgraph.graph.schema import USER

# Columns of gds_features: those of the igraph path's position_features, plus the community.
GDS_FEATURE_COLUMNS = ("pagerank_scaled", "component_size", "clustering", "coreness", "community")


def has_gds(store: Neo4jStore) -> bool:
    """Whether the Graph Data Science plugin answers ``gds.version()``."""
    try:
        return bool(store.read_row(CYPHER_GDS_VERSION, {}).get("version"))
    except QueryError:
        return False


def gds_features(
    store: Neo4jStore,
    rel: str | Sequence[str] = "FRIEND",
    *,
    seeds: Sequence[str] | None = None,
    ppr_column: str = "default_ppr",
    community: Literal["leiden", "louvain"] = "leiden",
    damping: float = 0.85,
    max_iterations: int = 200,
    tolerance: float = 1e-10,
    seed: int = 42,
    concurrency: int = GDS_MAX_CONCURRENCY,
) -> pd.DataFrame:
    """Position features computed in Neo4j with GDS: the columns of the igraph path.

    Projects every User and one User-User relationship type natively as an
    undirected simple graph (what :class:`graph.network.FriendGraph`
    builds), runs PageRank, WCC, k-core, local clustering, degree and
    Leiden/Louvain in *mutate* mode, writes the results once as
    ``gds_<name>`` node properties, drops the projection (also on error)
    and reads the written properties back in one ``MATCH (u:User)``.

    Returns a frame indexed by ``user_id`` with the columns of the igraph
    path's ``position_features`` (``pagerank_scaled``, ``component_size``,
    ``clustering`` NaN below two friends, ``coreness``) plus ``community``.
    ``seeds`` (known defaulters from *training labels only*, to avoid
    leakage) adds personalized PageRank × n as ``ppr_column``; an empty seed
    list, or one naming no existing user, is an error rather than ordinary
    PageRank. Community detection runs on one thread with ``seed``
    (reproducible); the rest on ``concurrency`` threads, at most 4 (the GDS
    Community Edition limit).
    """
    ident(ppr_column)
    names = [rel] if isinstance(rel, str) else list(rel)
    if len(names) != 1:
        raise QueryError(
            f"in-database features project one relationship type natively, got {names}; "
            "use the igraph path (export_edges) to combine several"
        )
    project = cypher_gds_project(names[0])
    if seeds is not None and len(seeds) == 0:
        raise QueryError(
            "personalized PageRank got an empty seed list (it would silently become "
            "ordinary PageRank); pass seeds=None to skip it"
        )
    if not 1 <= int(concurrency) <= GDS_MAX_CONCURRENCY:
        raise QueryError(
            f"concurrency must be 1 to {GDS_MAX_CONCURRENCY} (GDS Community Edition), "
            f"got {concurrency!r}"
        )
    if not has_gds(store):
        raise StoreUnavailable("the Graph Data Science plugin is not installed on this server")
    threads = int(concurrency)
    graph = f"creditgraph_features_{uuid.uuid4().hex[:8]}"
    base = {"concurrency": threads}
    configs: dict[str, dict[str, Any]] = {
        "pagerank": {
            **base,
            "mutateProperty": "pagerank",
            "dampingFactor": damping,
            "maxIterations": max_iterations,
            "tolerance": tolerance,
        },
        "component": {**base, "mutateProperty": "component"},
        "kcore": {**base, "mutateProperty": "kcore"},
        "clustering": {**base, "mutateProperty": "clustering"},
        "degree": {**base, "mutateProperty": "degree"},
        # One thread: the partition must not depend on thread scheduling.
        community: {
            "concurrency": 1,
            "mutateProperty": "community",
            **({"randomSeed": seed} if community == "leiden" else {}),
        },
    }
    properties = list(GDS_PROPERTIES)
    store.run_procedure(project, {"graph": graph, "concurrency": threads})
    try:
        for algo, config in configs.items():
            store.run_procedure(CYPHER_GDS_MUTATE[algo], {"graph": graph, "config": config})
        if seeds is not None:
            keys = sorted({str(s) for s in seeds})
            _, found = store.run_procedure(
                cypher_gds_personalized_pagerank(),
                {
                    "graph": graph,
                    "seeds": keys,
                    "property": "ppr",
                    "damping": damping,
                    "max_iterations": max_iterations,
                    "tolerance": tolerance,
                    "concurrency": threads,
                },
            )
            if not found:
                raise QueryError(
                    f"none of the {len(keys)} seed users exists (first: {keys[0]!r}); "
                    "personalized PageRank needs at least one"
                )
            properties.append("ppr")
        store.run_procedure(
            cypher_gds_write(),
            {
                "graph": graph,
                "properties": {p: f"{GDS_WRITE_PREFIX}{p}" for p in properties},
                "concurrency": threads,
            },
        )
    finally:
        store.run_procedure(CYPHER_GDS_DROP, {"graph": graph})
    wide = store.read_frame(cypher_gds_read(properties), {})
    return features_frame(wide, ppr_column=ppr_column if seeds is not None else None)


def features_frame(wide: pd.DataFrame, *, ppr_column: str | None = None) -> pd.DataFrame:
    """The ``user_id`` + ``gds_<name>`` rows read back after the write, as the feature frame.

    GDS PageRank is unnormalised (teleport 1 - d per node); with a uniform (or
    seed-only) teleport its solution is proportional to networkx's, so scaling
    it to sum to n gives ``pagerank_scaled`` exactly (and ``ppr`` likewise).
    """
    key = USER.key
    wide = wide.set_index(key) if key in wide.columns else wide
    wide = wide.reindex(columns=list(GDS_PROPERTIES) + (["ppr"] if ppr_column else []))
    n = len(wide)

    def scaled(column: str) -> pd.Series:
        values = wide[column].astype(float)
        total = values.sum()
        return values * (n / total) if total > 0 else values * 0.0

    degree = wide["degree"].astype(float)
    out = pd.DataFrame(
        {
            "pagerank_scaled": scaled("pagerank"),
            "component_size": wide["component"].map(wide["component"].value_counts()).astype(float),
            # igraph's transitivity_local_undirected(mode="nan"): undefined below two friends
            "clustering": wide["clustering"].astype(float).where(degree >= 2),
            "coreness": wide["kcore"].astype(float),
            "community": wide["community"].astype(np.int64),
        },
        index=pd.Index(wide.index.tolist(), name=key),
    )
    if ppr_column:
        out[ppr_column] = scaled("ppr")
    return out.sort_index()
