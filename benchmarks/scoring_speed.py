"""Batch scoring throughput: score + five factor points, and reason codes, at 1M users.

    python benchmarks/scoring_speed.py [--users 1000000] [--train-users 20000]

Trains the default model on a synthetic world of ``--train-users`` users, then
scores ``--users`` rows resampled from that world's model inputs. Prints
users/s for each step against the targets (100k/s for scores with factors,
20k/s for reasons) and the exact-TreeSHAP rate for comparison.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import Stages  # noqa: E402

from creditgraph import pipeline  # noqa: E402
from creditgraph.settings import load_settings  # noqa: E402

TARGETS = {"score (+5 factors)": 100_000, "reasons": 20_000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--train-users", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="creditgraph-speed-"))
    settings = load_settings(data_dir=data_dir, store="embedded", seed=args.seed)
    try:
        pipeline.generate(settings, data_dir / "world", args.train_users)
        with pipeline.open_configured_store(settings) as store:
            pipeline.ingest(settings, store, data_dir / "world")
            features = pipeline.build_features(settings, store)
            model = pipeline.train(settings, store, features).model
            inputs = pipeline.model_inputs(settings, store, model, features)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    rows = np.random.default_rng(args.seed).integers(0, len(inputs), args.users)
    batch = inputs.iloc[rows].reset_index(drop=True)
    trees = model.booster.num_boosted_rounds()
    print(f"model: {trees} trees, {len(model.features)} features; scoring {len(batch):,} users")
    stages = Stages()
    with stages.stage("score (+5 factors)"):
        model.score(batch)
    with stages.stage("reasons"):
        model.reasons(batch)
    sample = batch.head(2_000)
    start = time.perf_counter()
    model.feature_points(sample, exact=True)
    exact_rate = len(sample) / (time.perf_counter() - start)
    for name, seconds, _ in stages.rows:
        rate = len(batch) / seconds
        print(
            f"{name:<20} {rate:>12,.0f} users/s   target {TARGETS[name]:>9,}/s   "
            f"ratio {rate / TARGETS[name]:.2f}"
        )
    print(f"{'exact TreeSHAP':<20} {exact_rate:>12,.0f} users/s   (explain only)")


if __name__ == "__main__":
    main()
