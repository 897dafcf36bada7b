"""The lake's manifest: which data file is the committed one for each table partition.

Data files are immutable and uniquely named (``<schema>/<table>/<column>=<key>/<commit>.parquet``);
a write adds files nobody reads yet. A *commit* replaces the manifest
(``_lake/manifest.parquet``, one row per table partition) in one atomic step: a rename on a
local disk, one ``PUT`` on an object store. So a commit of several tables (an asset's whole
family) is seen whole or not at all, by the analysts' views (which read the manifest at query
time) and by downstream steps alike; a run killed before it commits leaves only unreferenced
files, which the next commit of the partition removes.

The manifest keeps each partition's previous file too (``previous_file``) so a query that read
the manifest just before a commit can still open what it listed; older files are deleted.
Commits are serialized by the lake's commit lock (see ``locks.py``).
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import polars as pl

MANIFEST = "_lake/manifest.parquet"

SCHEMA = {
    "table_name": pl.String,       # schema.table
    "partition_column": pl.String,  # null for an unpartitioned table
    "partition": pl.String,        # '' for an unpartitioned table
    "file": pl.String,             # path under the lake root
    "rows": pl.Int64,
    "commit_id": pl.String,
    "scope": pl.String,            # who committed it (an asset key)
    "committed_at": pl.Float64,    # unix seconds
    "previous_file": pl.String,
    "schema_id": pl.String,        # digest of the file's columns and types (null: unknown)
}


@dataclass(frozen=True)
class Entry:
    table_name: str
    partition_column: str | None
    partition: str
    file: str
    rows: int
    schema_id: str | None = None


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def read(fs, path: str) -> pl.DataFrame:
    try:  # one whole-object GET: a commit replacing the object cannot land mid-read
        frame = pl.read_parquet(fs.cat_file(path))
    except FileNotFoundError:
        return empty()
    if "schema_id" not in frame.columns:  # a manifest written before schema ids
        frame = frame.with_columns(pl.lit(None, pl.String).alias("schema_id"))
    return frame.select(list(SCHEMA))


def merge(current: pl.DataFrame, entries: list[Entry], commit_id: str,
          scope: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The manifest after committing ``entries``, and the rows they replace."""
    now = time.time()
    new = pl.DataFrame([{"table_name": e.table_name, "partition_column": e.partition_column,
                         "partition": e.partition, "file": e.file, "rows": e.rows,
                         "commit_id": commit_id, "scope": scope, "committed_at": now,
                         "schema_id": e.schema_id}
                        for e in entries],
                       schema={k: v for k, v in SCHEMA.items() if k != "previous_file"})
    keys = ["table_name", "partition"]
    replaced = current.join(new.select(keys), on=keys, how="semi")
    new = new.join(replaced.select(*keys, pl.col("file").alias("previous_file")),
                   on=keys, how="left")
    kept = current.join(new.select(keys), on=keys, how="anti")
    merged = pl.concat([kept, new.select(list(SCHEMA))]).sort(keys)
    return merged, replaced


def encode(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    return buffer.getvalue()
