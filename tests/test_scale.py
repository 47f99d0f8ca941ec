"""Score scale: anchors hold, PD and score invert each other, clipping respects the range;
another scale is one configuration change that the model, PD per band and report follow."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from creditgraph.ingest.synthetic import generate_world
from creditgraph.scoring.features import observation_dates, tabular_features
from creditgraph.scoring.model import CreditModel, train_model
from creditgraph.scoring.report import write_report
from creditgraph.scoring.scale import ScoreScale, pd_from_score, pd_per_band, score_from_pd
from creditgraph.scoring.splits import split_users
from creditgraph.settings import Settings, load_settings


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


# -- another scale by configuration ------------------------------------------------------------
FICO_LIKE = """\
[scale]
base_score = 660            # 660 points at good:bad 20:1 (PD ≈ 4.8%)
base_odds = 20
points_to_double_odds = 40
min_score = 300
max_score = 850
"""


@pytest.fixture(scope="module")
def fico_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    config = tmp_path_factory.mktemp("config") / "creditgraph.toml"
    config.write_text(FICO_LIKE)
    return load_settings(config)


def test_a_fico_like_scale_is_one_configuration_change(fico_settings: Settings) -> None:
    scale = fico_settings.scale
    assert scale == ScoreScale(660, 20, 40, 300, 850)
    assert replace(fico_settings, scale=ScoreScale()) == load_settings(Path("/nonexistent.toml"))
    np.testing.assert_allclose(score_from_pd(np.array([1 / 21, 1 / 41, 1 / 81]), scale),
                               [660, 700, 740])  # fmt: skip
    assert score_from_pd(np.array([1e-9, 0.999]), scale).tolist() == [850, 300]
    bands = pd_per_band(scale)
    assert bands["band"].tolist() == [f"{lo}–{lo + 49}" for lo in range(300, 850, 50)]
    np.testing.assert_allclose(bands["pd_at_low"], pd_from_score(np.arange(300, 850, 50), scale))
    assert (np.diff(bands["pd_at_low"]) < 0).all()
    # The base odds sit at 660 on this scale, at 650 on the default one.
    at_base = pd_from_score(np.array([660.0]), scale)[0]
    assert np.isclose(at_base, pd_from_score(np.array([650.0]), ScoreScale())[0])


def test_a_model_and_its_report_follow_the_configured_scale(
    fico_settings: Settings, tmp_path: Path
) -> None:
    tables = generate_world(2000, seed=3)
    features = tabular_features(tables, observation_dates(tables))
    labels = tables["labels"].set_index("user_id")["defaulted"].astype(int)
    split = split_users(labels, 3)
    shallow = {"max_depth": 2, "eta": 0.3}  # quick; the scale is applied after the trees

    def trained(scale: ScoreScale) -> CreditModel:
        return train_model(features, labels, train_index=split.train, valid_index=split.valid,
                           scale=scale, seed=3, params=shallow)  # fmt: skip

    scale = fico_settings.scale
    model, default = trained(scale), trained(ScoreScale())
    test = features.loc[split.test]
    scored, on_default = model.score(test), default.score(test)
    # The same data and seed give the same model, hence the same PDs, on other points.
    np.testing.assert_array_equal(scored["pd"], on_default["pd"])
    np.testing.assert_allclose(scored["score"], score_from_pd(scored["pd"], scale))
    np.testing.assert_allclose(on_default["score"], score_from_pd(scored["pd"], ScoreScale()))
    assert scored["score"].between(300, 850).all()
    points = scored[[c for c in scored if c.startswith("f_")]].sum(axis=1)
    np.testing.assert_allclose(scored.attrs["base_points"] + points, scored["score"])
    # Yet they are two models: a [scale] change trains a new one, never reuses the old one's.
    assert model.model_id != default.model_id
    default.save(tmp_path / "models")
    reloaded = CreditModel.load(model.save(tmp_path / "models"))
    assert reloaded.scale == scale
    pd.testing.assert_frame_equal(reloaded.score(test), scored)

    # One user at the very top of the scale (clipped there): the top band holds its end.
    top = scored.iloc[[0]].rename(index={scored.index[0]: "top"}).assign(score=850.0)
    outcomes = pd.concat([labels, pd.Series({"top": 0})])
    report = write_report(model, pd.concat([scored, top]), outcomes, tmp_path / "report")
    page = report.path.read_text()
    assert "660 points at good:bad\n20:1, 40 points to double the odds" in page
    assert "clipped to\n300–850" in page
    for row in pd_per_band(scale).itertuples():  # the published meaning, band by band
        assert f"<th>{row.band}</th><td>{row.pd_at_low:.3%}</td>" in page
    assert "900–949" not in page
    lows = [int(band.split("–")[0]) for band in report.bands.index]
    assert min(lows) >= 300 and max(lows) == 800  # 850 itself is in 800–849
    assert report.bands["users"].sum() == len(scored) + 1
