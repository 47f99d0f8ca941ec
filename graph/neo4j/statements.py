"""Every Cypher statement the Neo4j store sends, as builders and constants.

Statements are generated from :mod:`graph.schema`: labels, types, keys and
property names are validated identifiers (:func:`ident`) and every value
travels as a parameter. :func:`all_statements` lists each one with parameters
of the right shape, built by the same code the store runs, so CI checks every
one with Neo4j's own parser (``tests/test_cypher_lint.py``) and the fake driver
(``tests/test_neo4j_fake.py``) refuses any other text.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from creditgraph.errors import QueryError
from creditgraph.graph.meta import META_QUERY
from creditgraph.graph.schema import (
    BOOL,
    DATE,
    FLOAT,
    INT,
    NODE_TYPES,
    REL_TYPES,
    SCORE_PROPERTIES,
    STRING,
    TIMESTAMP,
    USER,
    NodeType,
    RelType,
)

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Properties computed in the projected graph; written back as ``gds_<name>`` node properties.
GDS_PROPERTIES = ("pagerank", "component", "kcore", "clustering", "community", "degree")
GDS_WRITE_PREFIX = "gds_"
# GDS Community Edition runs at most 4 threads per algorithm (GDS 2.13 system requirements).
GDS_MAX_CONCURRENCY = 4
# Properties investigations look up by value (range indexes; keys have their constraints).
INDEXED_PROPERTIES: dict[str, tuple[str, ...]] = {"User": ("community", "signup_date")}


def ident(name: str) -> str:
    """``name`` if it is a plain Cypher identifier; anything else never reaches query text."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise QueryError(f"{name!r} is not a valid identifier (letters, digits, underscore)")
    return name


def node_type(label: str) -> NodeType:
    """The schema of node label ``label``; an unknown label is a :class:`QueryError`."""
    try:
        return NODE_TYPES[label]
    except KeyError:
        raise QueryError(f"unknown node label {label!r}; known: {sorted(NODE_TYPES)}") from None


def rel_type(name: str) -> RelType:
    """The schema of relationship type ``name``; an unknown type is a :class:`QueryError`."""
    try:
        return REL_TYPES[name]
    except KeyError:
        raise QueryError(f"unknown relationship {name!r}; known: {sorted(REL_TYPES)}") from None


# -- statements: the only Cypher the store sends ---------------------------------------------
def cypher_constraint(node: NodeType) -> str:
    """Uniqueness constraint on a label's key (also gives the index every MERGE uses)."""
    label, key = ident(node.label), ident(node.key)
    name = ident(f"{label.lower()}_{key}_unique")
    return f"CREATE CONSTRAINT {name} IF NOT EXISTS FOR (n:{label}) REQUIRE n.{key} IS UNIQUE"


def cypher_index(node: NodeType, prop: str) -> str:
    """Range index on a property investigations filter on (``User.community`` ...)."""
    label, key = ident(node.label), ident(prop)
    name = ident(f"{label.lower()}_{key}")
    return f"CREATE INDEX {name} IF NOT EXISTS FOR (n:{label}) ON (n.{key})"


def cypher_upsert_nodes(node: NodeType) -> str:
    """Merge a batch of nodes; return how many were created or had a property changed."""
    label, key = ident(node.label), ident(node.key)
    # properties() snapshots the stored map before SET, so "changed" means a value differs.
    return (
        "UNWIND $rows AS row\n"
        f"OPTIONAL MATCH (old:{label} {{{key}: row.key}})\n"
        "WITH row, old IS NULL AS fresh, properties(old) AS before\n"
        f"MERGE (n:{label} {{{key}: row.key}})\n"
        "SET n += row.props\n"
        "WITH fresh, before, properties(n) AS after\n"
        "RETURN sum(CASE WHEN fresh OR before <> after THEN 1 ELSE 0 END) AS changed"
    )


def cypher_missing_keys(node: NodeType) -> str:
    """Which of ``$keys`` have no node (checked before relationships are written)."""
    label, key = ident(node.label), ident(node.key)
    return (
        "UNWIND $keys AS key\n"
        f"OPTIONAL MATCH (n:{label} {{{key}: key}})\n"
        "WITH key, n WHERE n IS NULL\n"
        "RETURN count(key) AS missing, collect(key)[..3] AS examples"
    )


def cypher_upsert_edges(rel: RelType) -> str:
    """Merge a batch of relationships between existing nodes (two MATCHes, no comma pattern)."""
    source, target = node_type(rel.source), node_type(rel.target)
    s_label, s_key = ident(source.label), ident(source.key)
    t_label, t_key = ident(target.label), ident(target.key)
    kind = ident(rel.name)
    return (
        "UNWIND $rows AS row\n"
        f"MATCH (a:{s_label} {{{s_key}: row.src}})\n"
        f"MATCH (b:{t_label} {{{t_key}: row.dst}})\n"
        f"OPTIONAL MATCH (a)-[old:{kind}]->(b)\n"
        "WITH a, b, row, old IS NULL AS fresh, properties(old) AS before\n"
        f"MERGE (a)-[r:{kind}]->(b)\n"
        "SET r += row.props\n"
        "WITH fresh, before, properties(r) AS after\n"
        "RETURN count(*) AS matched,"
        " sum(CASE WHEN fresh OR before <> after THEN 1 ELSE 0 END) AS changed"
    )


