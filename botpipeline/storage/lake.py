"""The storage seam: partitioned Parquet tables that DuckDB queries, committed per asset.

Every table lives at ``<root>/<schema>/<table>/``. A partition's data is one immutable file,
``collection_date=YYYY-MM-DD/<commit>.parquet`` (``run_id=<id>/``, ``label_set=<name>/`` for
other partition kinds; an unpartitioned table keeps its files in the table folder). Which file is
*the* partition is said by the manifest (``manifest.py``), replaced atomically at each commit:

- **Per-asset commits.** ``with lake.transaction(scope, partition) as tx:`` stages every
  ``tx.write`` and commits them together when the block ends; readers (the analysts' views,
  the next step) see all of them or none. Inside the block ``tx`` reads its own writes. A
  plain ``lake.write`` is a transaction of one table.
- **One writer per partition.** A transaction holds the writer lock of its scope and partition
  (``locks.py``) from start to commit, for writers inside Dagster and outside it alike.
- **Schema contracts.** Each write is checked against its table's contract (``contracts.py``)
  before anything is committed.
- **Anywhere fsspec reaches.** The root is a local folder or an object store URL
  (``s3://bucket/prefix``, credentials from the environment); DuckDB reads remote lakes through
  the same fsspec filesystem.

Why files and not one DuckDB database: a DuckDB file admits one writer process, and any other
process holding it open (an analyst's session included) makes writers fail. Runs therefore never
write the analysts' database; they write Parquet here, and the analysts' database holds only
views over these files (see ``catalog.py``) that read the manifest when they are queried.

Why not Delta Lake, Iceberg or DuckLake: each of them commits one table at a time (an asset here
writes up to seven), and DuckDB reads them only through extensions that are downloaded at run
time, which would break the analysts' contract (any DuckDB opens the database, no extension).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from botpipeline.storage import contracts, manifest
from botpipeline.storage.locks import DEFAULT_WAIT_SECONDS, lake_lock

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
FILE_COLUMN = "_lake_file"
STALE_SCRATCH_SECONDS = 6 * 3600


def _check_ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a valid schema/table name: {name!r} (lower-case letters, digits, _)")
    return name


def _check_key(partition: str) -> str:
    if "/" in partition or partition.startswith(".") or "'" in partition:
        raise ValueError(f"bad partition key {partition!r}")
    return partition


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class TableRef:
    schema: str
    table: str

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass
class _Staged:
    entry: manifest.Entry
    contract: contracts.Contract | None


@dataclass
class _Transaction:
    scope: str
    staged: dict[tuple[str, str], _Staged] = field(default_factory=dict)


class ParquetLake:
    """Partitioned Parquet tables under one root folder or object-store prefix."""

    def __init__(self, root: str | os.PathLike[str], *, _tx: _Transaction | None = None):
        text = os.fspath(root)
        if "://" in text and not text.startswith("file://"):
            import fsspec

            # No listings cache: other processes commit to the same prefix, and a stale
            # listing would hide a new manifest or give its old size.
            options: dict = {"use_listings_cache": False}
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or \
                os.environ.get("AWS_ENDPOINT_URL")
            if endpoint and text.startswith(("s3://", "s3a://")):
                # named, so fsspec's cache of filesystems never hands back one made for
                # another endpoint (the environment is read only when one is made)
                options["endpoint_url"] = endpoint
            self.fs, path = fsspec.core.url_to_fs(text, **options)
            self.url = text.rstrip("/")
            self._path = path.rstrip("/")
            self.local = False
        else:
            from fsspec.implementations.local import LocalFileSystem

            local = Path(text.removeprefix("file://")).absolute()
            self.fs, self.url, self._path, self.local = LocalFileSystem(), str(local), \
                str(local), True
        self._tx = _tx

    def _clone(self, tx: _Transaction) -> ParquetLake:
        other = object.__new__(ParquetLake)
        other.__dict__.update(self.__dict__)
        other._tx = tx
        return other

    # ---------------------------------------------------------------- paths
    @property
    def root(self) -> Path:
        """The local folder of a local lake."""
        if not self.local:
            raise ValueError(f"the lake {self.url} is not on a local disk")
        return Path(self.url)

    def _fs_path(self, rel: str) -> str:
        return f"{self._path}/{rel}"

    def _url(self, rel: str) -> str:
        return f"{self.url}/{rel}"

    @staticmethod
    def _partition_dir(schema: str, table: str, partition: str | None,
                       partition_column: str) -> str:
        base = f"{_check_ident(schema)}/{_check_ident(table)}"
        if partition is None:
            return base
        return f"{base}/{_check_ident(partition_column)}={_check_key(partition)}"

    def table_dir(self, schema: str, table: str) -> Path:
        return self.root / _check_ident(schema) / _check_ident(table)

    def scratch_dir(self, prefix: str) -> Path:
        """A new local folder for a step's intermediate files (removed by the caller; those a
        killed run leaves behind are removed by a later call after six hours)."""
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.scratch_base()))

    def scratch_base(self) -> Path:
        """The local folder that holds steps' scratch folders, stale ones removed."""
        base = (self.root / "_staging") if self.local else \
            Path(tempfile.gettempdir()) / "botpipeline-staging"
        base.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - STALE_SCRATCH_SECONDS
        for old in base.iterdir():
            try:
                if old.stat().st_mtime < cutoff:
                    shutil.rmtree(old, ignore_errors=True)
            except FileNotFoundError:
                pass
        return base

    # -------------------------------------------------------------- manifest
    def manifest(self) -> pl.DataFrame:
        """The committed manifest (one row per table partition), this transaction's staged
        writes overlaid."""
        frame = manifest.read(self.fs, self._fs_path(manifest.MANIFEST))
        if frame.is_empty() and self.local and not self.fs.exists(
                self._fs_path(manifest.MANIFEST)):
            frame = self._adopt_legacy_files()
        if self._tx and self._tx.staged:
            staged, _ = manifest.merge(manifest.empty(),
                                       [s.entry for s in self._tx.staged.values()], "", "")
            keys = ["table_name", "partition"]
            frame = pl.concat([frame.join(staged.select(keys), on=keys, how="anti"), staged])
        return frame

    def _entry(self, schema: str, table: str, partition: str | None) -> dict | None:
        rows = self.manifest().filter(table_name=f"{schema}.{table}",
                                      partition=partition or "")
        return rows.row(0, named=True) if rows.height else None

    def tables(self, committed: pl.DataFrame | None = None) -> list[TableRef]:
        """Every table with at least one committed partition."""
        committed = self.manifest() if committed is None else committed
        names = committed["table_name"].unique().sort().to_list()
        return [TableRef(*name.split(".", 1)) for name in names]

    def has_partition(self, schema: str, table: str, partition: str | None,
                      partition_column: str = "collection_date") -> bool:
        return self._entry(schema, table, partition) is not None

    def partition_rows(self, schema: str, table: str, partition: str | None) -> int:
        """Rows of a committed partition (0 when there is none)."""
        entry = self._entry(schema, table, partition)
        return entry["rows"] if entry else 0

    def committed_at(self, schema: str, table: str, partition: str | None) -> float | None:
        """When the partition was last committed (unix seconds), or None."""
        entry = self._entry(schema, table, partition)
        return entry["committed_at"] if entry else None

    def read_partition(self, schema: str, table: str, partition: str | None,
                       columns: list[str] | None = None) -> pl.DataFrame | None:
        """One committed partition as a frame (None when there is none)."""
        entry = self._entry(schema, table, partition)
        if entry is None:
            return None
        with self.fs.open(self._fs_path(entry["file"]), "rb") as handle:
            return pl.read_parquet(handle, columns=columns)

    def partition_file(self, schema: str, table: str, partition: str | None,
                       partition_column: str = "collection_date") -> Path:
        """The committed file of a partition of a local lake (a path that does not exist when
        there is none)."""
        entry = self._entry(schema, table, partition)
        if entry:
            return self.root / entry["file"]
        return self.root / self._partition_dir(schema, table, partition,
                                               partition_column) / "none.parquet"

    def scan_sql(self, schema: str, table: str, committed: pl.DataFrame | None = None, *,
                 live: bool = False) -> str:
        """A DuckDB subquery over the committed partitions of a table (and this
        transaction's own writes).

        By default a *snapshot*: the files the manifest names now, listed explicitly, so a
        step reads one consistent state and never opens another writer's files. ``live``:
        the table's glob filtered by the manifest when the query runs, for views that must
        follow every commit (the analysts' database). ``committed``: the manifest, when the
        caller has just read it."""
        name = f"{schema}.{table}"
        rows = (self.manifest() if committed is None else committed).filter(table_name=name)
        if rows.is_empty():
            raise FileNotFoundError(f"table {name} has no data under {self.url}")
        if not live:
            # Files of one schema are read together, so binding a view opens one file per
            # schema, not every file (a remote lake pays a request per file opened).
            parts = []
            for (schema_id,), group in rows.sort("partition").group_by(
                    "schema_id", maintain_order=True):
                files = ", ".join(_sql_text(self._url(f)) for f in group["file"])
                by_name = "" if schema_id else ", union_by_name = true"
                parts.append(f"SELECT * FROM read_parquet([{files}]{by_name})")
            return "(" + " UNION ALL BY NAME ".join(parts) + ")"
        partitioned = rows["partition_column"].drop_nulls().len() > 0
        glob = self._url(f"{schema}/{table}/" + ("*=*/*.parquet" if partitioned else
                                                  "*.parquet"))
        prefix = _sql_text(self.url + "/")
        files = (f"SELECT {prefix} || file FROM read_parquet("
                 f"{_sql_text(self._url(manifest.MANIFEST))}) WHERE table_name = "
                 f"{_sql_text(name)}")
        staged = [s.entry for s in (self._tx.staged.values() if self._tx else [])
                  if s.entry.table_name == name]
        if staged:
            keys = ", ".join(_sql_text(e.partition) for e in staged)
            paths = ", ".join(_sql_text(self._url(e.file)) for e in staged)
            staged_sql = f"SELECT unnest([{paths}])"
            if self.fs.exists(self._fs_path(manifest.MANIFEST)):
                files = f"{files} AND partition NOT IN ({keys}) UNION ALL {staged_sql}"
            else:
                files = staged_sql
        return (f"(SELECT * EXCLUDE ({FILE_COLUMN}) FROM read_parquet({_sql_text(glob)}, "
                f"filename = '{FILE_COLUMN}', union_by_name = true) "
                f"WHERE {FILE_COLUMN} IN ({files}))")

    # --------------------------------------------------------------- writes
    def write(self, schema: str, table: str, partition: str | None, data: pl.DataFrame | str,
              *, con: duckdb.DuckDBPyConnection | None = None,
              partition_column: str = "collection_date", order_by: str | None = None,
              evolve: bool = False) -> int:
        """Replace one partition (or the whole unpartitioned table); returns its row count.

        ``data`` is a polars DataFrame or a DuckDB SELECT statement run on ``con`` (streamed to
        the file by DuckDB, never through Python). Inside a transaction the write is staged and
        committed with the others; outside, it is committed at once.
        """
        if self._tx is None:
            with self.transaction(f"{schema}.{table}", partition) as tx:
                return tx.write(schema, table, partition, data, con=con,
                                partition_column=partition_column, order_by=order_by,
                                evolve=evolve)
        rel = f"{self._partition_dir(schema, table, partition, partition_column)}/" \
              f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.parquet"
        if self.local:
            # written under a name no reader's glob matches, renamed once whole: another
            # process's view lists only complete files (the manifest then picks the committed)
            local = self.root / f"{rel}.tmp"
            local.parent.mkdir(parents=True, exist_ok=True)
        else:  # an object store shows an object only once its upload is complete
            local = Path(tempfile.mkdtemp(prefix="lake-write-")) / "data.parquet"
        try:
            rows, verdict, schema_id = self._write_local(local, f"{schema}.{table}", partition,
                                                         data, con, order_by, evolve)
            if self.local:
                os.replace(local, self.root / rel)
            else:
                self.fs.put_file(str(local), self._fs_path(rel))
        except BaseException:
            local.unlink(missing_ok=True)
            raise
        finally:
            if not self.local:
                shutil.rmtree(local.parent, ignore_errors=True)
        entry = manifest.Entry(f"{schema}.{table}", None if partition is None else
                               partition_column, partition or "", rel, rows, schema_id)
        self._tx.staged[(entry.table_name, entry.partition)] = _Staged(entry, verdict.record)
        return rows

    def _write_local(self, path: Path, name: str, partition: str | None,
                     data: pl.DataFrame | str, con: duckdb.DuckDBPyConnection | None,
                     order_by: str | None, evolve: bool
                     ) -> tuple[int, contracts.Verdict, str]:
        own = con is None
        con = con or duckdb.connect(":memory:")
        try:
            escaped = _sql_text(str(path))
            if isinstance(data, pl.DataFrame):
                frame = data.sort(order_by) if order_by else data
                frame.write_parquet(path, compression="zstd", statistics=True)
            else:
                sql = f"SELECT * FROM ({data})" + (f" ORDER BY {order_by}" if order_by else "")
                con.execute(f"COPY ({sql}) TO {escaped} (FORMAT parquet, COMPRESSION zstd)")
            written = {row[0]: row[1] for row in con.execute(
                f"DESCRIBE SELECT * FROM read_parquet({escaped})").fetchall()}
            verdict = contracts.judge(name, written, self._contract(name), partition=partition,
                                      evolve=evolve)
            if verdict.casts:  # all-NULL columns take the contract's types
                fixed = path.with_name(path.name + ".cast")
                replace = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"'
                                    for c, t in verdict.casts.items())
                con.execute(f"COPY (SELECT * REPLACE ({replace}) FROM read_parquet({escaped})) "
                            f"TO {_sql_text(str(fixed))} (FORMAT parquet, COMPRESSION zstd)")
                os.replace(fixed, path)
            rows = con.execute(f"SELECT count(*) FROM read_parquet({escaped})").fetchall()[0][0]
        finally:
            if own:
                con.close()
        _fsync(path)
        final = {name: verdict.casts.get(name, kind) for name, kind in written.items()}
        schema_id = hashlib.sha256(repr(sorted(final.items())).encode()).hexdigest()[:16]
        return rows, verdict, schema_id

    # -------------------------------------------------------------- contracts
    def _contract_path(self, name: str) -> str:
        return self._fs_path(f"_lake/schemas/{name}.json")

    def _contract(self, name: str) -> contracts.Contract | None:
        if self._tx and (name_staged := [s.contract for (t, _), s in self._tx.staged.items()
                                         if t == name and s.contract]):
            return name_staged[-1]
        try:
            return contracts.Contract.from_json(self.fs.cat_file(
                self._contract_path(name)).decode())
        except FileNotFoundError:
            return None

    def contract(self, schema: str, table: str) -> contracts.Contract | None:
        """The recorded schema contract of a table, if any."""
        return self._contract(f"{schema}.{table}")

    def allow_new_columns(self, schema: str, table: str) -> contracts.Contract:
        """Let the next write of a table add columns (an explicit additive change)."""
        name = f"{schema}.{table}"
        current = self._contract(name)
        if current is None:
            raise FileNotFoundError(f"{name} has no schema contract yet (no write so far)")
        updated = contracts.Contract(name, current.columns, allow_new_columns=True)
        self._put_atomic(self._contract_path(name), updated.to_json().encode())
        return updated

    # ------------------------------------------------------------- commits
    @contextmanager
    def transaction(self, scope: str, partition: str | None = None, *,
                    holder: str | None = None,
                    wait: float = DEFAULT_WAIT_SECONDS) -> Iterator[ParquetLake]:
        """Stage writes and commit them together when the block ends without an error.

        The block holds the writer lock of ``scope`` (an asset key, say) and ``partition``;
        a second writer of the same scope and partition waits up to ``wait`` seconds, then
        gets :class:`~botpipeline.storage.locks.LockBusy`."""
        if self._tx is not None:
            raise RuntimeError("transactions do not nest")
        safe = re.sub(r"[^A-Za-z0-9_.=-]", ".", scope)
        what = f"{scope}" + (f" partition {partition}" if partition is not None else "")
        lock = self._fs_path(f"_lake/locks/{safe}/{_check_key(partition or '_all')}.lock")
        with lake_lock(self.fs, lock, what, wait=wait, holder=holder):
            tx = _Transaction(scope)
            staged = self._clone(tx)
            try:
                yield staged
            except BaseException:
                self._discard(tx)
                raise
            self._commit(tx)

    def staged_rows(self) -> dict[str, int]:
        """Rows per table this transaction wrote (committed once its block ended)."""
        return {s.entry.table_name: s.entry.rows for s in self._tx.staged.values()} \
            if self._tx else {}

    def _discard(self, tx: _Transaction) -> None:
        for item in tx.staged.values():
            self.fs.rm_file(self._fs_path(item.entry.file))

    def _commit(self, tx: _Transaction) -> None:
        if not tx.staged:
            return
        entries = [s.entry for s in tx.staged.values()]
        commit_id = uuid.uuid4().hex
        with lake_lock(self.fs, self._fs_path("_lake/commit.lock"), "the lake's manifest",
                       wait=max(DEFAULT_WAIT_SECONDS, 60), holder=tx.scope):
            current = manifest.read(self.fs, self._fs_path(manifest.MANIFEST))
            if current.is_empty() and self.local:
                current = self._adopt_legacy_files(locked=True)
            merged, _ = manifest.merge(current, entries, commit_id, tx.scope)
            for item in tx.staged.values():
                if item.contract is not None:
                    self._put_atomic(self._contract_path(item.entry.table_name),
                                     item.contract.to_json().encode())
            self._put_atomic(self._fs_path(manifest.MANIFEST), manifest.encode(merged))
        self._collect_garbage(merged, entries)

    def _collect_garbage(self, merged: pl.DataFrame, entries: list[manifest.Entry]) -> None:
        """Delete each written partition's files but the committed and the previous one
        (a reader that listed the previous manifest may still be opening that)."""
        keep = merged.join(pl.DataFrame(
            {"table_name": [e.table_name for e in entries],
             "partition": [e.partition for e in entries]}), on=["table_name", "partition"])
        for row in keep.iter_rows(named=True):
            folder = self._fs_path(row["file"].rsplit("/", 1)[0])
            live = {self._fs_path(row["file"])}
            if row["previous_file"]:
                live.add(self._fs_path(row["previous_file"]))
            for path in self.fs.ls(folder, detail=False):
                path = path.rstrip("/")
                # under the partition's lock: a .tmp here is a dead writer's
                if (path.endswith(".parquet") and path not in live) or path.endswith(".tmp"):
                    self.fs.rm_file(path)

    def _put_atomic(self, path: str, data: bytes) -> None:
        if not self.local:
            self.fs.pipe_file(path, data)  # one PUT: atomic on object stores
            return
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync(target.parent)

    def _adopt_legacy_files(self, locked: bool = False) -> pl.DataFrame:
        """A lake written before the manifest existed: commit its ``data.parquet`` files."""
        root = Path(self.url)
        found = [p for p in root.glob("*/*/**/data.parquet")
                 if not any(part.startswith(("_", ".")) for part in p.relative_to(root).parts)]
        if not found:
            return manifest.empty()
        entries = []
        for path in found:
            parts = path.relative_to(root).parts
            column, key = (parts[2].split("=", 1) if len(parts) == 4 else (None, ""))
            rows = pl.scan_parquet(path).select(pl.len()).collect().item()
            entries.append(manifest.Entry(f"{parts[0]}.{parts[1]}", column, key,
                                          "/".join(parts), rows))
        merged, _ = manifest.merge(manifest.empty(), entries, "adopted", "legacy-layout")
        if locked:
            return merged
        with lake_lock(self.fs, self._fs_path("_lake/commit.lock"), "the lake's manifest"):
            if not self.fs.exists(self._fs_path(manifest.MANIFEST)):
                self._put_atomic(self._fs_path(manifest.MANIFEST), manifest.encode(merged))
        return manifest.read(self.fs, self._fs_path(manifest.MANIFEST))

    # ---------------------------------------------------------------- reads
    def attach(self, con: duckdb.DuckDBPyConnection) -> None:
        """Let DuckDB open this lake's files (object stores through fsspec)."""
        protocol = self.fs.protocol[0] if isinstance(self.fs.protocol, tuple) \
            else self.fs.protocol
        if not self.local and not con.filesystem_is_registered(protocol):
            con.register_filesystem(_immutable_files(self.fs))

    def register_views(self, con: duckdb.DuckDBPyConnection, *,
                       live: bool = False) -> list[TableRef]:
        """Create ``schema.table`` views over every table on a DuckDB connection: over the
        files committed now (a snapshot; call again to see later commits), or ``live`` views
        that follow every commit (see ``scan_sql``)."""
        self.attach(con)
        committed = self.manifest()
        refs = self.tables(committed)
        for ref in refs:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {ref.schema}")
            con.execute(f"CREATE OR REPLACE VIEW {ref.qualified} AS SELECT * FROM "
                        f"{self.scan_sql(ref.schema, ref.table, committed, live=live)}")
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


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_IMMUTABLE: dict[type, type] = {}


def _immutable_files(fs):
    """The object-store filesystem as DuckDB should see a lake: a data file never changes once
    written (its name is unique), so its size and existence are asked once per process, and a
    path without wildcards needs no listing. Each request to an object store costs a round
    trip; a view over many partitions otherwise pays several per file at every query."""
    base = type(fs)
    if base not in _IMMUTABLE:
        class ImmutableFiles(base):
            _known: dict[str, dict] = {}

            def _immutable(self, path: str) -> bool:
                return path.endswith(".parquet") and not path.endswith(manifest.MANIFEST)

            def info(self, path, **kwargs):
                key = self._strip_protocol(path)
                if not self._immutable(key):
                    return super().info(path, **kwargs)
                if key not in self._known:
                    self._known[key] = super().info(path, **kwargs)
                return self._known[key]

            def glob(self, path, **kwargs):
                if not any(c in path for c in "*?[") and self._immutable(path):
                    self.info(path)  # raises FileNotFoundError as a listing would say none
                    return [self._strip_protocol(path)]
                return super().glob(path, **kwargs)

        ImmutableFiles.__name__ = f"Immutable{base.__name__}"
        _IMMUTABLE[base] = ImmutableFiles
    return _IMMUTABLE[base](**fs.storage_options)

