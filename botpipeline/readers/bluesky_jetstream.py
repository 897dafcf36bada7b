"""Read one collection date of recorded Bluesky Jetstream files into the ``raw`` tables.

Input: ``<day_dir>/*.jsonl.zst`` (and ``*.jsonl``): one Jetstream event per line, as the
recorder (clients/jetstream.py) writes them. Each hour file is read on its own, on one core
per file (``threads`` files at a time): DuckDB decompresses and parses it (``read_json``, every
JSON path of a commit in one extraction), classifies each event in SQL and stages its rows per
table as a Parquet part, so memory stays bounded by the files in flight whatever the day's
size. Beside it, the file's lines are counted in a streamed
decompression (the proof DuckDB read every line; a truncated file is found there). Once every
file is read, each table is one SQL query over its staged parts (the handles of the day's
identity events joined in), written to the lake by DuckDB without passing through Python.

Duplicates (the same event twice in the day's files) are found within a file; files whose
event times overlap (not the recorder's hourly files, which never do) are read together, so
a duplicate across them is found too.

Every non-blank line is accounted for (``raw.bluesky_jetstream_event_counts``): an event
ingested into one of the tables below, a counted notice (a collection the model does not use,
such as blocks; an edit of a post), a duplicate of an event already read that day, or a
quarantined line with its reason. DuckDB gives an unreadable line a null row; the number of
rows per file is checked against the file's own line count, and only the files with such
lines are read again in Python to keep those lines' bytes and numbers in the quarantine.

Tables (all with ``collection_date``):
- ``bluesky_jetstream_posts``: posts, replies, quotes and reposts in the core post columns
  (``post_id`` = the record's ``at://`` URI; ``parent_id`` / ``conversation_id`` = the reply's
  parent / root URI; ``quoted_id`` the quoted record; ``reposted_id`` the repost's subject);
- ``bluesky_jetstream_accounts``: accounts with an identity (handle) or profile event, core
  account columns, newest values;
- ``bluesky_jetstream_likes``: one row per like record (engagement columns + ``like_uri``);
- ``bluesky_jetstream_follows``, ``bluesky_jetstream_profiles``, ``bluesky_jetstream_deletes``
  (with the deleted record's URI and whether it was created the same day),
  ``bluesky_jetstream_identity`` (identity and account events);
- ``bluesky_jetstream_quarantine``, ``bluesky_jetstream_event_counts``,
  ``bluesky_jetstream_files``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import orjson

from botpipeline.storage.lake import ParquetLake

PLATFORM = "bluesky"
RAW_LIMIT = 2000
TABLES = ("posts", "accounts", "likes", "follows", "profiles", "deletes", "identity",
          "quarantine", "event_counts", "files")
POST = "app.bsky.feed.post"
LIKE = "app.bsky.feed.like"
REPOST = "app.bsky.feed.repost"
FOLLOW = "app.bsky.graph.follow"
PROFILE = "app.bsky.actor.profile"

# The commit as a typed struct: DuckDB parses each line once and keeps only these paths
# (a value of another type becomes null: the classification then quarantines the event).
COMMIT_TYPE = ("STRUCT(operation VARCHAR, collection VARCHAR, rkey VARCHAR, rev VARCHAR, "
               "cid VARCHAR, record STRUCT(text VARCHAR, langs VARCHAR[], "
               "reply STRUCT(parent STRUCT(uri VARCHAR), root STRUCT(uri VARCHAR)), "
               "embed STRUCT(\"$type\" VARCHAR, record STRUCT(uri VARCHAR, "
               "record STRUCT(uri VARCHAR))), subject JSON, displayName VARCHAR, "
               "description VARCHAR, \"$type\" VARCHAR))")
FIELDS = {
    "operation": "commit.operation", "collection": "commit.collection", "rkey": "commit.rkey",
    "rev": "commit.rev", "text": "commit.record.text", "lang": "commit.record.langs[1]",
    "parent_uri": "commit.record.reply.parent.uri", "root_uri": "commit.record.reply.root.uri",
    "embed_type": "commit.record.embed.\"$type\"",
    "embed_uri": "commit.record.embed.record.uri",
    "embed_record_uri": "commit.record.embed.record.record.uri",
    "subject_uri": "commit.record.subject->>'$.uri'",
    # a follow's (or block's) subject is a DID string; a like's is an object (subject_uri)
    "subject": "CASE WHEN commit.collection LIKE 'app.bsky.graph.%' "
               "THEN commit.record.subject->>'$' END",
    "display_name": "commit.record.displayName", "description": "commit.record.description",
    "has_record": "commit.record IS NOT NULL",
}


@dataclass
class JetstreamReport:
    files: int = 0
    files_quarantined: int = 0
    lines_read: int = 0
    blank_lines: int = 0
    outcomes: Counter = field(default_factory=Counter)
    rows: dict[str, int] = field(default_factory=dict)
    bytes_compressed: int = 0
    bytes_decompressed: int = 0
    seconds: float = 0.0

    @property
    def events(self) -> int:
        return self.lines_read - self.blank_lines

    @property
    def quarantined(self) -> int:
        return self.outcomes.get("quarantined", 0)

    @property
    def balanced(self) -> bool:
        return sum(self.outcomes.values()) == self.events


def day_files(day_dir: Path) -> list[Path]:
    if not day_dir.is_dir():
        return []
    # the recorder's own files (_gaps.jsonl, _closed.json, .<HH>.jsonl.open) are not events
    return sorted(p for p in day_dir.iterdir() if p.is_file() and p.name[0] not in "._"
                  and (p.name.endswith(".jsonl.zst") or p.name.endswith(".jsonl")))


CHUNK_BYTES = 4 << 20  # read size of the streamed passes


def _chunks(path: Path):
    """The file's decompressed bytes, a few MB at a time (an hour of the whole firehose is
    gigabytes); a truncated or damaged zstd file raises (a stream reader would return the part
    before the damage without a word)."""
    with open(path, "rb") as fh:
        if not path.name.endswith(".zst"):
            yield from iter(lambda: fh.read(CHUNK_BYTES), b"")
            return
        import zstandard
        dctx = zstandard.ZstdDecompressor()
        frame, started = dctx.decompressobj(), False
        while data := fh.read(CHUNK_BYTES):
            while data:
                started = True
                out = frame.decompress(data)
                if out:
                    yield out
                if frame.eof:  # the file holds several frames: go on with the next one
                    data, frame, started = frame.unused_data, dctx.decompressobj(), False
                else:
                    data = b""
        if started and not frame.eof:
            raise ValueError("truncated zstd frame")


def _read_bytes(path: Path) -> bytes:
    """The whole file decompressed (only for the rare file with unreadable lines)."""
    return b"".join(_chunks(path))


# a line that is blank or starts with whitespace (JSON lines never do): counted line by line
_ODD_LINE = re.compile(rb"\n[\n \t\r]")


def _count_lines(path: Path) -> tuple[int, int, int]:
    """(lines, blank lines, decompressed bytes) as DuckDB's reader sees them, streamed: one
    count and one search per chunk; a file with a blank or whitespace-only line (rare) is
    counted again line by line."""
    lines = size = 0
    last = b"\n"  # the file starts a line
    odd = False
    for chunk in _chunks(path):
        size += len(chunk)
        lines += chunk.count(b"\n")
        odd = odd or (last == b"\n" and chunk[:1] in (b"\n", b" ", b"\t", b"\r")) \
            or _ODD_LINE.search(chunk) is not None
        last = chunk[-1:]
    if size and last != b"\n":  # a last line without newline counts
        lines += 1
    return (*_count_lines_exactly(path), size) if odd else (lines, 0, size)


def _count_lines_exactly(path: Path) -> tuple[int, int]:
    lines = blank = 0
    carry = b""
    for chunk in _chunks(path):
        parts = (carry + chunk).split(b"\n")
        carry = parts.pop()
        lines += len(parts)
        blank += sum(1 for part in parts if not part.strip())
    if carry:
        lines += 1
        blank += not carry.strip()
    return lines, blank


def _bad_lines(data: bytes) -> list[tuple[int, str, bytes]]:
    """Lines that are not JSON objects: (line number, reason, bytes)."""
    bad = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            bad.append((number, f"not JSON: {exc}", line[:RAW_LIMIT]))
            continue
        if not isinstance(value, dict):
            bad.append((number, "not a JSON object", line[:RAW_LIMIT]))
    return bad


def _q(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


STAGE_SQL = """
SELECT parse_filename(filename) AS source_file, did, time_us, kind, {fields},
       identity.handle AS handle, account.active AS active, account.status AS status
