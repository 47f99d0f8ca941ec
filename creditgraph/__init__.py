"""creditgraph: five-factor credit scores (350-950) from a social and commercial graph.

The importable pieces are ``graph`` (stores and graph features), ``ingest``
(validation and loading), ``scoring`` (features, model, scale, explanations)
and ``queries`` (the Cypher investigation library). This package holds what
ties them together: errors, settings, the pipeline and the CLI.
"""

from creditgraph.errors import (
    CreditGraphError,
    ModelNotFound,
    NotAuthorized,
    SchemaError,
    StoreUnavailable,
)

__all__ = [
    "CreditGraphError",
    "ModelNotFound",
    "NotAuthorized",
    "SchemaError",
    "StoreUnavailable",
]
__version__ = "0.1.0"
