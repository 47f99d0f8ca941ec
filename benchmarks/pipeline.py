"""Time and peak memory of every pipeline stage on a synthetic world.

    python benchmarks/pipeline.py --users 100000 [--seed 42] [--data-dir DIR]

Prints one line per stage (seconds, peak RSS of that stage) and the total.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import Stages  # noqa: E402

from creditgraph import pipeline  # noqa: E402
from creditgraph.settings import load_settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="creditgraph-bench-"))
    settings = load_settings(data_dir=data_dir, store="embedded", seed=args.seed)
    stages = Stages()
    print(f"creditgraph pipeline benchmark: {args.users:,} users, data in {data_dir}")
    try:
        with stages.stage("generate"):
            pipeline.generate(settings, data_dir / "world", args.users)
        store = pipeline.open_configured_store(settings)
        with stages.stage("ingest"):
            pipeline.ingest(settings, store, data_dir / "world")
        with stages.stage("features"):
            features = pipeline.build_features(settings, store)
        with stages.stage("train"):
            trained = pipeline.train(settings, store, features)
        with stages.stage("label-aware features"):
            inputs = pipeline.model_inputs(settings, store, trained.model, features)
        with stages.stage("score (+factors)"):
            scored = trained.model.score(inputs)
        with stages.stage("reasons"):
            trained.model.reasons(inputs)
        with stages.stage("write back"):
            pipeline.write_scores(
                settings, store, pipeline.score_users(trained.model, inputs), inputs
            )
        store.close()
    finally:
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    n = len(scored)
    score_seconds = next(s for name, s, _ in stages.rows if name.startswith("score"))
    print(f"{'total':<28} {stages.total():8.2f} s")
    print(
        f"scoring throughput: {n / score_seconds:,.0f} users/s; "
        f"test ROC-AUC {trained.test_metrics['roc_auc']:.4f}"
    )


if __name__ == "__main__":
    main()
