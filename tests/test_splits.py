"""The one splitter: the model's train/valid/test split and evaluate's K splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from creditgraph.errors import CreditGraphError
from creditgraph.scoring.splits import Split, random_splits, split_users


def _labels(n: int = 1000, rate: float = 0.1, seed: int = 0) -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series((rng.random(n) < rate).astype(int), index=[f"u{i:04d}" for i in range(n)])


def _parts(split: Split) -> list[pd.Index]:
    return [split.train, split.valid, split.test]


def test_split_users_partitions_the_ids_stratified_and_repeatably() -> None:
    labels = _labels()
    split = split_users(labels, seed=7)
    ids = pd.Index(np.concatenate([p.to_numpy() for p in _parts(split)]))
    assert ids.is_unique and set(ids) == set(labels.index)
    assert (len(split.train), len(split.valid), len(split.test)) == (600, 200, 200)
    for part in _parts(split):
        assert abs(labels.loc[part].mean() - labels.mean()) < 0.01  # stratified
    again = split_users(labels, seed=7)
    assert all(a.equals(b) for a, b in zip(_parts(split), _parts(again), strict=True))
    assert not split_users(labels, seed=8).test.equals(split.test)


def test_split_users_out_of_time_tests_the_latest_cohort() -> None:
    labels = _labels()
    observed = pd.Series(
        np.where(np.arange(len(labels)) % 4 == 0, "2024-06-30", "2023-12-31"), index=labels.index
    )
    split = split_users(labels, seed=1, observed=observed)
    assert set(split.test) == set(observed.index[observed == "2024-06-30"])
    assert set(split.train) | set(split.valid) == set(observed.index[observed == "2023-12-31"])
    assert not set(split.train) & set(split.valid)


def test_an_out_of_time_split_of_one_cohort_names_the_problem() -> None:
    labels = _labels(200)
    observed = pd.Series("2024-06-30", index=labels.index)
    with pytest.raises(CreditGraphError, match="two observation dates.*2024-06-30") as caught:
        split_users(labels, seed=1, observed=observed)
    assert isinstance(caught.value, ValueError)


def test_k_fold_tests_every_row_once_and_has_no_validation_rows() -> None:
    labels = _labels(500)
    splits = random_splits(labels, 5, None, seed=3)
    assert len(splits) == 5
    tested = np.concatenate([s.test.to_numpy() for s in splits])
    assert sorted(tested) == sorted(labels.index)
    for s in splits:
        assert not set(s.train) & set(s.test)
        assert len(s.train) + len(s.test) == len(labels) and len(s.valid) == 0


def test_shuffled_splits_take_the_training_share() -> None:
    labels = _labels(500)
    splits = random_splits(labels, 3, 0.7, seed=3)
    assert [len(s.train) for s in splits] == [350] * 3
    assert all(len(s.test) == 150 and not set(s.train) & set(s.test) for s in splits)
    assert not splits[0].test.equals(splits[1].test)


@pytest.mark.parametrize(
    ("folds", "train_frac", "labels", "message"),
    [
        (1, None, _labels(100), "folds must be at least 2, not 1"),
        (0, 0.5, _labels(100), "folds must be at least 1, not 0"),
        (3, 1.5, _labels(100), "train_frac must be between 0 and 1"),
        (3, None, pd.Series([0] * 50), "one class only"),
        (5, None, pd.Series([0] * 50 + [1] * 3), "label 1 has 3"),
    ],
)
def test_random_splits_name_what_cannot_work(
    folds: int, train_frac: float | None, labels: pd.Series, message: str
) -> None:
    with pytest.raises(CreditGraphError, match=message) as caught:
        random_splits(labels, folds, train_frac, seed=0)
    assert isinstance(caught.value, ValueError)  # as sklearn's own errors were
