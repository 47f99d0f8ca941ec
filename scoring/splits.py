"""Which labelled rows train, validate and test: the one place rows are split.

:func:`split_users` gives the credit model its single train / validation / test
split (stratified random, or out of time); :func:`random_splits` gives
``evaluate`` its K stratified splits (K-fold, or repeated shuffles). Both return
:class:`Split`, holding ids (the labels' index), never positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit, train_test_split

from creditgraph.errors import InvalidArgument


@dataclass(frozen=True, kw_only=True)
class Split:
    """Ids of the training, test and (possibly none) validation rows of one split.

    Validation rows serve early stopping and calibration; without them a
    consumer validates inside the training rows (``evaluate``'s inner CV).
    """

    train: pd.Index
    test: pd.Index
    valid: pd.Index = field(default_factory=lambda: pd.Index([]))


def split_users(
    labels: pd.Series, seed: int, valid: float = 0.2, test: float = 0.2,
    observed: pd.Series | None = None,
) -> Split:  # fmt: skip
    """Train / validation (early stopping + calibration) / test split.

    With ``observed`` (each user's observation date) the split is out of time:
    the latest observation cohort is the test set and the earlier cohorts are
    split, stratified, into train and validation. Otherwise it is a stratified
    random split.
    """
    if observed is not None:
        dates = pd.to_datetime(observed.reindex(labels.index))
        later = (dates == dates.max()).to_numpy()
        if later.all():
            raise InvalidArgument(
                "an out-of-time split needs at least two observation dates; every labelled "
                f'user has {dates.max():%Y-%m-%d} (use split = "random")'
            )
        earlier = labels[~later]
        train_pos, valid_pos = train_test_split(
            np.arange(len(earlier)), test_size=valid / (1 - test), stratify=earlier,
            random_state=seed,
        )  # fmt: skip
        return Split(
            train=earlier.index[train_pos], valid=earlier.index[valid_pos],
            test=labels.index[later],
        )  # fmt: skip
    positions = np.arange(len(labels))  # positions, not ids: sklearn indexes arrays
    rest, test_pos = train_test_split(positions, test_size=test, stratify=labels, random_state=seed)
    train_pos, valid_pos = train_test_split(
        rest, test_size=valid / (1 - test), stratify=labels.iloc[rest], random_state=seed
    )
    ids = labels.index
    return Split(train=ids[train_pos], valid=ids[valid_pos], test=ids[test_pos])


def random_splits(
    labels: pd.Series, folds: int, train_frac: float | None, seed: int
) -> list[Split]:
    """K stratified random splits with ``train_frac`` of the rows for training.

    Without ``train_frac`` the splits are the K folds of stratified K-fold
    cross-validation (every row is tested exactly once). No validation rows.
    """
    _check_random(labels, folds, train_frac)
    splitter: StratifiedKFold | StratifiedShuffleSplit = (
        StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        if train_frac is None
        else StratifiedShuffleSplit(n_splits=folds, train_size=train_frac, random_state=seed)
    )
    try:
        return [Split(train=labels.index[tr], test=labels.index[te])
                for tr, te in splitter.split(np.zeros(len(labels)), labels)]  # fmt: skip
    except ValueError as exc:  # e.g. a training share that leaves a class no row
        message = f"cannot make {folds} stratified splits of the labels: {exc}"
        raise InvalidArgument(message) from None


def _check_random(labels: pd.Series, folds: int, train_frac: float | None) -> None:
    """Name a fold count or training share that cannot split ``labels`` (before sklearn does)."""
    if folds < 1 or (train_frac is None and folds < 2):
        least = 2 if train_frac is None else 1
        raise InvalidArgument(f"folds must be at least {least}, not {folds}")
    if train_frac is not None and not 0 < train_frac < 1:
        raise InvalidArgument(f"train_frac must be between 0 and 1 (exclusive), not {train_frac}")
    counts = labels.value_counts()
    if len(counts) < 2:
        raise InvalidArgument(f"labels hold one class only ({counts.index[0]}): nothing to split")
    if train_frac is None and counts.min() < folds:
        raise InvalidArgument(
            f"{folds} stratified folds need at least {folds} rows of each label; "
            f"label {counts.idxmin()} has {counts.min()}"
        )
