"""Twitter API v2 tweets and users (API pages, twarc2 output) in the core model."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl

from botpipeline.transforms.core_model import ACCOUNT_COLUMNS, POST_COLUMNS, conform

TWEET_SCHEMA = {
    "id": pl.String, "author_id": pl.String, "conversation_id": pl.String,
    "created_at": pl.String, "text": pl.String, "lang": pl.String,
    "in_reply_to_user_id": pl.String,
    "referenced_tweets": pl.List(pl.Struct({"type": pl.String, "id": pl.String})),
    "public_metrics": pl.Struct({"retweet_count": pl.Int64, "reply_count": pl.Int64,
                                 "like_count": pl.Int64, "quote_count": pl.Int64}),
}
USER_SCHEMA = {
    "id": pl.String, "username": pl.String, "name": pl.String, "description": pl.String,
    "created_at": pl.String, "verified": pl.Boolean, "protected": pl.Boolean,
    "profile_image_url": pl.String,
    "public_metrics": pl.Struct({"followers_count": pl.Int64, "following_count": pl.Int64,
                                 "tweet_count": pl.Int64, "listed_count": pl.Int64}),
}


def _iso(expr: pl.Expr) -> pl.Expr:
    """'2021-04-08T19:34:16.000Z' -> naive UTC datetime."""
    return (expr.str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", strict=False))


def _referenced(kind: str) -> pl.Expr:
    return (pl.col("referenced_tweets").list.eval(
        pl.element().filter(pl.element().struct.field("type") == kind)
        .struct.field("id")).list.first())


def v2_posts(tweets: list[dict], users: list[dict] | None = None,
             source: str = "twitter_v2") -> pl.DataFrame:
    """Tweet objects in the core post model; ``author_username`` from the first of ``users``
    with the author's id."""
    usernames = pl.DataFrame(users or [], schema=USER_SCHEMA, strict=False).select(
        pl.col("id").alias("author_id"), pl.col("username").alias("author_username")
    ).unique("author_id", keep="first")
    frame = pl.DataFrame(tweets, schema=TWEET_SCHEMA, strict=False)
    return posts_frame(frame.join(usernames, on="author_id", how="left",
                                  maintain_order="left"), source)


def posts_frame(frame: pl.DataFrame, source: str = "twitter_v2") -> pl.DataFrame:
    """A frame of tweets (``TWEET_SCHEMA``'s columns, ``author_username`` if known) in the core
    post model. Row order is kept."""
    metrics = pl.col("public_metrics")
    frame = frame.with_columns(
        _referenced("replied_to").alias("parent_id"),
        _referenced("retweeted").alias("reposted_id"),
        _referenced("quoted").alias("quoted_id"),
    ).with_columns(
        pl.lit("twitter").alias("platform"), pl.col("id").alias("post_id"),
        pl.when(pl.col("reposted_id").is_not_null()).then(pl.lit("repost"))
          .when(pl.col("parent_id").is_not_null()).then(pl.lit("reply"))
          .when(pl.col("quoted_id").is_not_null()).then(pl.lit("quote"))
          .otherwise(pl.lit("post")).alias("kind"),
        _iso(pl.col("created_at")).alias("created_at"),
        metrics.struct.field("like_count").alias("like_count"),
        metrics.struct.field("retweet_count").alias("repost_count"),
        metrics.struct.field("reply_count").alias("reply_count"),
        metrics.struct.field("quote_count").alias("quote_count"),
        pl.lit(source).alias("source"),
    )
    return conform(frame, POST_COLUMNS)


def epoch_ms_to_iso(user: dict) -> dict:
    """Some exports (TwiBot-22) write ``created_at`` as epoch milliseconds."""
    value = user.get("created_at")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(value / 1000, tz=timezone.utc)
        return {**user, "created_at": moment.strftime("%Y-%m-%dT%H:%M:%S.")
                + f"{moment.microsecond // 1000:03d}Z"}
    return user


def v2_accounts(users: list[dict], observed_at, source: str = "twitter_v2") -> pl.DataFrame:
    frame = pl.DataFrame([epoch_ms_to_iso(u) for u in users], schema=USER_SCHEMA,
                         strict=False)
    return accounts_frame(frame, observed_at, source)


def accounts_frame(frame: pl.DataFrame, observed_at, source: str = "twitter_v2"
                   ) -> pl.DataFrame:
    """A frame of user objects (``USER_SCHEMA``'s columns, ``created_at`` an ISO string) in
    the core account model. Row order is kept."""
    metrics = pl.col("public_metrics")
    frame = frame.with_columns(
        pl.lit("twitter").alias("platform"), pl.col("id").alias("account_id"),
        pl.col("name").alias("display_name"), _iso(pl.col("created_at")).alias("created_at"),
        metrics.struct.field("followers_count").alias("followers_count"),
        metrics.struct.field("following_count").alias("following_count"),
        metrics.struct.field("tweet_count").alias("post_count"),
        metrics.struct.field("listed_count").alias("listed_count"),
        (pl.col("profile_image_url").str.contains("default_profile_images")
         ).alias("default_profile_image"),
        pl.lit(observed_at).cast(pl.Datetime("us")).alias("observed_at"),
        pl.lit(source).alias("source"),
    )
    return conform(frame, ACCOUNT_COLUMNS)
