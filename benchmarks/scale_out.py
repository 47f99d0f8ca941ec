"""The same pipeline in one process and on a Dask ``LocalCluster``, stage by stage.

    python benchmarks/scale_out.py --users 200000 [--workers N] [--seed 42]

One world is generated and ingested once; then features, training and scoring run
in this process and on a LocalCluster of ``--workers`` single-threaded worker
processes (default: one per core); ``score`` scores a frame held by the driver,
``rescore`` is the nightly job with the kept features (inputs, scores, factors,
reasons, write-back and publish; on the cluster the workers read the feature parts
and write the run's parts). Prints seconds per stage, the overhead ratio
(cluster / single process) and per-user figures for the paper estimate in the README
("Scaling out on Dask"). The cluster's features are checked equal (1e-9) and its
scores of the single-process model identical.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from creditgraph import pipeline
from creditgraph.graph.network import GraphData
from creditgraph.settings import Settings, load_settings

T = TypeVar("T")


def _timed(seconds: dict[str, float], name: str, run: Callable[[], T]) -> T:
    start = time.perf_counter()
    out = run()
    seconds[name] = time.perf_counter() - start
    print(f"  {name:<26} {seconds[name]:8.2f} s", flush=True)
    return out


def _published(settings: Settings) -> pd.DataFrame:
    """The published run's scores, but the time they were scored at."""
    scores = settings.paths.read_scores()
    assert scores is not None, "nothing published"
    return scores.drop(columns="scored_at").sort_values("user_id").reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    data_dir = Path(tempfile.mkdtemp(prefix="creditgraph-scale-out-"))
    settings = load_settings(data_dir=data_dir, store="embedded", seed=args.seed)
    print(f"scale-out benchmark: {args.users:,} users, {args.workers} workers, "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    single: dict[str, float] = {}
    cluster: dict[str, float] = {}
    try:
        pipeline.generate(settings, data_dir / "world", args.users)
        store = pipeline.open_configured_store(settings)
        pipeline.ingest(settings, store, data_dir / "world")
        data = GraphData.export(store)
        print("one process")
        raw = _timed(single, "features", lambda: pipeline.build_features(settings, store,
                                                                         data=data))  # fmt: skip
        trained = _timed(single, "train", lambda: pipeline.train(settings, store, raw, data=data))
        inputs = pipeline.model_inputs(settings, store, trained.model, raw, data=data)
        at = pd.Timestamp("2025-01-01")
        scores = _timed(single, "score", lambda: pipeline.score_users(trained.model, inputs, at))
        model_id = trained.model.model_id
        with (
            LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                         silence_logs=logging.ERROR) as local,
            Client(local) as client,
        ):  # fmt: skip
            print(f"LocalCluster ({client.dashboard_link})")
            _timed(cluster, "features", lambda: pipeline.build_features(
                settings, store, data=data, client=client))  # fmt: skip
            found = pipeline.read_features(settings)  # the parts the workers wrote
            other = _timed(
                cluster,
                "train",
                lambda: pipeline.train(settings, store, raw, data=data, client=client),
            )
            same = _timed(cluster, "score", lambda: pipeline.score_users(
                trained.model, inputs, at, client=client,
                chunk_size=-(-len(inputs) // (2 * args.workers))))  # fmt: skip
            # The nightly job on the kept features (the parts the workers wrote), in this
            # process, then on the cluster: inputs assembled, scored and written as parts by
            # the workers, then published.
            print("rescore, one process")
            _timed(single, "rescore", lambda: pipeline.rescore(settings, store, model_id=model_id))
            published = _published(settings)
            print("rescore, LocalCluster")
            _timed(cluster, "rescore", lambda: pipeline.rescore(
                settings, store, model_id=model_id, client=client))  # fmt: skip
            published_there = _published(settings)
        store.close()
        numeric = raw.select_dtypes("number").columns
        np.testing.assert_allclose(found[numeric].to_numpy(float), raw[numeric].to_numpy(float),
                                   rtol=1e-9, atol=1e-9)  # fmt: skip
        pd.testing.assert_frame_equal(same, scores, check_exact=True)
        pd.testing.assert_frame_equal(published_there, published, check_exact=True)
        auc = (trained.test_metrics["roc_auc"], other.test_metrics["roc_auc"])
        print(f"features equal (1e-9), scores and published rescores identical; test ROC-AUC "
              f"{auc[0]:.4f} one process, {auc[1]:.4f} xgboost.dask")  # fmt: skip
        print(f"\n{'stage':<10} {'1 process':>10} {'cluster':>10} {'ratio':>7} "
              f"{'µs/user (1 proc)':>17} {'µs/user (cluster)':>18}")  # fmt: skip
        for name in single:
            print(f"{name:<10} {single[name]:10.2f} {cluster[name]:10.2f} "
                  f"{cluster[name] / single[name]:7.2f} {1e6 * single[name] / args.users:17.1f} "
                  f"{1e6 * cluster[name] / args.users:18.1f}")  # fmt: skip
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
