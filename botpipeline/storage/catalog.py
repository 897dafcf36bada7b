"""The analysts' DuckDB database: views over the lake, refreshed when the set of tables changes.

The database file holds no data, only ``CREATE VIEW schema.table AS SELECT * FROM (...)``
over the lake's files, filtered by the lake's manifest when the view is queried (see
``lake.py``). A view therefore sees each commit the moment the manifest is replaced, all of an
asset's tables at once, so an analyst who keeps the database open (which locks the file against
writers) misses nothing but brand-new tables, which appear at the next refresh. A run never
waits for that lock: it tries once, and if the file is busy it says so and carries on.

DuckDB binds a view's columns at query time, so new partitions and new columns need no refresh
either: the views change only when the set of tables (or a mart's SQL) does. A refresh whose
view definitions equal the last published ones (a digest kept beside the database,
``<database>.views``) opens nothing and returns at once, so the many steps of a run refresh the
catalog once, when a table first appears, instead of once each (and steps running side by side
do not fight over the file). ``force`` republishes regardless (``botpipeline catalog``).

A lake on an object store gives views over ``s3://`` URLs: DuckDB opens them with its httpfs
extension (``INSTALL httpfs``) or, from Python, through ``ParquetLake(url).attach(con)``.
"""

from __future__ import annotations

import hashlib
import os
import time
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
    unchanged: bool = False  # the views were already published as they are


def catalog_digest(lake: ParquetLake, extra_views: list[tuple[str, str]] | None) -> str:
    """Digest of every view definition publish_catalog would write."""
    digest = hashlib.sha256()
    committed = lake.manifest()
    for ref in lake.tables(committed):
        view = lake.scan_sql(ref.schema, ref.table, committed, live=True)
        digest.update(f"{ref.qualified}\0{view}\n".encode())
    for name, select in extra_views or []:
        digest.update(f"{name}\0{select}\n".encode())
    return digest.hexdigest()


def publish_catalog(lake: ParquetLake, database: str | os.PathLike[str],
                    extra_views: list[tuple[str, str]] | None = None, *,
                    force: bool = False) -> CatalogRefresh:
    """Write one view per lake table (and the given ``(schema.name, select)`` views), unless
    the database already holds exactly these definitions (and ``force`` is not set)."""
    path = Path(database).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = path.with_name(path.name + ".views")
    digest = catalog_digest(lake, extra_views)
    if (not force and path.exists() and stamp.exists()
            and stamp.read_text().strip() == digest):
        return CatalogRefresh(True, str(path), reason="views unchanged", unchanged=True)
    try:
        con = duckdb.connect(str(path))
    except (duckdb.IOException, duckdb.ConnectionException) as exc:
        # Another process holds the file (an analyst's session), or this process holds it
        # with another configuration (a notebook's read-only connection).
        return CatalogRefresh(False, str(path), reason=f"database busy, views not refreshed: {exc}")
    try:
        for attempt in range(3):
            try:
                refs = lake.register_views(con, live=True)
                break
            except duckdb.Error as exc:
                # On an object store a commit may replace the manifest while DuckDB reads it
                # to bind a view: read again; the views are never worth failing a step for.
                if attempt == 2:
                    lines = [line for line in str(exc).splitlines() if line.strip()]
                    said = next((line for line in reversed(lines) if "Error" in line),
                                lines[-1] if lines else type(exc).__name__)
                    return CatalogRefresh(False, str(path),
                                          reason=f"views not refreshed: {said.strip()}")
                time.sleep(0.2 * (attempt + 1))
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
        if result.skipped_views:  # retried at the next refresh
            stamp.unlink(missing_ok=True)
        else:
            stamp.write_text(digest + "\n")
        return result
    finally:
        con.close()
