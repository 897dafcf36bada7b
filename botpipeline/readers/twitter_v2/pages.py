"""Parse a block of twarc2 lines into tweets, users, API errors and quarantined lines.

A line is one of:
* a response page ``{"data": [...] | {...}, "includes": {"users", "tweets"}, "errors", "meta"}``
  (search and timeline pages hold a list, the filtered stream one tweet; a page whose data
  holds any user object is a users page);
* a flattened tweet (``twarc2 flatten``): a tweet object with its ``author`` expanded;
* a user object.
Tweets in ``includes.tweets`` are the referenced tweets (parents, quoted and retweeted posts):
kept, marked ``included``. API ``errors`` (deleted, suspended, not found) are kept as rows. A
line that is not JSON, not an object, or none of these shapes is quarantined with its reason.

The fast path reads the whole block through Arrow's JSON reader with an explicit schema of the
fields kept (``arrow_json``), then shapes it with polars expressions. A block Arrow refuses
takes the exact path, orjson line by line; so do the lines the fast path cannot classify for
sure (a key present with a null value reads like a missing key). Both paths give the same
rows, tested on the real twarc samples. Every row carries its line number ``_line`` and its
place in the line ``_pos``, so that the day's tables keep first / last sightings in file order.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import orjson
import polars as pl

from botpipeline.readers.arrow_json import NotFast, line_count, parse_options, read_lines
from botpipeline.transforms.twitter_v2 import (TWEET_SCHEMA, USER_SCHEMA, epoch_ms_to_iso,
                                               accounts_frame, posts_frame)

ERROR_SCHEMA = {"resource_id": pl.String, "resource_type": pl.String, "title": pl.String,
                "detail": pl.String}
QUARANTINE_SCHEMA = {"line_number": pl.Int64, "reason": pl.String, "raw": pl.Binary}
_PLACE = {"_line": pl.Int64, "_pos": pl.Int64}
INCLUDES_USERS_POS = 1 << 20  # users of includes come after a page's own data items

# A data item (or a whole line) may be a tweet or a user: one struct with the fields of both.
_METRICS = pl.Struct({**TWEET_SCHEMA["public_metrics"].to_schema(),
                      **USER_SCHEMA["public_metrics"].to_schema()})
ITEM_SCHEMA = {**TWEET_SCHEMA, **USER_SCHEMA, "public_metrics": _METRICS}
_ERROR_IN = pl.Struct({"resource_id": pl.String, "value": pl.String,
                       "resource_type": pl.String, "title": pl.String, "detail": pl.String})
_LINE = {
    **ITEM_SCHEMA,
    "author": pl.Struct(USER_SCHEMA),
    "includes": pl.Struct({"users": pl.List(pl.Struct(USER_SCHEMA)),
                           "tweets": pl.List(pl.Struct(TWEET_SCHEMA))}),
    "errors": pl.List(_ERROR_IN),
}


@functools.cache
def _options(stream_pages: bool):
    """Search pages hold a list of items, filtered-stream pages one item."""
    item = pl.Struct(ITEM_SCHEMA)
    return parse_options({**_LINE, "data": item if stream_pages else pl.List(item)})


@dataclass
class Parsed:
    tweets: pl.DataFrame  # the core post model, included, _line, _pos (author_username unset)
    users: pl.DataFrame  # the core account model, _line, _pos
    errors: pl.DataFrame  # ERROR_SCHEMA, _line, _pos
    quarantine: pl.DataFrame  # QUARANTINE_SCHEMA
    lines: int  # non-blank lines
    blank_lines: int


SPLIT_BELOW = 64 << 10  # a refused block smaller than this goes the exact way whole


def parse_block(data: bytes, first_line: int, observed_at=None) -> Parsed:
    """The rows of a block of whole lines that starts at line ``first_line``.

    A block Arrow refuses is split in two at a line boundary and each half tried again, so a
    bad line costs the exact path only a small piece around it, not the whole block."""
    for stream_pages in (False, True):
        try:
            table = read_lines(data, _options(stream_pages))
        except NotFast:
            continue
        frame = pl.from_arrow(table).with_row_index("_line", offset=first_line)
        frame = frame.with_columns(pl.col("_line").cast(pl.Int64))
        if stream_pages:
            frame = frame.with_columns(
                pl.when(pl.col("data").is_not_null()).then(pl.concat_list("data")).alias("data"))
        return _fast(frame, data, first_line, observed_at)
    middle = data.find(b"\n", len(data) // 2) + 1
    if len(data) < SPLIT_BELOW or not 0 < middle < len(data):
        return _exact(_numbered(data, first_line), observed_at, line_count(data))
    head = parse_block(data[:middle], first_line, observed_at)
    tail = parse_block(data[middle:], first_line + data.count(b"\n", 0, middle), observed_at)
    return _merge(head, tail)


def _numbered(data: bytes, first_line: int) -> list[tuple[int, bytes]]:
    return [(number, line) for number, line in enumerate(data.split(b"\n"), start=first_line)
            if line.strip()]


# ----------------------------------------------------------------------------- fast path
def _fast(frame: pl.DataFrame, data: bytes, first_line: int, observed_at) -> Parsed:
    data_col, includes = pl.col("data"), pl.col("includes")
    item = pl.element().struct
    tweet_item = item.field("text").is_not_null() & item.field("username").is_null()
    user_item = item.field("username").is_not_null() & item.field("text").is_null()
    lists = (data_col, includes.struct.field("users"), includes.struct.field("tweets"),
             pl.col("errors"))
    null_element = pl.any_horizontal(
        [c.list.eval(pl.element().is_null()).list.any().fill_null(False) for c in lists])
    page = data_col.is_not_null() | pl.col("errors").is_not_null()
    frame = frame.with_columns(
        data_col.list.eval(user_item).list.all().fill_null(False).alias("_users_page"),
        pl.when(page & ~null_element
                & (data_col.list.eval(tweet_item).list.all().fill_null(True)
                   | data_col.list.eval(user_item).list.all().fill_null(True)))
          .then(pl.lit("page"))
          .when(~page & pl.col("id").is_not_null() & pl.col("text").is_not_null())
          .then(pl.lit("tweet"))
          .otherwise(pl.lit("unsure")).alias("_shape"))
    # Lines whose shape only the keys can tell (a null value reads like a missing key), and
    # pages with null elements or mixed items: orjson decides, and words any reason.
    unsure = frame.filter(pl.col("_shape") == "unsure")
    pages = frame.filter(pl.col("_shape") == "page")
    flat = frame.filter(pl.col("_shape") == "tweet")

    items = _explode(pages.select("_line", "_users_page", data_col.alias("_item")))
    tweets = [
        _items(items.filter(~pl.col("_users_page")), TWEET_SCHEMA).with_columns(
            pl.lit(False).alias("included")),
        _items(_explode(pages.select("_line", includes.struct.field("tweets").alias("_item"))),
               TWEET_SCHEMA).with_columns(pl.lit(True).alias("included")),
        flat.select(*TWEET_SCHEMA, "_line", pl.lit(0, pl.Int64).alias("_pos"),
                    pl.lit(False).alias("included")),
    ]
    users = [
        _items(items.filter(pl.col("_users_page")), USER_SCHEMA),
        _items(_explode(pages.select("_line", includes.struct.field("users").alias("_item")),
                        INCLUDES_USERS_POS), USER_SCHEMA),
        flat.filter(pl.col("author").is_not_null()).select(
            pl.col("author").struct.unnest(), "_line", pl.lit(0, pl.Int64).alias("_pos")),
    ]
    error = pl.col("_item").struct
    errors = _explode(pages.select("_line", pl.col("errors").alias("_item"))).select(
        pl.coalesce(error.field("resource_id"), error.field("value")).alias("resource_id"),
        *(error.field(f) for f in ("resource_type", "title", "detail")), "_line", "_pos")
    parsed = Parsed(
        tweets=_posts(pl.concat([_tweet_columns(t) for t in tweets])),
        users=_accounts(pl.concat([_user_columns(u) for u in users]), observed_at),
        errors=errors, quarantine=pl.DataFrame(schema=QUARANTINE_SCHEMA),
        lines=line_count(data), blank_lines=0)
    if unsure.height:
        wanted = set(unsure["_line"].to_list())
        rest = _exact([(n, line) for n, line in _numbered(data, first_line) if n in wanted],
                      observed_at, len(wanted))
        parsed = _merge(parsed, rest, counted=False)
    return parsed


def _explode(frame: pl.DataFrame, offset: int = 0) -> pl.DataFrame:
    """One row per list element, numbered ``_pos`` from ``offset`` within its line."""
    return (frame.filter(pl.col("_item").list.len() > 0)
            .with_columns(pl.int_ranges(offset, pl.col("_item").list.len() + offset,
                                        dtype=pl.Int64).alias("_pos"))
            .explode("_item", "_pos"))


def _items(frame: pl.DataFrame, schema: dict) -> pl.DataFrame:
    item = pl.col("_item")
    return frame.select(*(item.struct.field(name) for name in schema), "_line",
                        pl.col("_pos").cast(pl.Int64))


def _tweet_columns(frame: pl.DataFrame) -> pl.DataFrame:
    metrics = pl.col("public_metrics")
    return frame.with_columns(pl.struct(
        *(metrics.struct.field(f) for f in TWEET_SCHEMA["public_metrics"].to_schema())
    ).alias("public_metrics")).select(*TWEET_SCHEMA, "included", "_line", "_pos")


def _user_columns(frame: pl.DataFrame) -> pl.DataFrame:
    metrics = pl.col("public_metrics")
    return frame.with_columns(pl.struct(
        *(metrics.struct.field(f) for f in USER_SCHEMA["public_metrics"].to_schema())
    ).alias("public_metrics")).select(*USER_SCHEMA, "_line", "_pos")


def _posts(frame: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([posts_frame(frame), frame.select("included", *_PLACE)],
                     how="horizontal")


def _accounts(frame: pl.DataFrame, observed_at) -> pl.DataFrame:
    return pl.concat([accounts_frame(frame, observed_at), frame.select(*_PLACE)],
                     how="horizontal")


def _merge(a: Parsed, b: Parsed, counted: bool = True) -> Parsed:
    """Rows of both; lines of both unless ``b`` holds lines ``a`` already counted."""
    return Parsed(pl.concat([a.tweets, b.tweets]), pl.concat([a.users, b.users]),
                  pl.concat([a.errors, b.errors]), pl.concat([a.quarantine, b.quarantine]),
                  a.lines + (b.lines if counted else 0),
                  a.blank_lines + (b.blank_lines if counted else 0))


def empty() -> Parsed:
    """The frames of no lines (every column, no rows)."""
    return _exact([], None, 0)


# ----------------------------------------------------------------------------- exact path
def _is_user(obj: dict) -> bool:
    return "username" in obj and "text" not in obj


def _page_problem(items, includes, errors) -> str | None:
    """Why a page cannot be read (a value that is not an object where one should be)."""
    if not isinstance(items, list):
        return f"a page whose data is a JSON {type(items).__name__}"
    if not isinstance(includes, dict):
        return f"a page whose includes is a JSON {type(includes).__name__}"
    for where, values in (("data", items), ("includes.users", includes.get("users") or []),
                          ("includes.tweets", includes.get("tweets") or []),
                          ("errors", errors)):
        if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
            return f"a page whose {where} holds a value that is not an object"
    return None


def _exact(lines: list[tuple[int, bytes]], observed_at, total_lines: int) -> Parsed:
    """orjson line by line: every line's shape decided from its keys."""
    tweets, users, errors, bad = [], [], [], []
    for number, line in lines:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            bad.append({"line_number": number, "reason": f"invalid JSON: {exc}", "raw": line})
            continue
        if not isinstance(obj, dict):
            bad.append({"line_number": number,
                        "reason": f"JSON {type(obj).__name__}, not an object", "raw": line})
            continue
        if "data" in obj or "errors" in obj:  # a response page
            items = obj.get("data") or []
            items = [items] if isinstance(items, dict) else items
            includes = obj.get("includes") or {}
            problem = _page_problem(items, includes, obj.get("errors") or [])
            if problem:
                bad.append({"line_number": number, "reason": problem, "raw": line})
                continue
            place = {"_line": number}
            if any(_is_user(item) for item in items):
                users.extend({**item, **place, "_pos": k} for k, item in enumerate(items))
            else:
                tweets.extend({**item, **place, "_pos": k, "included": False}
                              for k, item in enumerate(items))
            users.extend({**user, **place, "_pos": INCLUDES_USERS_POS + k}
                         for k, user in enumerate(includes.get("users") or []))
            tweets.extend({**tweet, **place, "_pos": k, "included": True}
                          for k, tweet in enumerate(includes.get("tweets") or []))
            errors.extend({"resource_id": e.get("resource_id") or e.get("value"),
                           "resource_type": e.get("resource_type"), "title": e.get("title"),
                           "detail": e.get("detail"), **place, "_pos": k}
                          for k, e in enumerate(obj.get("errors") or []))
        elif "id" in obj and "text" in obj:  # a flattened tweet
            tweets.append({**obj, "_line": number, "_pos": 0, "included": False})
            if isinstance(obj.get("author"), dict):
                users.append({**obj["author"], "_line": number, "_pos": 0})
        elif _is_user(obj):
            users.append({**obj, "_line": number, "_pos": 0})
        else:
            bad.append({"line_number": number, "reason": "not a v2 page, tweet or user",
                        "raw": line})
    tweet_frame = pl.DataFrame(tweets, schema={**TWEET_SCHEMA, "included": pl.Boolean,
                                               **_PLACE}, strict=False)
    user_frame = pl.DataFrame([epoch_ms_to_iso(u) for u in users],
                              schema={**USER_SCHEMA, **_PLACE}, strict=False)
    return Parsed(
        tweets=_posts(tweet_frame), users=_accounts(user_frame, observed_at),
        errors=pl.DataFrame(errors, schema={**ERROR_SCHEMA, **_PLACE}, strict=False),
        quarantine=pl.DataFrame(bad, schema=QUARANTINE_SCHEMA),
        lines=len(lines), blank_lines=total_lines - len(lines))
