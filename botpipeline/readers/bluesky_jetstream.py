"""Read one collection date of recorded Bluesky Jetstream files into the ``raw`` tables.

Input: ``<day_dir>/*.jsonl.zst`` (and ``*.jsonl``): one Jetstream event per line, as the
recorder (clients/jetstream.py) writes them. DuckDB decompresses and parses the files in one
multithreaded pass (``read_json``; every JSON path of a commit in one extraction) into a
staging database on disk, so memory stays bounded whatever the day's size; every table is
then a SQL query over the stage, written to the lake by DuckDB without passing through Python.

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
import shutil
import tempfile
import threading
import time
from collections import Counter
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


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed; a truncated or damaged zstd file raises (a stream
    reader would return the part before the damage without a word)."""
    if not path.name.endswith(".zst"):
        return path.read_bytes()
    import zstandard
    data = path.read_bytes()
    dctx = zstandard.ZstdDecompressor()
    out = []
    while data:
        obj = dctx.decompressobj()
        out.append(obj.decompress(data))
        if not obj.eof:
            raise ValueError("truncated zstd frame")
        data = obj.unused_data
    return b"".join(out)


def _line_counts(data: bytes) -> tuple[int, int]:
    """(lines, blank lines) as DuckDB's reader sees them (a last line without newline
    counts)."""
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    blank = data.count(b"\n\n") + (1 if data.startswith(b"\n") else 0)
    # whitespace-only lines are blank too, but rare enough to count them in Python
    if b"\n \n" in data or b"\n\r\n" in data or b"\n\t" in data:
        blank = sum(1 for line in data.split(b"\n") if not line.strip()) - \
            (1 if data.endswith(b"\n") else 0)
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


def _tables_sql(key: str) -> dict[str, str]:
    d = f"DATE '{key}'"
    at = "make_timestamp(time_us)"
    uri = "'at://' || did || '/' || collection || '/' || rkey"
    handles = ("(SELECT did AS h_did, arg_max(handle, time_us) AS handle FROM classified "
               "WHERE outcome = 'identity' AND handle IS NOT NULL GROUP BY did)")
    quoted = (f"CASE WHEN embed_type IN ('app.bsky.embed.record', "
              f"'app.bsky.embed.recordWithMedia') THEN coalesce(embed_uri, embed_record_uri) END")
    return {
        "posts": f"""
            SELECT {d} AS collection_date, '{PLATFORM}' AS platform, {uri} AS post_id,
                   did AS author_id, h.handle AS author_username,
                   CASE WHEN outcome = 'repost' THEN 'repost'
                        WHEN parent_uri IS NOT NULL THEN 'reply'
                        WHEN {quoted} IS NOT NULL THEN 'quote' ELSE 'post' END AS kind,
                   CASE WHEN outcome = 'post' THEN parent_uri END AS parent_id,
                   CASE WHEN outcome = 'repost' THEN subject_uri END AS reposted_id,
                   CASE WHEN outcome = 'post' THEN {quoted} END AS quoted_id,
                   CASE WHEN outcome = 'post' THEN coalesce(root_uri, {uri}) ELSE {uri} END
                       AS conversation_id,
                   {at} AS created_at, text, lang,
                   NULL::BIGINT AS like_count, NULL::BIGINT AS repost_count,
                   NULL::BIGINT AS reply_count, NULL::BIGINT AS quote_count,
                   'jetstream' AS source, NULL::BIGINT AS source_step
            FROM classified LEFT JOIN {handles} h ON h.h_did = did
            WHERE outcome IN ('post', 'repost')""",
        "accounts": f"""
            SELECT {d} AS collection_date, '{PLATFORM}' AS platform, did AS account_id,
                   arg_max(handle, time_us) FILTER (WHERE handle IS NOT NULL) AS username,
                   arg_max(display_name, time_us) FILTER (WHERE outcome = 'profile')
                       AS display_name,
                   arg_max(description, time_us) FILTER (WHERE outcome = 'profile')
                       AS description,
                   NULL::TIMESTAMP AS created_at, NULL::BIGINT AS followers_count,
                   NULL::BIGINT AS following_count, NULL::BIGINT AS post_count,
                   NULL::BIGINT AS listed_count, NULL::BIGINT AS like_count,
                   NULL::BOOLEAN AS verified, NULL::BOOLEAN AS protected,
                   NULL::BOOLEAN AS default_profile_image, max({at}) AS observed_at,
                   'jetstream' AS source
            FROM classified WHERE outcome IN ('identity', 'profile')
            GROUP BY did""",
        "likes": f"""
            SELECT {d} AS collection_date, '{PLATFORM}' AS platform, subject_uri AS post_id,
                   'like' AS action, did AS account_id, h.handle AS username,
                   {at} AS engaged_at, {at} AS observed_at, 'jetstream' AS source,
                   source_file, {uri} AS like_uri
            FROM classified LEFT JOIN {handles} h ON h.h_did = did
            WHERE outcome = 'like'""",
        "follows": f"""
            SELECT {d} AS collection_date, did AS follower_id, subject AS followee_id,
                   {uri} AS follow_uri, {at} AS followed_at
            FROM classified WHERE outcome = 'follow'""",
        "profiles": f"""
            SELECT {d} AS collection_date, did AS account_id, operation, display_name,
                   description, {at} AS updated_at
            FROM classified WHERE outcome = 'profile'""",
        "deletes": f"""
            SELECT {d} AS collection_date, c.did AS account_id, c.collection, c.rkey,
                   'at://' || c.did || '/' || c.collection || '/' || c.rkey AS uri,
                   make_timestamp(c.time_us) AS deleted_at,
                   EXISTS (SELECT 1 FROM classified x WHERE x.did = c.did
                           AND x.collection = c.collection AND x.rkey = c.rkey
                           AND x.operation = 'create' AND x.outcome <> 'quarantined')
                       AS created_same_day
            FROM classified c WHERE c.outcome = 'delete'""",
        "identity": f"""
            SELECT {d} AS collection_date, did AS account_id, kind, handle, active, status,
                   {at} AS observed_at
            FROM classified WHERE outcome IN ('identity', 'account')""",
        "event_counts": f"""
            SELECT {d} AS collection_date, outcome, coalesce(kind, '') AS kind,
                   coalesce(collection, '') AS collection, coalesce(operation, '') AS operation,
                   count(*) AS events
            FROM classified GROUP BY ALL""",
    }


