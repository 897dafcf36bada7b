"""No silent loss: a date whose input folder is gone keeps the rows it already has.

A raw asset replaces its partition with what its input folder holds. When the folder is missing
(moved away, an unmounted disk, a typo in the data dir) that would silently empty a date that
was ingested before. ``keep_unless_cleared`` fails the asset instead, naming the folder and
the rows it would have dropped, unless the run carries the tag ``botpipeline/clear_missing``
= ``true`` (``botpipeline run --clear-missing``, or the tag added to a launch in the UI).
A date that never had rows is written empty as before.
"""

from pathlib import Path

import dagster as dg

from botpipeline.storage.lake import ParquetLake

CLEAR_MISSING_TAG = "botpipeline/clear_missing"


def stored_rows(lake: ParquetLake, schema: str, table: str, key: str,
                partition_column: str = "collection_date") -> int:
    """Rows in one committed partition (0 when there is none), from the lake's manifest."""
    return lake.partition_rows(schema, table, key)


def keep_unless_cleared(context: dg.AssetExecutionContext, lake: ParquetLake, folder: Path,
                        tables: list[tuple[str, str]], key: str) -> None:
    """Raise dg.Failure when ``folder`` is missing and ``tables`` hold rows for ``key``,
    unless the run asks to clear them."""
    if folder.is_dir():
        return
    held = {f"{schema}.{table}": n for schema, table in tables
            if (n := stored_rows(lake, schema, table, key))}
    if not held:
        context.log.warning(f"no input folder {folder}: the date's tables are written empty")
        return
    if context.run.tags.get(CLEAR_MISSING_TAG, "").lower() == "true":
        context.log.warning(f"no input folder {folder}: clearing {held} as the run asks "
                            f"({CLEAR_MISSING_TAG}=true)")
        return
    shown = ", ".join(f"{name} ({n:,} rows)" for name, n in held.items())
    raise dg.Failure(
        f"no input folder {folder}: {key} keeps {shown}. Put the folder back, or clear the "
        f"date on purpose with `botpipeline run --date {key} --clear-missing` (run tag "
        f"{CLEAR_MISSING_TAG}=true).")
