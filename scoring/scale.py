"""Probability of default ↔ score: ``score = offset + factor · ln(good:bad odds)``.

With anchors (base score S at good:bad odds O, P points to double the odds):
``factor = P / ln 2`` and ``offset = S − factor · ln O``. Scores are clipped
to [min_score, max_score], 350–950 by default. A score depends only on the user's
own PD, never on the batch. Another scale (e.g. a FICO-like 300–850) is one
``[scale]`` table in the settings: the model and its PDs stay the same, and the
scores, factor points, PD per band and the report follow the anchors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CALIBRATIONS = ("platt", "isotonic")  # margin → PD; platt keeps factor points additive


@dataclass(frozen=True)
class ScoreScale:
    """Anchors of the score scale: ``score = offset + factor * ln(good:bad odds)``.

    ``base_odds`` is good:bad (20 means 20 good payers for each defaulter, PD ≈ 4.8%)
    and is scored ``base_score``; every ``points_to_double_odds`` points the
    good:bad odds double. Scores are clipped to ``[min_score, max_score]``.
    Settings hold one (``Settings.scale``, checked when loaded).
    """

    base_score: float = 650.0
    base_odds: float = 20.0
    points_to_double_odds: float = 60.0
    min_score: float = 350.0
    max_score: float = 950.0


def factor(scale: ScoreScale) -> float:
    return scale.points_to_double_odds / np.log(2.0)


def offset(scale: ScoreScale) -> float:
    return scale.base_score - factor(scale) * np.log(scale.base_odds)


def score_from_log_odds(bad_log_odds: np.ndarray, scale: ScoreScale) -> np.ndarray:
    """Unclipped score from ln(bad:good odds) = logit(PD)."""
    return offset(scale) - factor(scale) * np.asarray(bad_log_odds, dtype=float)


def score_from_pd(pd_: np.ndarray, scale: ScoreScale) -> np.ndarray:
    """Clipped score from a probability of default."""
    p = np.clip(np.asarray(pd_, dtype=float), 1e-12, 1 - 1e-12)
    return clip(score_from_log_odds(np.log(p / (1 - p)), scale), scale)


def pd_from_score(score: np.ndarray, scale: ScoreScale) -> np.ndarray:
    """The PD a score stands for (inverse of :func:`score_from_pd` inside the range)."""
    log_odds = (offset(scale) - np.asarray(score, dtype=float)) / factor(scale)
    return 1.0 / (1.0 + np.exp(-log_odds))


def clip(score: np.ndarray, scale: ScoreScale) -> np.ndarray:
    return np.clip(score, scale.min_score, scale.max_score)


def pd_per_band(scale: ScoreScale, width: int = 50) -> pd.DataFrame:
    """The PD at the lower edge of every ``width``-point band: the published meaning of a score."""
    lows = np.arange(scale.min_score, scale.max_score, width)
    return pd.DataFrame(
        {
            "band": [f"{int(lo)}–{int(lo + width - 1)}" for lo in lows],
            "pd_at_low": pd_from_score(lows, scale),
            "pd_at_high": pd_from_score(lows + width, scale),
        }
    )
