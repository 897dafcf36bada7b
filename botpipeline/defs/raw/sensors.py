"""Sensor: a new or changed date folder under incoming/twitterstream/ requests a run."""


import hashlib
import json
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import dagster as dg

from botpipeline.defs.partitions import daily_partitions
from botpipeline.defs.raw.jobs import daily_pipeline_job
from botpipeline.defs.raw.twitterstream import SOURCE
from botpipeline.defs.resources import Warehouse
from botpipeline.readers.twitterstream.archives import day_files
from botpipeline.storage.lake import ParquetLake

# Files younger than this may still be copied in: wait a tick before reacting.
SETTLE_SECONDS = 30


def files_fingerprint(files: list[Path], base: Path) -> tuple[str, float]:
    """Digest of (path under ``base``, size, mtime) of ``files``, and the newest mtime."""
    digest = hashlib.sha256()
    newest = 0.0
    for path in files:
        stat = path.stat()
        newest = max(newest, stat.st_mtime)
        digest.update(f"{path.relative_to(base)}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
                      .encode())
    return digest.hexdigest()[:16], newest


def folder_fingerprint(day_dir: Path) -> tuple[str, float]:
    """files_fingerprint of every input file of a date or run folder."""
    return files_fingerprint(day_files(day_dir), day_dir)


def _is_partition(name: str) -> bool:
    try:
        date.fromisoformat(name)
    except ValueError:
        return False
    return daily_partitions.has_partition_key(name)


def changed_inputs(context: dg.SensorEvaluationContext,
                   fingerprints: dict[str, tuple[str, float]]) -> list[tuple[str, str]]:
    """Of ``name -> (fingerprint, newest mtime)``, the inputs that are new or changed since
    the cursor, once their files have settled: ``[(name, fingerprint)]``.

    Updates the cursor (name -> fingerprint) for the inputs returned.
    """
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    changed = []
    now = time.time()
    for name, (fingerprint, newest) in sorted(fingerprints.items()):
        if newest == 0.0 or seen.get(name) == fingerprint:
            continue
        if now - newest < SETTLE_SECONDS:
            context.log.info(f"{name}: files changed {now - newest:.0f}s ago; waiting")
            continue
        seen[name] = fingerprint
        changed.append((name, fingerprint))
    context.update_cursor(json.dumps(seen, sort_keys=True))
    return changed


def changed_folders(context: dg.SensorEvaluationContext, root: Path,
                    is_key: Callable[[str], bool],
                    done: Callable[[str, float], bool] = lambda name, newest: False,
                    ) -> tuple[list[tuple[str, str]], list[str]]:
    """Folders under ``root`` that are new or whose files changed (changed_inputs), plus the
    names ``is_key`` rejected. A folder for which ``done(name, newest mtime)`` holds (its
    output was written after its newest file, by `botpipeline run` say) is recorded in the
    cursor and not returned, so work already done is not requested again."""
    folders = sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []
    skipped = [f.name for f in folders if not is_key(f.name)]
    prints = {f.name: folder_fingerprint(f) for f in folders if is_key(f.name)}
    changed = changed_inputs(context, prints)
    return [(name, fp) for name, fp in changed if not done(name, prints[name][1])], skipped


def written_after(lake: ParquetLake, schema: str, table: str, key: str, newest: float) -> bool:
    """Whether the lake committed the partition after ``newest`` (an input file's mtime)."""
    return (lake.committed_at(schema, table, key) or 0.0) > newest


@dg.sensor(job=daily_pipeline_job, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Requests a run for each date folder of incoming/twitterstream/ that "
                       "is new or whose files changed.")
def twitterstream_files_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse):
    root = warehouse.incoming(SOURCE)
    changed, skipped = changed_folders(
        context, root, _is_partition,
        lambda key, newest: written_after(warehouse.lake, "raw", "tweets", key, newest))
    requests = [dg.RunRequest(partition_key=key, run_key=f"{key}:{fingerprint}",
                              tags={"botpipeline/trigger": "incoming-files"})
                for key, fingerprint in changed]
    if skipped:
        context.log.warning(f"ignored folders that are not YYYY-MM-DD partition dates: {skipped}")
    if not requests:
        return dg.SkipReason(f"no new or changed date folders under {root}")
    return requests
