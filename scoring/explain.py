"""One user's score with its exact breakdown: factor points, reasons, per-feature TreeSHAP."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas import DataFrame  # Explanation has a field named ``pd``

from creditgraph.errors import InvalidArgument
from creditgraph.scoring.dictionary import FACTORS, spec
from creditgraph.scoring.model import CreditModel


@dataclass(frozen=True)
class Explanation:
    """One user's score with its exact breakdown."""

    user_id: str
    score: float
    pd: float
    base_points: float
    factors: dict[str, float]
    reasons: list[str]
    top_features: DataFrame  # feature, factor, value, points (exact TreeSHAP)
    model_id: str


def explain_user(model: CreditModel, inputs: pd.DataFrame, user_id: str) -> Explanation:
    """Score, PD, five factor points, reasons and exact per-feature points of one input row.

    The reasons are the ones a scoring run publishes (fast per-feature attribution,
    the same for every user); ``top_features`` adds the exact TreeSHAP points.
    """
    if user_id not in inputs.index:
        raise InvalidArgument(f"unknown user {user_id!r}")
    row = inputs.loc[[user_id]]
    scored = model.score(row)
    points = model.feature_points(row, exact=True).iloc[0]
    table = pd.DataFrame(
        {
            "feature": points.index,
            "factor": [spec(f).factor for f in points.index],
            "value": [row.iloc[0][f] for f in points.index],
            "points": points.to_numpy(),
        }
    ).sort_values("points", key=np.abs, ascending=False)
    reasons = model.reasons(row).iloc[0]  # worded as published: the same for every user
    first = scored.iloc[0]
    return Explanation(
        user_id=user_id,
        score=float(first["score"]),
        pd=float(first["pd"]),
        base_points=float(scored.attrs["base_points"]),
        factors={name: float(first[f"f_{name}"]) for name in FACTORS},
        reasons=[r for r in reasons.split("; ") if r],
        top_features=table.reset_index(drop=True),
        model_id=model.model_id,
    )
