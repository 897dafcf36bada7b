"""Seed 004's rule-based bot filter, as SQL over the feature frame.

Verified accounts are trusted. Otherwise an account is a likely bot when it is younger than
``min_account_age_days``, has fewer than ``min_followers`` followers, follows more than
``max_following_ratio`` times as many accounts as follow it, or its bio contains one of
``keywords``. Every rule that fired is listed in ``reasons``; a rule whose input is missing
(an OASIS persona has no follower counts) does not fire.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_KEYWORDS = ("bot", "automated", "auto-tweet", "auto tweet", "scheduled tweets")


@dataclass(frozen=True)
class RuleConfig:
    enabled: bool = True
    min_account_age_days: float = 30
    min_followers: int = 10
    max_following_ratio: float = 10
    keywords: tuple[str, ...] = DEFAULT_KEYWORDS


def _keyword_match(keywords: tuple[str, ...]) -> str:
    if not keywords:
        return "false"
    quoted = ", ".join("'" + k.lower().replace("'", "''") + "'" for k in keywords)
    # Whole words, so "bot" matches "I am a bot" but not "robotics".
    return (f"len(list_filter([{quoted}], lambda k: regexp_matches(lower(coalesce("
            f"description, '')), '(^|[^a-z])' || k || '([^a-z]|$)'))) > 0")


def rule_filter_sql(features: str, c: RuleConfig) -> str:
    reasons = ", ".join([
        f"CASE WHEN account_age_days < {c.min_account_age_days} THEN 'account younger than "
        f"{c.min_account_age_days:g} days' END",
        f"CASE WHEN followers_count < {c.min_followers} THEN 'fewer than {c.min_followers} "
        f"followers' END",
        f"CASE WHEN following_count / greatest(followers_count, 1) > {c.max_following_ratio} "
        f"THEN 'follows more than {c.max_following_ratio:g}x its followers' END",
        f"CASE WHEN {_keyword_match(c.keywords)} THEN 'bot keyword in bio' END",
    ])
    return f"""
    SELECT platform, account_id, username, coalesce(verified, false) AS trusted_verified,
           CASE WHEN NOT {str(c.enabled).lower()} OR coalesce(verified, false) THEN []
                ELSE list_filter([{reasons}], lambda x: x IS NOT NULL) END AS reasons,
           len(reasons) > 0 AS is_likely_bot
    FROM ({features})"""
