"""Sensor: a new or changed date folder under incoming/twitterstream/ requests a run."""


import hashlib
import json
import time
from datetime import date
from pathlib import Path

import dagster as dg

from botpipeline.defs.partitions import daily_partitions
from botpipeline.defs.raw.jobs import daily_pipeline_job
from botpipeline.defs.raw.twitterstream import SOURCE
from botpipeline.defs.resources import Warehouse
from botpipeline.readers.twitterstream.archives import day_files

# Files younger than this may still be copied in: wait a tick before reacting.
SETTLE_SECONDS = 30


def folder_fingerprint(day_dir: Path) -> tuple[str, float]:
    """Digest of (path, size, mtime) of every input file, and the newest mtime."""
    digest = hashlib.sha256()
    newest = 0.0
    for path in day_files(day_dir):
        stat = path.stat()
        newest = max(newest, stat.st_mtime)
        digest.update(f"{path.relative_to(day_dir)}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
                      .encode())
    return digest.hexdigest()[:16], newest


def _is_partition(name: str) -> bool:
    try:
        date.fromisoformat(name)
    except ValueError:
        return False
    return daily_partitions.has_partition_key(name)


@dg.sensor(job=daily_pipeline_job, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Requests a run for each date folder of incoming/twitterstream/ that "
                       "is new or whose files changed.")
def twitterstream_files_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse):
    root = warehouse.incoming(SOURCE)
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    requests, skipped = [], []
    now = time.time()
    for day_dir in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []:
        key = day_dir.name
        if not _is_partition(key):
            skipped.append(key)
            continue
        fingerprint, newest = folder_fingerprint(day_dir)
        if newest == 0.0 or seen.get(key) == fingerprint:
            continue
        if now - newest < SETTLE_SECONDS:
            context.log.info(f"{key}: files changed {now - newest:.0f}s ago; waiting")
            continue
        seen[key] = fingerprint
        requests.append(dg.RunRequest(partition_key=key, run_key=f"{key}:{fingerprint}",
                                      tags={"botpipeline/trigger": "incoming-files"}))
    if skipped:
        context.log.warning(f"ignored folders that are not YYYY-MM-DD partition dates: {skipped}")
    context.update_cursor(json.dumps(seen, sort_keys=True))
    if not requests:
        return dg.SkipReason(f"no new or changed date folders under {root}")
    return requests
