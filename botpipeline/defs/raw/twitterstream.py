"""raw/tweets: one collection date of Twitter Stream Grab files into the ``raw`` tables.

One materialization reads the date's folder once and replaces that date's partition of the
whole family: raw.tweets, raw.deletions, raw.account_snapshots, raw.referenced_tweets,
raw.quarantine, raw.stream_message_counts and raw.ingest_members.
"""


from datetime import date

import dagster as dg

from botpipeline.defs.inputs import keep_unless_cleared
from botpipeline.defs.metadata import markdown_preview, png_metadata, table_schema
from botpipeline.defs.partitions import daily_partitions
from botpipeline.defs.resources import Warehouse
from botpipeline.plots import tweets_per_hour
from botpipeline.readers.twitterstream.ingest import TABLES, ingest_day

SOURCE = "twitterstream"
CHECK_UNIQUE = "unique_tweet_ids"
CHECK_ACCOUNTING = "line_accounting_balances"
CHECK_QUARANTINE = "quarantine_share_below_threshold"


class TwitterStreamConfig(dg.Config):
    quarantine_warn_share: float = 0.01
    """WARN when more than this share of a day's lines is quarantined."""
    memory_limit: str = "1GB"
    """DuckDB memory for writing the day's tables (deduplication spills to disk beyond it;
    with the parse workers and Dagster's processes the step stays under 2 GB)."""


@dg.asset(
    key=["raw", "tweets"],
    group_name="raw",
    partitions_def=daily_partitions,
    pool="ingest",
    kinds={"duckdb", "parquet", "polars"},
    description=__doc__,
    check_specs=[
        dg.AssetCheckSpec(CHECK_UNIQUE, asset=["raw", "tweets"],
                          description="One row per tweet id per date."),
        dg.AssetCheckSpec(CHECK_ACCOUNTING, asset=["raw", "tweets"],
                          description="tweets + notices + quarantined = non-blank lines read."),
        dg.AssetCheckSpec(CHECK_QUARANTINE, asset=["raw", "tweets"],
                          description="Quarantined share of lines below the configured "
                                      "threshold (WARN)."),
    ],
)
def raw_tweets(context: dg.AssetExecutionContext, config: TwitterStreamConfig,
               warehouse: Warehouse):
    key = context.partition_key
    day_dir = warehouse.incoming(SOURCE) / key
    keep_unless_cleared(context, warehouse.lake, day_dir, [("raw", "tweets")], key)
    with warehouse.transaction(context) as lake:
        report = ingest_day(day_dir, date.fromisoformat(key), lake,
                            workers=warehouse.workers, memory_limit=config.memory_limit,
                            progress=context.log.info)
    context.log.info(
        f"{key}: {report.rows['tweets']:,} tweets, {report.rows['deletions']:,} deletions, "
        f"{report.quarantined_lines:,} quarantined lines in {report.seconds:.1f}s")
    catalog = warehouse.refresh_catalog(context.log)

    with warehouse.get_connection() as con:
        where = f"collection_date = DATE '{key}'"
        duplicates = con.execute(
            f"SELECT count(*) - count(DISTINCT tweet_id) FROM raw.tweets WHERE {where}"
        ).fetchall()[0][0]
        stored_lines, stored_split = con.execute(
            f"SELECT (SELECT coalesce(sum(lines), 0) FROM raw.ingest_members WHERE {where}),"
            f"       (SELECT coalesce(sum(lines), 0) FROM raw.stream_message_counts "
            f"        WHERE {where})").fetchall()[0]
        preview = con.sql(
            f"SELECT tweet_id, created_at, user_id, kind, lang, text FROM raw.tweets "
            f"WHERE {where} ORDER BY created_at, tweet_id LIMIT 10").pl()
        hourly = con.sql(
            f"SELECT hour(created_at) AS hour, kind, count(*) AS tweets FROM raw.tweets "
            f"WHERE {where} GROUP BY ALL").pl()
        schema = table_schema(con, "raw.tweets")

    lines = report.lines_read
    share = report.quarantined_lines / lines if lines else 0.0
    plot_path = warehouse.outputs / "plots" / "raw" / "tweets" / f"{key}.png"
    metadata = {
        "dagster/row_count": report.rows["tweets"],
        "dagster/table_name": "raw.tweets",
        "dagster/column_schema": schema,
        "input_folder": dg.MetadataValue.path(str(day_dir)),
        "files": report.files,
        "members": report.members,
        "members_damaged": report.members_damaged,
        "members_skipped": dict(report.members_skipped),
        "lines_read": lines,
        "blank_lines": report.blank_lines,
        "tweet_lines": report.tweet_lines,
        "notice_lines": report.notice_lines,
        "quarantined_lines": report.quarantined_lines,
        "quarantined_files_or_members": report.quarantined_members_or_files,
        "duplicate_tweet_lines": report.duplicate_tweet_lines,
        "lines_by_message_type": dict(sorted(report.message_counts.items())),
        "rows_by_table": {f"raw.{t}": n for t, n in report.rows.items()},
        "megabytes_decompressed": round(report.bytes_decompressed / 1e6, 1),
        "seconds": round(report.seconds, 2),
        "tweets_per_second": round(report.tweet_lines / report.seconds) if report.seconds else 0,
        "preview": markdown_preview(preview),
        "analysts_database": dg.MetadataValue.path(catalog.database),
        "analysts_views_refreshed": catalog.published,
    }
    if not catalog.published:
        metadata["analysts_views_not_refreshed_because"] = catalog.reason
    if hourly.height:
        metadata["tweets_per_hour"] = png_metadata(
            tweets_per_hour(hourly, f"raw.tweets {key}"), plot_path)
    yield dg.MaterializeResult(metadata=metadata)

    yield dg.AssetCheckResult(
        check_name=CHECK_UNIQUE, passed=duplicates == 0,
        metadata={"duplicate_rows": duplicates})
    balanced = report.accounting_balanced and stored_lines == stored_split == lines
    yield dg.AssetCheckResult(
        check_name=CHECK_ACCOUNTING, passed=balanced,
        metadata={"lines_read": lines, "tweets": report.tweet_lines,
                  "notices": report.notice_lines, "quarantined": report.quarantined_lines,
                  "lines_in_ingest_members": stored_lines,
                  "lines_in_message_counts": stored_split})
    yield dg.AssetCheckResult(
        check_name=CHECK_QUARANTINE, passed=share <= config.quarantine_warn_share,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"quarantined_share": round(share, 6),
                  "threshold": config.quarantine_warn_share})


RAW_TABLES = [f"raw.{t}" for t in TABLES]
