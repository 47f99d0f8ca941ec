"""What each scope discloses, and which grant scope covers which request.

Scopes are ordered by how much they tell: ``decision`` (the purpose's yes/no word, e.g.
``waive_deposit``, at its one cut-off) < ``threshold`` (true/false against one cut-off) <
``band`` (a 50-point band) < ``score`` (score and date) < ``full`` (score, date, five
factors, reasons). A grant covers requests at its own scope or a narrower one; the
answer always holds exactly the fields of the scope asked for.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from creditgraph.access.scores import ScoreRecord
from creditgraph.errors import InvalidArgument
from creditgraph.scoring.scale import ScoreScale

BAND_WIDTH = 50


class Scope(StrEnum):
    THRESHOLD = "threshold"
    BAND = "band"
    SCORE = "score"
    FULL = "full"
    DECISION = "decision"  # defined last, ranked first: list(Scope) keeps its older order

    @property
    def rank(self) -> int:
        return _ORDER.index(self)

    def covers(self, requested: Scope) -> bool:
        """True if a grant of this scope may answer a request for ``requested``."""
        return self.rank >= requested.rank


_ORDER = (Scope.DECISION, Scope.THRESHOLD, Scope.BAND, Scope.SCORE, Scope.FULL)

# The fields each answer carries, as recorded in the audit log ("fields disclosed").
DISCLOSED: dict[Scope, tuple[str, ...]] = {
    Scope.DECISION: ("decision",),
    Scope.THRESHOLD: ("meets_threshold",),
    Scope.BAND: ("band_low", "band_high"),
    Scope.SCORE: ("score", "scored_at"),
    Scope.FULL: ("score", "scored_at", "factors", "reasons"),
}


def public_score(score: float) -> int:
    """The score as shown to anyone: rounded to a whole point (all scopes use this one)."""
    return int(math.floor(score + 0.5))


def band_of(score: float, scale: ScoreScale | None = None) -> tuple[int, int]:
    """The 50-point band ``[low, high)`` holding the score; the top band includes its end."""
    scale = scale or ScoreScale()
    low = (public_score(score) // BAND_WIDTH) * BAND_WIDTH
    low = int(min(max(low, scale.min_score), scale.max_score - BAND_WIDTH))
    return low, low + BAND_WIDTH


def disclose(
    record: ScoreRecord,
    scope: Scope,
    threshold: int | None = None,
    *,
    decision: tuple[str, str] | None = None,
    scale: ScoreScale | None = None,
) -> dict[str, Any]:
    """The answer for ``scope``: exactly the fields in :data:`DISCLOSED`, nothing else.

    ``threshold``: the cut-off of a threshold or decision answer; ``decision``: the
    ``(yes, no)`` words of a decision answer; ``scale``: the score range bands lie in.
    """
    if scope in (Scope.THRESHOLD, Scope.DECISION):
        if threshold is None:
            raise InvalidArgument(f"a {scope.value} lookup needs a threshold")
        meets = public_score(record.score) >= threshold
        if scope is Scope.THRESHOLD:
            return {"meets_threshold": meets}
        if decision is None:
            raise InvalidArgument("a decision lookup needs the purpose's decision words")
        return {"decision": decision[0] if meets else decision[1]}
    if scope is Scope.BAND:
        low, high = band_of(record.score, scale)
        return {"band_low": low, "band_high": high}
    answer: dict[str, Any] = {
        "score": public_score(record.score),
        "scored_at": record.scored_at.isoformat(),
    }
    if scope is Scope.FULL:
        answer["factors"] = {name: round(value, 2) for name, value in record.factors.items()}
        answer["reasons"] = list(record.reasons)
    return answer
