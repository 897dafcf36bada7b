"""Model features: profile features in the spirit of BotometerLite (Yang et al., AAAI 2020)
plus the activity features of the daily feature frame.

Lifetime counts and their rates per day of account age, follower/friend ratios, screen-name
and name lengths and digit counts, screen-name randomness (character entropy, the share of
the name in letter/digit switches, the length of a trailing digit run), word and non-ASCII
counts of the name and description (how much of a profile a person filled in), description
length and profile flags. A field the source does not have (v2 users carry no favourites
count) stays null, never 0: the model treats missing as missing. Accounts known only by a
profile (a labelled list's profile file) have no activity: those columns are null for them.
"""

from __future__ import annotations

import polars as pl

COUNTS = ("post_count", "followers_count", "following_count", "like_count", "listed_count")
FEATURES = (
    "age_days", *COUNTS, *(f"{c}_per_day" for c in COUNTS),
    "followers_per_following", "following_per_followers", "listed_per_followers",
    "username_length", "username_digits", "username_entropy", "username_switches",
    "username_trailing_digits", "display_name_length", "display_name_digits",
    "display_name_words", "display_name_non_ascii", "description_length",
    "description_words", "description_non_ascii",
    "default_profile_image", "verified", "protected",
)


# Behaviour over the look-back window, from features.account_features.
ACTIVITY = (
    "posts_24h", "posts_in_window", "unique_active_hours", "repetitive_share",
    "comment_repetitive_share", "engagement_per_post", "engagement_per_comment",
    "comment_post_ratio", "rapid_comment_share", "median_comment_gap_seconds",
    "inflammatory_share", "co_engagement_bin_size",
)
MODEL_FEATURES = FEATURES + ACTIVITY


def _entropy(text: pl.Expr) -> pl.Expr:
    """Shannon entropy (bits) of the characters of each string.

    ``value_counts`` lists the characters in hash order, which changes from process to
    process; the counts are sorted before summing so the float sum, and so every bit of the
    feature, is the same on every run."""
    counts = text.str.to_lowercase().str.split("").list.eval(
        pl.element().value_counts().struct.field("count").cast(pl.Float64).sort())
    share = pl.element() / pl.element().sum()
    return counts.list.eval(-share * share.log(2)).list.sum().fill_null(0.0)


def _words(text: pl.Expr) -> pl.Expr:
    return text.str.count_matches(r"\S+").cast(pl.Float64)


def _non_ascii(text: pl.Expr) -> pl.Expr:
    """Characters outside ASCII: emoji, symbols and non-Latin scripts."""
    return text.str.count_matches(r"[^\x00-\x7F]").cast(pl.Float64)


def profile_features(accounts: pl.DataFrame, as_of: pl.Expr | None = None) -> pl.DataFrame:
    """``platform, account_id`` plus FEATURES (Float64, nulls kept) for each account.

    ``as_of``: when the profile was seen (default ``observed_at``, else the newest account
    creation in the frame, so ages stay positive and comparable within a snapshot)."""
    seen = as_of if as_of is not None else pl.coalesce(
        pl.col("observed_at"), pl.col("created_at").max())
    age = ((seen - pl.col("created_at")).dt.total_seconds() / 86400).clip(lower_bound=1.0)
    name = pl.col("username").fill_null("")
    display = pl.col("display_name").fill_null("")
    description = pl.col("description").fill_null("")
    frame = accounts.with_columns(age.alias("age_days"))
    rates = [(pl.col(c).cast(pl.Float64) / pl.col("age_days")).alias(f"{c}_per_day")
             for c in COUNTS]
    followers, following = (pl.col("followers_count").cast(pl.Float64),
                            pl.col("following_count").cast(pl.Float64))
    return frame.select(
        "platform", "account_id", "age_days",
        *(pl.col(c).cast(pl.Float64) for c in COUNTS), *rates,
        (followers / (following + 1)).alias("followers_per_following"),
        (following / (followers + 1)).alias("following_per_followers"),
        (pl.col("listed_count").cast(pl.Float64) / (followers + 1)).alias(
            "listed_per_followers"),
        name.str.len_chars().cast(pl.Float64).alias("username_length"),
        name.str.count_matches(r"\d").cast(pl.Float64).alias("username_digits"),
        _entropy(name).alias("username_entropy"),
        (name.str.count_matches(r"[A-Za-z]\d|\d[A-Za-z]").cast(pl.Float64)
         / name.str.len_chars().clip(lower_bound=1)).alias("username_switches"),
        # A handle ending in a run of digits is what sign-up suggests for a taken name.
        name.str.extract(r"(\d+)$").str.len_chars().fill_null(0).cast(pl.Float64)
        .alias("username_trailing_digits"),
        display.str.len_chars().cast(pl.Float64).alias("display_name_length"),
        display.str.count_matches(r"\d").cast(pl.Float64).alias("display_name_digits"),
        _words(display).alias("display_name_words"),
        _non_ascii(display).alias("display_name_non_ascii"),
        description.str.len_chars().cast(pl.Float64).alias("description_length"),
        _words(description).alias("description_words"),
        _non_ascii(description).alias("description_non_ascii"),
        *(pl.col(c).cast(pl.Float64) for c in ("default_profile_image", "verified",
                                                "protected")),
    )


def model_features(frame: pl.DataFrame) -> pl.DataFrame:
    """``platform, account_id`` plus MODEL_FEATURES for rows of the feature frame
    (features.account_features, or transforms.account_features.profile_sql rows for accounts
    known only by profile, whose activity columns are absent or null)."""
    accounts = frame.select(
        "platform", "account_id", "username", "display_name", "description",
        pl.col("account_created_at").alias("created_at"),
        *(pl.col(c) for c in COUNTS), "verified", "protected", "default_profile_image",
        pl.col("reference_time").alias("observed_at"))
    activity = frame.select(
        (pl.col(c) if c in frame.columns else pl.lit(None)).cast(pl.Float64).alias(c)
        for c in ACTIVITY)
    return profile_features(accounts).hstack(activity)
