"""core/posts and core/accounts: every collected platform in one post and account model."""

import dagster as dg

from botpipeline.defs.metadata import markdown_preview, table_schema
from botpipeline.defs.partitions import daily_partitions
from botpipeline.defs.resources import Warehouse

from botpipeline.transforms.core_model import (COLLECTED_PLATFORMS, DAILY_ACCOUNTS_SQL,
                                               DAILY_POSTS_SQL, daily_sql)

RAW_DAILY = [dg.AssetKey(["raw", "tweets"]), dg.AssetKey(["raw", "twitter_v2"])] + \
    [dg.AssetKey(["raw", platform]) for platform in COLLECTED_PLATFORMS]


def _tables(warehouse: Warehouse) -> set[str]:
    return {ref.qualified for ref in warehouse.lake.tables()}


@dg.asset(key=["core", "posts"], deps=RAW_DAILY, group_name="core",
          partitions_def=daily_partitions, kinds={"duckdb", "parquet"},
          description="One row per post per collection date, every platform in one model.")
def core_posts(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    key = context.partition_key
    with warehouse.get_connection() as con:
        select = (f"SELECT DATE '{key}' AS collection_date, * FROM "
                  f"({daily_sql(DAILY_POSTS_SQL, key, _tables(warehouse), 'posts')})")
        rows = warehouse.lake.write("core", "posts", key, select, con=con, order_by="post_id")
        warehouse.lake.register_views(con)
        kinds = dict(con.execute(
            f"SELECT kind, count(*) FROM core.posts WHERE collection_date = DATE '{key}' "
            f"GROUP BY kind").fetchall())
        preview = con.sql(f"SELECT platform, post_id, author_username, kind, parent_id, "
                          f"created_at, text FROM core.posts WHERE collection_date = "
                          f"DATE '{key}' LIMIT 10").pl()
        schema = table_schema(con, "core.posts")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows, "dagster/table_name": "core.posts",
        "dagster/column_schema": schema, "posts_by_kind": kinds,
        "preview": markdown_preview(preview)})


@dg.asset(key=["core", "accounts"], deps=RAW_DAILY, group_name="core",
          partitions_def=daily_partitions, kinds={"duckdb", "parquet"},
          description="Newest snapshot of each account per collection date, every platform.")
def core_accounts(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    key = context.partition_key
    with warehouse.get_connection() as con:
        select = (f"SELECT DATE '{key}' AS collection_date, * FROM "
                  f"({daily_sql(DAILY_ACCOUNTS_SQL, key, _tables(warehouse), 'accounts')})")
        rows = warehouse.lake.write("core", "accounts", key, select, con=con,
                                    order_by="account_id")
    return dg.MaterializeResult(metadata={"dagster/row_count": rows,
                                          "dagster/table_name": "core.accounts"})
