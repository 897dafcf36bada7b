"""Reader for twarc2 ``liking-users`` / ``retweeted-by`` output.

twarc2 writes one API response page per line and stamps it with ``__twarc`` (request ``url``,
``version``, ``retrieved_at``), as in the real twarc-csv test data. The page itself does not
name the tweet or the action: both come from the request URL
(``/2/tweets/<id>/liking_users`` or ``/retweeted_by``), and ``retrieved_at`` is the only time we
have, so it becomes ``observed_at``. A deleted or protected tweet answers with ``errors`` and no
``data``; such pages are quarantined with the API's own title and detail.
"""

from __future__ import annotations

import gzip
import re
import zlib
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from botpipeline.readers.engagements import (
    DIGITS,
    EngagementCollector,
    EngagementRead,
    join_reasons,
    utc_naive,
)

SOURCE = "twarc"
_ENDPOINT = re.compile(r"/2/tweets/([0-9]+)/(liking_users|retweeted_by)/?")
_ACTIONS = {"liking_users": "like", "retweeted_by": "repost"}


def endpoint(url: object) -> tuple[str, str] | str:
    """(tweet id, action) of a request URL, or the reason it is not an engagement request."""
    if not isinstance(url, str) or not url:
        return "__twarc.url is missing"
    try:
        path = urlsplit(url).path
    except ValueError as exc:
        return f"__twarc.url does not parse ({exc})"
    match = _ENDPOINT.fullmatch(path)
    if match is None:
        return f"not a liking_users or retweeted_by request: {url[:120]}"
    return match.group(1), _ACTIONS[match.group(2)]


def retrieved_at(meta: dict) -> datetime | str:
    value = meta.get("retrieved_at")
    if not isinstance(value, str):
        return "__twarc.retrieved_at is missing"
    try:
        return utc_naive(datetime.fromisoformat(value))
    except ValueError:
        return f"__twarc.retrieved_at {value[:40]!r} is not an ISO time"


def _error_text(errors: object) -> str:
    items = errors if isinstance(errors, list) else [errors]
    texts = []
    for error in items:
        if isinstance(error, dict):
            title, detail = error.get("title"), error.get("detail")
            texts.append(": ".join(str(t) for t in (title, detail) if t) or str(error)[:200])
        else:
            texts.append(str(error)[:200])
    return "; ".join(texts)


def _read_page(line: bytes, name: str, number: int, out: EngagementCollector) -> None:
    """Expand one page into candidates, or quarantine it with the reason."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        out.quarantine_line(name, number, f"non-UTF-8 bytes at byte {exc.start}", line)
        return
    try:
        page = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        out.quarantine_line(name, number, f"invalid JSON: {exc}", line)
        return
    if not isinstance(page, dict):
        out.quarantine_line(name, number, f"JSON {type(page).__name__}, not an object", line)
        return
    meta = page.get("__twarc")
    if not isinstance(meta, dict):
        out.quarantine_line(name, number, "no __twarc metadata (not twarc2 output)", line)
        return
    target, seen = endpoint(meta.get("url")), retrieved_at(meta)
    if isinstance(target, str) or isinstance(seen, str):
        out.quarantine_line(name, number, target if isinstance(target, str) else seen, line)
        return
    post_id, action = target
    users, errors = page.get("data"), page.get("errors")
    if users is None:
        count = (page.get("meta") or {}).get("result_count") \
            if isinstance(page.get("meta"), dict) else None
        if errors:
            out.quarantine_line(name, number, f"API error for tweet {post_id}: "
                                f"{_error_text(errors)}", line)
        elif count == 0:
            out.counts["rows_ok"] += 1  # a tweet nobody liked / retweeted
        else:
            out.quarantine_line(name, number, f"page has no data, no errors and "
                                f"meta.result_count {count!r}", line)
        return
    if not isinstance(users, list):
        out.quarantine_line(name, number, f"data is a {type(users).__name__}, not a user list",
                            line)
        return
    reasons = [f"API error alongside data: {_error_text(errors)}"] if errors else []
    for position, user in enumerate(users):
        account_id = user.get("id") if isinstance(user, dict) else None
        username = user.get("username") if isinstance(user, dict) else None
        account_id = str(account_id) if isinstance(account_id, (str, int)) \
            and not isinstance(account_id, bool) else None
        account_id = account_id if account_id and DIGITS.fullmatch(account_id) else None
        username = username if isinstance(username, str) and username else None
        if account_id is None and username is None:
            reasons.append(f"user {position} has neither a numeric id nor a username")
            out.reject_user()
            continue
        out.add(post_id, action, account_id, username, seen, SOURCE, name)
    if reasons:
        out.quarantine_line(name, number, join_reasons(reasons), line)
    else:
        out.counts["rows_ok"] += 1


def _read_file(path: Path, name: str, out: EngagementCollector) -> None:
    try:
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        out.quarantine_file(name, f"unreadable file: {exc}", b"")
        return
    if not data:
        out.quarantine_file(name, "empty file", b"")
        return
    out.counts["files_read"] += 1
    lines = data.split(b"\n")
    if not lines[-1]:
        lines.pop()  # the final newline ends the last line; it opens no new one
    for number, line in enumerate(lines, start=1):
        line = line.rstrip(b"\r")
        if not line.strip():
            out.counts["blank_lines"] += 1
            continue
        out.counts["rows_read"] += 1
        _read_page(line, name, number, out)


def read_twarc_engagements(folder: Path) -> EngagementRead:
    """Engagements from every ``*.jsonl`` / ``*.jsonl.gz`` under ``folder`` (sorted)."""
    folder = Path(folder)
    out = EngagementCollector()
    files = sorted(p for p in folder.rglob("*") if p.is_file()
                   and p.name.endswith((".jsonl", ".jsonl.gz"))) if folder.is_dir() else []
    for path in files:
        _read_file(path, path.relative_to(folder).as_posix(), out)
    return out.finish()
