"""The Stream Grab reader on real files and on every kind of damaged input."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import tarfile
import zipfile
from datetime import date
from pathlib import Path

import pytest

from botpipeline.readers.twitterstream.archives import decompress, iter_members
from botpipeline.readers.twitterstream.ingest import ingest_day
from botpipeline.readers.twitterstream.messages import parse_member
from botpipeline.storage.lake import ParquetLake

MINUTE = "twitterstream_2021_01_01_00_29/29.json.bz2"


def _tweet(i: int, **extra) -> dict:
    return {"created_at": "Fri Jan 01 07:29:00 +0000 2021", "id": 10**18 + i,
            "id_str": str(10**18 + i), "text": f"tweet {i}",
            "user": {"id_str": str(500 + i % 7), "screen_name": f"u{i % 7}",
                     "followers_count": i, "created_at": "Mon Nov 19 05:27:29 +0000 2018"},
            "entities": {"hashtags": [{"text": "x"}], "urls": [], "user_mentions": []},
            "lang": "en", **extra}


def _lines(*objs) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


def _delete(i: int) -> dict:
    return {"delete": {"status": {"id": i, "id_str": str(i), "user_id": 9, "user_id_str": "9"},
                       "timestamp_ms": "1609486141254"}}


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _ingest(day: Path, tmp_path: Path):
    lake = ParquetLake(tmp_path / "lake")
    report = ingest_day(day, date(2021, 1, 1), lake, workers=2)
    return report, lake


# ------------------------------------------------------------------------ real files
def test_real_minute_counts(real_data):
    payload = decompress((real_data / MINUTE).read_bytes(), "29.json.bz2")
    assert payload.error is None and payload.codec == "bz2"
    result = parse_member(payload.payload, "29.json.bz2", "")
    assert result.lines == 3480 and result.blank_lines == 0
    assert result.message_counts == {"tweet": 3173, "delete": 307}
    assert result.quarantine.height == 0
    kinds = dict(result.tweets.group_by("kind").len().iter_rows())
    assert kinds["reply"] == 716 and kinds["retweet"] == 1709
    assert result.tweets["quoted_tweet_id"].is_not_null().sum() == 157
    # 121 tweets carry extended_tweet: their text is the full text, longer than 140 chars
    # in the stream's truncated field.
    raw_lines = [json.loads(line) for line in payload.payload.splitlines()]
    extended = {d["id_str"]: d["extended_tweet"]["full_text"] for d in raw_lines
                if "extended_tweet" in d}
    assert len(extended) == 121
    texts = dict(result.tweets.select("tweet_id", "text").iter_rows())
    assert all(texts[i] == full for i, full in extended.items())
    # Ids come from id_str: JSON numbers above 2**53 would have lost digits.
    ids = {d["id_str"] for d in raw_lines if "id_str" in d}
    assert set(result.tweets["tweet_id"]) == ids


def test_real_minute_ingest_tables(real_minute_day, tmp_path):
    report, lake = _ingest(real_minute_day, tmp_path)
    assert report.rows["tweets"] == 3173 and report.rows["deletions"] == 307
    assert report.accounting_balanced and report.lines_read == 3480
    with lake.connect() as con:
        authors = con.execute("SELECT count(DISTINCT user_id) FROM raw.tweets").fetchall()[0][0]
        snapshots = con.execute(
            "SELECT count(*), count(DISTINCT user_id) FROM raw.account_snapshots").fetchall()[0]
        assert snapshots[0] == snapshots[1] >= authors  # newest snapshot per account
        dtypes = dict(con.execute("DESCRIBE raw.tweets").fetchall()[i][:2]
                      for i in range(26))
        assert dtypes["tweet_id"] == "VARCHAR" and dtypes["created_at"] == "TIMESTAMP"
        assert dtypes["collection_date"] == "DATE" and dtypes["hashtags"] == "VARCHAR[]"


@pytest.mark.parametrize("name,expected", [("original_format_examples.jsonl", 25),
                                           ("public_api_sample.json", 20)])
def test_real_tweet_parser_samples(real_data, name, expected):
    data = (real_data / "tweet_parser_v11" / name).read_bytes()
    result = parse_member(data, name, "")
    assert result.message_counts == {"tweet": expected} and result.quarantine.height == 0
    sample = [json.loads(line) for line in data.splitlines() if line.strip()]
    assert list(result.tweets["tweet_id"]) == [d["id_str"] for d in sample]
    assert list(result.tweets["user_id"]) == [d["user"]["id_str"] for d in sample]


# ----------------------------------------------------------------- archive layouts
def test_every_layout_and_container(tmp_path):
    day = tmp_path / "2021-01-01"
    day.mkdir()
    a, b, c = _lines(_tweet(1)), _lines(_tweet(2), _delete(7)), _lines(_tweet(3))
    multi_stream = bz2.compress(_lines(_tweet(4))) + bz2.compress(_lines(_tweet(5)))
    _tar(day / "old.tar", {"01/01/00/29.json.bz2": bz2.compress(a),
                           "01/01/00/._29.json.bz2": b"\x00\x05junk",
                           "01/01/00/30.json.bz2": b""})
    _tar(day / "mid.tar", {"2021/01/01/00/31.json.gz": gzip.compress(b),
                           "2021/01/01/00/32.json.bz2": multi_stream})
    with tarfile.open(day / "new.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("20210101/20210101003300.json.gz")
        data = gzip.compress(c)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(day / "z.zip", "w") as archive:
        archive.writestr("34.json", _lines(_tweet(6)))
    (day / "35.json.gz").write_bytes(gzip.compress(_lines(_tweet(7))))
    (day / "36.jsonl").write_bytes(_lines(_tweet(8)))
    (day / ".DS_Store").write_bytes(b"junk")
    report, lake = _ingest(day, tmp_path)
    assert report.rows["tweets"] == 8 and report.rows["deletions"] == 1
    assert report.members == 7
    assert dict(report.members_skipped) == {"dot-file": 1, "empty member": 1}
    assert report.quarantined_lines == 0 and report.quarantined_members_or_files == 0
    assert report.accounting_balanced
    with lake.connect() as con:
        members = con.execute("SELECT count(*) FROM raw.ingest_members").fetchall()[0][0]
    assert members == 9  # 7 read + 2 skipped, each listed


# ----------------------------------------------------------------- damaged inputs
def test_invalid_lines_are_quarantined_and_counted(tmp_path):
    day = tmp_path / "2021-01-01"
    day.mkdir()
    good = _lines(_tweet(1), _tweet(2), _delete(3))
    bad = (b'{"id_str": "9", "text": \n'             # cut JSON
           b'\xff\xfe{"id_str":"10"}\n'              # not UTF-8
           b'[1, 2]\n'                               # not an object
           b'{"text": "no id", "user": {}}\n'        # tweet without id
           b'{"what": 1}\n'                          # unknown message
           b'\r\n'                                   # keep-alive (blank, not a message)
           b'{"limit": {"track": 12, "timestamp_ms": "1"}}\n')
    (day / "00.json.bz2").write_bytes(bz2.compress(good + bad + _lines(_tweet(4))))
    report, lake = _ingest(day, tmp_path)
    assert report.lines_read == 10 and report.blank_lines == 1
    assert report.message_counts == {"tweet": 3, "delete": 1, "limit": 1}
    assert report.quarantined_lines == 5 and report.accounting_balanced
    with lake.connect() as con:
        rows = con.execute("SELECT line_number, reason, raw FROM raw.quarantine "
                           "ORDER BY line_number").fetchall()
    assert [r[0] for r in rows] == [4, 5, 6, 7, 8]
    reasons = [r[1] for r in rows]
    assert reasons[0].startswith("invalid JSON") and reasons[1].startswith("non-UTF-8")
    assert reasons[2] == "JSON list, not an object" and reasons[3] == "tweet without id_str"
    assert reasons[4].startswith("unrecognized message")
    assert rows[1][2] == b'\xff\xfe{"id_str":"10"}'  # the raw bytes are kept


@pytest.mark.parametrize("codec", ["bz2", "gzip"])
def test_truncated_member_keeps_lines_before_the_damage(tmp_path, codec):
    day = tmp_path / "2021-01-01"
    day.mkdir()
    payload = _lines(*[_tweet(i) for i in range(12000)])  # several 900 kB bz2 blocks
    compressed = bz2.compress(payload) if codec == "bz2" else gzip.compress(payload)
    cut = compressed[: len(compressed) * 2 // 3]
    (day / f"00.json.{'bz2' if codec == 'bz2' else 'gz'}").write_bytes(cut)
    report, lake = _ingest(day, tmp_path)
    assert report.members_damaged == 1
    salvaged = decompress(cut, "x." + ("bz2" if codec == "bz2" else "gz")).payload
    complete = salvaged.count(b"\n")
    assert report.rows["tweets"] == complete > 0
    partial = 1 if not salvaged.endswith(b"\n") else 0
    assert report.quarantined_lines == partial and report.accounting_balanced
    with lake.connect() as con:
        scopes = dict(con.execute(
            "SELECT scope, count(*) FROM raw.quarantine GROUP BY scope").fetchall())
    assert scopes.get("member") == 1 and scopes.get("line", 0) == partial


def test_corrupt_bytes_inside_a_bz2_stream(tmp_path):
    day = tmp_path / "2021-01-01"
    day.mkdir()
    first = bz2.compress(_lines(*[_tweet(i) for i in range(50)]))
    second = bytearray(bz2.compress(_lines(*[_tweet(i) for i in range(50, 100)])))
    second[40:60] = b"\x00" * 20
    (day / "00.json.bz2").write_bytes(first + bytes(second))
    report, _ = _ingest(day, tmp_path)
    assert report.rows["tweets"] >= 50  # the intact first stream survives
    assert report.members_damaged == 1 and report.accounting_balanced


@pytest.mark.parametrize("tail", [b"", b"\x00" * 64, b"trailing bytes", b"BZh9", "cut"])
def test_fast_bz2_decoder_agrees_with_the_standard_library(tail):
    """libbz2-rs refuses what it cannot read whole; those members go through ``bz2`` instead,
    so the payload, the salvage and the reason never depend on which decoder is installed."""
    from botpipeline.readers.twitterstream import archives

    streams = bz2.compress(_lines(*[_tweet(i) for i in range(300)])) + bz2.compress(
        _lines(*[_tweet(i) for i in range(300, 400)]))
    data = streams[:-30] if tail == "cut" else streams + tail
    fast = decompress(data, "00.json.bz2")
    rust, archives._rust = archives._rust, None
    try:
        standard = decompress(data, "00.json.bz2")
    finally:
        archives._rust = rust
    assert fast == standard
    assert (fast.error is None) == (tail in (b"", b"\x00" * 64))
    assert fast.payload.startswith(_lines(*[_tweet(i) for i in range(300)]))
    if tail == b"":
        assert "libbz2-rs" in archives.decompressor()  # the fast decoder is installed and used
        assert fast.payload == bytes(archives._rust.bzip2.decompress(data))


@pytest.mark.parametrize("cut_in", ["data", "header"])
def test_broken_and_truncated_tar(tmp_path, cut_in):
    day = tmp_path / "2021-01-01"
    day.mkdir()
    members = {f"01/01/00/{m:02d}.json.bz2":
               bz2.compress(_lines(*[_tweet(1000 * m + i) for i in range(40)]))
               for m in range(10)}
    whole = _tar(tmp_path / "whole.tar", members)
    with tarfile.open(whole) as tar:
        infos = tar.getmembers()
    if cut_in == "data":  # inside member 5's bytes
        cut = infos[5].offset_data + infos[5].size // 2
    else:  # inside member 7's header
        cut = infos[7].offset + 100
    (day / "a_truncated.tar").write_bytes(whole.read_bytes()[:cut])
    (day / "b_garbage.tar").write_bytes(b"this is not a tar archive at all" * 40)
    (day / "c_notes.txt").write_text("not data")
    report, lake = _ingest(day, tmp_path)
    with lake.connect() as con:
        problems = con.execute("SELECT source_file, scope, reason FROM raw.quarantine "
                               "ORDER BY source_file").fetchall()
    files = [p[0] for p in problems]
    assert "a_truncated.tar" in files and "b_garbage.tar" in files and "c_notes.txt" in files
    assert all(p[1] in ("file", "member") for p in problems)
    if cut_in == "data":
        # Members 0-4 whole; member 5 cut in half is a damaged member whose bz2 data
        # ends early (a single bz2 block: nothing decodes) and is quarantined as such.
        assert report.members == 6 and report.members_damaged == 1
        assert report.rows["tweets"] == 5 * 40
    else:
        assert report.members == 7 and report.members_damaged == 0
        assert report.rows["tweets"] == 7 * 40
    assert report.accounting_balanced


def test_reingest_replaces_the_partition(real_minute_day, tmp_path):
    lake = ParquetLake(tmp_path / "lake")
    ingest_day(real_minute_day, date(2021, 1, 1), lake)
    first = lake.partition_file("raw", "tweets", "2021-01-01").read_bytes()
    ingest_day(real_minute_day, date(2021, 1, 1), lake)
    assert lake.partition_file("raw", "tweets", "2021-01-01").read_bytes() == first
    with lake.connect() as con:
        assert con.execute("SELECT count(*) FROM raw.tweets").fetchall()[0][0] == 3173
    assert not list((lake.root / "_staging").iterdir())  # staging cleaned up


def test_iter_members_reports_unsupported_files(tmp_path):
    (tmp_path / "x.csv").write_text("a,b")
    items = list(iter_members(tmp_path))
    assert len(items) == 1 and items[0].scope == "file"


# ------------------------------------------------------------- fast path == exact path
def _frames(batch):
    return {name: getattr(batch, name).sort(getattr(batch, name).columns)
            for name in ("tweets", "deletions", "snapshots", "referenced", "quarantine")}


def test_arrow_fast_path_matches_the_exact_path(real_data):
    """The Arrow reader (fast path) and DuckDB's (exact path) give the same frames."""
    from botpipeline.readers.twitterstream import messages as m

    payload = decompress((real_data / MINUTE).read_bytes(), MINUTE).payload
    # a second member: the clean lines of the tests above, one without its last newline
    small = _lines(_tweet(1, extended_tweet={"full_text": "long"}), _delete(3),
                   _tweet(2, retweeted_status=_tweet(7), quoted_status=_tweet(8)),
                   {"limit": {"track": 12}}).rstrip(b"\n")
    items = [m.MemberInput(payload, "a", "29.json"), m.MemberInput(small, "a", "b.json")]
    fast = m._build_frame(items)
    assert fast[0]["_m"].n_unique() == 2
    exact = m._exact_frame(items)
    assert fast[1:] == exact[1:]
    got, want = _frames(m._shape(items, *fast)), _frames(m._shape(items, *exact))
    for name in got:
        assert got[name].equals(want[name]), name