FROM read_json({files}, format = 'newline_delimited', compression = '{compression}',
               filename = true, ignore_errors = true,
               columns = {{did: 'VARCHAR', time_us: 'BIGINT', kind: 'VARCHAR',
                           commit: '{commit_type}', identity: 'STRUCT(handle VARCHAR)',
                           account: 'STRUCT(active BOOLEAN, status VARCHAR)'}})
"""

# Each event's outcome: the table it lands in, a counted notice, or a quarantine reason.
CLASSIFY_SQL = f"""
SELECT *,
    CASE
      WHEN did IS NULL AND time_us IS NULL AND kind IS NULL THEN 'quarantined'
      WHEN reason IS NOT NULL THEN 'quarantined'
      WHEN kind = 'identity' THEN 'identity'
      WHEN kind = 'account' THEN 'account'
      WHEN operation = 'delete' THEN 'delete'
      WHEN collection = '{POST}' AND operation = 'create' THEN 'post'
      WHEN collection = '{POST}' THEN 'post_edit'
      WHEN collection = '{REPOST}' AND operation = 'create' THEN 'repost'
      WHEN collection = '{LIKE}' AND operation = 'create' THEN 'like'
      WHEN collection = '{FOLLOW}' AND operation = 'create' THEN 'follow'
      WHEN collection = '{PROFILE}' THEN 'profile'
      ELSE 'other_collection'
    END AS outcome
