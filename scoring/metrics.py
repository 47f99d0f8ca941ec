"""Discrimination and calibration metrics used by training, evaluation and reports."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    """Kolmogorov–Smirnov distance between the score distributions of bads and goods."""
    order = np.argsort(p, kind="stable")
    y = np.asarray(y)[order]
    bad = np.cumsum(y) / max(y.sum(), 1)
    good = np.cumsum(1 - y) / max((1 - y).sum(), 1)
    return float(np.max(np.abs(bad - good)))


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
