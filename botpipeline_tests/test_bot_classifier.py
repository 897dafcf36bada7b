"""The learned bot classifier: profile features, reproducible training, offline scoring."""

from __future__ import annotations

import socket
from pathlib import Path

import polars as pl
import pytest

from botpipeline.models.bot_classifier import BotClassifier, cross_validated, train
from botpipeline.readers.twitter_v2 import read_file
from botpipeline.transforms.profile_features import FEATURES, profile_features


@pytest.fixture(scope="module")
def twibot(request):
    from botpipeline_tests.conftest import REAL_DATA
    folder = REAL_DATA / "labeled_twibot22_sample"
    if not folder.is_dir():
        pytest.skip("TwiBot-22 sample not found")
    users = read_file(folder / "user_sample.json", "user_sample.json").users
    labels = pl.read_csv(folder / "label_sample.csv").rename({"id": "account_id"})
    return (profile_features(users).join(labels, on="account_id")
            .with_columns((pl.col("label") == "bot").alias("is_bot")))


def test_profile_features_keep_missing_fields_missing(twibot):
    assert twibot.height == 1000 and set(FEATURES) <= set(twibot.columns)
    assert twibot["like_count"].null_count() == 1000  # v2 users carry no favourites count
    assert twibot["age_days"].null_count() == 0       # TwiBot's epoch-ms created_at is read
    assert twibot["followers_count"].null_count() == 0


def test_training_is_reproducible_and_scoring_needs_no_network(twibot, tmp_path, monkeypatch):
    first, second = train(twibot, seed=7), train(twibot, seed=7)
    assert first.fingerprint == second.fingerprint
    assert first.trained_on == second.trained_on
    assert "like_count" not in first.features  # never seen, so not learned from
    first.save(tmp_path / "model.pkl")

    def no_network(*args, **kwargs):
        raise AssertionError("scoring tried to open a socket")

    monkeypatch.setattr(socket, "socket", no_network)
    loaded = BotClassifier.load(tmp_path / "model.pkl")
    scores = loaded.predict(twibot)
    assert (scores == second.predict(twibot)).all()
    assert ((scores >= 0) & (scores <= 1)).all()
    assert train(twibot, seed=8).fingerprint != first.fingerprint


def test_cross_validated_auc_is_reported_for_both_models(twibot):
    result = cross_validated(twibot, seed=0)
    assert set(result) >= {"gradient_boosting", "logistic"}
    assert result["gradient_boosting"]["roc_auc"] > 0.65  # measured 0.71 on this sample
    assert len(result["oof_probability"]) == twibot.height