FROM (
    SELECT *,
        CASE
          WHEN did IS NULL AND time_us IS NULL AND kind IS NULL THEN 'not a JSON event'
          WHEN time_us IS NULL THEN 'no integer time_us'
          WHEN did IS NULL OR NOT starts_with(did, 'did:') THEN 'did is not a DID'
          WHEN kind NOT IN ('commit', 'identity', 'account') OR kind IS NULL
            THEN 'unknown event kind'
          WHEN kind <> 'commit' THEN NULL
          WHEN collection IS NULL THEN 'commit without collection'
          WHEN rkey IS NULL THEN 'commit without rkey'
          WHEN operation IS NULL OR operation NOT IN ('create', 'update', 'delete')
            THEN 'commit without a valid operation'
          WHEN operation <> 'delete' AND NOT has_record THEN 'create or update without record'
          WHEN operation = 'create' AND collection IN ('{LIKE}', '{REPOST}')
               AND (subject_uri IS NULL OR NOT starts_with(subject_uri, 'at://'))
            THEN 'like or repost without subject.uri'
          WHEN operation = 'create' AND collection = '{FOLLOW}'
               AND (subject IS NULL OR NOT starts_with(subject, 'did:'))
            THEN 'follow without a subject DID'
        END AS reason
    FROM ({{stage}}))
"""


KEY = "time_us, did, kind, collection, rkey, operation, rev"
# Duplicates (the same event twice in a day's files: none from the recorder) are rare, so the
# window runs only when the distinct count says there are some.
DUPLICATES_SQL = f"""
UPDATE classified SET outcome = 'duplicate' WHERE rowid IN (
    SELECT rowid FROM (SELECT rowid, row_number() OVER (PARTITION BY {KEY} ORDER BY rowid) AS n
                       FROM classified WHERE outcome <> 'quarantined') WHERE n > 1)
