"""Ingest one collection date of Twitter Stream Grab files into the lake's ``raw`` tables.

Members are decompressed and parsed on a small thread pool (bz2, zlib and polars all release
the GIL), parsed frames are staged as Parquet parts as they come, and DuckDB then deduplicates
the staged parts into one file per table and date. Memory stays bounded by the number of
members in flight plus one staging buffer, whatever the size of the day.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from botpipeline.readers.twitterstream.archives import (Member, Problem, Skipped, decompress,
                                                        iter_members)
from botpipeline.readers.twitterstream.messages import (QUARANTINE_SCHEMA, MemberResult,
                                                        parse_member)
from botpipeline.storage.lake import ParquetLake

log = logging.getLogger(__name__)

SCHEMA = "raw"
TABLES = ("tweets", "deletions", "account_snapshots", "referenced_tweets", "quarantine",
          "stream_message_counts", "ingest_members")
_STAGED = ("tweets", "deletions", "snapshots", "referenced", "quarantine", "members")


@dataclass
class IngestReport:
    collection_date: str
    files: int = 0
    members: int = 0
    members_damaged: int = 0
    members_skipped: Counter = field(default_factory=Counter)
    lines_read: int = 0
    blank_lines: int = 0
    quarantined_lines: int = 0
    quarantined_members_or_files: int = 0
    message_counts: Counter = field(default_factory=Counter)
    rows: dict[str, int] = field(default_factory=dict)
    bytes_compressed: int = 0
    bytes_decompressed: int = 0
    seconds: float = 0.0

    @property
    def tweet_lines(self) -> int:
        return self.message_counts.get("tweet", 0)

    @property
    def notice_lines(self) -> int:
        return sum(n for t, n in self.message_counts.items() if t != "tweet")

    @property
    def accounting_balanced(self) -> bool:
        return self.tweet_lines + self.notice_lines + self.quarantined_lines == self.lines_read

    @property
    def duplicate_tweet_lines(self) -> int:
        return self.tweet_lines - self.rows.get("tweets", 0)


def _process(member: Member) -> tuple[Member, MemberResult, str | None, str, int]:
    unpacked = decompress(member.data, member.member or member.source_file)
    result = parse_member(unpacked.payload, member.source_file, member.member,
                          damaged=unpacked.error is not None)
    return member, result, unpacked.error, unpacked.codec, len(unpacked.payload)


class _Stager:
    """Buffers parsed frames and flushes them to numbered Parquet parts."""

    def __init__(self, folder: Path, rows_per_part: int):
        self.folder = folder
        self.rows_per_part = rows_per_part
        self.buffers: dict[str, list[pl.DataFrame]] = {name: [] for name in _STAGED}
        self.buffered = 0
        self.parts = 0
        for name in _STAGED:
            (folder / name).mkdir(parents=True, exist_ok=True)

    def add(self, name: str, frame: pl.DataFrame) -> None:
        if frame.height:
            self.buffers[name].append(frame)
            self.buffered += frame.height
        if self.buffered >= self.rows_per_part:
            self.flush()

    def flush(self) -> None:
        for name, frames in self.buffers.items():
            if frames:
                pl.concat(frames, how="vertical_relaxed").write_parquet(
                    self.folder / name / f"part-{self.parts:05d}.parquet", compression="lz4")
                frames.clear()
        self.parts += 1
        self.buffered = 0

    def glob(self, name: str) -> str | None:
        folder = self.folder / name
        return str(folder / "*.parquet") if any(folder.glob("*.parquet")) else None


def ingest_day(day_dir: Path, collection_date: date, lake: ParquetLake, *, workers: int = 2,
               rows_per_part: int = 200_000, memory_limit: str = "1GB",
               progress: Callable[[str], None] | None = None) -> IngestReport:
    """Read every file of one day folder and replace that date's partition of each raw table."""
    started = time.perf_counter()
    say = progress or log.info
    key = collection_date.isoformat()
    report = IngestReport(key)
    staging_root = lake.root / "_staging"
    staging_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"raw-{key}-", dir=staging_root))
    stager = _Stager(staging, rows_per_part)
    files: set[str] = set()
    members_rows: list[dict] = []

    def collect(member: Member, result: MemberResult, error: str | None, codec: str,
                size: int) -> None:
        report.members += 1
        report.lines_read += result.lines
        report.blank_lines += result.blank_lines
        report.quarantined_lines += result.quarantine.height
        report.message_counts.update(result.message_counts)
        report.bytes_compressed += len(member.data)
        report.bytes_decompressed += size
        source = [pl.lit(member.source_file).alias("source_file"),
                  pl.lit(member.member).alias("source_member")]
        stager.add("tweets", result.tweets.with_columns(source))
        stager.add("deletions", result.deletions.with_columns(source))
        stager.add("snapshots", result.snapshots.with_columns(source))
        stager.add("referenced", result.referenced.with_columns(source))
        quarantine = result.quarantine
        if error:
            report.members_damaged += 1
            report.quarantined_members_or_files += 1
            quarantine = pl.concat([quarantine, _problem_frame(
                Problem(member.source_file, member.member, "member", error))])
        stager.add("quarantine", quarantine)
        members_rows.append({
            "source_file": member.source_file, "source_member": member.member, "codec": codec,
            "status": "damaged" if error else "ok", "compressed_bytes": len(member.data),
            "bytes": size, "lines": result.lines, "blank_lines": result.blank_lines,
            "tweets": result.message_counts.get("tweet", 0),
            "notices": sum(n for t, n in result.message_counts.items() if t != "tweet"),
            "quarantined_lines": result.quarantine.height,
        })
        if report.members % 250 == 0:
            rate = report.message_counts.get("tweet", 0) / max(time.perf_counter() - started, 1e-9)
            say(f"{key}: {report.members} members, {report.lines_read:,} lines, "
                f"{rate:,.0f} tweets/s")

    # Bounded in-flight window keeps memory flat and output order deterministic.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: deque[Future] = deque()
        for item in iter_members(day_dir):
            files.add(item.source_file)
            if isinstance(item, Member):
                pending.append(pool.submit(_process, item))
                while len(pending) > 2 * max(1, workers):
                    collect(*pending.popleft().result())
                continue
            while pending:  # keep problems in stream order with the members around them
                collect(*pending.popleft().result())
            if isinstance(item, Skipped):
                report.members_skipped[item.reason] += 1
                members_rows.append({"source_file": item.source_file,
                                     "source_member": item.member, "codec": None,
                                     "status": f"skipped: {item.reason}"})
            else:
                report.quarantined_members_or_files += 1
                stager.add("quarantine", _problem_frame(item))
        while pending:
            collect(*pending.popleft().result())
    stager.flush()
    report.files = len(files)
    stager.add("members", pl.DataFrame(members_rows, infer_schema_length=None)
               if members_rows else pl.DataFrame())
    stager.flush()

    say(f"{key}: parsed {report.lines_read:,} lines from {report.members} members; "
        f"writing tables")
    try:
        _write_tables(lake, stager, report, key, memory_limit)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    return report


