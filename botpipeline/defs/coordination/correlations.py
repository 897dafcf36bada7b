"""coordination/account_correlations: the Danish election study's second half.

A feature frame per account active in the window (``coordination.account_frame``): exact and
near-identical bin sizes for likes and reposts, coordinated-group membership and size, the bot
score, its signals and the rule filter's verdict, account age, followers, following, posts,
tweets deleted (``raw.deletions``) and, when CSVs of them are dropped under
``incoming/botometer/`` (botometer-python v4 exports or BotometerLite), Botometer scores. Then
Pearson and Spearman correlation matrices of it (``coordination.correlations``), with a heatmap,
histograms and scatter plots in the metadata and under ``plots/``.
"""

import dagster as dg
import polars as pl

from botpipeline.defs.conversations.reconstruction import has_table
from botpipeline.defs.metadata import markdown_preview, png_metadata
from botpipeline.defs.partitions import daily_partitions, lookback_sql
from botpipeline.defs.resources import Warehouse
from botpipeline.readers.botometer import SCORES_SCHEMA, merge_botometer, read_botometer_csv
from botpipeline.transforms.bot_signals import SIGNALS
from botpipeline.transforms.correlation_plots import (correlation_heatmap, feature_histograms,
                                                      scatter_matrix_pairs)
from botpipeline.transforms.correlations import correlation_matrices

DEPS = [dg.AssetKey(["coordination", "behaviour_bins"]), dg.AssetKey(["coordination", "groups"]),
        dg.AssetKey(["scores", "bot_scores"]), dg.AssetKey(["scores", "rule_filter"]),
        dg.AssetKey(["features", "account_features"])]


def frame_sql(key: str, botometer: bool, deletions: bool = True) -> str:
    """One row per account scored on the date, joined with everything the study correlated."""
    signals = ", ".join(f"s.{name}" for name in SIGNALS)
    deleted = (f"SELECT user_id, count(*) AS tweets_deleted FROM raw.deletions "
               f"WHERE {lookback_sql(key, 6)} GROUP BY user_id" if deletions else
               "SELECT NULL::VARCHAR AS user_id, 0 AS tweets_deleted WHERE false")
    bot = ("LEFT JOIN _botometer m ON m.account_id = f.account_id "
           "OR (m.account_id IS NULL AND lower(m.username) = lower(f.username))"
           if botometer else "")
    bot_cols = ("m.botometer_overall, m.botometer_astroturf, m.botometer_fake_follower, "
                "m.botometer_spammer, m.botometer_lite," if botometer else "")
    return f"""
    WITH bins AS (
        SELECT actor,
               max(bin_size) FILTER (WHERE action = 'like') AS like_bin_size,
               max(near_bin_size) FILTER (WHERE action = 'like') AS like_near_bin_size,
               max(bin_size) FILTER (WHERE action = 'repost') AS repost_bin_size,
               max(near_bin_size) FILTER (WHERE action = 'repost') AS repost_near_bin_size,
               max(set_size) FILTER (WHERE action = 'like') AS liked_posts
        FROM coordination.behaviour_bins WHERE collection_date = DATE '{key}' GROUP BY actor),
    groups AS (
        SELECT actor, any_value(group_size) AS coordinated_group_size
        FROM coordination.groups WHERE collection_date = DATE '{key}' GROUP BY actor),
    deleted AS ({deleted})
    SELECT f.platform, f.account_id, f.username,
           coalesce(b.like_bin_size, 0) AS like_bin_size,
           coalesce(b.like_near_bin_size, 0) AS like_near_bin_size,
           coalesce(b.repost_bin_size, 0) AS repost_bin_size,
           coalesce(b.repost_near_bin_size, 0) AS repost_near_bin_size,
           coalesce(b.liked_posts, 0) AS liked_posts,
           g.actor IS NOT NULL AS in_coordinated_group,
           coalesce(g.coordinated_group_size, 0) AS coordinated_group_size,
           s.total_score AS bot_score, {signals}, r.is_likely_bot AS rule_filter_bot,
           {bot_cols}
           f.account_age_days, f.followers_count, f.following_count, f.post_count,
           f.listed_count, f.posts_24h, coalesce(d.tweets_deleted, 0) AS tweets_deleted
    FROM features.account_features f
    JOIN scores.bot_scores s USING (collection_date, platform, account_id)
    LEFT JOIN scores.rule_filter r USING (collection_date, platform, account_id)
    LEFT JOIN bins b ON b.actor = f.account_id
    LEFT JOIN groups g ON g.actor = f.account_id
    LEFT JOIN deleted d ON d.user_id = f.account_id
    {bot}
    WHERE f.collection_date = DATE '{key}'"""


@dg.asset(key=["coordination", "account_correlations"], group_name="coordination", deps=DEPS,
          partitions_def=daily_partitions, kinds={"duckdb", "parquet", "scipy"},
          description=__doc__)
def account_correlations(context: dg.AssetExecutionContext,
                         warehouse: Warehouse) -> dg.MaterializeResult:
    key = context.partition_key
    files = sorted(warehouse.incoming("botometer").glob("*.csv"))
    reads = [read_botometer_csv(path) for path in files]
    scores = merge_botometer([s for s, _ in reads]) if reads else pl.DataFrame(
        schema=SCORES_SCHEMA)
    quarantined = sum(q.height for _, q in reads)
    with warehouse.get_connection() as con:
        con.register("_botometer", scores)
        frame = con.sql(frame_sql(key, botometer=scores.height > 0,
                                  deletions=has_table(con, "raw", "deletions"))).pl()
    stamp = pl.lit(key).str.to_date().alias("collection_date")
    numeric = [c for c, t in frame.schema.items()
               if (t.is_numeric() or t == pl.Boolean) and c not in ("platform",)]
    corr = correlation_matrices(frame, numeric)
    with warehouse.transaction(context) as lake:
        rows = lake.write("coordination", "account_frame", key,
                          frame.with_columns(stamp).sort("platform", "account_id"))
        lake.write("coordination", "correlations", key, corr.with_columns(stamp))
    warehouse.refresh_catalog(context.log)
    plots = warehouse.outputs / "plots"
    headline = ["like_bin_size", "like_near_bin_size", "repost_bin_size",
                "coordinated_group_size", "bot_score", "account_age_days", "followers_count",
                "tweets_deleted"] + (["botometer_overall", "botometer_lite"]
                                     if scores.height else [])
    strongest = (corr.filter(pl.col("r").is_not_null()
                             & pl.col("feature_a").is_in(headline)
                             & pl.col("feature_b").is_in(headline))
                 .sort(pl.col("r").abs(), descending=True).head(12))
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows, "botometer_files": len(files),
        "botometer_accounts": scores.height, "botometer_rows_quarantined": quarantined,
        "strongest_correlations": markdown_preview(strongest, rows=12),
        "spearman_heatmap": png_metadata(
            correlation_heatmap(corr.filter(pl.col("feature_a").is_in(headline)
                                            & pl.col("feature_b").is_in(headline)),
                                "spearman", f"Spearman correlations, {key}"),
            plots / f"correlations_spearman_{key}.png"),
        "histograms": png_metadata(feature_histograms(frame, headline, f"Features, {key}"),
                                   plots / f"account_features_{key}.png"),
        "scatter": png_metadata(scatter_matrix_pairs(
            frame, [("like_bin_size", "bot_score"), ("coordinated_group_size", "bot_score"),
                    ("account_age_days", "like_bin_size"), ("tweets_deleted", "bot_score")],
            f"Bin size, groups and bot score, {key}"), plots / f"scatter_{key}.png"),
    })
