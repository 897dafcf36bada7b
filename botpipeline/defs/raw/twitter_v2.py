"""raw/twitter_v2: Twitter API v2 pages and twarc2 lines collected on one date.

Reads ``incoming/twitter_v2/<YYYY-MM-DD>/`` (``.jsonl`` / ``.jsonl.gz``) and replaces the
date's partition of raw.v2_tweets (tweets in the core post model; ``included`` marks the
referenced tweets of ``includes.tweets``), raw.v2_users, raw.v2_api_errors (deleted or
suspended resources the API reported) and raw.v2_quarantine (unreadable lines).
"""

from datetime import date, datetime, time

import dagster as dg
import polars as pl

from botpipeline.defs.inputs import keep_unless_cleared
from botpipeline.defs.partitions import daily_partitions
from botpipeline.defs.resources import Warehouse
from botpipeline.readers.twitter_v2 import read_day

SOURCE = "twitter_v2"


@dg.asset(key=["raw", "twitter_v2"], group_name="raw", partitions_def=daily_partitions,
          kinds={"duckdb", "parquet", "polars"}, description=__doc__)
def raw_twitter_v2(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    key = context.partition_key
    day = warehouse.incoming(SOURCE) / key
    observed = datetime.combine(date.fromisoformat(key), time())
    keep_unless_cleared(context, warehouse.lake, day,
                        [("raw", "v2_tweets"), ("raw", "v2_users")], key)
    batch = read_day(day, observed) if day.is_dir() else read_day(day / "-none-", observed)
    stamp = pl.lit(date.fromisoformat(key)).alias("collection_date")
    with warehouse.transaction(context) as lake:
        rows = {
            "v2_tweets": lake.write("raw", "v2_tweets", key, batch.posts.with_columns(stamp)
                                    .unique(["post_id", "included"], keep="first", maintain_order=True),
                                    order_by="post_id"),
            "v2_users": lake.write("raw", "v2_users", key, batch.users.with_columns(stamp)
                                   .unique("account_id", keep="last", maintain_order=True),
                                   order_by="account_id"),
            "v2_api_errors": lake.write("raw", "v2_api_errors", key,
                                        batch.errors.with_columns(stamp)),
            "v2_quarantine": lake.write("raw", "v2_quarantine", key,
                                        batch.quarantine.with_columns(stamp)),
        }
    warehouse.refresh_catalog(context.log)
    accounted = batch.lines - batch.quarantine.filter(pl.col("line_number").is_not_null()).height
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows["v2_tweets"],
        "rows_by_table": {f"raw.{t}": n for t, n in rows.items()},
        "lines_read": batch.lines, "blank_lines": batch.blank_lines,
        "lines_parsed": accounted, "quarantined_lines": batch.quarantine.height,
        "included_tweets": int(batch.posts["included"].sum() or 0),
    })
