"""Score scale: anchors hold, PD and score invert each other, clipping respects the range."""

from __future__ import annotations

import numpy as np

from creditgraph.scoring.scale import ScoreScale, pd_from_score, pd_per_band, score_from_pd


def test_anchors():
    scale = ScoreScale(base_score=650, base_odds=20, points_to_double_odds=60)
    base_pd = 1 / 21  # good:bad 20:1
    assert np.isclose(score_from_pd(base_pd, scale), 650)
    doubled = 1 / 41  # odds 40:1 -> 60 points more
    assert np.isclose(score_from_pd(doubled, scale), 710)


def test_round_trip_and_clipping():
    scale = ScoreScale()
    pds = np.array([0.01, 0.05, 0.2, 0.5])
    np.testing.assert_allclose(pd_from_score(score_from_pd(pds, scale), scale), pds)
    assert score_from_pd(np.array([1e-9]), scale)[0] == 950
    assert score_from_pd(np.array([0.999]), scale)[0] == 350


def test_pd_per_band_is_monotone():
    bands = pd_per_band(ScoreScale())
    assert len(bands) == 12
    assert (np.diff(bands["pd_at_low"]) < 0).all()