def ingest_day(day_dir: str | os.PathLike[str], day: date, lake: ParquetLake, *,
               memory_limit: str = "1GB", threads: int = 2,
               temp_dir: str | os.PathLike[str] | None = None, progress=None) -> JetstreamReport:
    """Read the day's files and replace the day's partition of every table."""
    started = time.perf_counter()
    day_dir = Path(day_dir)
    key = day.isoformat()
    report = JetstreamReport()
    files = day_files(day_dir)
    file_rows, quarantine = [], []
    readable: dict[str, tuple[int, int]] = {}
    broken: dict[str, str] = {}

    def count_lines() -> None:
        """Each file's own line count (the proof DuckDB read every line) and the files that
        cannot be decompressed. Runs beside DuckDB's parse: zstd releases the GIL."""
        for path in files:
            try:
                data = _read_bytes(path)
            except Exception as exc:  # zstd raises its own error type; any unreadable file
                broken[str(path)] = f"unreadable: {exc}"[:300]
                continue
            report.bytes_decompressed += len(data)
            readable[str(path)] = _line_counts(data)
            del data

    counter = threading.Thread(target=count_lines, name="jetstream-line-count")
    counter.start()
    stage_dir = Path(tempfile.mkdtemp(prefix="jetstream-", dir=temp_dir))
    try:
        con = duckdb.connect(":memory:", config={
            "memory_limit": memory_limit, "threads": threads,
            "temp_directory": str(stage_dir / "spill"), "preserve_insertion_order": False})
        con.execute("SET enable_progress_bar = false")
        try:
            def stage(paths: list[str]) -> None:
                parts = []
                zst = [p for p in paths if p.endswith(".zst")]
                plain = [p for p in paths if not p.endswith(".zst")]
                if not paths:  # nothing readable: an empty file gives the same columns
                    (stage_dir / "empty.jsonl").write_bytes(b"")
                    plain = [str(stage_dir / "empty.jsonl")]
                for group, codec in ((zst, "zstd"), (plain, "none")):
                    if group:
                        parts.append(STAGE_SQL.format(
                            fields=", ".join(f"{expr} AS {name}"
                                             for name, expr in FIELDS.items()),
                            files="[" + ", ".join(_q(p) for p in group) + "]",
                            commit_type=COMMIT_TYPE.replace("'", "''"), compression=codec))
                con.execute("CREATE OR REPLACE TABLE classified AS " + CLASSIFY_SQL.format(
                    stage=" UNION ALL ".join(f"({part})" for part in parts)))

            try:
                stage([str(p) for p in files])
            except duckdb.Error:
                counter.join()
                if not broken:
                    raise
                stage([str(p) for p in files if str(p) not in broken])  # without them
            counter.join()
            if broken:  # DuckDB may have read part of a truncated file: read again without it
                stage([p for p in readable])
            for path in files:
                size = path.stat().st_size
                report.files += 1
                report.bytes_compressed += size
                if str(path) in broken:
                    report.files_quarantined += 1
                    quarantine.append((str(path), None, "file", broken[str(path)],
                                       path.read_bytes()[:RAW_LIMIT]))
                    file_rows.append((str(path), size, None, None, None, "quarantined"))
                else:
                    lines, blank = readable[str(path)]
                    report.lines_read += lines
                    report.blank_lines += blank
            duplicates = con.execute(
                f"SELECT count(*) - count(DISTINCT ({KEY})) FROM classified "
                f"WHERE outcome <> 'quarantined'").fetchall()[0][0]
            if duplicates:
                con.execute(DUPLICATES_SQL)
            if progress:
                progress(f"parsed and classified {report.lines_read:,} lines of "
                         f"{len(readable)} files in {time.perf_counter() - started:.1f}s")
            folder = str(day_dir)
            per_file = {os.path.join(folder, name): n for name, n in con.execute(
                "SELECT source_file, count(*) FROM classified GROUP BY 1").fetchall()}
            unreadable = {os.path.join(folder, name): n for name, n in con.execute(
                "SELECT source_file, count(*) FROM classified WHERE did IS NULL AND "
                "time_us IS NULL AND kind IS NULL GROUP BY 1").fetchall()}
            for path, (lines, blank) in readable.items():
                rows = per_file.get(path, 0)
                if rows != lines - blank:
                    raise RuntimeError(f"{path}: DuckDB read {rows} events of {lines - blank} "
                                       f"non-blank lines (a reader bug: stop loudly)")
                bad = _bad_lines(_read_bytes(Path(path))) if unreadable.get(path) else []
                if len(bad) != unreadable.get(path, 0):
                    raise RuntimeError(f"{path}: {len(bad)} lines are not JSON objects but "
                                       f"DuckDB found {unreadable.get(path, 0)}")
                quarantine += [(path, n, "line", reason, raw) for n, reason, raw in bad]
                file_rows.append((path, Path(path).stat().st_size, lines, blank,
                                  lines - blank, "read"))
            # Well-formed lines quarantined for their content: the event as DuckDB read it.
            semantic = con.execute(
                "SELECT source_file, reason, to_json({did: did, time_us: time_us, kind: kind, "
                "commit: {operation: operation, collection: collection, rkey: rkey, "
                "has_record: has_record, subject: subject}})::VARCHAR FROM classified "
                "WHERE outcome = 'quarantined' AND NOT (did IS NULL AND time_us IS NULL AND kind IS NULL)").fetchall()
            quarantine += [(os.path.join(folder, f), None, "line", r, raw.encode()[:RAW_LIMIT])
                           for f, r, raw in semantic]
            report.outcomes.update(dict(con.execute(
                "SELECT outcome, count(*) FROM classified GROUP BY 1").fetchall()))
            for table, sql in _tables_sql(key).items():
                report.rows[table] = lake.write("raw", f"bluesky_jetstream_{table}", key, sql,
                                                con=con)
                if progress:
                    progress(f"raw.bluesky_jetstream_{table}: {report.rows[table]:,} rows")
            con.execute("CREATE TABLE q (collection_date DATE, source_file VARCHAR, "
                        "source_member VARCHAR, line_number BIGINT, scope VARCHAR, "
                        "reason VARCHAR, raw BLOB)")
            if quarantine:
                con.executemany(f"INSERT INTO q VALUES (DATE '{key}', ?, NULL, ?, ?, ?, ?)",
                                [(f, n, s, r, raw) for f, n, s, r, raw in quarantine])
            report.rows["quarantine"] = lake.write("raw", "bluesky_jetstream_quarantine", key,
                                                   "SELECT * FROM q", con=con)
            con.execute("CREATE TABLE f (collection_date DATE, source_file VARCHAR, "
                        "bytes BIGINT, lines BIGINT, blank_lines BIGINT, events BIGINT, "
                        "status VARCHAR)")
            if file_rows:
                con.executemany(f"INSERT INTO f VALUES (DATE '{key}', ?, ?, ?, ?, ?, ?)",
                                file_rows)
            report.rows["files"] = lake.write("raw", "bluesky_jetstream_files", key,
                                              "SELECT * FROM f", con=con)
        finally:
            con.close()
    finally:
        shutil.rmtree(stage_dir, ignore_errors=True)
    report.seconds = time.perf_counter() - started
    return report