def cypher_remove_edges(rel: RelType) -> str:
    """Delete a batch of relationships named by their endpoints' keys (none stored: nothing)."""
    source, target = node_type(rel.source), node_type(rel.target)
    s_label, s_key = ident(source.label), ident(source.key)
    t_label, t_key = ident(target.label), ident(target.key)
    return (
        "UNWIND $rows AS row\n"
        f"MATCH (a:{s_label} {{{s_key}: row.src}})-[r:{ident(rel.name)}]->"
        f"(b:{t_label} {{{t_key}: row.dst}})\n"
        "DELETE r\n"
        "RETURN count(*) AS changed"
    )


def cypher_node_ids(node: NodeType) -> str:
    """Every key of a label in key order (index-backed by the uniqueness constraint)."""
    label, key = ident(node.label), ident(node.key)
    return f"MATCH (n:{label}) WHERE n.{key} IS NOT NULL RETURN n.{key} AS key ORDER BY key"


def cypher_export_edges(rel: RelType) -> str:
    """Every relationship of a type as key pairs; properties picked by name from ``$properties``."""
    source, target = node_type(rel.source), node_type(rel.target)
    return (
        f"MATCH (a:{ident(source.label)})-[r:{ident(rel.name)}]->(b:{ident(target.label)})\n"
        f"RETURN a.{ident(source.key)} AS src, b.{ident(target.key)} AS dst,"
        " [p IN $properties | r[p]] AS props"
    )


def cypher_write_properties(node: NodeType) -> str:
    """Set properties (scores, features) on existing nodes; return how many were found."""
    label, key = ident(node.label), ident(node.key)
    return (
        "UNWIND $rows AS row\n"
        f"MATCH (n:{label} {{{key}: row.key}})\n"
        "SET n += row.props\n"
        "RETURN count(n) AS written"
    )


CYPHER_GDS_VERSION = "RETURN gds.version() AS version"


def cypher_gds_project(rel: str) -> str:
    """Native projection of every User and one User-User type as a simple undirected graph.

    ``UNDIRECTED`` loads each stored relationship both ways and ``SINGLE``
    keeps one of parallel copies, so ``a->b`` stored next to ``b->a`` is one
    edge, as in :class:`graph.network.FriendGraph`; users without
    relationships stay in the graph (the node projection is the label).
    """
    kind = rel_type(rel)
    if kind.source != USER.label or kind.target != USER.label:
        raise QueryError(f"in-database features need a User-User relationship, got {rel!r}")
    label, name = ident(USER.label), ident(kind.name)
    return (
        f"CALL gds.graph.project($graph, '{label}',"
        f" {{{name}: {{orientation: 'UNDIRECTED', aggregation: 'SINGLE'}}}},"
        " {readConcurrency: $concurrency})\n"
        "YIELD graphName, nodeCount, relationshipCount\n"
        "RETURN graphName AS graph, nodeCount AS nodes, relationshipCount AS relationships"
    )


CYPHER_GDS_MUTATE = {
    "pagerank": "CALL gds.pageRank.mutate($graph, $config)\n"
    "YIELD nodePropertiesWritten RETURN nodePropertiesWritten",
    "component": "CALL gds.wcc.mutate($graph, $config)\n"
    "YIELD nodePropertiesWritten RETURN nodePropertiesWritten",
    "kcore": "CALL gds.kcore.mutate($graph, $config)\n"
    "YIELD nodePropertiesWritten RETURN nodePropertiesWritten",
    "clustering": "CALL gds.localClusteringCoefficient.mutate($graph, $config)\n"
    "YIELD nodePropertiesWritten RETURN nodePropertiesWritten",
    "leiden": "CALL gds.leiden.mutate($graph, $config)\n"
    "YIELD nodePropertiesWritten RETURN nodePropertiesWritten",
    "louvain": "CALL gds.louvain.mutate($graph, $config)\n"
    "YIELD nodePropertiesWritten RETURN nodePropertiesWritten",
    "degree": "CALL gds.degree.mutate($graph, $config)\n"
    "YIELD nodePropertiesWritten RETURN nodePropertiesWritten",
}


def cypher_gds_personalized_pagerank() -> str:
    """PageRank restarting at the seed users; no row at all when none of them exists.

    GDS treats an empty ``sourceNodes`` list as ordinary PageRank, so the call
    only runs when at least one seed was found (``WHERE size(sources) > 0``).
    """
    label, key = ident(USER.label), ident(USER.key)
    return (
        f"MATCH (s:{label}) WHERE s.{key} IN $seeds\n"
        "WITH collect(s) AS sources\n"
        "WHERE size(sources) > 0\n"
        "CALL gds.pageRank.mutate($graph, {mutateProperty: $property, sourceNodes: sources,"
        " dampingFactor: $damping, maxIterations: $max_iterations, tolerance: $tolerance,"
        " concurrency: $concurrency})\n"
        "YIELD nodePropertiesWritten\n"
        "RETURN nodePropertiesWritten, size(sources) AS seeds"
    )


