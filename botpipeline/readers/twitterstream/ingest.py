"""Ingest one collection date of Twitter Stream Grab files into the lake's ``raw`` tables.

Members are grouped into batches of a few MB; worker threads decompress and parse each batch
(one DuckDB query and one set of polars expressions per batch) and stage its frames as Parquet
parts; DuckDB then deduplicates the staged parts into one file per table and date. Memory stays
bounded by the batches in flight, whatever the size of the day.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from botpipeline.readers.twitterstream.archives import (Member, Problem, Skipped, decompress,
                                                        iter_members)
from botpipeline.readers.staged_parts import parts_glob, write_part
from botpipeline.readers.twitterstream.messages import (QUARANTINE_SCHEMA, MemberInput,
                                                        parse_members)
from botpipeline.storage.lake import ParquetLake

log = logging.getLogger(__name__)

SCHEMA = "raw"
TABLES = ("tweets", "deletions", "account_snapshots", "referenced_tweets", "quarantine",
          "stream_message_counts", "ingest_members")


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
    decompress_cpu_seconds: float = 0.0  # thread CPU in decompression, all workers
    parse_cpu_seconds: float = 0.0  # thread CPU in parsing, shaping and staging, all workers
    workers: int = 0

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


@dataclass
class BatchSummary:
    """What a worker reports back for a batch; the frames themselves went to staging."""

    members: list[dict]
    lines: int = 0
    blank_lines: int = 0
    quarantined_lines: int = 0
    damaged: int = 0
    bytes_compressed: int = 0
    bytes_decompressed: int = 0
    message_counts: Counter = field(default_factory=Counter)
    decompress_cpu: float = 0.0
    parse_cpu: float = 0.0


def process_batch(members: list[Member], staging: str, batch_no: int) -> BatchSummary:
    """Decompress and parse members, write their frames as one staged part per table."""
    started = time.thread_time()
    unpacked = [decompress(m.data, m.member or m.source_file) for m in members]
    decompressed = time.thread_time()
    batch = parse_members([MemberInput(u.payload, m.source_file, m.member, u.error is not None)
                           for m, u in zip(members, unpacked)])
    problems = [_problem_frame(Problem(m.source_file, m.member, "member", u.error))
                for m, u in zip(members, unpacked) if u.error]
    summary = BatchSummary(members=[], damaged=len(problems))
    for member, u, counts in zip(members, unpacked, batch.members):
        summary.lines += counts["lines"]
        summary.blank_lines += counts["blank_lines"]
        summary.quarantined_lines += counts["quarantined_lines"]
        summary.bytes_compressed += len(member.data)
        summary.bytes_decompressed += len(u.payload)
        summary.message_counts.update(counts["message_counts"])
        kinds = counts["message_counts"]
        summary.members.append({
            "source_file": member.source_file, "source_member": member.member,
            "codec": u.codec, "status": "damaged" if u.error else "ok",
            "compressed_bytes": len(member.data), "bytes": len(u.payload),
            "lines": counts["lines"], "blank_lines": counts["blank_lines"],
            "tweets": kinds.get("tweet", 0),
            "notices": sum(n for t, n in kinds.items() if t != "tweet"),
            "quarantined_lines": counts["quarantined_lines"],
        })
    staging_dir = Path(staging)
    for name, frame in (("tweets", batch.tweets), ("deletions", batch.deletions),
                        ("snapshots", batch.snapshots), ("referenced", batch.referenced),
                        ("quarantine", pl.concat([batch.quarantine, *problems]))):
        if frame.height:
            write_part(staging_dir, name, batch_no, frame)
    summary.decompress_cpu = decompressed - started
    summary.parse_cpu = time.thread_time() - decompressed
    return summary


class _Batches:
    """Groups members into batches of about ``target_bytes`` of compressed input."""

    def __init__(self, target_bytes: int):
        self.target = target_bytes
        self.members: list[Member] = []
        self.size = 0

    def add(self, member: Member) -> list[Member] | None:
        self.members.append(member)
        self.size += len(member.data)
        return self.take() if self.size >= self.target else None

    def take(self) -> list[Member]:
        batch, self.members, self.size = self.members, [], 0
        return batch


@contextmanager
def _executor(workers: int) -> Iterator[Executor | None]:
    """Threads: bz2/zlib decompression, DuckDB's JSON reader and polars all release the GIL,
    so batches parse in parallel without copying member bytes between processes (measured
    here: 40 s for a million tweets with two threads, 46-50 s with two processes)."""
    if workers <= 1:
        yield None
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield pool


def ingest_day(day_dir: Path, collection_date: date, lake: ParquetLake, *,
               workers: int | None = None,
               batch_bytes: int = 2 << 20, memory_limit: str = "1GB",
               progress: Callable[[str], None] | None = None) -> IngestReport:
    """Read every file of one day folder and replace that date's partition of each raw table.

    Batches of about ``batch_bytes`` of compressed members are parsed on ``workers`` threads
    (default: one per core).
    """
    workers = workers or os.cpu_count() or 1
    started = time.perf_counter()
    say = progress or log.info
    key = collection_date.isoformat()
    report = IngestReport(key, workers=workers)
    staging = lake.scratch_dir(f"raw-{key}-")
    files: set[str] = set()
    members_rows: list[dict] = []
    problems: list[pl.DataFrame] = []
    batches = _Batches(batch_bytes)
    numbers = iter(range(1, 1 << 62))

    def collect(summary: BatchSummary) -> None:
        report.members += len(summary.members)
        report.members_damaged += summary.damaged
        report.quarantined_members_or_files += summary.damaged
        report.lines_read += summary.lines
        report.blank_lines += summary.blank_lines
        report.quarantined_lines += summary.quarantined_lines
        report.bytes_compressed += summary.bytes_compressed
        report.bytes_decompressed += summary.bytes_decompressed
        report.message_counts.update(summary.message_counts)
        report.decompress_cpu_seconds += summary.decompress_cpu
        report.parse_cpu_seconds += summary.parse_cpu
        members_rows.extend(summary.members)
        elapsed = max(time.perf_counter() - started, 1e-9)
        say(f"{key}: {report.members} members, {report.lines_read:,} lines, "
            f"{report.tweet_lines / elapsed:,.0f} tweets/s")

    pending: deque[Future] = deque()
    with _executor(workers) as pool:
        def run(batch: list[Member]) -> None:
            if pool is None:
                collect(process_batch(batch, str(staging), next(numbers)))
                return
            pending.append(pool.submit(process_batch, batch, str(staging), next(numbers)))
            while len(pending) > 2 * workers:  # bounded in flight: memory stays flat
                collect(pending.popleft().result())

        for item in iter_members(day_dir):
            files.add(item.source_file)
            if isinstance(item, Member):
                batch = batches.add(item)
                if batch:
                    run(batch)
            else:
                _note(item, report, members_rows, problems)
        if batches.members:
            run(batches.take())
        while pending:
            collect(pending.popleft().result())
    report.files = len(files)
    if problems:
        write_part(staging, "quarantine", 0, pl.concat(problems))
    if members_rows:
        write_part(staging, "members", 0, pl.DataFrame(members_rows, infer_schema_length=None))

    say(f"{key}: parsed {report.lines_read:,} lines from {report.members} members; "
        f"writing tables")
    try:
        _write_tables(lake, staging, report, key, memory_limit)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    say(f"{key}: ingested in {report.seconds:.1f}s on {workers} workers; worker CPU "
        f"{report.decompress_cpu_seconds:.1f}s decompressing, {report.parse_cpu_seconds:.1f}s "
        f"parsing and staging")
    return report


def _note(item: Problem | Skipped, report: IngestReport, members_rows: list[dict],
          problems: list[pl.DataFrame]) -> None:
    """Record a skipped member or an unreadable file/member found while listing."""
    if isinstance(item, Skipped):
        report.members_skipped[item.reason] += 1
        members_rows.append({"source_file": item.source_file, "source_member": item.member,
                             "codec": None, "status": f"skipped: {item.reason}"})
    else:
        report.quarantined_members_or_files += 1
        problems.append(_problem_frame(item))


def _problem_frame(problem: Problem) -> pl.DataFrame:
    return pl.DataFrame({"source_file": [problem.source_file],
                         "source_member": [problem.member], "line_number": [None],
                         "scope": [problem.scope], "reason": [problem.reason], "raw": [None]},
                        schema=QUARANTINE_SCHEMA)


# One SELECT per output table, over the staged parts ({src}); {d} is the collection date.
# Twitter's time strings are parsed here, once per kept row ({t} wraps an expression).
_TIME = "strptime({}, '%a %b %d %H:%M:%S %z %Y')::TIMESTAMP"
_TABLE_SQL = {
    "tweets": """
        SELECT DATE '{d}' AS collection_date,
               * EXCLUDE (_line, _rank) REPLACE ({t_created} AS created_at),
               _line AS source_line
        FROM (SELECT *, row_number() OVER (PARTITION BY tweet_id
                  ORDER BY source_file, source_member, _line) AS _rank FROM {src})
        WHERE _rank = 1""",
    "deletions": """
        SELECT DATE '{d}' AS collection_date, tweet_id, user_id, min(deleted_at) AS deleted_at,
               count(*) AS notices, first(source_file ORDER BY source_file, source_member, _line)
               AS source_file
        FROM {src} WHERE tweet_id IS NOT NULL GROUP BY tweet_id, user_id""",
    "account_snapshots": """
        SELECT DATE '{d}' AS collection_date,
               * EXCLUDE (_line, _rank, _seen, source_member)
                 REPLACE ({t_account} AS account_created_at),
               _seen AS snapshots_seen
        FROM (SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY observed_at DESC,
                  source_file DESC, source_member DESC, _line DESC) AS _rank,
                  count(*) OVER (PARTITION BY user_id) AS _seen
              FROM (SELECT * REPLACE ({t_observed} AS observed_at) FROM {src}))
        WHERE _rank = 1""",
    "referenced_tweets": """
        SELECT DATE '{d}' AS collection_date,
               * EXCLUDE (_line, _rank, _seen, source_member)
                 REPLACE ({t_created} AS created_at),
               _seen AS times_seen
        FROM (SELECT *, row_number() OVER (PARTITION BY tweet_id ORDER BY observed_at DESC,
                  retweet_count + favorite_count DESC, source_file, source_member, _line)
                  AS _rank, count(*) OVER (PARTITION BY tweet_id) AS _seen
              FROM (SELECT * REPLACE ({t_observed} AS observed_at) FROM {src}))
        WHERE _rank = 1""",
    "quarantine": "SELECT DATE '{d}' AS collection_date, * FROM {src}",
    "ingest_members": "SELECT DATE '{d}' AS collection_date, * FROM {src}",
}
_TIMES = {"t_created": _TIME.format("created_at"),
          "t_account": _TIME.format("account_created_at"),
          "t_observed": _TIME.format("observed_at")}
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


def _write_tables(lake: ParquetLake, staging: Path, report: IngestReport, key: str,
                  memory_limit: str) -> None:
    con = duckdb.connect(":memory:", config={"memory_limit": memory_limit,
                                             "temp_directory": str(staging / "spill"),
                                             "preserve_insertion_order": False})
    try:
        for table, sql in _TABLE_SQL.items():
            glob = parts_glob(staging, _STAGED_FOR[table])
            if glob:
                src = f"read_parquet('{glob}', union_by_name = true)"
                select = sql.format(d=key, src=src, **_TIMES)
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