def test_arrow_refusals_take_the_exact_path():
    """Bytes that are not UTF-8 in a field nobody keeps, a blank line, a value of another
    type: the member is read the exact way, with the same counts and reasons as before."""
    from botpipeline.readers.twitterstream import messages as m

    odd = _lines(_tweet(1)).replace(b'"lang"', b'"zz": "\xff", "lang"')
    items = [m.MemberInput(odd, "a", "utf8"),
             m.MemberInput(_lines(_tweet(2)) + b"\n" + _lines(_tweet(3)), "a", "blank"),
             m.MemberInput(_lines(_tweet(4, retweet_count="5"), _tweet(5)), "a", "type"),
             m.MemberInput(_lines(_tweet(6)), "a", "clean")]
    batch = m.parse_members(items)
    counts = [(s["lines"], s["blank_lines"], s["quarantined_lines"]) for s in batch.members]
    assert counts == [(1, 0, 1), (2, 1, 0), (2, 0, 0), (1, 0, 0)]
    assert batch.quarantine.height == 1
    assert batch.quarantine["reason"][0].startswith("non-UTF-8")
    assert sorted(batch.tweets["tweet_id"].to_list()) == [str(10**18 + i) for i in (2, 3, 4, 5, 6)]
    blank = batch.tweets.filter(batch.tweets["source_member"] == "blank")
    assert sorted(blank["_line"].to_list()) == [1, 3]
