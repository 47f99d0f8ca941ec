"""The Neo4j store, one module a job; imports point only down this list.

* :mod:`.statements`: every Cypher text the store sends, and :func:`all_statements`.
* :mod:`.values`: Python/pandas/numpy values to driver values and back.
* :mod:`.plan`: the batches of a resumable load and its progress mark.
* :mod:`.store`: :class:`Neo4jStore` (sessions, retries, writes, reads, loads).
* :mod:`.gds`: position features computed in the database with GDS.
* :mod:`.bulk_import`: ``neo4j-admin`` import bundles (needs no server).

``tests/test_neo4j_layout.py`` checks the order.
"""
