"""The interface every platform collector implements, and seed 003's collection flow.

An adapter talks to one platform's API and returns frames already in the ``core`` model
(transforms/core_model.py: ``POST_COLUMNS``, ``ACCOUNT_COLUMNS``), plus quarantine rows for
items it could not use (missing fields, bad timestamps, error pages), so nothing is dropped
silently. ``collect`` runs the flow of seed 003 over any adapter: search posts for each query,
pick the top performers by engagement score, harvest their comments, fetch the commenters'
profiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import polars as pl

from botpipeline.transforms.core_model import ACCOUNT_COLUMNS, POST_COLUMNS

QUARANTINE_COLUMNS = {"platform": pl.String, "item_id": pl.String, "reason": pl.String,
                      "raw": pl.String}


def empty(columns: dict) -> pl.DataFrame:
    return pl.DataFrame(schema=columns)


@dataclass
class Collected:
    posts: pl.DataFrame = field(default_factory=lambda: empty(POST_COLUMNS))
    accounts: pl.DataFrame = field(default_factory=lambda: empty(ACCOUNT_COLUMNS))
    quarantine: pl.DataFrame = field(default_factory=lambda: empty(QUARANTINE_COLUMNS))
    calls: int = 0

    def __add__(self, other: "Collected") -> "Collected":
        return Collected(pl.concat([self.posts, other.posts], how="vertical_relaxed"),
                         pl.concat([self.accounts, other.accounts], how="vertical_relaxed"),
                         pl.concat([self.quarantine, other.quarantine], how="vertical_relaxed"),
                         self.calls + other.calls)

    def deduplicated(self) -> "Collected":
        """One row per post and per account (the last seen wins: counts grow over time)."""
        return Collected(
            self.posts.unique(["platform", "post_id"], keep="last", maintain_order=True),
            self.accounts.unique(["platform", "account_id"], keep="last", maintain_order=True),
            self.quarantine, self.calls)


class PlatformAdapter(Protocol):
    platform: str

    def search_posts(self, query: str, since: datetime, until: datetime,
                     limit: int) -> Collected:
        """Posts matching ``query`` created in [since, until), at most ``limit``."""

    def comments(self, post_ids: list[str], max_per_post: int) -> Collected:
        """Replies under each post (whole trees where the platform gives them)."""

    def profiles(self, account_ids: list[str]) -> Collected:
        """Full account records (the platform's batch endpoint where it has one)."""


@dataclass(frozen=True)
class CollectionSettings:
    """Seed 003's parameters (platforms.yaml there, Dagster Config here)."""

    queries: tuple[str, ...] = ()
    limit: int = 100
    min_engagement_score: float = 0.01
    max_posts_for_comment_harvest: int = 50
    max_comments_per_post: int = 100
    fetch_commenter_profiles: bool = True


def engagement_score() -> pl.Expr:
    """Seed 003: (likes + reposts×2 + replies×1.5) / 1000."""
    return ((pl.col("like_count").fill_null(0) + pl.col("repost_count").fill_null(0) * 2
             + pl.col("reply_count").fill_null(0) * 1.5) / 1000)


def top_performers(posts: pl.DataFrame, min_score: float, cap: int) -> pl.DataFrame:
    """Posts (not replies) at or above ``min_score``, best first, at most ``cap``."""
    return (posts.filter(pl.col("kind") != "reply")
            .with_columns(engagement_score().alias("engagement_score"))
            .filter(pl.col("engagement_score") >= min_score)
            .sort(["engagement_score", "post_id"], descending=[True, False])
            .head(cap))


def collect(adapter: PlatformAdapter, settings: CollectionSettings, since: datetime,
            until: datetime, log=None) -> tuple[Collected, pl.DataFrame]:
    """Seed 003's flow; returns what was collected and the top performers chosen."""
    found = Collected()
    for query in settings.queries:
        found = found + adapter.search_posts(query, since, until, settings.limit)
        if log:
            log.info(f"{adapter.platform}: {found.posts.height} posts after query {query!r}")
    found = found.deduplicated()
    top = top_performers(found.posts, settings.min_engagement_score,
                         settings.max_posts_for_comment_harvest)
    if top.height and settings.max_comments_per_post > 0:
        found = (found + adapter.comments(top["post_id"].to_list(),
                                          settings.max_comments_per_post)).deduplicated()
        if log:
            log.info(f"{adapter.platform}: comments of {top.height} top performers collected")
    if settings.fetch_commenter_profiles:
        known = set(found.accounts.filter(pl.col("created_at").is_not_null())["account_id"])
        missing = sorted(set(found.posts["author_id"].drop_nulls()) - known)
        if missing:
            found = (found + adapter.profiles(missing)).deduplicated()
    return found, top
