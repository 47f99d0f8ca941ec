"""The property-graph schema every store holds: node labels, keys, relationships.

Ids in the graph are pseudonymous platform ids; personal identifiers never
enter it. Both stores create exactly this schema, so queries and features see
the same graph whichever store holds it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

# Portable property types; each store maps them to its own.
STRING, INT, FLOAT, BOOL, DATE, TIMESTAMP = "STRING", "INT64", "DOUBLE", "BOOL", "DATE", "TIMESTAMP"


@dataclass(frozen=True)
class NodeType:
    label: str
    key: str
    properties: dict[str, str]


@dataclass(frozen=True)
class RelType:
    name: str
    source: str  # node label
    target: str  # node label
    properties: dict[str, str]


USER = NodeType(
    "User",
    "user_id",
    {
        "user_id": STRING,
        "signup_date": DATE,
        "age": INT,
        "city": STRING,
        "education": STRING,
        "occupation": STRING,
        "real_name_verified": BOOL,
        "defaulted": BOOL,  # known outcome from the labels file; null when unknown
    },
)
MERCHANT = NodeType(
    "Merchant",
    "merchant_id",
    {"merchant_id": STRING, "category": STRING, "city": STRING, "opened_date": DATE},
)
DEVICE = NodeType("Device", "device_id", {"device_id": STRING})
# A public record (court judgment, enforcement listing, tax arrears, bankruptcy) as filed.
PUBLIC_RECORD = NodeType(
    "PublicRecord",
    "record_id",
    {
        "record_id": STRING,
        "kind": STRING,
        "filed_date": DATE,
        "amount": FLOAT,
        "status": STRING,
        "satisfied_date": DATE,
        "source": STRING,
    },
)
# Bookkeeping, one node per name: which load and which scoring run the graph holds.
META = NodeType("Meta", "name", {"name": STRING, "value": STRING})

FRIEND = RelType(
    "FRIEND", "User", "User", {"since": DATE, "src_interactions": INT, "dst_interactions": INT}
)
TRANSFER = RelType(
    "TRANSFER", "User", "User", {"n": INT, "amount": FLOAT, "first_date": DATE, "last_date": DATE}
)
PAYS = RelType("PAYS", "User", "Merchant", {"n": INT, "amount": FLOAT, "last_date": DATE})
OWNS = RelType("OWNS", "User", "Merchant", {})
USES = RelType("USES", "User", "Device", {"first_seen": DATE})
HAS_RECORD = RelType("HAS_RECORD", "User", "PublicRecord", {})

NODE_TYPES: dict[str, NodeType] = {
    t.label: t for t in (USER, MERCHANT, DEVICE, PUBLIC_RECORD, META)
}
REL_TYPES: dict[str, RelType] = {
    t.name: t for t in (FRIEND, TRANSFER, PAYS, OWNS, USES, HAS_RECORD)
}

# Written back by scoring onto User nodes (latest version; history lives in Parquet).
SCORE_PROPERTIES: dict[str, str] = {
    "score": FLOAT,
    "pd": FLOAT,
    "f_credit_history": FLOAT,
    "f_behaviour": FLOAT,
    "f_capacity": FLOAT,
    "f_characteristics": FLOAT,
    "f_relationships": FLOAT,
    "model_id": STRING,
    "scored_at": TIMESTAMP,
}
# Also written onto User by scoring: network position, community, the previous version's score.
DERIVED_PROPERTIES: dict[str, str] = {
    "pagerank": FLOAT,
    "community": INT,
    "prev_score": FLOAT,
    "prev_model_id": STRING,
}
WRITTEN_PROPERTIES: dict[str, str] = {**SCORE_PROPERTIES, **DERIVED_PROPERTIES}

# The Arrow type each portable property type travels as.
ARROW_TYPES = {
    STRING: pa.string(),
    INT: pa.int64(),
    FLOAT: pa.float64(),
    BOOL: pa.bool_(),
    DATE: pa.date32(),
    TIMESTAMP: pa.timestamp("us"),
}


def kind_of(series: pd.Series) -> str:
    """The portable property type for a column of values."""
    if pd.api.types.is_bool_dtype(series):
        return BOOL
    if pd.api.types.is_integer_dtype(series):
        return INT
    if pd.api.types.is_float_dtype(series):
        return FLOAT
    if pd.api.types.is_datetime64_any_dtype(series):
        return TIMESTAMP
    return STRING
