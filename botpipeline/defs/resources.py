"""The warehouse resource: where inputs are, where the lake is, the analysts' database."""


import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from botpipeline.storage.catalog import CatalogRefresh, publish_catalog
from botpipeline.storage.lake import ParquetLake


def default_data_dir() -> str:
    return os.environ.get("BOTPIPELINE_DATA_DIR", "data")


class Warehouse(DuckDBResource):
    """DuckDB over the Parquet lake.

    ``get_connection()`` (from dagster-duckdb) opens the compute session (``database``,
    in-memory by default) with a view per lake table. Data lives in ``<data_dir>/lake``;
    ``analysts_database`` is the file analysts open, holding only views.
    """

    database: str = Field(default=":memory:", description="DuckDB compute session.")
    data_dir: str = Field(default="", description="Inputs under incoming/, the lake under "
                          "lake/. Empty: $BOTPIPELINE_DATA_DIR (default 'data'), read at run time.")
    analysts_database: str = Field(default="", description="The DuckDB file analysts open "
                                   "(views only). Empty: $BOTPIPELINE_DUCKDB (default "
                                   "'<data dir>/botpipeline.duckdb').")
    lake_url: str = Field(default="", description="Where the lake is: a folder or an object "
                          "store URL (s3://bucket/prefix; credentials from the environment). "
                          "Empty: $BOTPIPELINE_LAKE_URL, else '<data dir>/lake'.")
    memory_limit: str = Field(default="2GB", description="DuckDB memory limit for a step.")
    workers: int = Field(default=2, description="Threads for decompression and parsing.")

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir or default_data_dir())

    @property
    def analysts_database_path(self) -> Path:
        if self.analysts_database:
            return Path(self.analysts_database)
        return Path(os.environ.get("BOTPIPELINE_DUCKDB", self.data_path / "botpipeline.duckdb"))

    @property
    def lake(self) -> ParquetLake:
        return ParquetLake(self.lake_url or os.environ.get("BOTPIPELINE_LAKE_URL")
                           or self.data_path / "lake")

    @contextmanager
    def transaction(self, context: dg.AssetExecutionContext | dg.OpExecutionContext,
                    partition: str | None = None) -> Iterator[ParquetLake]:
        """The lake, staging this step's writes until the block ends, then committing them
        together (readers see the step's tables all new or all old). Holds the writer lock of
        the step's asset and partition; a second run of the same partition waits."""
        # every key of the step's definition, not the selected subset: the lock must be the
        # same for two runs of a multi-asset that select different parts of it
        keys = sorted(k.to_user_string() for k in context.assets_def.keys) \
            if context.has_assets_def else [context.op.name]
        if partition is None and context.has_partition_key:
            partition = context.partition_key
        with self.lake.transaction("+".join(keys), partition, holder=context.run.run_id) as lake:
            yield lake
        written = lake.staged_rows()
        if written:
            context.log.info(f"committed {partition or 'all'} of " + ", ".join(
                f"{name} ({rows:,} rows)" for name, rows in written.items()))

    @property
    def outputs(self) -> Path:
        """Where plots, models and exports go: beside the lake on an object store
        (``<lake url>/plots``, ``/models``, ``/exports``), else the data dir."""
        url = self.lake_url or os.environ.get("BOTPIPELINE_LAKE_URL", "")
        if "://" in url and not url.startswith("file://"):
            from upath import UPath

            return UPath(url.rstrip("/"))
        return self.data_path

    def incoming(self, source: str) -> Path:
        return self.data_path / "incoming" / source

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        config = {"memory_limit": self.memory_limit, **self.connection_config}
        with DuckDBResource(database=self.database, connection_config=config
                            ).get_connection() as con:
            self.lake.register_views(con)
            yield con

    def refresh_catalog(self, log: dg.DagsterLogManager | None = None, *,
                        force: bool = False) -> CatalogRefresh:
        from botpipeline.transforms.marts import mart_views

        result = publish_catalog(self.lake, self.analysts_database_path, mart_views(
            {t.qualified for t in self.lake.tables()}), force=force)
        if log is not None:
            if result.unchanged:
                log.debug(f"analysts' database {result.database}: views unchanged")
            elif result.published:
                log.info(f"analysts' database {result.database}: {len(result.views)} views")
            else:
                log.warning(f"{result.reason}. New partitions are visible through the existing "
                            f"views; run `botpipeline catalog` to add new tables later.")
        return result
