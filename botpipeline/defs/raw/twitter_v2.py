"""raw/twitter_v2: Twitter API v2 pages and twarc2 lines collected on one date.

Reads ``incoming/twitter_v2/<YYYY-MM-DD>/`` (``.jsonl`` / ``.jsonl.gz``) and replaces the
date's partition of raw.v2_tweets (tweets in the core post model; ``included`` marks the
referenced tweets of ``includes.tweets``), raw.v2_users, raw.v2_api_errors (deleted or
suspended resources the API reported) and raw.v2_quarantine (unreadable lines).
"""

from datetime import date, datetime, time

import dagster as dg

from botpipeline.defs.inputs import keep_unless_cleared
from botpipeline.defs.partitions import daily_partitions
from botpipeline.defs.resources import Warehouse
from botpipeline.readers.twitter_v2.ingest import ingest_v2_day

SOURCE = "twitter_v2"


class TwitterV2Config(dg.Config):
    memory_limit: str = "1GB"
    """DuckDB memory for writing the day's tables (deduplication spills to disk beyond it)."""


@dg.asset(key=["raw", "twitter_v2"], group_name="raw", partitions_def=daily_partitions,
          pool="ingest", kinds={"duckdb", "parquet", "polars"}, description=__doc__)
def raw_twitter_v2(context: dg.AssetExecutionContext, config: TwitterV2Config,
                   warehouse: Warehouse) -> dg.MaterializeResult:
    key = context.partition_key
    day = warehouse.incoming(SOURCE) / key
    observed = datetime.combine(date.fromisoformat(key), time())
    keep_unless_cleared(context, warehouse.lake, day,
                        [("raw", "v2_tweets"), ("raw", "v2_users")], key)
    with warehouse.transaction(context) as lake:
        report = ingest_v2_day(day, date.fromisoformat(key), lake, observed_at=observed,
                               workers=warehouse.workers, memory_limit=config.memory_limit,
                               progress=context.log.info)
    warehouse.refresh_catalog(context.log)
    metadata = {
        "dagster/row_count": report.rows["v2_tweets"],
        "rows_by_table": {f"raw.{t}": n for t, n in report.rows.items()},
        "files": report.files,
        "lines_read": report.lines, "blank_lines": report.blank_lines,
        "lines_parsed": report.lines_parsed, "quarantined_lines": report.quarantined_lines,
        "included_tweets": report.included_tweets,
        "megabytes_read": round(report.bytes_read / 1e6, 1),
        "seconds": round(report.seconds, 2),
        "parse_cpu_seconds": round(report.parse_cpu_seconds, 2),
    }
    if report.damaged_files:
        metadata["damaged_files"] = report.damaged_files
    return dg.MaterializeResult(metadata=metadata)
