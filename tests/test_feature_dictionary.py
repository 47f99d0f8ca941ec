"""Every column the feature families compute is declared once in the dictionary, and back.

The columns come from a small synthetic world taken through the real embedded
store and the real pipeline functions (tabular and relationship families, then
the label-aware family), so a family that starts computing a new column, or
stops computing a declared one, fails here, not silently in training.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from creditgraph import pipeline
from creditgraph.errors import CreditGraphError, UnknownFeature
from creditgraph.graph.network import GraphData
from creditgraph.scoring import dictionary
from creditgraph.scoring.dictionary import (
    AUXILIARY,
    FACTORS,
    FEATURES,
    FeatureSpec,
    declared,
    model_features,
)
from creditgraph.scoring.model import train_model
from creditgraph.settings import load_settings


@pytest.fixture(scope="module")
def computed(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Every column the pipeline computes for a model: features plus the label-aware family."""
    root = tmp_path_factory.mktemp("dictionary")
    settings = load_settings(data_dir=root / "data", store="embedded", seed=11)
    pipeline.generate(settings, root / "in", users=600)
    with pipeline.open_configured_store(settings) as store:
        pipeline.ingest(settings, store, root / "in")
        data = GraphData.export(store)
        features = pipeline.build_features(settings, store, data=data)
    labels = pipeline.read_labels(settings).reindex(features.index).dropna().astype(int)
    train_ids = labels.index[: len(labels) // 2]
    return pipeline.with_exposure(settings, data, features, labels, train_ids)


def test_every_computed_column_is_declared(computed: pd.DataFrame) -> None:
    undeclared = [c for c in computed.columns if c not in FEATURES and c not in AUXILIARY]
    assert not undeclared, f"computed but not declared in scoring/dictionary.py: {undeclared}"


def test_every_declared_column_is_computed(computed: pd.DataFrame) -> None:
    never = [c for c in [*FEATURES, *AUXILIARY] if c not in computed.columns]
    assert not never, f"declared in scoring/dictionary.py but never computed: {never}"


def test_each_column_is_declared_once() -> None:
    twice = [name for name, n in Counter(s.name for s in dictionary._SPECS).items() if n > 1]
    assert not twice, f"declared more than once: {twice}"
    assert not set(FEATURES) & set(AUXILIARY)
    assert all(FEATURES[name].factor in FACTORS for name in FEATURES)
    # Wordings and absent values refer to declared features only.
    named = {n for names in dictionary.MISSING_WORDS.values() for n in names}
    assert named | set(dictionary.ABSENT_VALUES) <= set(FEATURES)


def test_model_features_keep_declared_order_and_leave_auxiliary_out() -> None:
    assert model_features(["community", "age", "past_default", "thin_file"]) == [
        "age",
        "thin_file",
    ]


def test_training_refuses_an_undeclared_column(computed: pd.DataFrame) -> None:
    frame = computed.assign(mystery_signal=1.0)
    labels = pd.Series(0, index=frame.index)
    with pytest.raises(UnknownFeature, match="'mystery_signal' not declared") as refused:
        train_model(frame, labels, train_index=frame.index[:10], valid_index=frame.index[10:20],
                    scale=load_settings().scale)  # fmt: skip
    assert isinstance(refused.value, CreditGraphError)


def test_declared_adds_features_for_a_block_only() -> None:
    oracle = FeatureSpec("oracle_signal", "relationships", -1, "oracle")
    with declared(oracle):
        assert model_features(["age", "oracle_signal"]) == ["age", "oracle_signal"]
    assert "oracle_signal" not in FEATURES
    with pytest.raises(UnknownFeature):
        model_features(["oracle_signal"])
    with pytest.raises(ValueError, match="already declared: age"):
        with declared(FeatureSpec("age", "characteristics", 0, "Age group")):
            pass
    assert FEATURES["age"].factor == "characteristics"
