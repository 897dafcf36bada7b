"""Ingest one collection date of twarc2 files into the lake's ``raw.v2_*`` tables.

Files are read as a stream, in blocks of whole lines (``files``); worker threads parse each
block (``pages``: Arrow's JSON reader and polars, both without the GIL) and stage its frames as
Parquet parts; DuckDB then writes each table from the parts in one query. Memory stays bounded
by the blocks in flight, whatever the size of a file or of the day.

The tables keep the reader's rules: a tweet once per (post id, included) and a user once per
id, first / last sighting in file order; a tweet's ``author_username`` is the username of the
first user object with its author's id in the same file.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from botpipeline.readers.staged_parts import parts_glob, write_part
from botpipeline.readers.twitter_v2.files import (BLOCK_BYTES, Block, FileDamage, day_files,
                                                  read_blocks)
from botpipeline.readers.twitter_v2.pages import QUARANTINE_SCHEMA, empty, parse_block
from botpipeline.storage.lake import ParquetLake

log = logging.getLogger(__name__)

@dataclass
class V2Report:
    collection_date: str
    files: int = 0
    lines: int = 0  # non-blank lines read
    blank_lines: int = 0
    quarantined_lines: int = 0
    damaged_files: list[str] = field(default_factory=list)
    bytes_read: int = 0  # decompressed
    rows: dict[str, int] = field(default_factory=dict)
    included_tweets: int = 0
    parse_cpu_seconds: float = 0.0  # worker threads, all blocks
    seconds: float = 0.0
    workers: int = 0

    @property
    def lines_parsed(self) -> int:
        return self.lines - self.quarantined_lines


@dataclass
class _Summary:
    lines: int
    blank_lines: int
    quarantined: int
    included: int
    cpu: float


def _stage_block(block: Block, number: int, staging: Path, file_index: int,
                 observed_at) -> _Summary:
    started = time.thread_time()
    parsed = parse_block(block.data, block.first_line, observed_at)
    source = [pl.lit(file_index, pl.Int64).alias("_f"),
              pl.lit(block.source_file).alias("source_file")]
    for name, frame in (("tweets", parsed.tweets), ("users", parsed.users),
                        ("errors", parsed.errors), ("quarantine", parsed.quarantine)):
        if frame.height:
            write_part(staging, name, number, frame.with_columns(source))
    return _Summary(parsed.lines, parsed.blank_lines, parsed.quarantine.height,
                    int(parsed.tweets["included"].sum() or 0), time.thread_time() - started)


def ingest_v2_day(day_dir: Path, collection_date: date, lake: ParquetLake, *,
                  observed_at=None, workers: int | None = None, memory_limit: str = "1GB",
                  block_bytes: int = BLOCK_BYTES,
                  progress: Callable[[str], None] | None = None) -> V2Report:
    """Read every twarc2 file of one day folder and replace that date's partition of each
    ``raw.v2_*`` table. Blocks of about ``block_bytes`` are parsed on ``workers`` threads
    (default: one per core)."""
    workers = workers or os.cpu_count() or 1
    started = time.perf_counter()
    say = progress or log.info
    key = collection_date.isoformat()
    report = V2Report(key, workers=workers)
    staging = lake.scratch_dir(f"v2-{key}-")
    numbers = iter(range(1, 1 << 62))
    pending: deque[Future] = deque()
    blocks = 0

    def collect(summary: _Summary) -> None:
        nonlocal blocks
        blocks += 1
        if blocks % 32 == 0:  # about every 256 MB: progress inside a big file too
            say(f"{key}: {report.lines:,} lines parsed, "
                f"{report.bytes_read / 1e6:,.0f} MB read")
        report.lines += summary.lines
        report.blank_lines += summary.blank_lines
        report.quarantined_lines += summary.quarantined
        report.included_tweets += summary.included
        report.parse_cpu_seconds += summary.cpu

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            files = day_files(day_dir)
            report.files = len(files)
            for file_index, (path, name) in enumerate(files):
                for item in read_blocks(path, name, block_bytes):
                    if isinstance(item, FileDamage):
                        _stage_damage(staging, next(numbers), file_index, item)
                        report.damaged_files.append(name)
                        report.quarantined_lines += item.cut_line is not None
                        report.lines += item.cut_line is not None
                        continue
                    report.bytes_read += len(item.data)
                    pending.append(pool.submit(_stage_block, item, next(numbers), staging,
                                               file_index, observed_at))
                    while len(pending) > 2 * workers:  # bounded in flight
                        collect(pending.popleft().result())
                say(f"{key}: read {name} ({file_index + 1}/{len(files)}); "
                    f"{report.bytes_read / 1e6:,.0f} MB so far")
            while pending:
                collect(pending.popleft().result())
        say(f"{key}: parsed {report.lines:,} lines from {report.files} files; writing tables")
        _write_tables(lake, staging, report, key, memory_limit)
    finally:  # the pool has finished every block by now, failed or not
        shutil.rmtree(staging, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    say(f"{key}: ingested {report.bytes_read / 1e6:,.0f} MB of twarc2 JSON in "
        f"{report.seconds:.1f}s on {workers} workers ({report.parse_cpu_seconds:.1f} CPU-s "
        f"parsing)")
    return report


def _stage_damage(staging: Path, number: int, file_index: int, damage: FileDamage) -> None:
    """A damaged file: one row for the file and, if a line was cut, one for that line."""
    rows = [{"line_number": None, "reason": damage.reason, "raw": None}]
    if damage.cut_line is not None:
        rows.append({"line_number": damage.cut_line,
                     "reason": "incomplete last line of a damaged file", "raw": damage.cut_raw})
    frame = pl.DataFrame(rows, schema=QUARANTINE_SCHEMA).with_columns(
        pl.lit(file_index, pl.Int64).alias("_f"),
        pl.lit(damage.source_file).alias("source_file"))
    write_part(staging, "quarantine", number, frame)


# One SELECT per table over the staged parts ({src}; {users} for the usernames); {d}: the date.
_TABLE_SQL = {
    "v2_tweets": """
        SELECT * EXCLUDE (_f, _line, _pos, _rank, _username)
                 REPLACE (_username AS author_username),
               DATE '{d}' AS collection_date
        FROM (SELECT t.*, u.username AS _username,
                     row_number() OVER (PARTITION BY t.post_id, t.included
                                        ORDER BY t._f, t._line, t._pos) AS _rank
              FROM {src} t
              LEFT JOIN (SELECT _f, account_id, username FROM {users}
                         QUALIFY row_number() OVER (PARTITION BY _f, account_id
                                                    ORDER BY _line, _pos) = 1) u
                ON u._f = t._f AND u.account_id = t.author_id)
        WHERE _rank = 1""",
    "v2_users": """
        SELECT * EXCLUDE (_f, _line, _pos), DATE '{d}' AS collection_date
        FROM {src}
        QUALIFY row_number() OVER (PARTITION BY account_id
                                   ORDER BY _f DESC, _line DESC, _pos DESC) = 1""",
    "v2_api_errors": """
        SELECT * EXCLUDE (_f, _line, _pos), DATE '{d}' AS collection_date FROM {src}""",
    "v2_quarantine": """
        SELECT source_file, line_number, reason, raw, DATE '{d}' AS collection_date
        FROM {src}""",
}
_STAGED = {"v2_tweets": "tweets", "v2_users": "users", "v2_api_errors": "errors",
           "v2_quarantine": "quarantine"}
_ORDER = {"v2_tweets": "post_id, included", "v2_users": "account_id",
          "v2_api_errors": "ALL", "v2_quarantine": "ALL"}


def _empty(table: str) -> pl.DataFrame:
    """No rows, with the staged columns of a table (from a parse of nothing)."""
    nothing = empty()
    frame = {"v2_tweets": nothing.tweets, "v2_users": nothing.users,
             "v2_api_errors": nothing.errors, "v2_quarantine": nothing.quarantine}[table]
    return frame.with_columns(pl.lit(0, pl.Int64).alias("_f"),
                              pl.lit(None, pl.String).alias("source_file"))


def _write_tables(lake: ParquetLake, staging: Path, report: V2Report, key: str,
                  memory_limit: str) -> None:
    con = duckdb.connect(":memory:", config={"memory_limit": memory_limit,
                                             "temp_directory": str(staging / "spill"),
                                             "preserve_insertion_order": False})
    try:
        sources = {}
        for table, staged in _STAGED.items():
            glob = parts_glob(staging, staged)
            if glob:
                sources[table] = f"read_parquet('{glob}', union_by_name = true)"
            else:  # nothing staged: the same columns, no rows
                con.register(f"_empty_{table}", _empty(table))
                sources[table] = f"_empty_{table}"
        for table, sql in _TABLE_SQL.items():
            select = sql.format(d=key, src=sources[table], users=sources["v2_users"])
            report.rows[table] = lake.write("raw", table, key, select, con=con,
                                            order_by=_ORDER[table])
    finally:
        con.close()
