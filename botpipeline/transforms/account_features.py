"""The account feature frame: one row per account active in a partition, in DuckDB SQL.

Inputs are the core model (``core.posts``, ``core.accounts``) over a look-back window and,
when present, ``scores.toxicity``. Time-based features are measured at the partition's own
reference time (the end of its day), never the wall clock, so a re-run gives the same numbers.

Repetition is measured on normalized text (lower-cased; links, mentions, digits and
punctuation removed; spaces collapsed): the share of an account's posts whose normalized text
another of its posts also has. Templated bot posts ("Daily crypto signals #BTC 41,202 ...")
collapse to one normalized text; pairwise Jaccard over every pair of posts would cost O(n^2)
per account.
"""

from __future__ import annotations

# Letters of every script survive; links, mentions, digits and punctuation do not. One regex
# pass turns each run of them (spaces included) into a single space.
NORMALIZED = ("trim(regexp_replace(lower({col}), "
              "'(?:https?://\\S+|@\\w+|[^\\p{{L}}])+', ' ', 'g'))")

RAPID_COMMENT_SECONDS = 30  # seed 003: comments posted less than 30 s apart


# The behaviour columns of the frame, null for an account known only by its profile.
ACTIVITY_TYPES = {
    "posts_in_window": "BIGINT", "posts_24h": "BIGINT", "unique_active_hours": "BIGINT",
    "original_posts": "BIGINT", "comments": "BIGINT", "reposts": "BIGINT",
    "repetitive_share": "DOUBLE", "comment_repetitive_share": "DOUBLE",
    "engagement_per_post": "DOUBLE", "engagement_per_comment": "DOUBLE",
    "comment_post_ratio": "DOUBLE", "rapid_comment_share": "DOUBLE",
    "median_comment_gap_seconds": "DOUBLE", "comments_scored": "BIGINT",
    "inflammatory_share": "DOUBLE", "co_engagement_bin_size": "BIGINT",
}


def profile_only_sql(accounts: str, reference: str) -> str:
    """Feature-frame rows for accounts known only by a profile: no behaviour (nulls)."""
    nulls = ", ".join(f"NULL::{t} AS {c}" for c, t in ACTIVITY_TYPES.items())
    return f"SELECT *, {nulls} FROM ({profile_sql(accounts, reference)})"


def profile_sql(accounts: str, reference: str) -> str:
    """The feature frame's profile columns for one row per account of ``accounts`` (a
    relation in the core account columns), measured at ``reference`` (a TIMESTAMP
    expression). Shared by the daily frame and by labelled accounts known only by profile."""
    has_text = "nullif(trim(coalesce({}, '')), '') IS NOT NULL"
    return f"""
    SELECT platform, account_id, username, display_name, description,
           {reference} AS reference_time,
           created_at AS account_created_at,
           date_diff('second', created_at, {reference}) / 86400.0 AS account_age_days,
           followers_count, following_count,
           following_count / greatest(followers_count, 1) AS following_ratio,
           post_count, listed_count, like_count, verified, protected,
           {has_text.format("description")} AS has_description,
           default_profile_image,
           (CASE WHEN {has_text.format("description")} THEN 1 ELSE 0 END
            + CASE WHEN NOT coalesce(default_profile_image, true) THEN 1 ELSE 0 END
            + CASE WHEN {has_text.format("display_name")} THEN 1 ELSE 0 END) / 3.0
               AS profile_completeness
    FROM ({accounts})"""


