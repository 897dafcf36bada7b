"""raw/bluesky_jetstream: one collection date of recorded Bluesky Jetstream files
(``incoming/bluesky_jetstream/<YYYY-MM-DD>/<HH>.jsonl.zst``, written by
``botpipeline record-jetstream``) into the ``raw.bluesky_jetstream_*`` tables.

Posts, replies, quotes and reposts land in the core post columns (URIs as ids) and join
``core.posts``; accounts with a handle or profile join ``core.accounts``; likes join
``raw.engagements`` (reposts come through core.posts as the stream's retweets do), so
conversations, features, behaviour bins and co-action networks run on the firehose unchanged.
Every line is an ingested event, a counted notice, a duplicate, or quarantined with its
reason (readers/bluesky_jetstream.py).
"""

import json
from datetime import date

import dagster as dg

from botpipeline.defs.metadata import markdown_preview
from botpipeline.defs.partitions import daily_partitions
from botpipeline.defs.resources import Warehouse
from botpipeline.readers.bluesky_jetstream import TABLES, day_files, ingest_day

SOURCE = "bluesky_jetstream"
CLOSED_MARKER = "_closed.json"
CHECK_ACCOUNTING = "event_accounting_balances"
CHECK_UNIQUE = "unique_post_uris"
CHECK_QUARANTINE = "quarantine_share_below_threshold"
CHECK_GAPS = "recorder_gaps_covered"


class JetstreamIngestConfig(dg.Config):
    quarantine_warn_share: float = 0.01
    """WARN when more than this share of a day's events is quarantined."""
    memory_limit: str = "1GB"
    """DuckDB memory for the staging session (it spills to disk beyond it)."""


def _gaps(day_dir) -> list[dict]:
    path = day_dir / "_gaps.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dg.asset(
    key=["raw", SOURCE], group_name="raw", partitions_def=daily_partitions, pool="ingest",
    kinds={"duckdb", "parquet"}, description=__doc__,
    check_specs=[
        dg.AssetCheckSpec(CHECK_ACCOUNTING, asset=["raw", SOURCE],
                          description="ingested + notices + duplicates + quarantined = "
                                      "non-blank lines read."),
        dg.AssetCheckSpec(CHECK_UNIQUE, asset=["raw", SOURCE],
                          description="One row per post URI per date."),
        dg.AssetCheckSpec(CHECK_QUARANTINE, asset=["raw", SOURCE],
                          description="Quarantined share of events below the threshold (WARN)."),
        dg.AssetCheckSpec(CHECK_GAPS, asset=["raw", SOURCE],
                          description="Every interruption the recorder logged for the date was "
                                      "covered by its rewind (WARN)."),
    ],
)
def raw_bluesky_jetstream(context: dg.AssetExecutionContext, config: JetstreamIngestConfig,
                          warehouse: Warehouse):
    key = context.partition_key
    day_dir = warehouse.incoming(SOURCE) / key
    if not day_dir.is_dir():
        context.log.warning(f"no input folder {day_dir}: the date's tables will be empty")
    elif not (day_dir / CLOSED_MARKER).exists():
        context.log.warning(f"{day_dir} has no {CLOSED_MARKER}: the recorder may still be "
                            f"writing this date; ingesting the hours closed so far")
    with warehouse.transaction(context) as lake:
        report = ingest_day(day_dir, date.fromisoformat(key), lake,
                            memory_limit=config.memory_limit, threads=warehouse.workers,
                            temp_dir=lake.scratch_base(), progress=context.log.info)
    warehouse.refresh_catalog(context.log)
    with warehouse.get_connection() as con:
        where = f"collection_date = DATE '{key}'"
        duplicates = con.execute(
            f"SELECT count(*) - count(DISTINCT post_id) FROM raw.bluesky_jetstream_posts "
            f"WHERE {where}").fetchall()[0][0] if report.rows.get("posts") else 0
        counted = con.execute(
            f"SELECT coalesce(sum(events), 0) FROM raw.bluesky_jetstream_event_counts "
            f"WHERE {where}").fetchall()[0][0]
        reasons = con.sql(
            f"SELECT reason, count(*) AS lines FROM raw.bluesky_jetstream_quarantine "
            f"WHERE {where} GROUP BY 1 ORDER BY 2 DESC").pl() if report.quarantined else None
        preview = con.sql(
            f"SELECT post_id, created_at, kind, parent_id, text FROM raw.bluesky_jetstream_posts"
            f" WHERE {where} ORDER BY created_at LIMIT 10").pl() if report.rows.get("posts") \
            else None
    gaps = _gaps(day_dir)
    uncovered = [g for g in gaps if g.get("from_us") is not None and not g.get("covered")]
    events = report.events
    share = report.quarantined / events if events else 0.0
    metadata = {
        "dagster/row_count": report.rows.get("posts", 0),
        "input_folder": dg.MetadataValue.path(str(day_dir)),
        "day_closed_by_recorder": (day_dir / CLOSED_MARKER).exists(),
        "files": report.files, "files_quarantined": report.files_quarantined,
        "lines_read": report.lines_read, "blank_lines": report.blank_lines,
        "events_by_outcome": dict(sorted(report.outcomes.items())),
        "rows_by_table": {f"raw.bluesky_jetstream_{t}": n for t, n in report.rows.items()},
        "megabytes_compressed": round(report.bytes_compressed / 1e6, 1),
        "megabytes_decompressed": round(report.bytes_decompressed / 1e6, 1),
        "seconds": round(report.seconds, 2),
        "events_per_second": round(events / report.seconds) if report.seconds else 0,
        "recorder_gaps": len(gaps), "recorder_gaps_not_covered": len(uncovered),
    }
    if reasons is not None:
        metadata["quarantine_reasons"] = markdown_preview(reasons, width=100)
    if preview is not None:
        metadata["preview"] = markdown_preview(preview)
    yield dg.MaterializeResult(metadata=metadata)
    yield dg.AssetCheckResult(
        check_name=CHECK_ACCOUNTING, passed=report.balanced and counted == events,
        metadata={"non_blank_lines": events, "by_outcome": sum(report.outcomes.values()),
                  "in_event_counts_table": int(counted)})
    yield dg.AssetCheckResult(check_name=CHECK_UNIQUE, passed=duplicates == 0,
                              metadata={"duplicate_rows": int(duplicates)})
    yield dg.AssetCheckResult(
        check_name=CHECK_QUARANTINE, passed=share <= config.quarantine_warn_share,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"quarantined_share": round(share, 6),
                  "threshold": config.quarantine_warn_share})
    yield dg.AssetCheckResult(
        check_name=CHECK_GAPS, passed=not uncovered, severity=dg.AssetCheckSeverity.WARN,
        metadata={"gaps": len(gaps), "not_covered": len(uncovered),
                  "first_not_covered": json.dumps(uncovered[:3])})


