"""features/account_features: one row per account active on a collection date.

Profile (age at the partition's reference time, followers, following, ratio, counts,
verified, profile completeness) and behaviour over a look-back window (posts in 24 h, unique
active hours, repetitive content, engagement per post and per comment, comment counts and
gaps, comment/post ratio, inflammatory share when toxicity is scored, and the size of the
account's identical-behaviour bin when coordination/behaviour_bins ran for the date). Computed in DuckDB SQL
over the core model; see transforms/account_features.py.
"""

import dagster as dg

from botpipeline.defs.conversations.reconstruction import has_table
from botpipeline.defs.metadata import markdown_preview, table_schema
from botpipeline.defs.partitions import checked_lookback, daily_partitions, lookback_mapping
from botpipeline.defs.resources import Warehouse
from botpipeline.transforms.account_features import account_features_sql


LOOKBACK_DAYS = 7  # the lineage's window over core/posts; lookback_days may not exceed it


class FeatureConfig(dg.Config):
    lookback_days: int = LOOKBACK_DAYS
    """Earlier daily partitions that count as the account's recent behaviour (at most 7)."""
    rapid_comment_seconds: int = 30


@dg.asset(key=["features", "account_features"], group_name="features",
          deps=[dg.AssetDep(dg.AssetKey(["core", "posts"]),
                            partition_mapping=lookback_mapping(LOOKBACK_DAYS)),
                dg.AssetKey(["core", "accounts"]), dg.AssetKey(["scores", "toxicity"]),
                dg.AssetKey(["coordination", "behaviour_bins"])],
          partitions_def=daily_partitions, kinds={"duckdb", "parquet"}, description=__doc__)
def account_features(context: dg.AssetExecutionContext, config: FeatureConfig,
                     warehouse: Warehouse) -> dg.MaterializeResult:
    key = context.partition_key
    with warehouse.get_connection() as con:
        sql = account_features_sql(key, checked_lookback(config.lookback_days, LOOKBACK_DAYS,
                                                         "features/account_features"),
                                   toxicity=has_table(con, "scores", "toxicity"),
                                   rapid_seconds=config.rapid_comment_seconds,
                                   bins=warehouse.lake.has_partition(
                                       "coordination", "behaviour_bins", key))
        rows = warehouse.lake.write("features", "account_features", key,
                                    f"SELECT DATE '{key}' AS collection_date, * FROM ({sql})",
                                    con=con, order_by="platform, account_id")
        warehouse.lake.register_views(con)
        where = f"collection_date = DATE '{key}'"
        preview = con.sql(f"SELECT account_id, username, account_age_days, followers_count, "
                          f"posts_24h, unique_active_hours, repetitive_share, comments "
                          f"FROM features.account_features WHERE {where} "
                          f"ORDER BY posts_24h DESC, account_id LIMIT 10").pl()
        schema = table_schema(con, "features.account_features")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows, "dagster/column_schema": schema,
        "lookback_days": config.lookback_days, "preview": markdown_preview(preview)})
