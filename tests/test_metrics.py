"""Metrics against hand-computed answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from creditgraph.scoring import metrics


def test_ks_perfect_and_useless():
    y = np.array([0, 0, 1, 1])
    assert metrics.ks_statistic(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert metrics.ks_statistic(y, np.array([0.5, 0.5, 0.5, 0.5])) <= 0.5


def test_psi_zero_for_same_population_and_large_for_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(600, 80, 5000)
    assert metrics.psi(a, a) == pytest.approx(0.0, abs=1e-9)
    assert metrics.psi(a, a + 80) > 0.25


def test_hosmer_lemeshow_calibrated_vs_not():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.01, 0.5, 20000)
    y = (rng.random(20000) < p).astype(int)
    assert metrics.hosmer_lemeshow(y, p)[1] > 0.01
    assert metrics.hosmer_lemeshow(y, np.clip(p * 1.6, 0, 0.99))[1] < 1e-6


def test_adverse_impact_ratio():
    group = pd.Series(["a"] * 10 + ["b"] * 10)
    approved = np.array([1] * 8 + [0] * 2 + [1] * 4 + [0] * 6)
    ratio = metrics.adverse_impact_ratio(approved, group)
    assert ratio["a"] == 1.0 and ratio["b"] == pytest.approx(0.5)


def test_band_table_counts_and_rates():
    table = metrics.band_table(np.array([1, 0, 0, 1]), np.array([0.3, 0.1, 0.02, 0.2]),
                               np.array([420, 430, 700, 950]))  # fmt: skip
    assert table.loc["400–449", "users"] == 2 and table.loc["400–449", "observed"] == 0.5
    assert table.loc["900–949", "users"] == 1  # 950 belongs to the top band


def test_psi_counts_missing_values_as_their_own_bin():
    rng = np.random.default_rng(1)
    a = rng.normal(size=5000)
    half_missing = np.where(rng.random(5000) < 0.5, np.nan, a)
    assert metrics.psi(a, half_missing) > 0.25  # the missing share moved from 0% to ~50%
    assert metrics.psi(half_missing, half_missing) == pytest.approx(0.0, abs=1e-9)
    nothing = np.full(100, np.nan)
    assert metrics.psi(nothing, nothing) == pytest.approx(0.0, abs=1e-9)
    assert metrics.psi(nothing, a) > 1.0  # a column that appeared


def test_band_table_puts_the_top_of_any_scale_in_the_band_below() -> None:
    y, pd_ = np.array([0, 0, 1]), np.array([0.01, 0.02, 0.9])
    assert metrics.band_table(y, pd_, np.array([950.0, 900.0, 350.0])).index.tolist() == [
        "350–399", "900–949"]  # fmt: skip
    fico = metrics.band_table(y, pd_, np.array([850.0, 800.0, 300.0]), top=850.0)
    assert fico.index.tolist() == ["300–349", "800–849"] and fico["users"].tolist() == [1, 2]
