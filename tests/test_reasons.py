"""Reason codes say what a user's data shows: missing history is never worded as bad history.

One 4,000-user synthetic world goes through the real pipeline (embedded store,
real XGBoost model); who has repayment rows is read from the generated input
files, not from the features under test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from creditgraph import pipeline
from creditgraph.scoring.dictionary import FEATURES, NO_REPAYMENTS, spec
from creditgraph.scoring.features.public_records import PUBLIC_RECORD_COLUMNS
from creditgraph.settings import load_settings

# Everything the credit-history features say about a user's own repayment behaviour
# (public records, also credit history, are another source: tests/test_public_records.py).
REPAYMENT_CLAIMS = {
    spec(f).words
    for f in FEATURES
    if spec(f).factor == "credit_history" and spec(f).words and f not in PUBLIC_RECORD_COLUMNS
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """Seed 7: on the old wording ~1,350 of ~1,600 users without repayments heard a claim."""
    root = tmp_path_factory.mktemp("reasons")
    settings = load_settings(data_dir=root / "data", store="embedded", seed=7)
    pipeline.generate(settings, root / "in", users=4000)
    with pipeline.open_configured_store(settings) as store:
        pipeline.ingest(settings, store, root / "in")
        raw = pipeline.build_features(settings, store)
        model = pipeline.train(settings, store, raw).model
        inputs = pipeline.model_inputs(settings, store, model, raw)
        scores = pipeline.score_users(model, inputs)
        pipeline.write_scores(settings, store, scores, inputs)
    repayments = pd.read_csv(root / "in" / "repayments.csv")
    worst = repayments.groupby("user_id")["days_late"].max().reindex(inputs.index)
    return {"settings": settings, "model": model, "inputs": inputs, "scores": scores,
            "worst_days_late": worst}  # fmt: skip


def _reasons(series: pd.Series) -> pd.Series:
    return series.map(lambda text: [r for r in text.split("; ") if r])


def _check_wording(reasons: pd.Series, worst_days_late: pd.Series) -> None:
    lists = _reasons(reasons)
    thin = worst_days_late.isna().to_numpy()
    assert thin.sum() > 1000  # the world has many users without repayments
    claims = lists[thin].map(lambda rs: sorted(set(rs) & REPAYMENT_CLAIMS))
    assert not claims.map(bool).any(), claims[claims.map(bool)].head()
    # The "no history" wording is for them alone, and it is said once at most.
    assert not lists[~thin].map(lambda rs: NO_REPAYMENTS in rs).any()
    assert lists[thin].map(lambda rs: NO_REPAYMENTS in rs).sum() > 100
    assert (lists.map(len) == lists.map(lambda rs: len(set(rs)))).all()
    # Users who did repay badly still hear it.
    bad = (worst_days_late >= 30).to_numpy()
    assert bad.sum() > 100
    told = lists[bad].map(lambda rs: bool(set(rs) & REPAYMENT_CLAIMS))
    assert told.mean() > 0.9


def test_batch_reasons_never_word_missing_repayments_as_bad(world):
    _check_wording(world["scores"]["reasons"], world["worst_days_late"])


def test_exact_reasons_never_word_missing_repayments_as_bad(world):
    _check_wording(world["model"].reasons(world["inputs"], exact=True), world["worst_days_late"])


def test_never_delinquent_users_are_not_told_of_a_delinquency(world):
    """NaN months_since_delinquency means no 30+ day delay: it gives no reason at all."""
    lists = _reasons(world["scores"]["reasons"])
    clean = ~(world["worst_days_late"] >= 30).to_numpy()
    assert not lists[clean].map(lambda rs: "A recent delinquency" in rs).any()


def test_no_history_reason_carries_the_points_of_every_missing_repayment_feature(world):
    """The pooled reason is ranked by the summed points of the features it stands for."""
    model, inputs = world["model"], world["inputs"]
    thin = inputs.loc[world["worst_days_late"].isna()].head(300)
    points = model.feature_points(thin)
    group = [f for f in model.features if spec(f).missing_words == NO_REPAYMENTS]
    pooled = points[group].sum(axis=1)
    told = _reasons(model.reasons(thin, top=len(model.features))).map(
        lambda rs: NO_REPAYMENTS in rs
    )
    np.testing.assert_array_equal(told.to_numpy(), (pooled < -0.5).to_numpy())


def test_explain_uses_the_same_wording(world):
    settings, model, _inputs = world["settings"], world["model"], world["inputs"]
    published = _reasons(world["scores"]["reasons"])
    thin = world["worst_days_late"].isna()
    no_history = published[thin & published.map(lambda rs: NO_REPAYMENTS in rs)].index[:3]
    bad = published[(world["worst_days_late"] >= 90)].index[:3]
    assert len(no_history) == 3 and len(bad) == 3
    for user in [*no_history, *bad]:
        explanation = pipeline.explain(settings, user)  # the published run's own model
        assert explanation.reasons == published[user]
        assert explanation.model_id == model.model_id
    for user in no_history:
        reasons = pipeline.explain(settings, user).reasons
        assert NO_REPAYMENTS in reasons and not set(reasons) & REPAYMENT_CLAIMS


def test_single_record_without_history_gets_the_no_history_wording(world):
    model, inputs = world["model"], world["inputs"]
    lists = _reasons(world["scores"]["reasons"])
    user = lists[world["worst_days_late"].isna() & lists.map(lambda rs: NO_REPAYMENTS in rs)]
    record = inputs.loc[user.index[0]].to_dict()
    assert model.score_record(record)["reasons"] == user.iloc[0]


def test_reasons_do_not_depend_on_batch(world):
    model, inputs = world["model"], world["inputs"]
    whole = model.reasons(inputs)
    shuffled = inputs.sample(frac=1.0, random_state=3)
    pd.testing.assert_series_equal(model.reasons(shuffled).loc[inputs.index], whole)


def test_readme_states_the_missing_history_rule():
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("### What a score means", 1)[1].split("\n## ", 1)[0]
    assert NO_REPAYMENTS in " ".join(section.split())


def test_features_without_a_direction_are_worded_without_a_claim():
    """Such a feature lowers the score from either side: "Few …" could contradict the data."""
    import re

    from creditgraph.scoring.dictionary import FEATURES

    claim = re.compile(
        r"^(few|low|small|many|weak|short|tightly|peripheral|loosely|recent|high|large)\b"
        r"|unusual|concentrated|isolated",
        re.IGNORECASE,
    )
    worded = [s for s in FEATURES.values() if s.risk == 0 and s.words]
    assert worded
    assert [s.name for s in worded if claim.search(s.words)] == []
