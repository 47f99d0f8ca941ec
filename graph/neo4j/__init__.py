"""The Neo4j store (store.py) and its neo4j-admin bulk import (bulk_import.py)."""