def cypher_gds_write() -> str:
    """Write the mutated properties (renamed ``gds_<name>``) onto the User nodes, once."""
    return (
        f"CALL gds.graph.nodeProperties.write($graph, $properties, ['{ident(USER.label)}'],"
        " {writeConcurrency: $concurrency})\n"
        "YIELD propertiesWritten RETURN propertiesWritten"
    )


def cypher_gds_read(properties: Sequence[str]) -> str:
    """Every user's key and written ``gds_<name>`` properties, in one scan of ``User``."""
    key = ident(USER.key)
    columns = ", ".join(f"u.{ident(GDS_WRITE_PREFIX + p)} AS {ident(p)}" for p in properties)
    return (
        f"MATCH (u:{ident(USER.label)}) WHERE u.{key} IS NOT NULL\n"
        f"RETURN u.{key} AS {key}, {columns}"
    )


CYPHER_GDS_DROP = "CALL gds.graph.drop($graph, false) YIELD graphName RETURN graphName"


class StatementSample(NamedTuple):
    """One statement the store can send, with parameters of the right shape."""

    name: str
    cypher: str
    params: dict[str, Any]


_SAMPLE_VALUES: dict[str, Any] = {
    STRING: "u1",
    INT: 1,
    FLOAT: 0.5,
    BOOL: True,
    DATE: dt.date(2024, 1, 31),
    TIMESTAMP: dt.datetime(2024, 1, 31, 12, 0),
}


def _sample_props(properties: Mapping[str, str], skip: str | None = None) -> dict[str, Any]:
    return {p: _SAMPLE_VALUES[k] for p, k in properties.items() if p != skip}


def all_statements() -> list[StatementSample]:
    """Every statement :mod:`graph.neo4j.store` can send, built by the same code the store runs."""
    out: list[StatementSample] = []
    for node in NODE_TYPES.values():
        row = {"key": "u1", "props": _sample_props(node.properties, skip=node.key)}
        out += [
            StatementSample(f"constraint:{node.label}", cypher_constraint(node), {}),
            *(
                StatementSample(f"index:{node.label}.{prop}", cypher_index(node, prop), {})
                for prop in INDEXED_PROPERTIES.get(node.label, ())
            ),
            StatementSample(
                f"upsert_nodes:{node.label}", cypher_upsert_nodes(node), {"rows": [row]}
            ),
            StatementSample(
                f"missing_keys:{node.label}", cypher_missing_keys(node), {"keys": ["u1"]}
            ),
            StatementSample(f"node_ids:{node.label}", cypher_node_ids(node), {}),
            StatementSample(
                f"write_properties:{node.label}",
                cypher_write_properties(node),
                {"rows": [{"key": "u1", "props": _sample_props(SCORE_PROPERTIES)}]},
            ),
        ]
    for rel in REL_TYPES.values():
        row = {"src": "u1", "dst": "u2", "props": _sample_props(rel.properties)}
        out += [
            StatementSample(f"upsert_edges:{rel.name}", cypher_upsert_edges(rel), {"rows": [row]}),
            StatementSample(
                f"remove_edges:{rel.name}",
                cypher_remove_edges(rel),
                {"rows": [{"src": "u1", "dst": "u2"}]},
            ),
            StatementSample(
                f"export_edges:{rel.name}",
                cypher_export_edges(rel),
                {"properties": list(rel.properties)},
            ),
        ]
    out.append(StatementSample("read_meta", META_QUERY, {}))
    graph = {"graph": "creditgraph_features_0123abcd"}
    out.append(StatementSample("gds_version", CYPHER_GDS_VERSION, {}))
    for rel in REL_TYPES.values():
        if rel.source == rel.target == USER.label:
            out.append(
                StatementSample(
                    f"gds_project:{rel.name}",
                    cypher_gds_project(rel.name),
                    {**graph, "concurrency": GDS_MAX_CONCURRENCY},
                )
            )
    for algo, cypher in CYPHER_GDS_MUTATE.items():
        out.append(
            StatementSample(
                f"gds_mutate:{algo}", cypher, {**graph, "config": {"mutateProperty": algo}}
            )
        )
    out += [
        StatementSample(
            "gds_personalized_pagerank",
            cypher_gds_personalized_pagerank(),
            {
                **graph,
                "seeds": ["u1"],
                "property": "ppr",
                "damping": 0.85,
                "max_iterations": 200,
                "tolerance": 1e-10,
                "concurrency": GDS_MAX_CONCURRENCY,
            },
        ),
        StatementSample(
            "gds_write",
            cypher_gds_write(),
            {
                **graph,
                "properties": {"pagerank": "gds_pagerank"},
                "concurrency": GDS_MAX_CONCURRENCY,
            },
        ),
        StatementSample("gds_drop", CYPHER_GDS_DROP, dict(graph)),
        StatementSample("gds_read", cypher_gds_read(GDS_PROPERTIES), {}),
        StatementSample("gds_read:ppr", cypher_gds_read((*GDS_PROPERTIES, "ppr")), {}),
    ]
    return out