"""


# What one file (or group of files) adds to the staging tables, from its ``classified`` rows;
# the day's tables are then built from these (``_tables_sql``).
URI = "'at://' || did || '/' || collection || '/' || rkey"
AT = "make_timestamp(time_us)"
QUOTED = ("CASE WHEN embed_type IN ('app.bsky.embed.record', 'app.bsky.embed.recordWithMedia') "
          "THEN coalesce(embed_uri, embed_record_uri) END")


def _stage_sql(key: str) -> dict[str, str]:
    d = f"DATE '{key}'"
    return {
        "posts": f"""
            SELECT {d} AS collection_date, '{PLATFORM}' AS platform, {URI} AS post_id,
                   did AS author_id,
                   CASE WHEN outcome = 'repost' THEN 'repost'
                        WHEN parent_uri IS NOT NULL THEN 'reply'
                        WHEN {QUOTED} IS NOT NULL THEN 'quote' ELSE 'post' END AS kind,
                   CASE WHEN outcome = 'post' THEN parent_uri END AS parent_id,
                   CASE WHEN outcome = 'repost' THEN subject_uri END AS reposted_id,
                   CASE WHEN outcome = 'post' THEN {QUOTED} END AS quoted_id,
                   CASE WHEN outcome = 'post' THEN coalesce(root_uri, {URI}) ELSE {URI} END
                       AS conversation_id,
                   {AT} AS created_at, text, lang
            FROM classified WHERE outcome IN ('post', 'repost')""",
        "likes": f"""
            SELECT {d} AS collection_date, subject_uri AS post_id, did AS account_id,
                   {AT} AS engaged_at, source_file, {URI} AS like_uri
            FROM classified WHERE outcome = 'like'""",
        "follows": f"""
            SELECT {d} AS collection_date, did AS follower_id, subject AS followee_id,
                   {URI} AS follow_uri, {AT} AS followed_at
            FROM classified WHERE outcome = 'follow'""",
        "profiles": f"""
            SELECT {d} AS collection_date, did AS account_id, operation, display_name,
                   description, {AT} AS updated_at
            FROM classified WHERE outcome = 'profile'""",
        "deletes": f"""
            SELECT {d} AS collection_date, did AS account_id, collection, rkey, {URI} AS uri,
                   {AT} AS deleted_at
            FROM classified WHERE outcome = 'delete'""",
        "identity": f"""
            SELECT {d} AS collection_date, did AS account_id, kind, handle, active, status,
                   {AT} AS observed_at
            FROM classified WHERE outcome IN ('identity', 'account')""",
        # records created that day that no table above keeps (for deletes.created_same_day)
        "other_creates": f"""
            SELECT {URI} AS uri FROM classified
            WHERE outcome IN ('other_collection', 'profile') AND operation = 'create'""",
        "event_counts": """
            SELECT outcome, coalesce(kind, '') AS kind, coalesce(collection, '') AS collection,
                   coalesce(operation, '') AS operation, count(*) AS events
            FROM classified GROUP BY ALL""",
        # well-formed lines quarantined for their content: the event as DuckDB read it
        "semantic_quarantine": """
            SELECT source_file, reason, to_json({did: did, time_us: time_us, kind: kind,
                   commit: {operation: operation, collection: collection, rkey: rkey,
                            has_record: has_record, subject: subject}})::VARCHAR AS raw
            FROM classified WHERE outcome = 'quarantined'
              AND NOT (did IS NULL AND time_us IS NULL AND kind IS NULL)""",
        "file_rows": """
            SELECT source_file, count(*) AS rows,
                   count(*) FILTER (WHERE did IS NULL AND time_us IS NULL AND kind IS NULL)
                       AS unreadable,
                   min(time_us) FILTER (WHERE outcome <> 'quarantined') AS first_us,
                   max(time_us) FILTER (WHERE outcome <> 'quarantined') AS last_us
            FROM classified GROUP BY source_file""",
    }


def _tables_sql(key: str) -> dict[str, str]:
    """The day's tables from the staging tables (``s_<name>``)."""
    d = f"DATE '{key}'"
    handles = ("(SELECT account_id AS h_did, arg_max(handle, observed_at) AS handle "
               "FROM s_identity WHERE kind = 'identity' AND handle IS NOT NULL GROUP BY 1)")
    created = """(
        SELECT post_id AS uri FROM s_posts WHERE post_id IN (SELECT uri FROM s_deletes)
        UNION ALL SELECT like_uri FROM s_likes WHERE like_uri IN (SELECT uri FROM s_deletes)
        UNION ALL SELECT follow_uri FROM s_follows
                  WHERE follow_uri IN (SELECT uri FROM s_deletes)
        UNION ALL SELECT uri FROM s_other_creates WHERE uri IN (SELECT uri FROM s_deletes))"""
    return {
        "posts": f"""
            SELECT p.collection_date, p.platform, p.post_id, p.author_id,
                   h.handle AS author_username, p.kind, p.parent_id, p.reposted_id,
                   p.quoted_id, p.conversation_id, p.created_at, p.text, p.lang,
                   NULL::BIGINT AS like_count, NULL::BIGINT AS repost_count,
                   NULL::BIGINT AS reply_count, NULL::BIGINT AS quote_count,
                   'jetstream' AS source, NULL::BIGINT AS source_step
            FROM s_posts p LEFT JOIN {handles} h ON h.h_did = p.author_id""",
        "accounts": f"""
            SELECT {d} AS collection_date, '{PLATFORM}' AS platform, did AS account_id,
                   arg_max(handle, t) FILTER (WHERE handle IS NOT NULL) AS username,
                   arg_max(display_name, t) FILTER (WHERE is_profile) AS display_name,
                   arg_max(description, t) FILTER (WHERE is_profile) AS description,
                   NULL::TIMESTAMP AS created_at, NULL::BIGINT AS followers_count,
                   NULL::BIGINT AS following_count, NULL::BIGINT AS post_count,
                   NULL::BIGINT AS listed_count, NULL::BIGINT AS like_count,
                   NULL::BOOLEAN AS verified, NULL::BOOLEAN AS protected,
                   NULL::BOOLEAN AS default_profile_image, max(t) AS observed_at,
                   'jetstream' AS source
            FROM (SELECT account_id AS did, handle, NULL AS display_name, NULL AS description,
                         observed_at AS t, false AS is_profile
                  FROM s_identity WHERE kind = 'identity'
                  UNION ALL
                  SELECT account_id, NULL, display_name, description, updated_at, true
                  FROM s_profiles)
            GROUP BY did""",
        "likes": f"""
            SELECT l.collection_date, '{PLATFORM}' AS platform, l.post_id, 'like' AS action,
                   l.account_id, h.handle AS username, l.engaged_at,
                   l.engaged_at AS observed_at, 'jetstream' AS source, l.source_file,
                   l.like_uri
            FROM s_likes l LEFT JOIN {handles} h ON h.h_did = l.account_id""",
        "follows": "SELECT * FROM s_follows",
        "profiles": "SELECT * FROM s_profiles",
        "deletes": f"""
            SELECT *, uri IN (SELECT uri FROM {created}) AS created_same_day
            FROM s_deletes""",
        "identity": "SELECT * FROM s_identity",
        "event_counts": f"""
            SELECT {d} AS collection_date, outcome, kind, collection, operation,
                   sum(events)::BIGINT AS events
            FROM s_event_counts GROUP BY ALL""",
    }


