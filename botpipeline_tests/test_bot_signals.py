"""Each of the 13 signals and each rule of the filter at its boundaries."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from botpipeline.transforms.bot_signals import SIGNALS, SignalConfig, bot_scores_sql, max_total
from botpipeline.transforms.evaluation import roc_auc
from botpipeline.transforms.rule_filter import RuleConfig, rule_filter_sql

# An account that triggers nothing.
BASE = {
    "platform": "twitter", "account_id": "1", "username": "alice", "description": "hi there",
    "account_age_days": 400.0, "followers_count": 100, "following_count": 100,
    "verified": True, "has_description": True, "default_profile_image": False,
    "posts_24h": 3, "unique_active_hours": 5, "original_posts": 5, "comments": 5,
    "repetitive_share": 0.0, "comment_repetitive_share": 0.0, "engagement_per_post": 10.0,
    "engagement_per_comment": 10.0, "rapid_comment_share": 0.0, "inflammatory_share": 0.0,
}


def _score(rows: list[dict], config: SignalConfig = SignalConfig()) -> list[dict]:
    frame = pl.DataFrame([{**BASE, "account_id": str(i), **row} for i, row in enumerate(rows)],
                         infer_schema_length=None)
    con = duckdb.connect()
    con.register("features", frame)
    return con.sql(bot_scores_sql("SELECT * FROM features", config)
                   + " ORDER BY account_id::INT").pl().to_dicts()


def test_base_account_scores_zero():
    (row,) = _score([{}])
    assert row["total_score"] == 0 and not row["flagged"] and row["significant_signals"] == []


# signal, the feature varied, values just under / at / over the threshold, expected scores
BOUNDARIES = [
    ("new_account", "account_age_days", (29.99, 30.0, 30.01), (2.0, 0, 0)),
    ("high_frequency", "posts_24h", (23, 24, 25), (0, 0, 3.0)),
    ("repetitive_content", "repetitive_share", (0.69, 0.7, 0.71), (0, 0, 2.5)),
    ("low_engagement", "engagement_per_post", (0.99, 1.0, 1.01), (1.5, 0, 0)),
    ("temporal_pattern", "unique_active_hours", (19, 20, 21), (0, 0, 1.0)),
    ("comment_repetitiveness", "comment_repetitive_share", (0.29, 0.3, 0.31), (0, 0, 2.0)),
    ("comment_timing", "rapid_comment_share", (0.29, 0.3, 0.31), (0, 0, 2.5)),
    ("inflammatory_frequency", "inflammatory_share", (0.29, 0.3, 0.31), (0, 0, 2.0)),
    ("comment_engagement", "engagement_per_comment", (0.49, 0.5, 0.51), (1.5, 0, 0)),
]


@pytest.mark.parametrize("signal,feature,values,expected", BOUNDARIES,
                         ids=[b[0] for b in BOUNDARIES])
def test_signal_boundaries(signal, feature, values, expected):
    rows = _score([{feature: v} for v in values])
    assert [r[signal] for r in rows] == list(expected)
    for row, want in zip(rows, expected):  # nothing else moves
        assert row["total_score"] == want


def test_repetition_needs_enough_posts():
    rows = _score([{"repetitive_share": 1.0, "original_posts": n} for n in (2, 3)]
                  + [{"comment_repetitive_share": 1.0, "comments": n} for n in (2, 3)])
    assert [r["repetitive_content"] for r in rows[:2]] == [0, 2.5]
    assert [r["comment_repetitiveness"] for r in rows[2:]] == [0, 2.0]


@pytest.mark.parametrize("name,score", [("user84723", 1.0), ("news_bot_12", 1.0),
                                        ("aB3dE5gH7jK9mN1", 1.0), ("crypto_2041", 1.0),
                                        ("alice", 0), ("robot_fan_club_x", 0)])
def test_generic_username(name, score):
    (row,) = _score([{"username": name}])
    assert row["generic_username"] == score


def test_incomplete_profile_halves():
    rows = _score([{"has_description": False}, {"default_profile_image": True},
                   {"has_description": False, "default_profile_image": True}])
    assert [r["incomplete_profile"] for r in rows] == [0.5, 0.5, 1.0]


def test_unverified_and_missing_inputs():
    rows = _score([{"verified": False}, {"verified": None, "engagement_per_post": None}])
    assert rows[0]["unverified_account"] == 1.5
    assert rows[1]["unverified_account"] == 0 and rows[1]["low_engagement"] == 0
    assert set(rows[1]["missing_inputs"]) == {"unverified_account", "low_engagement"}


def test_comment_only_accounts():
    rows = _score([{"original_posts": 0, "comments": 1}, {"original_posts": 1, "comments": 1},
                   {"original_posts": 0, "comments": 0}])
    assert [r["comment_to_post_ratio"] for r in rows] == [1.5, 0, 0]


def test_flag_threshold_is_inclusive():
    config = SignalConfig(new_account_max=7.0, flag_threshold=7.0)
    rows = _score([{"account_age_days": 1.0}], config)
    assert rows[0]["total_score"] == 7.0 and rows[0]["flagged"]
    assert rows[0]["significant_signals"] == ["new_account"]
    lower = _score([{"account_age_days": 1.0}], SignalConfig(new_account_max=6.99))
    assert not lower[0]["flagged"]


def test_every_signal_at_once_reaches_the_maximum():
    (row,) = _score([{"account_age_days": 1.0, "posts_24h": 50, "repetitive_share": 1.0,
                      "engagement_per_post": None, "username": "user12345",
                      "has_description": False, "default_profile_image": True,
                      "unique_active_hours": 24, "verified": False, "comments": 10,
                      "comment_repetitive_share": 1.0, "rapid_comment_share": 1.0,
                      "inflammatory_share": 1.0, "engagement_per_comment": 0.0,
                      "original_posts": 0}])
    # comment_to_post_ratio needs no original posts, which switches off the post-based
    # repetition and engagement signals: the maximum with comments only.
    assert row["total_score"] == max_total() - 2.5 - 1.5
    assert sorted(row["significant_signals"]) == sorted(
        s for s in SIGNALS if s not in ("repetitive_content", "low_engagement"))
    assert row["flagged"]


# ------------------------------------------------------------------------- rule filter
def _rules(rows: list[dict], config: RuleConfig = RuleConfig()) -> list[dict]:
    base = {**BASE, "verified": False}
    frame = pl.DataFrame([{**base, "account_id": str(i), **row} for i, row in enumerate(rows)],
                         infer_schema_length=None)
    con = duckdb.connect()
    con.register("features", frame)
    return con.sql(rule_filter_sql("SELECT * FROM features", config)
                   + " ORDER BY account_id::INT").pl().to_dicts()


@pytest.mark.parametrize("feature,values,expected", [
    ("account_age_days", (29.99, 30.0, 30.01), (True, False, False)),
    ("followers_count", (9, 10, 11), (True, False, False)),
])
def test_rule_boundaries(feature, values, expected):
    rows = _rules([{feature: v} for v in values])
    assert [r["is_likely_bot"] for r in rows] == list(expected)


def test_following_ratio_boundary():
    rows = _rules([{"followers_count": 100, "following_count": n} for n in (999, 1000, 1001)])
    assert [r["is_likely_bot"] for r in rows] == [False, False, True]
    assert rows[2]["reasons"] == ["follows more than 10x its followers"]


@pytest.mark.parametrize("bio,bot", [("I am a bot.", True), ("Automated account", True),
                                     ("scheduled tweets every hour", True),
                                     ("robotics and botany", False), ("", False)])
def test_bio_keywords(bio, bot):
    (row,) = _rules([{"description": bio}])
    assert row["is_likely_bot"] is bot


def test_verified_is_trusted_and_missing_inputs_do_not_fire():
    rows = _rules([{"verified": True, "account_age_days": 1.0, "followers_count": 0},
                   {"account_age_days": None, "followers_count": None,
                    "following_count": None}])
    assert rows[0]["trusted_verified"] and not rows[0]["is_likely_bot"]
    assert not rows[1]["is_likely_bot"] and rows[1]["reasons"] == []


def test_disabled_filter_and_custom_thresholds():
    rows = _rules([{"account_age_days": 1.0}], RuleConfig(enabled=False))
    assert not rows[0]["is_likely_bot"]
    rows = _rules([{"account_age_days": 60.0}], RuleConfig(min_account_age_days=90))
    assert rows[0]["reasons"] == ["account younger than 90 days"]


def test_roc_auc():
    frame = pl.DataFrame({"score": [0.1, 0.4, 0.35, 0.8], "bot": [False, False, True, True]})
    assert roc_auc(frame, "score", "bot") == 0.75
    assert roc_auc(frame.filter(pl.col("bot")), "score", "bot") is None


@pytest.mark.parametrize("text, normalized", [
    ("Daily crypto signals #BTC 41,202 https://t.co/abc", "daily crypto signals btc"),
    ("DAILY crypto signals #btc 39,877 http://x.y/z?q=1", "daily crypto signals btc"),
    ("@alice   thanks!!  see you", "thanks see you"),
    ("seehttps://t.co/x now", "see now"),
    ("snake_case and 2fast", "snake case and fast"),
    ("Grüße, мир — 世界", "grüße мир 世界"),
    ("123 !!! https://t.co/x @bob", ""),
    ("", ""),
])
def test_repetition_normalizes_text(text, normalized):
    from botpipeline.transforms.account_features import NORMALIZED

    got = duckdb.sql(f"SELECT {NORMALIZED.format(col='t')} FROM (SELECT ? AS t)",
                     params=[text]).fetchall()[0][0]
    assert got == normalized
