"""Engagement readers (likers scrape, twarc liking-users / retweeted-by) and their sample.

Hand-built files pin every malformed path to one quarantine row with its reason and prove the
accounting; the shipped sample is checked for determinism, its planted faults and its groups.
"""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from botpipeline.readers.engagements import ENGAGEMENT_SCHEMA
from botpipeline.readers.likers_scrape import read_likers_pull
from botpipeline.readers.twarc_engagements import read_twarc_engagements
from botpipeline.readers.twitterstream.messages import QUARANTINE_SCHEMA
from botpipeline.samples.engagement_scrapes import DATES, write_engagement_sample
from botpipeline_tests.conftest import PROJECT_ROOT

T1, T2 = "1577601234567890123", "1577601234567890999"
TRACKED = ("author id,created_at,geo,id,lang,like_count,quote_count,reply_count,retweet_count,"
           "source,tweet\r\n")
LIKERS = "CSVs/Likers_of_alarms/Likers_of_alarms_2022-10-05T12:34:56.000Z.csv"
RETWEETERS = "CSVs/Retweeters_of_alarms/Retweeters_of_alarms_2022-10-05T12:35:10.000Z.csv"
GOOD_ROW = f"{T2},1.0,['jensen']\n"


def write(root: Path, files: dict[str, bytes | str]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def frame(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=ENGAGEMENT_SCHEMA, orient="row")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def counters(read) -> dict[str, int]:
    return {k: v for k, v in vars(read).items() if isinstance(v, int)}


# ------------------------------------------------------------------------------ likers scrape
def test_likers_pull_happy_path_dedupes_to_the_earliest_scrape(tmp_path):
    """Two pull folders; the later scrape sorts first, the earliest sighting still wins."""
    write(tmp_path, {
        "a_pull/CSVs/2022-10-05T12:39:50.000Z.csv":
            TRACKED + f'1,2022-10-05 12:00:01+00:00, ,{T1},da,33,0,0,1,Twitter Web App,"two\r\nlines"\r\n',
        "a_pull/CSVs/Likers_of_alarms/Likers_of_alarms_2022-10-05T12:39:58.000Z.csv":
            f",delta,likers\n{T1},2.0,\"['new_one', 'anna_dk', 'bo1975']\"\n",
        "b_pull/CSVs/2022-10-05T12:34:50.000Z.csv":
            TRACKED + f"1,2022-10-05 12:00:01+00:00, ,{T1},da,31,0,0,1,Twitter Web App,hej\r\n"
            f"2,2022-10-05 12:01:00+00:00, ,{T2},da,3,0,0,0,Twitter Web App,hej\r\n",
        f"b_pull/{LIKERS}":
            f",delta,likers\n{T1},31.0,\"['anna_dk', 'Bo1975', 'jensen']\"\n{T2},3.0,[]\n",
        f"b_pull/{RETWEETERS}": f",delta,retweeters\n{T1},1.0,['jensen']\n",
        "b_pull/CSVs/Likers_of_alarms/notes.txt": "not a csv, not read",
    })
    read = read_likers_pull(tmp_path)
    first, later = f"b_pull/{LIKERS}", ("a_pull/CSVs/Likers_of_alarms/"
                                        "Likers_of_alarms_2022-10-05T12:39:58.000Z.csv")
    seen, seen_later = at("2022-10-05T12:34:56"), at("2022-10-05T12:39:58")
    expected = frame([
        ("twitter", T1, "like", None, "anna_dk", None, seen, "likers_scrape", first),
        ("twitter", T1, "like", None, "Bo1975", None, seen, "likers_scrape", first),
        ("twitter", T1, "like", None, "jensen", None, seen, "likers_scrape", first),
        ("twitter", T1, "like", None, "new_one", None, seen_later, "likers_scrape", later),
        ("twitter", T1, "repost", None, "jensen", None, at("2022-10-05T12:35:10"),
         "likers_scrape", f"b_pull/{RETWEETERS}"),
    ])
    assert read.engagements.equals(expected)
    assert read.quarantine.schema == pl.Schema(QUARANTINE_SCHEMA) and read.quarantine.is_empty()
    assert counters(read) == {
        "files_read": 5, "files_quarantined": 0, "rows_read": 7, "rows_ok": 7,
        "rows_quarantined": 0, "blank_lines": 0, "users_read": 7, "users_expanded": 7,
        "users_quarantined": 0, "duplicates_dropped": 2, "tracked_rows": 3,
        "tracked_tweets": 2}
    assert read.nothing_lost


def test_no_pull_folder_gives_an_empty_read(tmp_path):
    read = read_likers_pull(tmp_path / "missing")
    assert read.engagements.schema == pl.Schema(ENGAGEMENT_SCHEMA)
    assert read.engagements.is_empty() and read.quarantine.is_empty() and read.nothing_lost


FILE_CASES = {
    "header without the likers column": (LIKERS, f",delta,likes\n{GOOD_ROW}",
                                         "header has no 'likers' column"),
    "likers header in a retweeters file": (RETWEETERS, f",delta,likers\n{GOOD_ROW}",
                                           "header has no 'retweeters' column"),
    "no time in the file name": ("CSVs/Likers_of_alarms/Likers_of_alarms_latest.csv",
                                 f",delta,likers\n{GOOD_ROW}", "no parsable scrape time"),
    "impossible time in the file name": (
        "CSVs/Likers_of_alarms/Likers_of_alarms_2022-13-45T12:00:00.000Z.csv",
        f",delta,likers\n{GOOD_ROW}", "no parsable scrape time"),
    "empty likers file": (LIKERS, b"", "empty file"),
    "empty tracked file": ("CSVs/2022-10-05T12:30:00.000Z.csv", b"", "empty file"),
    "tracked file with a foreign header": ("CSVs/2022-10-05T12:30:00.000Z.csv",
                                           "tweet_id,text\r\n1,hej\r\n",
                                           "tracked-tweets header has no 'id' column"),
}


@pytest.mark.parametrize("case", FILE_CASES, ids=list(FILE_CASES))
def test_likers_file_level_quarantine(tmp_path, case):
    rel, content, reason = FILE_CASES[case]
    read = read_likers_pull(write(tmp_path, {rel: content}))
    row = read.quarantine.row(0, named=True)
    assert read.quarantine.height == 1 and read.files_quarantined == 1
    assert (row["source_file"], row["scope"], row["line_number"]) == (rel, "file", None)
    assert reason in row["reason"]
    assert row["raw"] == (content.encode() if isinstance(content, str) else content)
    assert read.engagements.is_empty() and read.files_read == 0 and read.rows_read == 0
    assert read.nothing_lost


LINE_CASES = {
    # name: (bad line, reason fragment, users_read, users_expanded of the bad line)
    "tweet id with letters": ("1577x,1.0,['anna_dk']\n", "tweet id '1577x' is not all digits",
                              0, 0),
    "tweet id written as a float": ("1.5776012345678902e+18,1.0,['anna_dk']\n",
                                    "is not all digits", 0, 0),
    "list literal that does not parse": (f"{T1},2.0,\"['anna_dk', 'Bo19\"\n",
                                         "likers list literal does not parse", 0, 0),
    "code instead of a literal": (f"{T1},1.0,\"__import__('os').system('false')\"\n",
                                  "does not parse", 0, 0),
    "a dict, not a list": (f"{T1},1.0,\"{{'anna_dk': 1}}\"\n", "is a dict, not a list", 0, 0),
    "a list of numbers": (f"{T1},2.0,\"[1, 2]\"\n", "holds int values, not usernames", 0, 0),
    "non-UTF-8 bytes": (f"{T1},1.0,['caf".encode() + b"\xe9']\n", "non-UTF-8 bytes at byte",
                        0, 0),
    "too few fields": (f"{T1},1.0\n", "expected 3 fields, got 2", 0, 0),
    "too many fields": (f"{T1},1.0,[],x\n", "expected 3 fields, got 4", 0, 0),
    "unclosed quote": (f"{T1},1.0,\"['anna_dk'\n", "malformed CSV", 0, 0),
    "names that break Twitter's rule": (
        f"{T1},3.0,\"['anna_dk', 'name_far_too_long_x', 'bad-name']\"\n",
        ("username 'name_far_too_long_x' breaks Twitter's rule [A-Za-z0-9_]{1,15}; "
         "username 'bad-name' breaks"), 3, 1),
    "deleted-tweet sentinel": (f"{T1},1.0,['AwarenessRequired_Liking_Users_of_Deleted_Tweet']\n",
                               ("collector marked the tweet as deleted (sentinel user "
                                "'AwarenessRequired_Liking_Users_of_Deleted_Tweet')"), 1, 0),
    "unknown-case sentinel next to a real liker": (
        f"{T1},2.0,\"['AwarenessRequired_Liking_Users_Unknown_Case', 'anna_dk']\"\n",
        "collector got an API answer it could not classify", 2, 1),
}


@pytest.mark.parametrize("case", LINE_CASES, ids=list(LINE_CASES))
def test_likers_line_level_quarantine(tmp_path, case):
    """The bad line sits between two good ones: only it is quarantined, nothing is swallowed."""
    bad, reason, users_read, users_kept = LINE_CASES[case]
    bad = bad.encode() if isinstance(bad, str) else bad
    content = b",delta,likers\n" + f"{T2},1.0,['jensen']\n".encode() + bad \
        + b"1577601234567890555,1.0,['bo1975']\n"
    read = read_likers_pull(write(tmp_path, {LIKERS: content}))
    row = read.quarantine.row(0, named=True)
    assert read.quarantine.height == 1
    assert (row["source_file"], row["line_number"], row["scope"]) == (LIKERS, 3, "line")
    assert reason in row["reason"]
    assert row["raw"] == bad.rstrip(b"\n")
    assert counters(read) | {"users_read": 0} == {
        "files_read": 1, "files_quarantined": 0, "rows_read": 3, "rows_ok": 2,
        "rows_quarantined": 1, "blank_lines": 0, "users_read": 0,
        "users_expanded": 2 + users_kept, "users_quarantined": users_read - users_kept,
        "duplicates_dropped": 0, "tracked_rows": 0, "tracked_tweets": 0}
    assert read.users_read == 2 + users_read
    assert set(read.engagements["username"]) >= {"jensen", "bo1975"}
    assert read.nothing_lost


def test_eval_is_never_used(tmp_path):
    marker = tmp_path / "pwned"
    line = f"{T1},1.0,\"__import__('pathlib').Path('{marker}').touch()\"\n"
    read = read_likers_pull(write(tmp_path, {LIKERS: ",delta,likers\n" + line}))
    assert not marker.exists() and read.rows_quarantined == 1


@pytest.mark.parametrize("tail, reason", [
    (f'{T1},31.0,"[\'anna_dk\', \'Bo',
     "malformed CSV (unexpected end of data); the last line is cut off"),
    (f"{T1},31.", "expected 3 fields, got 2; the last line is cut off"),
    (f"{T1},31.0,['anna_dk', 'Bo", "expected 3 fields, got 4; the last line is cut off"),
    (f"{T1},1.0,['anna_d", "likers list literal does not parse"),
])
def test_truncated_last_line(tmp_path, tail, reason):
    read = read_likers_pull(write(tmp_path, {LIKERS: ",delta,likers\n" + GOOD_ROW + tail}))
    assert read.quarantine["line_number"].to_list() == [3]
    assert read.quarantine["reason"][0].startswith(reason)
    assert read.quarantine["raw"][0] == tail.encode()
    assert read.engagements["username"].to_list() == ["jensen"] and read.nothing_lost


def test_retweeters_sentinel_and_crlf_blank_lines(tmp_path):
    content = (f",delta,retweeters\r\n{T1},1.0,['AwarenessRequired_Retweeters_of_Deleted_Tweet']"
               f"\r\n\r\n{T2},1.0,['jensen']\r\n")
    read = read_likers_pull(write(tmp_path, {RETWEETERS: content}))
    assert read.quarantine["reason"].to_list() == [(
        "collector marked the tweet as deleted (sentinel user "
        "'AwarenessRequired_Retweeters_of_Deleted_Tweet')")]
    assert read.engagements.select("post_id", "action", "username").rows() == [
        (T2, "repost", "jensen")]
    assert read.blank_lines == 1 and read.rows_read == 2 and read.nothing_lost


def test_tracked_rows_are_validated(tmp_path):
    name = "CSVs/2022-10-05T12:30:00.000Z.csv"
    content = (TRACKED.encode()
               + f"1,2022-10-05 12:00:01+00:00, ,{T1},da,3,0,0,1,Twitter Web App,hej\r\n".encode()
               + b"1,2022-10-05 12:00:01+00:00, ,12ab,da,3,0,0,1,Twitter Web App,hej\r\n"
               + b"1,2022-10-05 12:00:01+00:00, ,17,da,3\r\n"
               + f'1,2022-10-05, ,{T2},da,3,0,0,1,Web,"caf'.encode() + b'\xe9\r\nx"\r\n'
               + f"1,2022-10-05, ,{T2},da,3,0,0,1,Web,\"multi\r\nline\"\r\n".encode())
    read = read_likers_pull(write(tmp_path, {name: content}))
    assert read.quarantine.select("line_number", "reason").rows() == [
        (3, "tweet id '12ab' is not all digits"),
        (4, "expected 11 fields, got 6"),
        (5, "non-UTF-8 bytes at character 54"),
    ]
    assert read.quarantine["raw"][2] == f'1,2022-10-05, ,{T2},da,3,0,0,1,Web,"caf'.encode() \
        + b'\xe9\r\nx"'
    assert (read.tracked_rows, read.tracked_tweets, read.rows_ok) == (5, 2, 2)
    assert read.engagements.is_empty() and read.nothing_lost


def test_one_bad_file_never_stops_the_run(tmp_path):
    write(tmp_path, {
        LIKERS: b"",
        "CSVs/Likers_of_alarms/Likers_of_alarms_2022-10-05T12:40:00.000Z.csv":
            b"\xff\xfe,delta,likers\n",
        "CSVs/Likers_of_alarms/Likers_of_alarms_2022-10-05T12:45:00.000Z.csv":
            f",delta,likers\n{T1},1.0,['anna_dk']\n",
    })
    read = read_likers_pull(tmp_path)
    assert read.quarantine["reason"].to_list()[0] == "empty file"
    assert read.quarantine["reason"][1].startswith("unreadable header")
    assert read.engagements["username"].to_list() == ["anna_dk"] and read.nothing_lost


def test_raw_is_capped(tmp_path):
    names = ", ".join(f"'{'x' * 20}{i}'" for i in range(200))
    read = read_likers_pull(write(tmp_path, {LIKERS: f',delta,likers\n{T1},1.0,"[{names}]"\n'}))
    assert len(read.quarantine["raw"][0]) == 2000 and read.users_quarantined == 200
    assert read.quarantine["reason"][0].endswith("; and 195 more")


# ------------------------------------------------------------------------------------- twarc
URL = "https://api.twitter.com/2/tweets/{}/{}?max_results=100"


def page(tweet: str, endpoint: str, users: list[tuple[str | None, str | None]] | None,
         retrieved: str = "2022-11-01T10:00:00+00:00", **extra) -> str:
    body: dict = {}
    if users is not None:
        body["data"] = [{k: v for k, v in (("id", i), ("name", "N"), ("username", u))
                         if v is not None} for i, u in users]
        body["meta"] = {"result_count": len(users)}
    body.update(extra)
    body["__twarc"] = {"url": URL.format(tweet, endpoint), "version": "2.12.0",
                       "retrieved_at": retrieved}
    return json.dumps(body)


def test_twarc_happy_path(tmp_path):
    later, earlier = "2022-11-01T11:00:00+00:00", "2022-11-01T12:30:00+02:00"  # 10:30 UTC
    write(tmp_path, {
        "a/liking_users.jsonl": "\n".join([
            page(T1, "liking_users", [("11", "anna_dk"), ("12", "Bo1975")], later),
            page(T1, "liking_users", [("13", None)], later),  # page 2: id only is enough
            page(T2, "liking_users", None, later, meta={"result_count": 0}),
            "",
        ]) + "\n",
        "b/retweeted_by.jsonl.gz": gzip.compress((
            page(T1, "retweeted_by", [("11", "anna_dk")], earlier) + "\n"
            + page(T1, "liking_users", [("12", "bo1975_renamed")], earlier) + "\n").encode()),
        "b/notes.json": "{}",
    })
    read = read_twarc_engagements(tmp_path)
    a, b = "a/liking_users.jsonl", "b/retweeted_by.jsonl.gz"
    expected = frame([
        ("twitter", T1, "like", "11", "anna_dk", None, at("2022-11-01T11:00:00"), "twarc", a),
        ("twitter", T1, "like", "12", "bo1975_renamed", None, at("2022-11-01T10:30:00"),
         "twarc", b),
        ("twitter", T1, "like", "13", None, None, at("2022-11-01T11:00:00"), "twarc", a),
        ("twitter", T1, "repost", "11", "anna_dk", None, at("2022-11-01T10:30:00"), "twarc", b),
    ])
    assert read.engagements.equals(expected)
    assert counters(read) == {
        "files_read": 2, "files_quarantined": 0, "rows_read": 5, "rows_ok": 5,
        "rows_quarantined": 0, "blank_lines": 1, "users_read": 5, "users_expanded": 5,
        "users_quarantined": 0, "duplicates_dropped": 1, "tracked_rows": 0, "tracked_tweets": 0}
    assert read.quarantine.is_empty() and read.nothing_lost


DELETED = {"errors": [{"value": T1, "detail": f"Could not find tweet with id: [{T1}].",
                       "title": "Not Found Error", "resource_type": "tweet", "parameter": "id",
                       "resource_id": T1,
                       "type": "https://api.twitter.com/2/problems/resource-not-found"}]}
TWARC_CASES = {
    "broken JSON": (b'{"data": [{"id": "1"', "invalid JSON: ", 0),
    "not an object": (b"[1, 2]", "JSON list, not an object", 0),
    "non-UTF-8": (b'{"data": [{"id": "1", "username": "caf\xe9"}]}', "non-UTF-8 bytes at byte ",
                  0),
    "no __twarc": (json.dumps({"data": [{"id": "1", "username": "a"}]}),
                   "no __twarc metadata (not twarc2 output)", 0),
    "no url": (json.dumps({"data": [], "__twarc": {"retrieved_at": "2022-11-01T10:00:00+00:00"}}),
               "__twarc.url is missing", 0),
    "search url": (json.dumps({"data": [], "__twarc": {
        "url": "https://api.twitter.com/2/tweets/search/recent?query=x",
        "retrieved_at": "2022-11-01T10:00:00+00:00"}}),
        "not a liking_users or retweeted_by request: https://api.twitter.com/2/tweets/search", 0),
    "unparsable url": (json.dumps({"data": [], "__twarc": {
        "url": "http://[::1/2/tweets/1/liking_users", "retrieved_at": "2022-11-01T10:00:00Z"}}),
        "__twarc.url does not parse", 0),
    "bad retrieved_at": (page(T1, "liking_users", [("1", "a")], retrieved="yesterday"),
                         "__twarc.retrieved_at 'yesterday' is not an ISO time", 0),
    "deleted tweet": (page(T1, "liking_users", None, **DELETED),
                      (f"API error for tweet {T1}: Not Found Error: Could not find tweet with "
                       f"id: [{T1}]."), 0),
    "user without id and username": (
        page(T1, "retweeted_by", [("1", "a"), (None, None), ("x1", None)]),
        "user 1 has neither a numeric id nor a username; user 2 has neither", 3),
    "data not a list": (json.dumps({"data": {"id": "1"}, "__twarc": {
        "url": URL.format(T1, "liking_users"), "retrieved_at": "2022-11-01T10:00:00+00:00"}}),
        "data is a dict, not a user list", 0),
    "neither data nor errors": (page(T1, "liking_users", None, meta={"result_count": 5}),
                                "page has no data, no errors and meta.result_count 5", 0),
}


@pytest.mark.parametrize("case", TWARC_CASES, ids=list(TWARC_CASES))
def test_twarc_line_level_quarantine(tmp_path, case):
    bad, reason, users = TWARC_CASES[case]
    bad = bad.encode() if isinstance(bad, str) else bad
    good = page(T2, "liking_users", [("7", "jensen")]).encode()
    read = read_twarc_engagements(write(tmp_path, {"x.jsonl": good + b"\n" + bad + b"\n"
                                                   + good + b"\r\n"}))
    row = read.quarantine.row(0, named=True)
    assert read.quarantine.height == 1
    assert (row["source_file"], row["line_number"], row["scope"]) == ("x.jsonl", 2, "line")
    assert row["reason"].startswith(reason)
    assert row["raw"] == bad
    assert (read.rows_read, read.rows_ok, read.rows_quarantined) == (3, 2, 1)
    assert read.users_read == 2 + users and read.duplicates_dropped == 1
    assert read.nothing_lost


def test_twarc_keeps_valid_users_of_a_partly_bad_page(tmp_path):
    read = read_twarc_engagements(write(tmp_path, {"x.jsonl": page(
        T1, "retweeted_by", [("1", "a"), (None, None), ("x1", "b")])}))
    assert read.engagements.select("account_id", "username").rows() == [
        ("1", "a"), (None, "b")]
    assert (read.users_expanded, read.users_quarantined) == (2, 1) and read.nothing_lost


@pytest.mark.parametrize("name, content, reason", [
    ("empty.jsonl", b"", "empty file"),
    ("cut.jsonl.gz", gzip.compress(b'{"a": 1}\n' * 50)[:-12], "unreadable file: "),
    ("junk.jsonl.gz", b"not gzip at all", "unreadable file: "),
])
def test_twarc_file_level_quarantine(tmp_path, name, content, reason):
    write(tmp_path, {name: content, "ok.jsonl": page(T1, "liking_users", [("1", "a")])})
    read = read_twarc_engagements(tmp_path)
    assert read.quarantine.select("source_file", "scope").rows() == [(name, "file")]
    assert read.quarantine["reason"][0].startswith(reason)
    assert read.engagements.height == 1 and read.files_read == 1 and read.nothing_lost


def test_real_twarc_files_are_not_engagement_pages(real_data):
    """The shared twarc2 samples are search / stream / users pages: none of them is a liking_users
    or retweeted_by answer, so each line is quarantined with that reason (and the stream's cut-off
    last line as invalid JSON) instead of being misread as likes."""
    folder = real_data / "twarc_csv_v2"
    read = read_twarc_engagements(folder)
    lines = sum(1 for p in folder.glob("*.jsonl") for line in p.read_bytes().split(b"\n")
                if line.strip())
    assert read.engagements.is_empty()
    assert read.rows_read == read.rows_quarantined == read.quarantine.height == lines
    reasons = read.quarantine["reason"]
    invalid = read.quarantine.filter(reasons.str.starts_with("invalid JSON"))
    assert invalid.select("source_file", "line_number").rows() == [
        ("streaming_output_with_error.jsonl", 8)]
    assert reasons.str.starts_with("not a liking_users or retweeted_by request: "
                                   "https://api.twitter.com/2/").sum() == lines - 1
    assert read.nothing_lost


# ----------------------------------------------------------------------------- shipped sample
SAMPLE = PROJECT_ROOT / "data"
LIKERS_DIR = "%s/likers_pull/CSVs/Likers_of_alarms/Likers_of_alarms_"


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("engagements")
    (root / "truth" / "twitterstream").mkdir(parents=True)
    shutil.copy(SAMPLE / "truth" / "twitterstream" / "accounts.csv",
                root / "truth" / "twitterstream" / "accounts.csv")
    return root, write_engagement_sample(root)


def _files(root: Path) -> dict[str, bytes]:
    """The sample's files: its own date folders only (a user may drop others beside them)."""
    folders = [root / "incoming" / "engagements" / day for day in DATES]
    folders.append(root / "truth" / "engagements")
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


def test_sample_regenerates_byte_identical(regenerated):
    root, summary = regenerated
    shipped, fresh = _files(SAMPLE), _files(root)
    assert sorted(shipped) == sorted(fresh) and len(fresh) > 40
    assert all(shipped[name] == fresh[name] for name in fresh)
    assert sum(map(len, fresh.values())) < 300_000
    assert summary["bytes"] < 300_000


def test_sample_reads_with_exactly_the_planted_faults(regenerated):
    _, summary = regenerated
    folder = SAMPLE / "incoming" / "engagements"
    likers, twarc = read_likers_pull(folder), read_twarc_engagements(folder)
    assert likers.quarantine.select("source_file", "line_number").rows() == [
        (f"{LIKERS_DIR % '2021-01-02'}2021-01-02T10:10:10.000Z.csv", 19),
        (f"{LIKERS_DIR % '2021-01-03'}2021-01-03T10:10:12.000Z.csv", 12)]
    assert likers.quarantine["reason"][0].startswith("collector marked the tweet as deleted")
    assert likers.quarantine["reason"][1].startswith("likers list literal does not parse")
    assert twarc.quarantine.select("source_file", "line_number").rows() == [
        ("2021-01-04/twarc/liking_users.jsonl", 14)]
    assert twarc.quarantine["reason"][0] == (
        "API error for tweet 1346018529902242529: Not Found Error: Could not find tweet with "
        "id: [1346018529902242529].")
    assert likers.files_quarantined == twarc.files_quarantined == 0
    assert likers.nothing_lost and twarc.nothing_lost
    assert likers.duplicates_dropped > 0 and twarc.duplicates_dropped > 0
    for date in DATES:
        planted = summary["dates"][date]
        day = pl.col("source_file").str.starts_with(date)
        assert likers.engagements.filter(day).height == planted["likers_scrape_engagements"]
        assert twarc.engagements.filter(day).height == planted["twarc_engagements"]


def test_sample_plants_the_like_groups():
    """Exact members like their group's full campaign set each day; the others miss 1-2 of it
    (Jaccard >= 0.8); no two groups share a campaign tweet."""
    folder = SAMPLE / "incoming" / "engagements"
    likes = (pl.concat([read_likers_pull(folder).engagements,
                        read_twarc_engagements(folder).engagements])
             .filter(pl.col("action") == "like")
             .select(pl.col("source_file").str.slice(0, 10).alias("date"), "post_id",
                     pl.col("username").str.to_lowercase().alias("user")))
    truth = pl.read_csv(SAMPLE / "truth" / "engagements" / "like_groups.csv",
                        schema_overrides={"user_id": pl.String, "group_id": pl.String})
    assert truth.height == 88 and truth["exact"].sum() == 70
    liked = {(d, u): set(p) for d, u, p in likes.group_by("date", "user")
             .agg("post_id").iter_rows()}
    campaigns: dict[str, set[str]] = {}
    for date in DATES:
        for (group,), members in truth.group_by("group_id"):
            sets: dict[bool, list[set[str]]] = {True: [], False: []}
            for m in members.iter_rows(named=True):
                sets[m["exact"]].append(liked[(date, m["screen_name"].lower())])
            campaign = sets[True][0]
            assert 8 <= len(campaign) <= 15 and all(s == campaign for s in sets[True])
            assert all(s < campaign and len(s) / len(campaign) >= 0.8 for s in sets[False])
            assert not any(campaign & other for other in campaigns.values())
            campaigns[f"{date}/{group}"] = campaign