def account_features_sql(date: str, lookback_days: int, toxicity: bool,
                         rapid_seconds: int = RAPID_COMMENT_SECONDS, bins: bool = False) -> str:
    """SELECT the feature frame for ``date`` (YYYY-MM-DD)."""
    ref = f"(DATE '{date}' + INTERVAL 1 DAY)"  # end of the partition's day
    window = (f"collection_date BETWEEN DATE '{date}' - INTERVAL {int(lookback_days)} DAY "
              f"AND DATE '{date}'")
    toxic = ("LEFT JOIN (SELECT post_id, any_value(is_inflammatory) AS is_inflammatory "
             f"FROM scores.toxicity WHERE {window} GROUP BY post_id) x USING (post_id)"
             if toxicity else "")
    toxic_col = "x.is_inflammatory" if toxicity else "NULL::BOOLEAN"
    # The Danish study's bin size: how many accounts liked (or reposted) exactly the same set
    # of posts as this one (the larger of the two actions).
    co_bins = (f"LEFT JOIN (SELECT actor AS account_id, max(bin_size) AS co_engagement_bin_size "
               f"FROM coordination.behaviour_bins WHERE collection_date = DATE '{date}' "
               f"GROUP BY actor) cb USING (account_id)" if bins else "")
    return f"""
    WITH posts AS (
        SELECT p.platform, p.author_id AS account_id, p.post_id, p.kind, p.created_at,
               p.collection_date = DATE '{date}' AS in_partition,
               coalesce(p.like_count, 0) + coalesce(p.repost_count, 0)
                   + coalesce(p.reply_count, 0) AS engagement,
               CASE WHEN p.kind <> 'repost' THEN {NORMALIZED.format(col="p.text")}
                    END AS norm_text,  -- reposts never count as repetition
               {toxic_col} AS is_inflammatory
        FROM (SELECT * FROM core.posts WHERE {window} AND created_at < {ref}) p {toxic}
        WHERE p.author_id IS NOT NULL),
    active AS (SELECT DISTINCT platform, account_id FROM posts WHERE in_partition),
    mine AS (SELECT p.* FROM posts p JOIN active USING (platform, account_id)),
    texts AS (  -- repeated normalized texts, separately for original posts and comments
        SELECT platform, account_id, kind = 'reply' AS is_comment, norm_text, count(*) AS n
        FROM mine WHERE norm_text <> ''
        GROUP BY ALL),
    repetition AS (
        SELECT platform, account_id,
               sum(n) FILTER (WHERE NOT is_comment AND n > 1)
                   / nullif(sum(n) FILTER (WHERE NOT is_comment), 0) AS repetitive_share,
               sum(n) FILTER (WHERE is_comment AND n > 1)
                   / nullif(sum(n) FILTER (WHERE is_comment), 0) AS comment_repetitive_share
        FROM texts GROUP BY ALL),
    gaps AS (
        SELECT platform, account_id,
               epoch(created_at - lag(created_at) OVER (
                   PARTITION BY platform, account_id ORDER BY created_at, post_id)) AS gap
        FROM mine WHERE kind = 'reply'),
    timing AS (
        SELECT platform, account_id,
               count(*) FILTER (WHERE gap < {int(rapid_seconds)})
                   / nullif(count(*) FILTER (WHERE gap IS NOT NULL), 0)
                   AS rapid_comment_share,
               median(gap) AS median_comment_gap_seconds
        FROM gaps GROUP BY ALL),
    activity AS (
        SELECT platform, account_id,
               count(*) AS posts_in_window,
               count(*) FILTER (WHERE in_partition) AS posts_24h,
               -- a 24-bit mask of the hours seen: cheaper than count(DISTINCT hour)
               bit_count(bit_or(1::INTEGER << hour(created_at)))::BIGINT
                   AS unique_active_hours,
               count(*) FILTER (WHERE kind IN ('post', 'quote')) AS original_posts,
               count(*) FILTER (WHERE kind = 'reply') AS comments,
               count(*) FILTER (WHERE kind = 'repost') AS reposts,
               avg(engagement) FILTER (WHERE kind IN ('post', 'quote'))
                   AS engagement_per_post,
               avg(engagement) FILTER (WHERE kind = 'reply') AS engagement_per_comment,
               count(*) FILTER (WHERE kind = 'reply' AND is_inflammatory IS NOT NULL)
                   AS comments_scored,
               count(*) FILTER (WHERE kind = 'reply' AND is_inflammatory) AS comments_inflammatory
        FROM mine GROUP BY ALL),
    profile AS (  -- newest snapshot up to the partition
        SELECT platform, account_id,
               arg_max(username, observed_at) AS username,
               arg_max(display_name, observed_at) AS display_name,
               arg_max(description, observed_at) AS description,
               arg_max(created_at, observed_at) AS created_at,
               arg_max(followers_count, observed_at) AS followers_count,
               arg_max(following_count, observed_at) AS following_count,
               arg_max(post_count, observed_at) AS post_count,
               arg_max(listed_count, observed_at) AS listed_count,
               arg_max(like_count, observed_at) AS like_count,
               arg_max(verified, observed_at) AS verified,
               arg_max(protected, observed_at) AS protected,
               arg_max(default_profile_image, observed_at) AS default_profile_image
        FROM core.accounts WHERE {window}
        GROUP BY ALL),
    -- every active account gets a profile row (all null when no snapshot was seen)
    pr AS ({profile_sql(
        "SELECT a.platform, a.account_id, p.* EXCLUDE (platform, account_id) FROM active a "
        "LEFT JOIN profile p ON p.platform = a.platform AND p.account_id = a.account_id",
        ref + "::TIMESTAMP")})
    SELECT a.platform, a.account_id, pr.* EXCLUDE (platform, account_id),
           ac.posts_in_window, ac.posts_24h, ac.unique_active_hours, ac.original_posts,
           ac.comments, ac.reposts,
           coalesce(r.repetitive_share, 0) AS repetitive_share,
           coalesce(r.comment_repetitive_share, 0) AS comment_repetitive_share,
           ac.engagement_per_post, ac.engagement_per_comment,
           ac.comments / greatest(ac.original_posts, 1) AS comment_post_ratio,
           coalesce(t.rapid_comment_share, 0) AS rapid_comment_share,
           t.median_comment_gap_seconds,
           ac.comments_scored,
           ac.comments_inflammatory / nullif(ac.comments_scored, 0) AS inflammatory_share,
           {"cb.co_engagement_bin_size" if bins else "NULL::BIGINT AS co_engagement_bin_size"}
    FROM active a
    JOIN activity ac USING (platform, account_id)
    JOIN pr USING (platform, account_id)
    LEFT JOIN repetition r USING (platform, account_id)
    LEFT JOIN timing t USING (platform, account_id)
    {co_bins}
    """