def _problem_frame(problem: Problem) -> pl.DataFrame:
    return pl.DataFrame({"source_file": [problem.source_file],
                         "source_member": [problem.member], "line_number": [None],
                         "scope": [problem.scope], "reason": [problem.reason], "raw": [None]},
                        schema=QUARANTINE_SCHEMA)


# One SELECT per output table, over the staged parts ({src}); {d} is the collection date.
_TABLE_SQL = {
    "tweets": """
        SELECT DATE '{d}' AS collection_date, * EXCLUDE (_line, _rank), _line AS source_line
        FROM (SELECT *, row_number() OVER (PARTITION BY tweet_id
                  ORDER BY source_file, source_member, _line) AS _rank FROM {src})
        WHERE _rank = 1""",
    "deletions": """
        SELECT DATE '{d}' AS collection_date, tweet_id, user_id, min(deleted_at) AS deleted_at,
               count(*) AS notices, first(source_file ORDER BY source_file, source_member, _line)
               AS source_file
        FROM {src} WHERE tweet_id IS NOT NULL GROUP BY tweet_id, user_id""",
    "account_snapshots": """
        SELECT DATE '{d}' AS collection_date, * EXCLUDE (_line, _rank, source_member),
               _seen AS snapshots_seen
        FROM (SELECT *, row_number() OVER w AS _rank, count(*) OVER (PARTITION BY user_id) AS _seen
              FROM {src}
              WINDOW w AS (PARTITION BY user_id
                           ORDER BY observed_at DESC, source_file DESC, source_member DESC,
                                    _line DESC))
        WHERE _rank = 1""",
    "referenced_tweets": """
        SELECT DATE '{d}' AS collection_date, * EXCLUDE (_line, _rank, source_member),
               _seen AS times_seen
        FROM (SELECT *, row_number() OVER (PARTITION BY tweet_id ORDER BY observed_at DESC,
                  retweet_count + favorite_count DESC, source_file, source_member, _line)
                  AS _rank, count(*) OVER (PARTITION BY tweet_id) AS _seen FROM {src})
        WHERE _rank = 1""",
    "quarantine": "SELECT DATE '{d}' AS collection_date, * FROM {src}",
    "ingest_members": "SELECT DATE '{d}' AS collection_date, * FROM {src}",
}
_STAGED_FOR = {"tweets": "tweets", "deletions": "deletions", "account_snapshots": "snapshots",
               "referenced_tweets": "referenced", "quarantine": "quarantine",
               "ingest_members": "members"}
_ORDER = {"tweets": "tweet_id", "deletions": "tweet_id", "account_snapshots": "user_id",
          "referenced_tweets": "tweet_id",
          "quarantine": "source_file, source_member, line_number NULLS FIRST",
          "ingest_members": "source_file, source_member"}