def _overlapping(spans: dict[str, tuple[int, int]]) -> list[list[str]]:
    """Files whose event times overlap, in groups (a duplicate can only be in such files)."""
    groups: list[list[str]] = []
    end = None
    for name, (first, last) in sorted(spans.items(), key=lambda item: item[1]):
        if end is not None and first <= end:
            groups[-1].append(name)
        else:
            groups.append([name])
        end = last if end is None else max(end, last)
    return [g for g in groups if len(g) > 1]


@dataclass
class _FileCount:
    lines: int = 0
    blank: int = 0
    decompressed: int = 0
    broken: str | None = None


def _count(path: Path) -> _FileCount:
    try:
        lines, blank, size = _count_lines(path)
    except Exception as exc:  # zstd raises its own error types; any unreadable file
        return _FileCount(broken=f"unreadable: {exc}"[:300])
    return _FileCount(lines, blank, size)


class _Stage:
    """Staging: each file's rows per table as a Parquet part (``<folder>/<table>/``), read as
    the views ``s_<table>``; one DuckDB session whose cursors the workers share."""

    def __init__(self, folder: Path, key: str, memory_limit: str, threads: int):
        self.folder, self.key = folder, key
        self.parts = iter(range(1, 1 << 62))
        self.part_of: dict[str, int] = {}  # file name -> its staged part
        self.con = duckdb.connect(":memory:", config={
            "memory_limit": memory_limit, "threads": threads,
            "temp_directory": str(folder / "spill"), "preserve_insertion_order": False})
        self.con.execute("SET enable_progress_bar = false")
        (folder / "empty.jsonl").write_bytes(b"")
        self._add(self.con, [folder / "empty.jsonl"], 0)  # part 0: no rows, the columns
        for name in _stage_sql(key):
            glob = _q(str(folder / name / "*.parquet"))
            self.con.execute(f"CREATE VIEW s_{name} AS SELECT * FROM read_parquet({glob})")

    def forget(self, names: set[str]) -> None:
        """Drop the staged parts of these files (to read them again, together)."""
        for number in {self.part_of.pop(name) for name in names if name in self.part_of}:
            for part in self.folder.glob(f"*/{number:06d}.parquet"):
                part.unlink()

    def add(self, paths: list[Path]) -> None:
        """Classify the files' events and write their staged parts (one cursor: runs beside
        the other workers)."""
        number = next(self.parts)
        self.part_of.update((p.name, number) for p in paths)
        cur = self.con.cursor()
        try:
            self._add(cur, paths, number)
        finally:
            cur.close()

    def _add(self, cur: duckdb.DuckDBPyConnection, paths: list[Path], number: int) -> None:
        cur.execute("CREATE OR REPLACE TEMP TABLE classified AS " + CLASSIFY_SQL.format(
            stage=_stage_select([str(p) for p in paths])))
        # a hash collision only sends the file through the exact window below
        duplicates = cur.execute(
            f"SELECT count(*) - count(DISTINCT hash({KEY})) FROM classified "
            f"WHERE outcome <> 'quarantined'").fetchall()[0][0]
        if duplicates:
            cur.execute(DUPLICATES_SQL)
        for name, sql in _stage_sql(self.key).items():
            (self.folder / name).mkdir(exist_ok=True)
            part = _q(str(self.folder / name / f"{number:06d}.parquet"))
            cur.execute(f"COPY ({sql}) TO {part} (FORMAT parquet, COMPRESSION snappy)")
        cur.execute("DROP TABLE classified")


