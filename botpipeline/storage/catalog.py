"""The analysts' DuckDB database: views over the lake, refreshed after each materialization.

The database file holds no data, only ``CREATE VIEW schema.table AS SELECT * FROM
read_parquet(...)`` over the lake's files. A view over a glob sees a new or replaced partition
the moment its file is renamed into place, so an analyst who keeps the database open (which
locks the file against writers) misses nothing but brand-new tables, which appear at the next
refresh. A run never waits for that lock: it tries once, and if the file is busy it says so and
carries on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from botpipeline.storage.lake import ParquetLake


@dataclass
class CatalogRefresh:
    published: bool
    database: str
    views: list[str] = field(default_factory=list)
    skipped_views: dict[str, str] = field(default_factory=dict)
    reason: str | None = None


def publish_catalog(lake: ParquetLake, database: str | os.PathLike[str],
                    extra_views: list[tuple[str, str]] | None = None) -> CatalogRefresh:
    """Write one view per lake table (and the given ``(schema.name, select)`` views)."""
    path = Path(database).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path))
    except (duckdb.IOException, duckdb.ConnectionException) as exc:
        # Another process holds the file (an analyst's session), or this process holds it
        # with another configuration (a notebook's read-only connection).
        return CatalogRefresh(False, str(path), reason=f"database busy, views not refreshed: {exc}")
    try:
        refs = lake.register_views(con)
        result = CatalogRefresh(True, str(path), views=[r.qualified for r in refs])
        for name, select in extra_views or []:
            schema = name.split(".", 1)[0]
            try:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                con.execute(f"CREATE OR REPLACE VIEW {name} AS {select}")
                result.views.append(name)
            except duckdb.Error as exc:  # e.g. a mart whose source table has no data yet
                result.skipped_views[name] = str(exc).splitlines()[0]
        con.execute("CHECKPOINT")
        return result
    finally:
        con.close()
