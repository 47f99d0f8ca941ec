"""A synthetic world taken through the pipeline once, shared by the model benchmarks."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from creditgraph import pipeline
from creditgraph.graph.network import GraphData
from creditgraph.scoring.splits import Split
from creditgraph.settings import Settings, load_settings


@dataclass(frozen=True)
class LabelledWorld:
    """Every user's model inputs (label-aware family out of fold), labels, split, truth."""

    settings: Settings
    raw: pd.DataFrame  # the features without the label-aware family
    data: GraphData  # the relationships, exported once
    features: pd.DataFrame
    labels: pd.Series
    split: Split
    truth: pd.DataFrame  # the generator's hidden truth (truth.csv)


def labelled_world(users: int, seed: int, split: str = "random") -> LabelledWorld:
    """Generate, ingest (embedded store), build every feature family; the files are removed."""
    data_dir = Path(tempfile.mkdtemp(prefix="creditgraph-bench-world-"))
    try:
        settings = load_settings(data_dir=data_dir, store="embedded", seed=seed, split=split)
        pipeline.generate(settings, data_dir / "world", users)
        with pipeline.open_configured_store(settings) as store:
            pipeline.ingest(settings, store, data_dir / "world")
            raw = pipeline.build_features(settings, store)
            labels = pipeline.read_labels(settings).reindex(raw.index)
            chosen = pipeline.split_for(settings, labels)
            data = GraphData.export(store)
            features = pipeline.with_exposure(settings, data, raw, labels, chosen.train)
        truth = pd.read_csv(data_dir / "world" / "truth.csv", dtype={"user_id": str})
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return LabelledWorld(settings, raw, data, features, labels, chosen, truth)


def world_arguments(description: str) -> argparse.Namespace:
    """``--users``, ``--worlds``, ``--seed`` and ``--split`` of a benchmark over several worlds."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--worlds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--split", choices=("random", "time"), default="random")
    return parser.parse_args()
