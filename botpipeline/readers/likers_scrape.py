"""Reader for the Danish election study's likers/retweeters collector.

The collector (github.com/humanplayer2/get-twitter-likers-data) polls a search every few
minutes and, for tweets whose like or retweet count jumped, saves the 100 most recent likers /
retweeters with pandas ``to_csv``. A pull folder looks like::

    <pull>/CSVs/<iteration_time>.csv                          tracked tweets of one poll
    <pull>/CSVs/Likers_of_alarms/Likers_of_alarms_<alarm_time>.csv
    <pull>/CSVs/Retweeters_of_alarms/Retweeters_of_alarms_<alarm_time>.csv

Likers files are ``,delta,likers`` (tweet id as the unnamed index, the list as a Python list
literal of usernames); the scrape time is only in the file name, so it becomes
``observed_at``. Deleted tweets are recorded by the collector as fake users named
``AwarenessRequired_...``: those entries are quarantined, never read as accounts. Usernames and
list literals cannot contain line breaks, so alarm files are parsed one physical line at a time:
a broken quote can never swallow the lines after it.
"""

from __future__ import annotations

import ast
import csv
import io
import re
from datetime import datetime
from pathlib import Path

from botpipeline.readers.engagements import (
    DIGITS,
    USERNAME,
    EngagementCollector,
    EngagementRead,
    join_reasons,
)

SOURCE = "likers_scrape"
ALARM_FOLDERS = (("Likers_of_alarms", "like", "likers"),
                 ("Retweeters_of_alarms", "repost", "retweeters"))
TRACKED_HEADER = ("author id", "created_at", "geo", "id", "lang", "like_count", "quote_count",
                  "reply_count", "retweet_count", "source", "tweet")
SENTINEL_PREFIX = "AwarenessRequired_"
_STAMP = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z")
_SURROGATE = re.compile("[\udc80-\udcff]")  # undecodable bytes under surrogateescape
_MAX_LITERAL = 200_000  # characters; 100 usernames need under 2,000


def scrape_time(file_name: str) -> datetime | None:
    """The UTC time the collector stamped into a file name (``2022-10-05T12:34:56.000Z``)."""
    match = _STAMP.search(file_name)
    if match is None:
        return None
    try:
        moment = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    fraction = match.group(2)
    return moment.replace(microsecond=int(fraction.ljust(6, "0"))) if fraction else moment


def sentinel_reason(name: str) -> str:
    if "Deleted_Tweet" in name:
        return f"collector marked the tweet as deleted (sentinel user {name!r})"
    if "Unknown_Case" in name:
        return f"collector got an API answer it could not classify (sentinel user {name!r})"
    return f"collector placeholder {name!r}, not a user"


def _read_bytes(path: Path, name: str, out: EngagementCollector) -> bytes | None:
    """The file's bytes, or None after quarantining a file that cannot be used at all."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        out.quarantine_file(name, f"unreadable file: {exc}", b"")
        return None
    if not data:
        out.quarantine_file(name, "empty file", b"")
        return None
    if scrape_time(path.name) is None:
        out.quarantine_file(name, "file name has no parsable scrape time "
                            "(expected YYYY-MM-DDTHH:MM:SS.000Z in it)", data)
        return None
    return data


def _cut_hint(line: bytes, is_last: bool) -> str:
    return "; the last line is cut off" if is_last and not line.endswith((b"\n", b"\r")) else ""


def _parse_users(value: str, column: str) -> tuple[list[str] | None, str | None]:
    """The list literal as usernames, or the reason it is not one (never ``eval``)."""
    if len(value) > _MAX_LITERAL:
        return None, f"{column} literal is {len(value)} characters long, not a scrape list"
    try:
        users = ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        return None, f"{column} list literal does not parse ({type(exc).__name__}): {value[:80]!r}"
    if not isinstance(users, list):
        return None, f"{column} is a {type(users).__name__}, not a list of usernames"
    wrong = [type(u).__name__ for u in users if not isinstance(u, str)]
    if wrong:
        return None, f"{column} list holds {wrong[0]} values, not usernames"
    return users, None


def _read_alarm_file(path: Path, name: str, action: str, column: str,
                     out: EngagementCollector) -> None:
    data = _read_bytes(path, name, out)
    if data is None:
        return
    observed_at = scrape_time(path.name)
    lines = data.splitlines(keepends=True)
    try:
        header = next(csv.reader([lines[0].decode("utf-8").lstrip("\ufeff").rstrip("\r\n")]))
    except (UnicodeDecodeError, csv.Error) as exc:
        out.quarantine_file(name, f"unreadable header: {exc}", data)
        return
    if column not in header[1:]:
        out.quarantine_file(name, f"header has no {column!r} column (got {header!r})", data)
        return
    at = header.index(column, 1)
    out.counts["files_read"] += 1
    for number, raw in enumerate(lines[1:], start=2):
        if not raw.strip():
            out.counts["blank_lines"] += 1
            continue
        out.counts["rows_read"] += 1
        parsed = _parse_row(raw, number == len(lines), header, at, column)
        if isinstance(parsed, str):
            out.quarantine_line(name, number, parsed, raw.rstrip(b"\r\n"))
            continue
        post_id, users = parsed
        reasons = []
        for user in users:
            if user.startswith(SENTINEL_PREFIX):
                reasons.append(sentinel_reason(user))
            elif not USERNAME.fullmatch(user):
                reasons.append(f"username {user!r} breaks Twitter's rule [A-Za-z0-9_]{{1,15}}")
            else:
                out.add(post_id, action, None, user, observed_at, SOURCE, name)
                continue
            out.reject_user()
        if reasons:
            out.quarantine_line(name, number, join_reasons(reasons), raw.rstrip(b"\r\n"))
        else:
            out.counts["rows_ok"] += 1


def _parse_row(raw: bytes, is_last: bool, header: list[str], at: int,
               column: str) -> str | tuple[str, list[str]]:
    """Either the reason a whole row is unusable, or its (tweet id, usernames)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"non-UTF-8 bytes at byte {exc.start}"
    try:
        fields = next(csv.reader([text.rstrip("\r\n")], strict=True))
    except csv.Error as exc:
        return f"malformed CSV ({exc}){_cut_hint(raw, is_last)}"
    if len(fields) != len(header):
        return f"expected {len(header)} fields, got {len(fields)}{_cut_hint(raw, is_last)}"
    if not DIGITS.fullmatch(fields[0]):
        return f"tweet id {fields[0]!r} is not all digits"
    users, problem = _parse_users(fields[at], column)
    if problem is not None:
        return problem + _cut_hint(raw, is_last)
    return fields[0], users


