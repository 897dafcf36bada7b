"""Reader for Twitter API v2 data as twarc2 writes it (and as the API returns it).

Each line of a ``.jsonl`` / ``.jsonl.gz`` file is one of:
* a response page ``{"data": [...] | {...}, "includes": {"users", "tweets"}, "errors", "meta"}``
  (search/timeline pages hold a list; the filtered stream holds one tweet);
* a flattened tweet (``twarc2 flatten``): a tweet object with its ``author`` expanded;
* a users page (``data`` holds user objects).
Tweets in ``includes.tweets`` are the referenced tweets (parents, quoted and retweeted posts):
they are kept, marked ``included``. API ``errors`` (deleted, suspended, not found) are kept as
rows. A line that is not JSON, or not one of these shapes, is quarantined with its reason.

API data arrives at API scale (pages of 100), so lines are decoded one by one with orjson;
the tweets and users of a file are then shaped into frames in one go by polars. ``.jsonl.gz``
files are inflated with ISA-L (the ``isal`` package) when it is installed, and a day of more
than ``PARALLEL_BYTES`` reads its files in one process per core.
"""

from __future__ import annotations

import gzip
import multiprocessing as mp
import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import orjson
import polars as pl

from botpipeline.transforms.twitter_v2 import v2_accounts, v2_posts


@dataclass
class V2Batch:
    posts: pl.DataFrame  # core post columns + included, source_file
    users: pl.DataFrame  # core account columns + source_file
    errors: pl.DataFrame  # resource_id, resource_type, title, detail, source_file
    quarantine: pl.DataFrame  # source_file, line_number, reason, raw
    lines: int
    blank_lines: int


ERROR_SCHEMA = {"resource_id": pl.String, "resource_type": pl.String, "title": pl.String,
                "detail": pl.String, "source_file": pl.String}
QUARANTINE_SCHEMA = {"source_file": pl.String, "line_number": pl.Int64, "reason": pl.String,
                     "raw": pl.Binary}


def _is_user(obj: dict) -> bool:
    return "username" in obj and "text" not in obj


try:  # ISA-L's inflate: about 3x the standard library's (measured here)
    from isal import igzip as _igzip
except ImportError:  # pragma: no cover - optional speed-up
    _igzip = None


def _file_bytes(path: Path) -> bytes:
    """A file's bytes, gunzipped (all members) when it ends in ``.gz``."""
    raw = path.read_bytes()
    if not path.name.endswith(".gz"):
        return raw
    if _igzip is not None:
        try:
            return _igzip.decompress(raw)
        except Exception:  # noqa: BLE001 - damaged: let the standard library say why
            pass
    return gzip.decompress(raw)


def read_file(path: Path, name: str, observed_at=None) -> V2Batch:
    tweets, included, users, errors, bad = [], [], [], [], []
    lines = blank = 0
    try:
        data = _file_bytes(path)
    except (OSError, EOFError, zlib.error) as exc:
        bad.append({"source_file": name, "line_number": None,
                    "reason": f"unreadable file: {exc}", "raw": None})
        data = b""
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            if number <= data.count(b"\n"):
                blank += 1
            continue
        lines += 1
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            bad.append({"source_file": name, "line_number": number,
                        "reason": f"invalid JSON: {exc}", "raw": line})
            continue
        if not isinstance(obj, dict):
            bad.append({"source_file": name, "line_number": number,
                        "reason": f"JSON {type(obj).__name__}, not an object", "raw": line})
            continue
        if "data" in obj or "errors" in obj:  # a response page
            items = obj.get("data") or []
            items = [items] if isinstance(items, dict) else items
            if any(_is_user(item) for item in items):
                users.extend(items)
            else:
                tweets.extend(items)
            includes = obj.get("includes") or {}
            users.extend(includes.get("users") or [])
            included.extend(includes.get("tweets") or [])
            errors.extend({"resource_id": e.get("resource_id") or e.get("value"),
                           "resource_type": e.get("resource_type"), "title": e.get("title"),
                           "detail": e.get("detail"), "source_file": name}
                          for e in obj.get("errors") or [])
        elif "id" in obj and "text" in obj:  # a flattened tweet
            tweets.append(obj)
            if isinstance(obj.get("author"), dict):
                users.append(obj["author"])
        elif _is_user(obj):
            users.append(obj)
        else:
            bad.append({"source_file": name, "line_number": number,
                        "reason": "not a v2 page, tweet or user", "raw": line})
    posts = pl.concat([
        v2_posts(tweets, users).with_columns(pl.lit(False).alias("included")),
        v2_posts(included, users).with_columns(pl.lit(True).alias("included")),
    ]).with_columns(pl.lit(name).alias("source_file"))
    accounts = v2_accounts(users, observed_at).with_columns(pl.lit(name).alias("source_file"))
    return V2Batch(posts, accounts, pl.DataFrame(errors, schema=ERROR_SCHEMA),
                   pl.DataFrame(bad, schema=QUARANTINE_SCHEMA), lines, blank)


PARALLEL_BYTES = 64 << 20  # a day this big (on disk) reads its files in parallel


def read_day(day_dir: Path, observed_at=None) -> V2Batch:
    files = sorted(p for p in day_dir.rglob("*") if p.is_file() and not p.name.startswith(".")
                   and p.name.endswith((".jsonl", ".jsonl.gz", ".json", ".json.gz")))
    names = [p.relative_to(day_dir).as_posix() for p in files]
    if len(files) > 1 and sum(p.stat().st_size for p in files) >= PARALLEL_BYTES:
        # orjson holds the GIL: big days spread their files over one process per core.
        workers = min(len(files), os.cpu_count() or 1)
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            batches = list(pool.map(read_file, files, names, [observed_at] * len(files)))
    else:
        batches = [read_file(p, n, observed_at) for p, n in zip(files, names)]
    if not batches:
        return V2Batch(
            v2_posts([]).with_columns(pl.lit(False).alias("included"),
                                      pl.lit(None, pl.String).alias("source_file")),
            v2_accounts([], observed_at).with_columns(pl.lit(None, pl.String)
                                                      .alias("source_file")),
            pl.DataFrame(schema=ERROR_SCHEMA), pl.DataFrame(schema=QUARANTINE_SCHEMA), 0, 0)
    return V2Batch(pl.concat([b.posts for b in batches]), pl.concat([b.users for b in batches]),
                   pl.concat([b.errors for b in batches]),
                   pl.concat([b.quarantine for b in batches]),
                   sum(b.lines for b in batches), sum(b.blank_lines for b in batches))
