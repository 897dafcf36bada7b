"""Parse one decompressed member of v1.1 stream messages into normalized frames.

The fast path hands the whole member to DuckDB's JSON reader with explicit column types (only
the fields we keep are materialized; measured here it parses stream tweets about four times
faster than polars' NDJSON reader), then shapes the frames with polars expressions. The reader
is strict: one bad line fails the member, and only then do we walk its lines one by one to
quarantine exactly the bad ones and parse the rest. Every non-blank line ends up as a tweet, a
notice, or a quarantine row.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field

import duckdb
import orjson
import polars as pl

# ------------------------------------------------------------------------------ input schema
_USER = pl.Struct({
    "id_str": pl.String, "screen_name": pl.String, "name": pl.String,
    "description": pl.String, "location": pl.String, "url": pl.String,
    "created_at": pl.String, "followers_count": pl.Int64, "friends_count": pl.Int64,
    "statuses_count": pl.Int64, "listed_count": pl.Int64, "favourites_count": pl.Int64,
    "verified": pl.Boolean, "protected": pl.Boolean, "default_profile": pl.Boolean,
    "default_profile_image": pl.Boolean, "profile_image_url_https": pl.String,
    "lang": pl.String,
})
_ENTITIES = pl.Struct({
    "hashtags": pl.List(pl.Struct({"text": pl.String})),
    "urls": pl.List(pl.Struct({"expanded_url": pl.String})),
    "user_mentions": pl.List(pl.Struct({"id_str": pl.String, "screen_name": pl.String})),
})
_TWEET_FIELDS = {
    "id_str": pl.String, "created_at": pl.String, "text": pl.String, "source": pl.String,
    "lang": pl.String, "in_reply_to_status_id_str": pl.String,
    "in_reply_to_user_id_str": pl.String, "in_reply_to_screen_name": pl.String,
    "user": _USER, "entities": _ENTITIES,
    "extended_tweet": pl.Struct({"full_text": pl.String, "entities": _ENTITIES}),
    "quoted_status_id_str": pl.String,
    "retweet_count": pl.Int64, "favorite_count": pl.Int64, "reply_count": pl.Int64,
    "quote_count": pl.Int64,
}
_REFERENCED = pl.Struct(_TWEET_FIELDS)
NOTICE_TYPES = ("delete", "limit", "scrub_geo", "status_withheld", "user_withheld",
                "disconnect", "warning", "event", "friends", "direct_message")
SCHEMA = {
    **_TWEET_FIELDS,
    "retweeted_status": _REFERENCED,
    "quoted_status": _REFERENCED,
    "timestamp_ms": pl.String,
    "delete": pl.Struct({
        "status": pl.Struct({"id_str": pl.String, "user_id_str": pl.String}),
        "timestamp_ms": pl.String,
    }),
}


def _duckdb_type(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Struct):
        return "STRUCT(" + ", ".join(f'"{f.name}" {_duckdb_type(f.dtype)}'
                                     for f in dtype.fields) + ")"
    if isinstance(dtype, pl.List):
        return _duckdb_type(dtype.inner) + "[]"
    return {pl.String: "VARCHAR", pl.Int64: "BIGINT", pl.Boolean: "BOOLEAN"}[dtype.base_type()]


# Other notices are only counted: read as JSON, any payload shape is accepted.
_COLUMNS = "{" + ", ".join(
    [f"'{name}': '{_duckdb_type(dtype)}'" for name, dtype in SCHEMA.items()]
    + [f"'{name}': 'JSON'" for name in NOTICE_TYPES[1:]]) + "}"
_READ_SQL = ("SELECT * FROM read_json(?, format = 'newline_delimited', columns = "
             + _COLUMNS + ")")


class ParseError(ValueError):
    """The JSON reader refused the input (a bad line somewhere in it)."""

# ----------------------------------------------------------------------------- output frames
QUARANTINE_SCHEMA = {
    "source_file": pl.String, "source_member": pl.String, "line_number": pl.Int64,
    "scope": pl.String, "reason": pl.String, "raw": pl.Binary,
}


@dataclass
class MemberResult:
    tweets: pl.DataFrame
    deletions: pl.DataFrame
    snapshots: pl.DataFrame
    referenced: pl.DataFrame
    quarantine: pl.DataFrame
    lines: int  # non-blank lines
    blank_lines: int
    message_counts: dict[str, int] = field(default_factory=dict)


# Times stay strings here ("Fri Jan 01 07:29:00 +0000 2021"): DuckDB parses them once, after
# deduplication, when the day's tables are written (see ingest.py).


def _entities(struct: pl.Expr) -> list[pl.Expr]:
    ext = pl.col("extended_tweet").struct.field("entities")
    ent = pl.when(ext.is_not_null()).then(ext).otherwise(struct)
    return [
        ent.struct.field("hashtags").list.eval(pl.element().struct.field("text"))
           .alias("hashtags"),
        ent.struct.field("urls").list.eval(pl.element().struct.field("expanded_url"))
           .alias("urls"),
        ent.struct.field("user_mentions").list.eval(pl.element().struct.field("id_str"))
           .alias("mention_user_ids"),
    ]


def _source_app(expr: pl.Expr) -> pl.Expr:
    # '<a href="..." rel="nofollow">Twitter for Android</a>' -> 'Twitter for Android'
    return pl.coalesce(expr.str.extract(r">([^<]*)</a>", 1), expr)


def _message_type() -> pl.Expr:
    expr = pl.when(pl.col("delete").is_not_null()).then(pl.lit("delete"))
    for name in NOTICE_TYPES[1:]:
        expr = expr.when(pl.col(name).is_not_null()).then(pl.lit(name))
    looks_like_tweet = (pl.col("user").is_not_null() | pl.col("text").is_not_null()
                        | pl.col("created_at").is_not_null())
    return (expr.when(pl.col("id_str").is_not_null() & looks_like_tweet).then(pl.lit("tweet"))
            .when(looks_like_tweet).then(pl.lit("bad:tweet without id_str"))
            .otherwise(pl.lit("bad:unrecognized message (no id_str and no known notice type)")))


def _tweets(frame: pl.DataFrame) -> pl.DataFrame:
    rt, qt, user = pl.col("retweeted_status"), pl.col("quoted_status"), pl.col("user")
    retweeted_id = rt.struct.field("id_str")
    quoted_id = pl.coalesce(pl.col("quoted_status_id_str"), qt.struct.field("id_str"))
    reply_to = pl.col("in_reply_to_status_id_str")
    return frame.select(
        pl.col("id_str").alias("tweet_id"),
        pl.col("created_at"),
        user.struct.field("id_str").alias("user_id"),
        user.struct.field("screen_name").alias("screen_name"),
        pl.coalesce(pl.col("extended_tweet").struct.field("full_text"), pl.col("text"))
          .alias("text"),
        pl.col("lang"),
        _source_app(pl.col("source")).alias("source_app"),
        pl.when(retweeted_id.is_not_null()).then(pl.lit("retweet"))
          .when(reply_to.is_not_null()).then(pl.lit("reply"))
          .when(quoted_id.is_not_null()).then(pl.lit("quote"))
          .otherwise(pl.lit("post")).alias("kind"),
        reply_to.alias("in_reply_to_tweet_id"),
        pl.col("in_reply_to_user_id_str").alias("in_reply_to_user_id"),
        pl.col("in_reply_to_screen_name"),
        retweeted_id.alias("retweeted_tweet_id"),
        rt.struct.field("user").struct.field("id_str").alias("retweeted_user_id"),
        quoted_id.alias("quoted_tweet_id"),
        qt.struct.field("user").struct.field("id_str").alias("quoted_user_id"),
        *_entities(pl.col("entities")),
        pl.col("retweet_count"), pl.col("favorite_count"), pl.col("reply_count"),
        pl.col("quote_count"),
        pl.col("_line"),
    )


def _snapshots(frame: pl.DataFrame) -> pl.DataFrame:
    observed_at = pl.col("created_at")
    parts = []
    for role, user in (("author", pl.col("user")),
                       ("retweeted_author", pl.col("retweeted_status").struct.field("user")),
                       ("quoted_author", pl.col("quoted_status").struct.field("user"))):
        parts.append(frame.select(
            user.struct.field("id_str").alias("user_id"),
            user.struct.field("screen_name"), user.struct.field("name"),
            user.struct.field("description"), user.struct.field("location"),
            user.struct.field("url"),
            user.struct.field("created_at").alias("account_created_at"),
            user.struct.field("followers_count"),
            user.struct.field("friends_count").alias("following_count"),
            user.struct.field("statuses_count").alias("tweet_count"),
            user.struct.field("listed_count"), user.struct.field("favourites_count"),
            user.struct.field("verified"), user.struct.field("protected"),
            user.struct.field("default_profile"), user.struct.field("default_profile_image"),
            user.struct.field("profile_image_url_https").alias("profile_image_url"),
            observed_at.alias("observed_at"),
            pl.lit(role).alias("observed_as"),
            pl.col("_line"),
        ).filter(pl.col("user_id").is_not_null()))
    return pl.concat(parts)


def _referenced(frame: pl.DataFrame) -> pl.DataFrame:
    parts = []
    for relation, col in (("retweeted", "retweeted_status"), ("quoted", "quoted_status")):
        ref = pl.col(col)
        parts.append(frame.filter(ref.is_not_null()).select(
            ref.struct.field("id_str").alias("tweet_id"),
            pl.lit(relation).alias("relation"),
            ref.struct.field("created_at").alias("created_at"),
            ref.struct.field("user").struct.field("id_str").alias("user_id"),
            pl.coalesce(ref.struct.field("extended_tweet").struct.field("full_text"),
                        ref.struct.field("text")).alias("text"),
            ref.struct.field("lang").alias("lang"),
            ref.struct.field("in_reply_to_status_id_str").alias("in_reply_to_tweet_id"),
            ref.struct.field("in_reply_to_user_id_str").alias("in_reply_to_user_id"),
            ref.struct.field("quoted_status_id_str").alias("quoted_tweet_id"),
            ref.struct.field("retweet_count"), ref.struct.field("favorite_count"),
            ref.struct.field("reply_count"), ref.struct.field("quote_count"),
            pl.col("id_str").alias("seen_in_tweet_id"),
            pl.col("created_at").alias("observed_at"),
            pl.col("_line"),
        ).filter(pl.col("tweet_id").is_not_null()))
    return pl.concat(parts)


def _deletions(frame: pl.DataFrame) -> pl.DataFrame:
    status = pl.col("delete").struct.field("status")
    return frame.select(
        status.struct.field("id_str").alias("tweet_id"),
        status.struct.field("user_id_str").alias("user_id"),
        pl.from_epoch(pl.col("delete").struct.field("timestamp_ms").cast(pl.Int64, strict=False),
                      time_unit="ms").alias("deleted_at"),
        pl.col("_line"),
    )


def _quarantine_frame(rows: list[tuple[int | None, str, bytes | None]], source_file: str,
                      member: str, scope: str = "line") -> pl.DataFrame:
    return pl.DataFrame(
        {"source_file": [source_file] * len(rows), "source_member": [member] * len(rows),
         "line_number": [r[0] for r in rows], "scope": [scope] * len(rows),
         "reason": [r[1] for r in rows], "raw": [r[2] for r in rows]},
        schema=QUARANTINE_SCHEMA,
    )


def _nonblank_lines(payload: bytes) -> tuple[list[int], list[bytes]]:
    """Line numbers (1-based) and bytes of the non-blank lines."""
    numbers, lines = [], []
    for number, line in enumerate(payload.split(b"\n"), start=1):
        if line.strip():
            numbers.append(number)
            lines.append(line)
    return numbers, lines


_connection: duckdb.DuckDBPyConnection | None = None


def _read(payload: bytes) -> pl.DataFrame:
    """Parse JSON lines with DuckDB (one thread: callers parallelize across members)."""
    global _connection
    if _connection is None:
        _connection = duckdb.connect(config={"threads": 1})
    handle, path = tempfile.mkstemp(suffix=".jsonl")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(payload)
        return _connection.sql(_READ_SQL, params=[path]).pl()
    except duckdb.Error as exc:
        raise ParseError(str(exc).splitlines()[0]) from None
    finally:
        os.unlink(path)


def _parse_lines(payload: bytes, incomplete_tail: bool
                 ) -> tuple[pl.DataFrame, list[tuple[int | None, str, bytes | None]], int]:
    """Slow path: validate line by line, then parse the good lines in one go."""
    numbers, lines = _nonblank_lines(payload)
    bad: list[tuple[int | None, str, bytes | None]] = []
    good_numbers, good_lines = [], []
    last = len(lines) - 1
    for i, (number, line) in enumerate(zip(numbers, lines)):
        if incomplete_tail and i == last and not payload.endswith(b"\n"):
            bad.append((number, "incomplete last line of a damaged member", line))
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad.append((number, f"non-UTF-8 bytes at offset {exc.start}", line))
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            bad.append((number, f"invalid JSON: {exc}", line))
            continue
        if not isinstance(value, dict):
            bad.append((number, f"JSON {type(value).__name__}, not an object", line))
            continue
        good_numbers.append(number)
        good_lines.append(line)
    try:
        frame = _read(b"\n".join(good_lines))
    except ParseError:
        # A well-formed line with an unexpected field type: find it line by line.
        frames, kept = [], []
        for number, line in zip(good_numbers, good_lines):
            try:
                frames.append(_read(line))
                kept.append(number)
            except ParseError as exc:
                bad.append((number, f"unexpected field type: {exc}", line))
        frame = pl.concat(frames) if frames else _read(b"")
        good_numbers = kept
    frame = frame.with_columns(pl.Series("_line", good_numbers, dtype=pl.Int64))
    blank = payload.count(b"\n") + (0 if payload.endswith(b"\n") or not payload else 1) - len(lines)
    return frame, bad, blank


def parse_member(payload: bytes, source_file: str, member: str,
                 damaged: bool = False) -> MemberResult:
    """Split one member's lines into tweets, notices and quarantined lines."""
    bad: list[tuple[int | None, str, bytes | None]] = []
    frame = None
    if not damaged:
        try:
            frame = _read(payload)
        except ParseError:
            frame = None
    if frame is None:
        frame, bad, blank = _parse_lines(payload, incomplete_tail=damaged)
        lines = frame.height + len(bad)
    else:
        total = payload.count(b"\n") + (0 if payload.endswith(b"\n") or not payload else 1)
        blank = total - frame.height
        lines = frame.height
        if blank:  # rare (keep-alive lines): find the real line numbers
            numbers = _nonblank_lines(payload)[0]
            frame = frame.with_columns(pl.Series("_line", numbers, dtype=pl.Int64))
        else:
            frame = frame.with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int64)
                                       .alias("_line"))

    frame = frame.with_columns(_message_type().alias("_type"))
    rejected = frame.filter(pl.col("_type").str.starts_with("bad:"))
    if rejected.height:
        by_number = dict(zip(*_nonblank_lines(payload)))
        bad.extend((n, t[4:], by_number.get(n)) for n, t in
                   rejected.select("_line", "_type").iter_rows())

    counts = frame.group_by("_type").len()
    message_counts = {t: n for t, n in counts.iter_rows() if not t.startswith("bad:")}
    tweets_in = frame.filter(pl.col("_type") == "tweet")
    bad.sort(key=lambda r: (r[0] is None, r[0] or 0))
    return MemberResult(
        tweets=_tweets(tweets_in),
        deletions=_deletions(frame.filter(pl.col("_type") == "delete")),
        snapshots=_snapshots(tweets_in),
        referenced=_referenced(tweets_in),
        quarantine=_quarantine_frame(bad, source_file, member),
        lines=lines,
        blank_lines=blank,
        message_counts=message_counts,
    )
