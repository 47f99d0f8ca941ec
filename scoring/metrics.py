"""Discrimination and calibration metrics used by training, evaluation and reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score, roc_curve


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    """Kolmogorov–Smirnov distance between the PD distributions of bads and goods (ties-aware)."""
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed − predicted| default rate over equal-count bins, weighted by size."""
    order = np.argsort(p, kind="stable")
    chunks = np.array_split(order, bins)
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    return float(sum(len(c) * abs(y[c].mean() - p[c].mean()) for c in chunks if len(c)) / len(y))


def summary(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """ROC-AUC, Gini, PR-AUC, KS, Brier, ECE and default rates for labels ``y`` and PDs ``p``."""
    auc = float(roc_auc_score(y, p))
    return {
        "roc_auc": auc,
        "gini": 2 * auc - 1,
        "pr_auc": float(average_precision_score(y, p)),
        "ks": ks_statistic(y, p),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "default_rate": float(np.mean(y)),
        "mean_pd": float(np.mean(p)),
        "n": int(len(y)),
    }


def hosmer_lemeshow(y: np.ndarray, p: np.ndarray, groups: int = 10) -> tuple[float, float]:
    """Hosmer–Lemeshow statistic over equal-count groups of PD, and its p-value (df = g − 2)."""
    from scipy.stats import chi2

    order = np.argsort(p, kind="stable")
    y, p = np.asarray(y, dtype=float)[order], np.asarray(p, dtype=float)[order]
    statistic = 0.0
    for chunk in np.array_split(np.arange(len(y)), groups):
        n, observed, expected = len(chunk), y[chunk].sum(), p[chunk].sum()
        if n and 0 < expected < n:
            statistic += (observed - expected) ** 2 / (expected * (1 - expected / n))
    return float(statistic), float(chi2.sf(statistic, groups - 2))


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected`` (quantile bins of expected).

    Missing values form a bin of their own, so a change in how often a value
    is missing counts as a shift. Rule of thumb: < 0.1 stable, 0.1–0.25 some
    shift, > 0.25 a real shift.
    """
    expected = np.asarray(expected, dtype=float)
    actual = np.asarray(actual, dtype=float)
    known = expected[~np.isnan(expected)]
    edges = np.unique(np.quantile(known, np.linspace(0, 1, bins + 1))) if len(known) else None
    if edges is None or len(edges) < 2:  # one present value (or none): present vs missing only
        edges = np.array([-np.inf, np.inf])

    def shares(values: np.ndarray) -> np.ndarray:
        present = values[~np.isnan(values)]
        counts = np.histogram(np.clip(present, edges[0], edges[-1]), edges)[0]
        return np.append(counts, len(values) - len(present)) / max(len(values), 1)

    e, a = np.clip(shares(expected), 1e-6, None), np.clip(shares(actual), 1e-6, None)
    return float(np.sum((a - e) * np.log(a / e)))


def feature_psi(expected: pd.DataFrame, actual: pd.DataFrame) -> pd.Series:
    """PSI per numeric feature between two populations."""
    numeric = [c for c in expected.columns if pd.api.types.is_numeric_dtype(expected[c])]
    return pd.Series({c: psi(expected[c].to_numpy(), actual[c].to_numpy()) for c in numeric})


def adverse_impact_ratio(approved: np.ndarray, group: pd.Series) -> pd.Series:
    """Approval rate of each group over the most-approved group's (the four-fifths rule: < 0.8)."""
    rates = pd.Series(np.asarray(approved, dtype=float), index=group.index).groupby(group).mean()
    return rates / rates.max()


def band_table(
    y: np.ndarray, pd_: np.ndarray, score: np.ndarray, width: int = 50, top: float = 950.0
) -> pd.DataFrame:
    """Users, observed and expected default rate per score band (``top``, the scale's
    highest score, falls in the band below it)."""
    lows = (np.floor(np.minimum(score, top - 1e-3) / width) * width).astype(int)
    frame = pd.DataFrame({"band": lows, "y": y, "pd": pd_})
    table = frame.groupby("band").agg(users=("y", "size"), observed=("y", "mean"),
                                      expected=("pd", "mean"))  # fmt: skip
    table.index = [f"{lo}–{lo + width - 1}" for lo in table.index]
    return table


def score_shift(
    before: pd.Series, after: pd.Series, width: int = 50, top: float = 950.0
) -> dict[str, float]:
    """How scores moved between two runs, over the users scored in both.

    ``users_band_changed`` counts users whose ``width``-point band changed
    (``top``, the scale's highest score, falls in the band below it).
    """
    before = before.reindex(after.index)
    both = before.notna()
    change = after[both] - before[both]

    def band(scores: pd.Series) -> np.ndarray:
        return np.floor(np.minimum(scores.to_numpy(dtype=float), top - 1e-3) / width)

    return {
        "users_compared": float(both.sum()),
        "psi": psi(before[both].to_numpy(), after[both].to_numpy()),
        "mean_change": float(change.mean()),
        "share_moved_50_plus": float((change.abs() >= 50).mean()),
        "users_band_changed": float((band(before[both]) != band(after[both])).sum()),
    }
