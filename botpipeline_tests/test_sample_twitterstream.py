"""Tests of the Twitter Stream Grab sample generator (botpipeline.samples.twitterstream).

The counts are recomputed here from the tars with tarfile + bz2/gzip + json only, independently
of the generator's own bookkeeping, and compared with the per-day truth json.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import json
import os
import re
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from botpipeline.samples import twitterstream as ts

REAL_DATA = Path(os.environ.get("BOTPIPELINE_REAL_DATA",
                                Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
REAL_MINUTE = REAL_DATA / "twitterstream_2021_01_01_00_29" / "29.json.bz2"

SMALL = dict(start_date="2021-01-02", days=3, tweets_per_day=700, seed=11, minutes_per_day=12,
             layout="mixed", faults=True,
             population=ts.PopulationConfig(groups=3, group_size=(5, 9)))

PATTERNS = {
    "MM/DD/HH/mm": re.compile(r"^\d\d/\d\d/\d\d/(\._)?\d\d\.json\.(bz2|gz)$"),
    "YYYY/MM/DD/HH/mm": re.compile(r"^\d{4}/\d\d/\d\d/\d\d/(\._)?\d\d\.json\.(bz2|gz)$"),
    "YYYYMMDD/YYYYMMDDHHMMSS": re.compile(r"^(\d{8})/(\._)?\1\d{4}00\.json\.(bz2|gz)$"),
}
NOTICE_TYPES = ("limit", "scrub_geo", "status_withheld", "user_withheld")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("tsg")
    truths = ts.generate(out, **SMALL)
    return out, truths


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _count_tar(path: Path, seen_before: set[str]) -> tuple[dict, set[str], list[dict]]:
    """Independent count of one daily tar (see the module docstring of the generator)."""
    c: Counter = Counter()
    other: Counter = Counter()
    bad: Counter = Counter()
    names = []
    tweets: dict[str, dict] = {}
    order: list[str] = []
    deletes = []
    multistream = 0
    with tarfile.open(path) as tf:
        for m in tf.getmembers():
            if m.isdir():
                c["directory_members"] += 1
                continue
            assert m.isfile()
            c["members"] += 1
            names.append(m.name)
            raw = tf.extractfile(m).read()
            if os.path.basename(m.name).startswith("._"):
                c["dotfile_members"] += 1
                continue
            if not raw:
                c["empty_members"] += 1
                continue
            if m.name.endswith(".bz2"):
                c["bz2_members"] += 1
                data = bz2.decompress(raw)
                if raw.count(b"BZh91AY&SY") > 1:
                    multistream += 1
                    # every stream on its own is a valid bz2 stream
                    assert bz2.BZ2Decompressor().decompress(raw) != data
            else:
                assert m.name.endswith(".gz")
                c["gz_members"] += 1
                data = gzip.decompress(raw)
            assert data.endswith(b"\r\n")
            for line in data.split(b"\n")[:-1]:
                assert line.endswith(b"\r")
                if not line.strip():
                    c["blank_lines"] += 1
                    continue
                c["lines"] += 1
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError:
                    bad["non_utf8"] += 1
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError:
                    bad["truncated_json"] += 1
                    continue
                if "delete" in obj:
                    c["delete_notices"] += 1
                    deletes.append(obj["delete"]["status"]["id_str"])
                elif "created_at" in obj:
                    if "id_str" not in obj or "id" not in obj:
                        bad["missing_id"] += 1
                        continue
                    c["tweet_lines"] += 1
                    if obj["id_str"] in tweets:
                        c["duplicate_tweet_lines"] += 1
                        assert tweets[obj["id_str"]] == obj
                    else:
                        tweets[obj["id_str"]] = obj
                        order.append(obj["id_str"])
                else:
                    (key,) = obj.keys()
                    assert key in NOTICE_TYPES, key
                    other[key] += 1
    c["unique_tweets"] = len(tweets)
    c["multistream_bz2_members"] = multistream
    langs: Counter = Counter()
    same = prev = 0
    ids_today = set(tweets)
    for t in tweets.values():
        c["replies"] += t["in_reply_to_status_id_str"] is not None
        c["retweets"] += "retweeted_status" in t
        c["quotes"] += "quoted_status" in t
        c["extended"] += "extended_tweet" in t
        langs[t["lang"]] += 1
        r = t["in_reply_to_status_id_str"]
        if r is not None:
            same += r in ids_today
            prev += r in seen_before
    c["deletes_of_tweets_in_data"] = sum(d in ids_today for d in deletes)
    counts = dict(c)
    counts["other_notices"] = {k: other[k] for k in NOTICE_TYPES}
    counts["bad_lines"] = {k: bad[k] for k in ("truncated_json", "non_utf8", "missing_id")}
    counts["langs"] = dict(sorted(langs.items()))
    counts["replies_to_tweets_in_data"] = {"same_day": same, "previous_days": prev}
    counts["_names"] = names
    return counts, ids_today, [tweets[i] for i in order]


def test_determinism(tmp_path):
    kw = dict(SMALL, days=2, tweets_per_day=400, minutes_per_day=6)
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    ts.generate(a, **kw)
    ts.generate(b, **kw)
    ts.generate(c, **dict(kw, workers=2))
    fa, fb, fc = _files(a), _files(b), _files(c)
    assert fa.keys() == fb.keys() == fc.keys()
    assert len([k for k in fa if k.endswith(".tar")]) == 2
    for k in fa:
        assert fa[k] == fb[k], k
        assert fa[k] == fc[k], f"{k} differs with workers=2"
    # another seed gives other bytes
    d = tmp_path / "d"
    ts.generate(d, **dict(kw, seed=12))
    fd = _files(d)
    tar = next(k for k in fa if k.endswith(".tar"))
    assert hashlib.sha256(fa[tar]).digest() != hashlib.sha256(fd[tar]).digest()


def test_truth_matches_independent_count(small):
    out, truths = small
    seen: set[str] = set()
    assert sorted(truths) == ["2021-01-02", "2021-01-03", "2021-01-04"]
    for day in sorted(truths):
        truth = json.loads((out / "truth" / "twitterstream" / f"{day}.json").read_text())
        assert truth == truths[day]
        tar = out / "incoming" / "twitterstream" / day / f"twitter-stream-{day}.tar"
        assert tar.is_file() and truth["tar"] == str(tar.relative_to(out))
        counts, ids, _ = _count_tar(tar, seen)
        counts.pop("_names")
        for key, val in counts.items():
            assert truth[key] == val, (day, key, truth[key], val)
        assert truth["unique_tweets"] == SMALL["tweets_per_day"]
        assert truth["lines"] == (truth["tweet_lines"] + truth["delete_notices"]
                                  + sum(truth["other_notices"].values())
                                  + sum(truth["bad_lines"].values()))
        # faults: all present and counted
        assert truth["dotfile_members"] == 1 and truth["empty_members"] == 1
        assert truth["bad_lines"] == {"truncated_json": 2, "non_utf8": 1, "missing_id": 1}
        assert truth["blank_lines"] >= 3
        assert all(v >= 1 for v in truth["other_notices"].values())
        assert truth["retweets"] and truth["replies"] and truth["quotes"] and truth["extended"]
        assert truth["langs"]["en"] == max(truth["langs"].values())
        assert {"ja", "es", "pt", "ar", "und"} <= set(truth["langs"])
        seen |= ids
    # replies reach back to earlier days
    assert truths["2021-01-04"]["replies_to_tweets_in_data"]["previous_days"] > 0 or \
        truths["2021-01-03"]["replies_to_tweets_in_data"]["previous_days"] > 0


def test_inner_paths_and_multistream(small):
    out, truths = small
    for day, truth in truths.items():
        tar = out / truth["tar"]
        counts, _, _ = _count_tar(tar, set())
        names = counts["_names"]
        pat = PATTERNS[truth["layout"]]
        assert names and all(pat.match(n) for n in names), names[:3]
        data_names = [n for n in names if not os.path.basename(n).startswith("._")]
        exts = [n.rsplit(".", 1)[1] for n in data_names]
        assert exts == ["bz2" if i % 2 == 0 else "gz" for i in range(len(exts))]
        assert counts["multistream_bz2_members"] >= 1
        y, m, d = day.split("-")
        first = data_names[0]
        assert first == ts.member_path(truth["layout"], ts._dt.date(int(y), int(m), int(d)), 0,
                                       "bz2")
    assert [truths[d]["layout"] for d in sorted(truths)] == list(ts.LAYOUTS)
    assert ts.member_path("MM/DD/HH/mm", ts._dt.date(2021, 1, 1), 29, "bz2") == \
        "01/01/00/29.json.bz2"
    assert ts.member_path("YYYY/MM/DD/HH/mm", ts._dt.date(2021, 1, 1), 29, "bz2") == \
        "2021/01/01/00/29.json.bz2"
    assert ts.member_path("YYYYMMDD/YYYYMMDDHHMMSS", ts._dt.date(2021, 1, 1), 29, "gz") == \
        "20210101/20210101002900.json.gz"


# user object keys of the real stream (2021-01-01 07:29 UTC minute), in order
REAL_USER_KEYS = [
    "id", "id_str", "name", "screen_name", "location", "url", "description", "translator_type",
    "protected", "verified", "followers_count", "friends_count", "listed_count",
    "favourites_count", "statuses_count", "created_at", "utc_offset", "time_zone", "geo_enabled",
    "lang", "contributors_enabled", "is_translator", "profile_background_color",
    "profile_background_image_url", "profile_background_image_url_https",
    "profile_background_tile", "profile_link_color", "profile_sidebar_border_color",
    "profile_sidebar_fill_color", "profile_text_color", "profile_use_background_image",
    "profile_image_url", "profile_image_url_https", "profile_banner_url", "default_profile",
    "default_profile_image", "following", "follow_request_sent", "notifications"]


def _real_user_keys() -> list[str]:
    if REAL_MINUTE.exists():
        with bz2.open(REAL_MINUTE) as fh:
            for line in fh:
                if line.strip():
                    obj = json.loads(line)
                    if "created_at" in obj and "profile_banner_url" in obj["user"]:
                        assert list(obj["user"]) == REAL_USER_KEYS
                        break
    return REAL_USER_KEYS


def test_tweet_shape(small):
    out, truths = small
    day = "2021-01-02"
    _, _, tweets = _count_tar(out / truths[day]["tar"], set())
    order = ["created_at", "id", "id_str", "text", "display_text_range", "source", "truncated",
             "in_reply_to_status_id", "in_reply_to_status_id_str", "in_reply_to_user_id",
             "in_reply_to_user_id_str", "in_reply_to_screen_name", "user", "geo", "coordinates",
             "place", "contributors", "retweeted_status", "quoted_status_id",
             "quoted_status_id_str", "quoted_status", "quoted_status_permalink",
             "is_quote_status", "extended_tweet", "quote_count", "reply_count", "retweet_count",
             "favorite_count", "entities", "extended_entities", "favorited", "retweeted",
             "possibly_sensitive", "filter_level", "lang", "timestamp_ms"]
    real_user = _real_user_keys()
    for t in tweets:
        keys = list(t)
        assert keys == [k for k in order if k in t], keys
        assert keys[-1] == "timestamp_ms"
        ms = int(t["timestamp_ms"])
        assert (t["id"] >> 22) + 1288834974657 == ms and str(t["id"]) == t["id_str"]
        assert list(t["user"]) == [k for k in real_user if k in t["user"]]
        assert set(real_user) - set(t["user"]) <= {"profile_banner_url"}
        assert (t["quote_count"], t["reply_count"], t["retweet_count"],
                t["favorite_count"]) == (0, 0, 0, 0)
        assert list(t["entities"])[:4] == ["hashtags", "urls", "user_mentions", "symbols"]
        for h in t["entities"]["hashtags"]:
            a, b = h["indices"]
            assert t["text"][a:b] == "#" + h["text"]
        for mnt in t["entities"]["user_mentions"]:
            a, b = mnt["indices"]
            assert t["text"][a:b] == "@" + mnt["screen_name"]
        if "retweeted_status" in t:
            rs = t["retweeted_status"]
            assert t["text"].startswith(f"RT @{rs['user']['screen_name']}: ")
            assert "timestamp_ms" not in rs and rs["retweet_count"] > 0
            assert int(rs["id"]) < t["id"]
        if t["truncated"]:
            assert "extended_tweet" in t and len(t["text"]) <= 140
            assert re.search(r"… https://t\.co/\w{10}$", t["text"])
            assert len(t["extended_tweet"]["full_text"]) > 140
        if t["is_quote_status"]:
            assert t["quoted_status"]["id_str"] == t["quoted_status_id_str"]
        if t["in_reply_to_status_id"] is not None:
            assert t["in_reply_to_status_id"] < t["id"]
            assert t["text"].startswith("@" + t["in_reply_to_screen_name"])


def test_planted_population(small):
    out, truths = small
    tdir = out / "truth" / "twitterstream"
    accounts = list(csv.DictReader((tdir / "accounts.csv").open(encoding="utf-8")))
    groups = list(csv.DictReader((tdir / "groups.csv").open(encoding="utf-8")))
    sources = list(csv.DictReader((tdir / "group_sources.csv").open(encoding="utf-8")))
    kinds = Counter(a["kind"] for a in accounts)
    assert set(kinds) == {"human", "automated", "coordinated"}
    assert kinds["human"] > kinds["automated"] > 0
    assert len({a["user_id"] for a in accounts}) == len(accounts)
    assert len({a["screen_name"] for a in accounts}) == len(accounts)
    assert len(groups) == 3
    members = Counter(a["group_id"] for a in accounts if a["kind"] == "coordinated")
    for g in groups:
        assert members[g["group_id"]] == int(g["members"]) >= 5
        assert int(g["source_tweets"]) >= 3
    assert all(a["group_id"] == "" for a in accounts if a["kind"] != "coordinated")
    # group members retweet their group's sources within a minute of each other
    member_group = {a["user_id"]: a["group_id"] for a in accounts if a["group_id"]}
    src_group = {s["source_tweet_id"]: s["group_id"] for s in sources}
    rts: dict[str, list[int]] = {}
    for day, truth in truths.items():
        _, _, tweets = _count_tar(out / truth["tar"], set())
        for t in tweets:
            rs = t.get("retweeted_status")
            if rs and rs["id_str"] in src_group:
                assert member_group[t["user"]["id_str"]] == src_group[rs["id_str"]]
                rts.setdefault(rs["id_str"], []).append(int(t["timestamp_ms"]))
    assert len(rts) >= 3 * 3
    for times in rts.values():
        assert max(times) - min(times) < 60_000
    assert sum(len(v) for v in rts.values()) == sum(t["coordinated_retweets"]
                                                   for t in truths.values())


def test_cli(tmp_path):
    rc = ts.main(["--out", str(tmp_path), "--start", "2021-01-05", "--days", "1",
                  "--tweets-per-day", "300", "--seed", "3", "--minutes-per-day", "4",
                  "--groups", "2", "--group-size", "4,5", "--quiet"])
    assert rc == 0
    truth = json.loads((tmp_path / "truth/twitterstream/2021-01-05.json").read_text())
    assert truth["unique_tweets"] == 300 and truth["members"] == 4
    assert truth["bad_lines"] == {"truncated_json": 0, "non_utf8": 0, "missing_id": 0}


def test_counter_definitions_on_real_minute(tmp_path):
    """The counting rules used above reproduce the documented facts of the real minute."""
    if not REAL_MINUTE.exists():
        pytest.skip(f"real minute not found at {REAL_MINUTE}")
    tar = tmp_path / "real.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(REAL_MINUTE, arcname="01/01/00/29.json.bz2")
    counts, _, tweets = _count_tar(tar, set())
    assert (counts["lines"], counts["tweet_lines"], counts["delete_notices"]) == (3480, 3173, 307)
    assert (counts["replies"], counts["retweets"], counts["quotes"], counts["extended"]) == \
        (716, 1709, 157, 121)
    assert PATTERNS["MM/DD/HH/mm"].match(counts["_names"][0])
    assert all(list(t["user"]) == [k for k in REAL_USER_KEYS if k in t["user"]] for t in tweets)