# The firehose day through the coordination assets; the other daily assets (conversations,
# features, scores) take the same partition from the UI or `dagster asset materialize`.
bluesky_jetstream_job = dg.define_asset_job(
    "bluesky_jetstream_daily",
    selection=dg.AssetSelection.assets(
        raw_bluesky_jetstream, ["core", "posts"], ["core", "accounts"], ["raw", "engagements"],
        ["coordination", "behaviour_bins"], ["coordination", "co_action_edges"],
        ["coordination", "groups"]),
    # A firehose day's heaviest likers have thousands of likes each: compare sets of up to 200
    # posts by MinHash (all sets are still binned exactly); see BehaviourBinsConfig.
    config={"ops": {"coordination__behaviour_bins": {"config": {"max_set_size": 200}}}},
    description="One recorded Jetstream day into raw, core, engagements, behaviour bins and "
                "co-action networks.",
)


def closed_days(root) -> dict[str, tuple[str, float]]:
    """Day folders the recorder has closed: name -> (fingerprint of files + marker, newest)."""
    from botpipeline.defs.raw.sensors import files_fingerprint

    found = {}
    if not root.is_dir():
        return found
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        marker = folder / CLOSED_MARKER
        if not marker.exists():
            continue
        try:
            date.fromisoformat(folder.name)
        except ValueError:
            continue
        if not daily_partitions.has_partition_key(folder.name):
            continue
        found[folder.name] = files_fingerprint(day_files(folder) + [marker], folder)
    return found


@dg.sensor(job=bluesky_jetstream_job, minimum_interval_seconds=300,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Requests bluesky_jetstream_daily for each day folder of "
                       "incoming/bluesky_jetstream/ that the recorder has closed "
                       f"({CLOSED_MARKER}), again when its files change (late files).")
def bluesky_jetstream_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse):
    from botpipeline.defs.raw.sensors import changed_inputs

    root = warehouse.incoming(SOURCE)
    changed = changed_inputs(context, closed_days(root))
    if not changed:
        return dg.SkipReason(f"no newly closed or changed day under {root}")
    return [dg.RunRequest(partition_key=key, run_key=f"jetstream:{key}:{fingerprint}",
                          tags={"botpipeline/trigger": "jetstream-day-closed"})
            for key, fingerprint in changed]


RAW_TABLES = [f"raw.bluesky_jetstream_{t}" for t in TABLES]
