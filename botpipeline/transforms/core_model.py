"""The normalized post and account model (schema ``core``) and each source's mapping onto it.

Every platform lands in the same columns, so conversations, features, scores and coordination
are written once. ``kind`` is one of post, reply, repost, quote. ``parent_id`` is the post
replied to; ``reposted_id`` / ``quoted_id`` the post reposted or quoted. ``conversation_id`` is
what the source says the thread is (v2 ``conversation_id``, OASIS ``thread_id``); null when the
source does not say (the v1.1 stream).
"""

from __future__ import annotations

import polars as pl

POST_COLUMNS: dict[str, pl.DataType] = {
    "platform": pl.String, "post_id": pl.String, "author_id": pl.String,
    "author_username": pl.String, "kind": pl.String, "parent_id": pl.String,
    "reposted_id": pl.String, "quoted_id": pl.String, "conversation_id": pl.String,
    "created_at": pl.Datetime("us"), "text": pl.String, "lang": pl.String,
    "like_count": pl.Int64, "repost_count": pl.Int64, "reply_count": pl.Int64,
    "quote_count": pl.Int64, "source": pl.String, "source_step": pl.Int64,
}

ACCOUNT_COLUMNS: dict[str, pl.DataType] = {
    "platform": pl.String, "account_id": pl.String, "username": pl.String,
    "display_name": pl.String, "description": pl.String, "created_at": pl.Datetime("us"),
    "followers_count": pl.Int64, "following_count": pl.Int64, "post_count": pl.Int64,
    "listed_count": pl.Int64, "like_count": pl.Int64, "verified": pl.Boolean,
    "protected": pl.Boolean, "default_profile_image": pl.Boolean, "observed_at": pl.Datetime("us"),
    "source": pl.String,
}