_EMPTY = {
    "tweets": "tweet_id VARCHAR, created_at TIMESTAMP, user_id VARCHAR, screen_name VARCHAR, "
              "text VARCHAR, lang VARCHAR, source_app VARCHAR, kind VARCHAR, "
              "in_reply_to_tweet_id VARCHAR, in_reply_to_user_id VARCHAR, "
              "in_reply_to_screen_name VARCHAR, retweeted_tweet_id VARCHAR, "
              "retweeted_user_id VARCHAR, quoted_tweet_id VARCHAR, quoted_user_id VARCHAR, "
              "hashtags VARCHAR[], urls VARCHAR[], mention_user_ids VARCHAR[], "
              "retweet_count BIGINT, favorite_count BIGINT, reply_count BIGINT, "
              "quote_count BIGINT, source_file VARCHAR, source_member VARCHAR, source_line BIGINT",
    "deletions": "tweet_id VARCHAR, user_id VARCHAR, deleted_at TIMESTAMP, notices BIGINT, "
                 "source_file VARCHAR",
    "account_snapshots": "user_id VARCHAR, screen_name VARCHAR, name VARCHAR, "
                         "description VARCHAR, location VARCHAR, url VARCHAR, "
                         "account_created_at TIMESTAMP, followers_count BIGINT, "
                         "following_count BIGINT, tweet_count BIGINT, listed_count BIGINT, "
                         "favourites_count BIGINT, verified BOOLEAN, protected BOOLEAN, "
                         "default_profile BOOLEAN, default_profile_image BOOLEAN, "
                         "profile_image_url VARCHAR, observed_at TIMESTAMP, "
                         "observed_as VARCHAR, source_file VARCHAR, snapshots_seen BIGINT",
    "referenced_tweets": "tweet_id VARCHAR, relation VARCHAR, created_at TIMESTAMP, "
                         "user_id VARCHAR, text VARCHAR, lang VARCHAR, "
                         "in_reply_to_tweet_id VARCHAR, in_reply_to_user_id VARCHAR, "
                         "quoted_tweet_id VARCHAR, retweet_count BIGINT, "
                         "favorite_count BIGINT, reply_count BIGINT, quote_count BIGINT, "
                         "seen_in_tweet_id VARCHAR, observed_at TIMESTAMP, "
                         "source_file VARCHAR, times_seen BIGINT",
    "quarantine": "source_file VARCHAR, source_member VARCHAR, line_number BIGINT, "
                  "scope VARCHAR, reason VARCHAR, raw BLOB",
    "ingest_members": "source_file VARCHAR, source_member VARCHAR, codec VARCHAR, "
                      "status VARCHAR, compressed_bytes BIGINT, bytes BIGINT, lines BIGINT, "
                      "blank_lines BIGINT, tweets BIGINT, notices BIGINT, "
                      "quarantined_lines BIGINT",
}


def _write_tables(lake: ParquetLake, stager: _Stager, report: IngestReport, key: str,
                  memory_limit: str) -> None:
    con = duckdb.connect(":memory:", config={"memory_limit": memory_limit,
                                             "temp_directory": str(stager.folder / "spill"),
                                             "preserve_insertion_order": False})
    try:
        for table, sql in _TABLE_SQL.items():
            glob = stager.glob(_STAGED_FOR[table])
            if glob:
                src = f"read_parquet('{glob}', union_by_name = true)"
                select = sql.format(d=key, src=src)
            else:  # no rows today: still replace the partition, with an empty file
                select = (f"SELECT DATE '{key}' AS collection_date, "
                          f"{_null_columns(_EMPTY[table])} LIMIT 0")
            report.rows[table] = lake.write(SCHEMA, table, key, select, con=con,
                                            order_by=_ORDER[table])
        counts = pl.DataFrame(
            {"collection_date": [date.fromisoformat(key)] * len(report.message_counts),
             "message_type": list(report.message_counts),
             "lines": list(report.message_counts.values())},
            schema={"collection_date": pl.Date, "message_type": pl.String, "lines": pl.Int64})
        quarantined = pl.DataFrame({"collection_date": [date.fromisoformat(key)],
                                    "message_type": ["quarantined"],
                                    "lines": [report.quarantined_lines]},
                                   schema=counts.schema)
        report.rows["stream_message_counts"] = lake.write(
            SCHEMA, "stream_message_counts", key, pl.concat([counts, quarantined]),
            order_by="message_type")
    finally:
        con.close()


def _null_columns(spec: str) -> str:
    """'a VARCHAR, b BIGINT' -> 'CAST(NULL AS VARCHAR) AS a, CAST(NULL AS BIGINT) AS b'."""
    pairs = (column.split(" ", 1) for column in spec.split(", "))
    return ", ".join(f"CAST(NULL AS {dtype}) AS {name}" for name, dtype in pairs)
