"""Parse one decompressed member of v1.1 stream messages into normalized frames.

The fast path hands each clean member of a batch to Arrow's JSON reader (``arrow_json``), with an
explicit schema of only the fields we keep (the rest is skipped, not built; no Python runs per
line and the GIL is released), then shapes the frames with polars expressions. Arrow is strict:
a member it refuses (invalid UTF-8, a blank line, a value of another type, invalid JSON) takes
the exact path: DuckDB's JSON reader over the member (which casts as it always did), and if that
fails too, line by line to quarantine exactly the bad lines with their reason and parse the
rest. Both paths give the same frames (checked on the real minute). Every non-blank line ends
up as a tweet, a notice, or a quarantine row.
"""

from __future__ import annotations

import functools
import os
import tempfile
import threading
from dataclasses import dataclass, field

import duckdb
import orjson
import polars as pl

from botpipeline.lazy import lazy
from botpipeline.readers.arrow_json import NotFast, line_count, parse_options, read_lines

np = lazy("numpy")
pa = lazy("pyarrow")

# ------------------------------------------------------------------------------ input schema
_USER = pl.Struct({
    "id_str": pl.String, "screen_name": pl.String, "name": pl.String,
    "description": pl.String, "location": pl.String, "url": pl.String,
    "created_at": pl.String, "followers_count": pl.Int64, "friends_count": pl.Int64,
    "statuses_count": pl.Int64, "listed_count": pl.Int64, "favourites_count": pl.Int64,
    "verified": pl.Boolean, "protected": pl.Boolean, "default_profile": pl.Boolean,
    "default_profile_image": pl.Boolean, "profile_image_url_https": pl.String,
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
# A retweeted or quoted tweet: only what raw.referenced_tweets and the snapshots keep (no
# entities, no source: parsing them cost a fifth of the read and nothing used them).
_REFERENCED = pl.Struct({
    **{k: v for k, v in _TWEET_FIELDS.items() if k not in ("entities", "source",
                                                           "in_reply_to_screen_name")},
    "extended_tweet": pl.Struct({"full_text": pl.String}),
})
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


# Arrow's JSON reader: only the schema's fields are built, the rest is skipped; a notice's
# payload becomes an empty struct (present or null), whatever its keys. Built on first use
# (pyarrow loads with the first archive read, not with the code location).
@functools.cache
def _arrow_parse():
    return parse_options({**SCHEMA, **{name: pl.Struct({}) for name in NOTICE_TYPES[1:]}})


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


_IS_TWEET = pl.col("_type") == "tweet"


def _where(frame: pl.DataFrame, keep: pl.Expr, *columns: pl.Expr) -> pl.DataFrame:
    """Select, then filter: the filter copies the few flat columns kept, not the parsed
    nested structs (filtering first cost a third of the shaping)."""
    return frame.select(*columns, keep.alias("_keep")).filter(pl.col("_keep")).drop("_keep")


def _tweets(frame: pl.DataFrame) -> pl.DataFrame:
    rt, qt, user = pl.col("retweeted_status"), pl.col("quoted_status"), pl.col("user")
    retweeted_id = rt.struct.field("id_str")
    quoted_id = pl.coalesce(pl.col("quoted_status_id_str"), qt.struct.field("id_str"))
    reply_to = pl.col("in_reply_to_status_id_str")
    return _where(
        frame, _IS_TWEET,
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
        pl.col("_line"), pl.col("_m"),
    )


def _snapshots(frame: pl.DataFrame) -> pl.DataFrame:
    observed_at = pl.col("created_at")
    parts = []
    for role, user in (("author", pl.col("user")),
                       ("retweeted_author", pl.col("retweeted_status").struct.field("user")),
                       ("quoted_author", pl.col("quoted_status").struct.field("user"))):
        parts.append(_where(
            frame, _IS_TWEET & user.struct.field("id_str").is_not_null(),
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
            pl.col("_line"), pl.col("_m"),
        ))
    return pl.concat(parts)


def _referenced(frame: pl.DataFrame) -> pl.DataFrame:
    parts = []
    for relation, col in (("retweeted", "retweeted_status"), ("quoted", "quoted_status")):
        ref = pl.col(col)
        parts.append(_where(
            frame, _IS_TWEET & ref.struct.field("id_str").is_not_null(),
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
            pl.col("_line"), pl.col("_m"),
        ))
    return pl.concat(parts)


def _deletions(frame: pl.DataFrame) -> pl.DataFrame:
    status = pl.col("delete").struct.field("status")
    return _where(
        frame, pl.col("_type") == "delete",
        status.struct.field("id_str").alias("tweet_id"),
        status.struct.field("user_id_str").alias("user_id"),
        pl.from_epoch(pl.col("delete").struct.field("timestamp_ms").cast(pl.Int64, strict=False),
                      time_unit="ms").alias("deleted_at"),
        pl.col("_line"), pl.col("_m"),
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


_local = threading.local()  # one DuckDB session per thread


def _read(payload: bytes) -> pl.DataFrame:
    """Parse one member's JSON lines (raises ParseError on any bad line)."""
    return _read_many([payload]).drop("_m")


def _read_many(payloads: list[bytes]) -> pl.DataFrame:
    """Parse several members in one DuckDB query; ``_m`` is each row's member index.

    One query for a batch binds the (large) column list once and lets polars shape the whole
    batch at once; DuckDB runs single-threaded because callers parallelize across batches.
    """
    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb.connect(config={"threads": 1})
    folder = tempfile.mkdtemp(prefix="members-")
    paths = [os.path.join(folder, f"{i:05d}.jsonl") for i in range(len(payloads))]
    try:
        for path, payload in zip(paths, payloads):
            with open(path, "wb") as out:
                out.write(payload)
        sql = _READ_SQL.replace("read_json(?,", "read_json(?, filename = '_file',")
        frame = con.sql(sql, params=[paths]).pl()
    except duckdb.Error as exc:
        raise ParseError(str(exc).splitlines()[0]) from None
    finally:
        for path in paths:
            if os.path.exists(path):
                os.unlink(path)
        os.rmdir(folder)
    index = {path: i for i, path in enumerate(paths)}
    return frame.with_columns(
        pl.col("_file").replace_strict(index, return_dtype=pl.Int64).alias("_m")).drop("_file")


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


@dataclass
class MemberInput:
    payload: bytes
    source_file: str
    member: str
    damaged: bool = False


@dataclass
class BatchResult:
    """Frames of several members (with source_file / source_member) and per-member counts."""

    tweets: pl.DataFrame
    deletions: pl.DataFrame
    snapshots: pl.DataFrame
    referenced: pl.DataFrame
    quarantine: pl.DataFrame
    members: list[dict]  # lines, blank_lines, quarantined_lines, message_counts per member


def _one_member(item: MemberInput) -> tuple[pl.DataFrame, list, int, int]:
    """The slow, exact path for one member: (frame with _line, bad lines, lines, blanks)."""
    frame = None
    if not item.damaged:
        try:
            frame = _read(item.payload)
        except ParseError:
            frame = None
    if frame is None:
        frame, bad, blank = _parse_lines(item.payload, incomplete_tail=item.damaged)
        return frame, bad, frame.height + len(bad), blank
    blank = line_count(item.payload) - frame.height
    numbers = (_nonblank_lines(item.payload)[0] if blank
               else range(1, frame.height + 1))
    return (frame.with_columns(pl.Series("_line", numbers, dtype=pl.Int64)), [],
            frame.height, blank)


def parse_members(items: list[MemberInput]) -> BatchResult:
    """Split the lines of several members into tweets, notices and quarantined lines."""
    return _shape(items, *_build_frame(items))


def _build_frame(items: list[MemberInput]) -> tuple[pl.DataFrame, list[list], list[int],
                                                     list[int]]:
    """Clean members through Arrow's JSON reader (the batch at once, else member by member);
    damaged members and the ones Arrow refuses take the exact path (``_exact_frame``)."""
    bad: list[list] = [[] for _ in items]
    lines, blanks = [0] * len(items), [0] * len(items)
    clean = [i for i, item in enumerate(items) if not item.damaged]
    rest = [i for i, item in enumerate(items) if item.damaged]
    parts = []
    try:
        parts.append(_arrow_frame(items, clean, lines))
    except NotFast:
        for i in clean:
            try:
                parts.append(_arrow_frame(items, [i], lines))
            except NotFast:
                rest.append(i)
    if rest:
        rest.sort()
        frame, bad_r, lines_r, blanks_r = _exact_frame([items[i] for i in rest])
        parts.append(frame.with_columns(pl.col("_m").replace_strict(
            dict(enumerate(rest)), return_dtype=pl.Int64)))
        for k, i in enumerate(rest):
            bad[i], lines[i], blanks[i] = bad_r[k], lines_r[k], blanks_r[k]
    parts = [p for p in parts if p.height] or [_empty_frame()]
    return pl.concat(parts, how="diagonal_relaxed"), bad, lines, blanks


def _arrow_frame(items: list[MemberInput], chosen: list[int], lines: list[int]) -> pl.DataFrame:
    """Several clean members through Arrow's JSON reader, one call each (no Python per line).

    Raises ``NotFast`` when a member is not valid UTF-8, holds blank lines (their numbers would
    be lost) or anything the explicit schema does not take (a value of another type, a
    duplicate key, invalid JSON); those members take the exact path."""
    if not chosen:
        return _empty_frame()
    tables = [read_lines(items[i].payload, _arrow_parse()) for i in chosen]
    counts = [t.num_rows for t in tables]
    total = sum(counts)
    owners = np.repeat(np.asarray(chosen, dtype=np.int64), counts)
    starts = np.repeat(np.cumsum([0, *counts[:-1]], dtype=np.int64), counts)
    frame = pl.from_arrow(pa.concat_tables(tables)).with_columns(
        [pl.when(pl.col(n).is_not_null()).then(pl.lit("{}")).alias(n) for n in NOTICE_TYPES[1:]]
        + [pl.Series("_line", np.arange(1, total + 1, dtype=np.int64) - starts),
           pl.Series("_m", owners)])
    for i, n in zip(chosen, counts):
        lines[i] = n
    return frame


def _empty_frame() -> pl.DataFrame:
    return _read(b"").with_columns(pl.lit(0, pl.Int64).alias("_line"),
                                   pl.lit(0, pl.Int64).alias("_m"))


def _exact_frame(items: list[MemberInput]) -> tuple[pl.DataFrame, list[list], list[int],
                                                     list[int]]:
    """The DuckDB path for a whole batch: clean members in one query, the rest one by one."""
    bad: list[list] = [[] for _ in items]
    lines, blanks = [0] * len(items), [0] * len(items)
    expected = [line_count(item.payload) for item in items]
    clean = [i for i, item in enumerate(items) if not item.damaged]
    together, alone = None, [i for i, item in enumerate(items) if item.damaged]
    try:
        together = _read_many([items[i].payload for i in clean]) if clean else None
    except ParseError:
        alone = list(range(len(items)))
    if together is not None:
        together = together.with_columns(  # batch index -> item index
            pl.col("_m").replace_strict(dict(enumerate(clean)), return_dtype=pl.Int64))
        rows = dict(together.group_by("_m").len().iter_rows())
        # A member with blank lines needs real line numbers: parse it on its own.
        blanky = [i for i in clean if rows.get(i, 0) != expected[i]]
        if blanky:
            together = together.filter(~pl.col("_m").is_in(blanky))
            alone += blanky
        for i in clean:
            if i not in blanky:
                lines[i] = expected[i]
        together = together.with_columns(
            pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("_m").alias("_line"))
    parts = [together] if together is not None else []
    for i in sorted(alone):
        frame_i, bad[i], lines[i], blanks[i] = _one_member(items[i])
        parts.append(frame_i.with_columns(pl.lit(i, pl.Int64).alias("_m")))
    frame = pl.concat(parts, how="diagonal_relaxed") if parts else _empty_frame()
    return frame, bad, lines, blanks


def _shape(items: list[MemberInput], frame: pl.DataFrame, bad: list[list], lines: list[int],
           blanks: list[int]) -> BatchResult:
    """Type each row, quarantine the rows that are no message, and build the output frames."""
    frame = frame.with_columns(_message_type().alias("_type"))

    rejected = frame.filter(pl.col("_type").str.starts_with("bad:"))
    raw_lines: dict[int, dict[int, bytes]] = {}
    for m, number, kind in rejected.select("_m", "_line", "_type").iter_rows():
        if m not in raw_lines:
            raw_lines[m] = dict(zip(*_nonblank_lines(items[m].payload)))
        bad[m].append((number, kind[4:], raw_lines[m].get(number)))
    counts: list[dict[str, int]] = [{} for _ in items]
    for m, kind, n in frame.group_by("_m", "_type").len().iter_rows():
        if not kind.startswith("bad:"):
            counts[m][kind] = n

    files = {i: item.source_file for i, item in enumerate(items)}
    members = {i: item.member for i, item in enumerate(items)}

    def sourced(out: pl.DataFrame) -> pl.DataFrame:
        return out.with_columns(
            pl.col("_m").replace_strict(files, return_dtype=pl.String).alias("source_file"),
            pl.col("_m").replace_strict(members, return_dtype=pl.String).alias("source_member"),
        ).drop("_m")

    quarantine = []
    for i, item in enumerate(items):
        bad[i].sort(key=lambda r: (r[0] is None, r[0] or 0))
        quarantine.append(_quarantine_frame(bad[i], item.source_file, item.member))
    return BatchResult(
        tweets=sourced(_tweets(frame)),
        deletions=sourced(_deletions(frame)),
        snapshots=sourced(_snapshots(frame)),
        referenced=sourced(_referenced(frame)),
        quarantine=pl.concat(quarantine),
        members=[{"lines": lines[i], "blank_lines": blanks[i],
                  "quarantined_lines": len(bad[i]), "message_counts": counts[i]}
                 for i in range(len(items))],
    )


def parse_member(payload: bytes, source_file: str, member: str,
                 damaged: bool = False) -> MemberResult:
    """One member's lines as tweets, notices and quarantined lines."""
    batch = parse_members([MemberInput(payload, source_file, member, damaged)])
    drop = ["source_file", "source_member"]
    summary = batch.members[0]
    return MemberResult(
        tweets=batch.tweets.drop(drop), deletions=batch.deletions.drop(drop),
        snapshots=batch.snapshots.drop(drop), referenced=batch.referenced.drop(drop),
        quarantine=batch.quarantine, lines=summary["lines"],
        blank_lines=summary["blank_lines"], message_counts=summary["message_counts"])