def conform(frame: pl.DataFrame, columns: dict[str, pl.DataType]) -> pl.DataFrame:
    """Select the model's columns in order, with the model's types; absent ones are null."""
    return frame.select(
        (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype in columns.items())


def _sql_columns(columns: dict[str, pl.DataType]) -> str:
    return ", ".join(columns)


# --------------------------------------------------------------------- Twitter Stream Grab
# Engagement counts: the stream's top-level counts are always 0; the embedded copies of
# retweeted/quoted tweets (raw.referenced_tweets) carry real ones, so a post seen embedded
# takes the largest count observed that day.
STREAM_POSTS_SQL = """
    SELECT 'twitter' AS platform, t.tweet_id AS post_id, t.user_id AS author_id,
           t.screen_name AS author_username,
           CASE t.kind WHEN 'retweet' THEN 'repost' ELSE t.kind END AS kind,
           t.in_reply_to_tweet_id AS parent_id, t.retweeted_tweet_id AS reposted_id,
           t.quoted_tweet_id AS quoted_id, NULL::VARCHAR AS conversation_id,
           t.created_at, t.text, t.lang,
           greatest(t.favorite_count, r.favorite_count) AS like_count,
           greatest(t.retweet_count, r.retweet_count) AS repost_count,
           greatest(t.reply_count, r.reply_count) AS reply_count,
           greatest(t.quote_count, r.quote_count) AS quote_count,
           'twitterstream' AS source, NULL::BIGINT AS source_step
    FROM raw.tweets t
    LEFT JOIN raw.referenced_tweets r
      ON r.tweet_id = t.tweet_id AND r.collection_date = t.collection_date
    WHERE t.collection_date = DATE '{date}'
"""

# Tweets collected through the v2 API on the same date (raw.v2_tweets is already in the core
# columns). A post seen both in the stream and through the API is kept once, API first: its
# counts are real.
DAILY_POSTS_SQL = """
    SELECT * EXCLUDE (_rank, _priority) FROM (
        SELECT *, row_number() OVER (PARTITION BY platform, post_id
                                     ORDER BY _priority, source) AS _rank
        FROM (SELECT * EXCLUDE (collection_date, included, source_file), 0 AS _priority
              FROM raw.v2_tweets WHERE collection_date = DATE '{date}' AND NOT included
              UNION ALL BY NAME
              SELECT *, 1 AS _priority FROM (""" + STREAM_POSTS_SQL + """)
              UNION ALL BY NAME
              SELECT * EXCLUDE (collection_date, included, source_file), 2 AS _priority
              FROM raw.v2_tweets WHERE collection_date = DATE '{date}' AND included))
    WHERE _rank = 1
"""

STREAM_ACCOUNTS_SQL = """
    SELECT 'twitter' AS platform, user_id AS account_id, screen_name AS username,
           name AS display_name, description, account_created_at AS created_at,
           followers_count, following_count, tweet_count AS post_count, listed_count,
           favourites_count AS like_count, verified, protected, default_profile_image,
           observed_at, 'twitterstream' AS source
    FROM raw.account_snapshots WHERE collection_date = DATE '{date}'
"""


# ------------------------------------------------------------------------------ OASIS
def oasis_posts(posts: pl.DataFrame, personas: pl.DataFrame) -> pl.DataFrame:
    """OASIS dataset rows as core posts.

    A root whose ``thread_id`` names another post reposts it (empty text) or quotes it: that
    is how OASIS writes reposts, so its target becomes ``reposted_id`` / ``quoted_id`` and it
    starts its own conversation (OASIS's replies to it carry its id as their ``thread_id``).
    The author's username is the matched persona row's, else the dataset's own per-post one.
    """
    usernames = personas.select(pl.col("user_id"), pl.col("username").alias("_persona_username"))
    refers = pl.col("parent_id").is_null() & (pl.col("thread_id") != pl.col("post_id"))
    empty = pl.col("text").fill_null("").str.strip_chars() == ""
    kind = (pl.when(pl.col("parent_id").is_not_null()).then(pl.lit("reply"))
            .when(refers & empty).then(pl.lit("repost"))
            .when(refers).then(pl.lit("quote"))
            .otherwise(pl.lit("post")))
    own = pl.col("username") if "username" in posts.columns else pl.lit(None, pl.String)
    frame = posts.join(usernames, on="user_id", how="left").with_columns(
        pl.lit("oasis").alias("platform"),
        pl.col("user_id").alias("author_id"),
        pl.coalesce(pl.col("_persona_username"), own).alias("author_username"),
        kind.alias("kind"),
        pl.when(refers & empty).then(pl.col("thread_id")).alias("reposted_id"),
        pl.when(refers & ~empty).then(pl.col("thread_id")).alias("quoted_id"),
        pl.when(refers).then(pl.col("post_id")).otherwise(pl.col("thread_id"))
        .alias("conversation_id"),
        pl.lit("en").alias("lang"),
        pl.lit("oasis").alias("source"),
        pl.col("step").alias("source_step"),
    )
    return conform(frame, POST_COLUMNS)


def oasis_accounts(personas: pl.DataFrame, observed_at, follows: pl.DataFrame | None = None,
                   posts: pl.DataFrame | None = None) -> pl.DataFrame:
    """One account per user of the run. Follower / following counts come from the run's
    follow edges (distinct, no self-follows) and ``post_count`` from its posts when given;
    OASIS says nothing about account age, likes or verification (left null)."""
    frame = personas.with_columns(
        pl.lit("oasis").alias("platform"), pl.col("user_id").alias("account_id"),
        pl.lit(observed_at).alias("observed_at"), pl.lit("oasis").alias("source"))
    if follows is not None:
        edges = follows.filter(pl.col("follower_id") != pl.col("followee_id")).unique()
        frame = frame.drop("followers_count", "following_count", strict=False).join(
            edges.group_by(pl.col("followee_id").alias("account_id"))
            .agg(pl.len().cast(pl.Int64).alias("followers_count")),
            on="account_id", how="left").join(
            edges.group_by(pl.col("follower_id").alias("account_id"))
            .agg(pl.len().cast(pl.Int64).alias("following_count")),
            on="account_id", how="left").with_columns(
            pl.col("followers_count").fill_null(0), pl.col("following_count").fill_null(0))
    if posts is not None:
        frame = frame.drop("post_count", strict=False).join(
            posts.group_by(pl.col("user_id").alias("account_id"))
            .agg(pl.len().cast(pl.Int64).alias("post_count")),
            on="account_id", how="left").with_columns(pl.col("post_count").fill_null(0))
    return conform(frame, ACCOUNT_COLUMNS)

DAILY_ACCOUNTS_SQL = """
    SELECT * EXCLUDE (_rank, _priority) FROM (
        SELECT *, row_number() OVER (PARTITION BY platform, account_id
                                     ORDER BY _priority, observed_at DESC) AS _rank
        FROM (SELECT * EXCLUDE (collection_date, source_file), 0 AS _priority
              FROM raw.v2_users WHERE collection_date = DATE '{date}'
              UNION ALL BY NAME
              SELECT *, 1 AS _priority FROM (""" + STREAM_ACCOUNTS_SQL + """)))
    WHERE _rank = 1
"""


# ---------------------------------------------------------------- platform collectors
# Collectors (clients/platforms) write raw.<platform>_posts / _accounts already in the core
# columns; they join the day's posts and accounts after the Twitter sources. The recorded
# Bluesky firehose (raw/bluesky_jetstream) lands the same way.
COLLECTED_PLATFORMS = ("bluesky", "hackernews", "sharkey", "bluesky_jetstream")


def daily_sql(template: str, date: str, tables: set[str], kind: str) -> str:
    """The day's posts or accounts (``kind``) from the sources whose raw tables exist.

    ``template`` is DAILY_POSTS_SQL / DAILY_ACCOUNTS_SQL (Twitter); with no Twitter table the
    Twitter part is left out (a partial set still fails loudly); each collected platform is
    appended."""
    parts = []
    twitter = {"posts": {"raw.v2_tweets", "raw.tweets", "raw.referenced_tweets"},
               "accounts": {"raw.v2_users", "raw.account_snapshots"}}[kind]
    if twitter & tables:
        parts.append(f"SELECT * FROM ({template.format(date=date)})")
    for platform in COLLECTED_PLATFORMS:
        table = f"raw.{platform}_{kind}"
        if table in tables:
            parts.append(f"SELECT * EXCLUDE (collection_date) FROM {table} "
                         f"WHERE collection_date = DATE '{date}'")
    if not parts:
        columns = POST_COLUMNS if kind == "posts" else ACCOUNT_COLUMNS
        return "SELECT " + ", ".join(f"NULL::{_duck(t)} AS {c}" for c, t in columns.items()) \
            + " WHERE false"
    return " UNION ALL BY NAME ".join(parts)


def _duck(dtype: pl.DataType) -> str:
    return {pl.String: "VARCHAR", pl.Int64: "BIGINT", pl.Boolean: "BOOLEAN"}.get(
        dtype, "TIMESTAMP")
