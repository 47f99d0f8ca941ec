"""The feature families, training and scoring on a Dask cluster, equal to the single-machine run.

Imported only by commands given ``--cluster``. Per-user tabular families run the
very functions of :mod:`scoring.features` on user partitions
(:mod:`.tabular`); neighbour aggregates are partitioned joins and group-bys over
the edge lists (:mod:`.neighbours`), the label-aware exposure family's counts too,
over its K label sets (:mod:`.exposure`); the global graph algorithms (PageRank,
personalised PageRank included) run once on one machine and join by user id
(:mod:`.features`, :mod:`.exposure`). Training uses ``xgboost.dask``
(:mod:`.training`); scores, factors and reasons come from the model's own methods
per partition (:mod:`.scores`).
"""
