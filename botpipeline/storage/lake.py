"""The storage seam: partitioned Parquet tables that DuckDB queries.

Every table lives at ``<root>/<schema>/<table>/``. A partitioned table holds one file per
partition, ``collection_date=YYYY-MM-DD/data.parquet`` (or ``run_id=<id>/`` for runs); an
unpartitioned table holds ``data.parquet``. A partition is replaced by writing a temporary file
beside it and renaming it over the old one, so a re-run replaces exactly that partition and a
crash leaves either the old or the new file, never a hole or duplicates.

Why files and not one DuckDB database: a DuckDB file admits one writer process, and any other
process holding it open (an analyst's read-only session included) makes writers fail. Runs
therefore never write the analysts' database; they write Parquet here, and the analysts'
database holds only views over these files (see ``catalog.py``). The same layout on object
storage is the path beyond one machine.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def _check_ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a valid schema/table name: {name!r} (lower-case letters, digits, _)")
    return name


@dataclass(frozen=True)
class TableRef:
    schema: str
    table: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"


class ParquetLake:
    """Partitioned Parquet tables under one root folder."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).absolute()

    # ---------------------------------------------------------------- paths
    def table_dir(self, schema: str, table: str) -> Path:
        return self.root / _check_ident(schema) / _check_ident(table)

    def partition_file(self, schema: str, table: str, partition: str | None,
                       partition_column: str = "collection_date") -> Path:
        base = self.table_dir(schema, table)
        if partition is None:
            return base / "data.parquet"
        if "/" in partition or partition.startswith("."):
            raise ValueError(f"bad partition key {partition!r}")
        return base / f"{_check_ident(partition_column)}={partition}" / "data.parquet"

    def tables(self) -> list[TableRef]:
        """Every table that has at least one data file."""
        found = []
        if not self.root.exists():
            return found
        for schema_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if not _IDENT.match(schema_dir.name):
                continue
            for table_dir in sorted(p for p in schema_dir.iterdir() if p.is_dir()):
                if _IDENT.match(table_dir.name) and self._files_glob(table_dir):
                    found.append(TableRef(schema_dir.name, table_dir.name))
        return found

    @staticmethod
    def _files_glob(table_dir: Path) -> str | None:
        if (table_dir / "data.parquet").exists():
            return str(table_dir / "data.parquet")
        if any(table_dir.glob("*=*/data.parquet")):
            return str(table_dir / "*=*" / "data.parquet")
        return None

    def scan_sql(self, schema: str, table: str) -> str:
        """A DuckDB table function over every partition of a table."""
        glob = self._files_glob(self.table_dir(schema, table))
        if glob is None:
            raise FileNotFoundError(f"table {schema}.{table} has no data under {self.root}")
        quoted = glob.replace("'", "''")
        return f"read_parquet('{quoted}', union_by_name = true)"

    def has_partition(self, schema: str, table: str, partition: str | None,
                      partition_column: str = "collection_date") -> bool:
        return self.partition_file(schema, table, partition, partition_column).exists()

    # --------------------------------------------------------------- writes
    def write(self, schema: str, table: str, partition: str | None, data: pl.DataFrame | str,
              *, con: duckdb.DuckDBPyConnection | None = None,
              partition_column: str = "collection_date", order_by: str | None = None) -> int:
        """Atomically replace one partition (or the whole unpartitioned table).

        ``data`` is a polars DataFrame or a DuckDB SELECT statement run on ``con`` (streamed to
        the file by DuckDB, never through Python). Returns the number of rows written.
        """
        target = self.partition_file(schema, table, partition, partition_column)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            if isinstance(data, pl.DataFrame):
                frame = data.sort(order_by) if order_by else data
                frame.write_parquet(tmp, compression="zstd", statistics=True)
                rows = frame.height
            else:
                if con is None:
                    raise ValueError("a SQL source needs the DuckDB connection it runs on")
                sql = f"SELECT * FROM ({data})" + (f" ORDER BY {order_by}" if order_by else "")
                escaped = str(tmp).replace("'", "''")
                con.execute(f"COPY ({sql}) TO '{escaped}' (FORMAT parquet, COMPRESSION zstd)")
                rows = con.execute(
                    f"SELECT count(*) FROM read_parquet('{escaped}')").fetchall()[0][0]
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return rows

    # ---------------------------------------------------------------- reads
    def register_views(self, con: duckdb.DuckDBPyConnection) -> list[TableRef]:
        """Create ``schema.table`` views over every table on a DuckDB connection."""
        refs = self.tables()
        for ref in refs:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {ref.schema}")
            con.execute(f"CREATE OR REPLACE VIEW {ref.qualified} AS SELECT * FROM "
                        f"{self.scan_sql(ref.schema, ref.table)}")
        return refs

    @contextmanager
    def connect(self, *, memory_limit: str | None = None, threads: int | None = None,
                temp_directory: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """An in-memory DuckDB session with a view for every table of the lake.

        Runs compute in this private session, so they never contend for the analysts' file.
        """
        config: dict[str, str | int] = {}
        if memory_limit:
            config["memory_limit"] = memory_limit
        if threads:
            config["threads"] = threads
        if temp_directory:
            config["temp_directory"] = temp_directory
        con = duckdb.connect(":memory:", config=config)
        try:
            self.register_views(con)
            yield con
        finally:
            con.close()
