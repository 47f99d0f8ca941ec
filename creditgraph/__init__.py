"""creditgraph: five-factor credit scores (350-950) from a social and commercial graph.

Its subpackages: ``creditgraph.graph`` (stores, exported arrays, graph
algorithms), ``creditgraph.ingest`` (validation, loading, history, personal
data), ``creditgraph.scoring`` (feature families, model, scale, explanations),
``creditgraph.queries`` (the Cypher investigation library) and
``creditgraph.access`` (the partner API). The modules beside them tie these
together: errors, durable writes, the data directory catalog, settings, the
pipeline and the CLI.
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