def _stage_select(paths: list[str]) -> str:
    parts = []
    for codec in ("zstd", "none"):
        group = [p for p in paths if p.endswith(".zst") == (codec == "zstd")]
        if group:
            parts.append("(" + STAGE_SQL.format(
                fields=", ".join(f"{expr} AS {name}" for name, expr in FIELDS.items()),
                files="[" + ", ".join(_q(p) for p in group) + "]",
                commit_type=COMMIT_TYPE.replace("'", "''"), compression=codec) + ")")
    return " UNION ALL ".join(parts)


def ingest_day(day_dir: str | os.PathLike[str], day: date, lake: ParquetLake, *,
               memory_limit: str = "1GB", threads: int = 2,
               temp_dir: str | os.PathLike[str] | None = None, progress=None) -> JetstreamReport:
    """Read the day's files and replace the day's partition of every table."""
    started = time.perf_counter()
    day_dir = Path(day_dir)
    key = day.isoformat()
    report = JetstreamReport()
    files = day_files(day_dir)
    counts: dict[str, _FileCount] = {}
    stage_dir = Path(tempfile.mkdtemp(prefix="jetstream-", dir=temp_dir))
    try:
        stage = _Stage(stage_dir, key, memory_limit, threads)
        try:
            def read(group: list[Path]) -> None:
                for path in group:
                    if path.name not in counts:
                        counts[path.name] = _count(path)
                readable = [p for p in group if not counts[p.name].broken
                            and counts[p.name].lines]
                if not readable:
                    return
                try:
                    stage.add(readable)
                except duckdb.Error as exc:
                    raise RuntimeError(f"DuckDB could not read {[p.name for p in readable]}, "
                                       f"which decompress whole (a reader bug): {exc}") from exc

            def read_all(groups: list[list[Path]]) -> None:
                done, events = 0, 0
                with ThreadPoolExecutor(max(1, threads), "jetstream") as pool:
                    for group, _ in zip(groups, pool.map(read, groups)):
                        done += len(group)
                        events += sum(counts[p.name].lines for p in group)
                        if progress:
                            elapsed = time.perf_counter() - started
                            progress(f"{', '.join(p.name for p in group)}: read ({done}/"
                                     f"{len(files)} files, {events:,} lines, "
                                     f"{events / elapsed:,.0f} lines/s)")

            read_all([[p] for p in files])
            spans = {name: (first, last) for name, first, last in stage.con.execute(
                "SELECT source_file, min(first_us), max(last_us) FROM s_file_rows "
                "WHERE first_us IS NOT NULL GROUP BY 1").fetchall()}
            overlapping = _overlapping(spans)
            if overlapping:  # a duplicate may be in two files: read those files together
                if progress:
                    progress(f"files with overlapping event times, read again together to "
                             f"find duplicates across them: {overlapping}")
                stage.forget({name for group in overlapping for name in group})
                by_name = {p.name: p for p in files}
                read_all([[by_name[n] for n in g] for g in overlapping])
            quarantine, file_rows = _account(stage.con, day_dir, files, counts, report)
            if progress:
                progress(f"parsed and classified {report.lines_read:,} lines of "
                         f"{report.files - report.files_quarantined} files in "
                         f"{time.perf_counter() - started:.1f}s")
            for table, sql in _tables_sql(key).items():
                report.rows[table] = lake.write("raw", f"bluesky_jetstream_{table}", key, sql,
                                                con=stage.con)
                if progress:
                    progress(f"raw.bluesky_jetstream_{table}: {report.rows[table]:,} rows")
            _write_accounting(stage.con, lake, key, quarantine, file_rows, report)
        finally:
            stage.con.close()
    finally:
        shutil.rmtree(stage_dir, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    return report


def _account(con: duckdb.DuckDBPyConnection, day_dir: Path, files: list[Path],
             counts: dict[str, _FileCount], report: JetstreamReport
             ) -> tuple[list[tuple], list[tuple]]:
    """Check every file's rows against its own line count; fill the report's counts.
    Returns the quarantine rows (unreadable files and lines, well-formed lines quarantined for
    their content) and one row per file."""
    rows = {name: (n, bad) for name, n, bad in con.execute(
        "SELECT source_file, sum(rows), sum(unreadable) FROM s_file_rows GROUP BY 1").fetchall()}
    quarantine, file_rows = [], []
    for path in files:
        size = path.stat().st_size
        count = counts[path.name]
        report.files += 1
        report.bytes_compressed += size
        if count.broken:
            report.files_quarantined += 1
            with open(path, "rb") as fh:
                head = fh.read(RAW_LIMIT)
            quarantine.append((str(path), None, "file", count.broken, head))
            file_rows.append((str(path), size, None, None, None, "quarantined"))
            continue
        report.lines_read += count.lines
        report.blank_lines += count.blank
        report.bytes_decompressed += count.decompressed
        n, unreadable = rows.get(path.name, (0, 0))
        if n != count.lines - count.blank:
            raise RuntimeError(f"{path}: DuckDB read {n} events of {count.lines - count.blank} "
                               f"non-blank lines (a reader bug: stop loudly)")
        bad = _bad_lines(_read_bytes(path)) if unreadable else []
        if len(bad) != (unreadable or 0):
            raise RuntimeError(f"{path}: {len(bad)} lines are not JSON objects but "
                               f"DuckDB found {unreadable}")
        quarantine += [(str(path), number, "line", reason, raw) for number, reason, raw in bad]
        file_rows.append((str(path), size, count.lines, count.blank, count.lines - count.blank,
                          "read"))
    folder = str(day_dir)
    quarantine += [(os.path.join(folder, name), None, "line", reason, raw.encode()[:RAW_LIMIT])
                   for name, reason, raw in con.execute(
                       "SELECT source_file, reason, raw FROM s_semantic_quarantine").fetchall()]
    report.outcomes.update(dict(con.execute(
        "SELECT outcome, sum(events)::BIGINT FROM s_event_counts GROUP BY 1").fetchall()))
    return quarantine, file_rows


def _write_accounting(con: duckdb.DuckDBPyConnection, lake: ParquetLake, key: str,
                      quarantine: list[tuple], file_rows: list[tuple],
                      report: JetstreamReport) -> None:
    con.execute("CREATE OR REPLACE TEMP TABLE q (collection_date DATE, source_file VARCHAR, "
                "source_member VARCHAR, line_number BIGINT, scope VARCHAR, reason VARCHAR, "
                "raw BLOB)")
    if quarantine:
        con.executemany(f"INSERT INTO q VALUES (DATE '{key}', ?, NULL, ?, ?, ?, ?)",
                        quarantine)
    con.execute("CREATE OR REPLACE TEMP TABLE f (collection_date DATE, source_file VARCHAR, "
                "bytes BIGINT, lines BIGINT, blank_lines BIGINT, events BIGINT, "
                "status VARCHAR)")
    if file_rows:
        con.executemany(f"INSERT INTO f VALUES (DATE '{key}', ?, ?, ?, ?, ?, ?)",
                        file_rows)
    report.rows["quarantine"] = lake.write("raw", "bluesky_jetstream_quarantine", key,
                                           "SELECT * FROM q", con=con)
    report.rows["files"] = lake.write("raw", "bluesky_jetstream_files", key,
                                      "SELECT * FROM f", con=con)