def _read_tracked_file(path: Path, name: str, out: EngagementCollector,
                       tracked: set[str]) -> int:
    """Validate one poll's tracked-tweets CSV; returns its data rows.

    Tweet texts may hold line breaks, so this file is parsed as a stream; undecodable bytes are
    kept as surrogates and their rows quarantined.
    """
    data = _read_bytes(path, name, out)
    if data is None:
        return 0
    physical = list(io.StringIO(data.decode("utf-8", "surrogateescape"), newline=""))
    reader = csv.reader(iter(physical))
    header = [h.lstrip("\ufeff") for h in next(reader, [])]
    if "id" not in header:
        out.quarantine_file(name, f"tracked-tweets header has no 'id' column (got {header!r})",
                            data)
        return 0
    out.counts["files_read"] += 1
    at, rows, start = header.index("id"), 0, reader.line_num + 1
    while True:
        try:
            fields = next(reader)
            reason = None
        except StopIteration:
            break
        except csv.Error as exc:
            fields, reason = [""], f"malformed CSV ({exc})"
        number, start = start, reader.line_num + 1
        chunk = "".join(physical[number - 1:reader.line_num])
        if not fields:
            out.counts["blank_lines"] += 1
            continue
        rows += 1
        out.counts["rows_read"] += 1
        if reason is not None:
            pass
        elif (bad := _SURROGATE.search(chunk)) is not None:
            reason = f"non-UTF-8 bytes at character {bad.start()}"
        elif len(fields) != len(header):
            reason = f"expected {len(header)} fields, got {len(fields)}"
        elif not DIGITS.fullmatch(fields[at]):
            reason = f"tweet id {fields[at]!r} is not all digits"
        else:
            tracked.add(fields[at])
            out.counts["rows_ok"] += 1
            continue
        out.quarantine_line(name, number, reason,
                            chunk.encode("utf-8", "surrogateescape").rstrip(b"\r\n"))
    return rows


def pull_folders(folder: Path) -> list[Path]:
    """Every folder under ``folder`` (itself included) that holds a ``CSVs/`` subfolder."""
    if not folder.is_dir():
        return []
    found = {p.parent for p in folder.rglob("CSVs") if p.is_dir()}
    return sorted(found)


def read_likers_pull(folder: Path) -> EngagementRead:
    """Engagements of every pull folder under ``folder``; paths are relative to ``folder``."""
    folder = Path(folder)
    out = EngagementCollector()
    tracked: set[str] = set()
    tracked_rows = 0
    for pull in pull_folders(folder):
        csvs = pull / "CSVs"
        for path in sorted(p for p in csvs.glob("*.csv") if p.is_file()):
            tracked_rows += _read_tracked_file(path, path.relative_to(folder).as_posix(), out,
                                               tracked)
        for sub, action, column in ALARM_FOLDERS:
            for path in sorted(p for p in (csvs / sub).glob("*.csv") if p.is_file()):
                _read_alarm_file(path, path.relative_to(folder).as_posix(), action, column, out)
    return out.finish(tracked_tweets=len(tracked), tracked_rows=tracked_rows)
