"""Deterministic generator of a twarc2 day: Twitter API v2 pages as ``twarc2 search`` and
``twarc2 stream`` write them, gzipped, with the field set of the real pages (checked against
the twarc-csv samples: tweets with entities, context annotations, edit history and metrics;
users with entities and metrics; ``includes`` of users and referenced tweets; ``errors`` for
referenced tweets that are gone; ``meta`` and ``__twarc``).

``generate(out_dir, day, tweets=20000, seed=0, files=24, faults=True) -> dict`` writes
``<out>/incoming/twitter_v2/<day>/search-HH.jsonl.gz`` (pages of up to 100 tweets, one file
per hour), ``stream.jsonl.gz`` (one tweet a line, ``data`` an object, about a tenth of the
tweets) and ``<out>/truth/twitter_v2/<day>.json``: the distinct tweet, included-tweet and user
ids, the API errors, and the lines (non-blank, blank, bad). With ``faults`` the last search
file also holds a cut-off line, a line of invalid UTF-8, a JSON array and two blank lines.
The same arguments give byte-identical files.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import orjson

_LANGS = ["en", "en", "en", "es", "pt", "ja", "de", "fr", "und"]
_WORDS = ("vote election people time news today great new just think know country party "
          "world make good year said going government support right work thanks love").split()
_DOMAINS = ["news.example.com", "blog.example.org", "video.example.net", "shop.example.io"]
_ANNOTATION_TYPES = ["Person", "Place", "Organization", "Product", "Other"]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _text(rng: random.Random, mentions: list[str]) -> str:
    words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 40)))
    return " ".join(f"@{m}" for m in mentions) + (" " if mentions else "") + words


def _user(uid: int, rng: random.Random, start: datetime) -> dict:
    name = f"user{uid}"
    created = start - timedelta(days=rng.randint(10, 4000), seconds=rng.randint(0, 86399))
    image = ("https://abs.twimg.com/sticky/default_profile_images/default_profile_normal.png"
             if rng.random() < 0.1 else
             f"https://pbs.twimg.com/profile_images/{uid}/{name}_normal.jpg")
    description = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(0, 25)))
    return {
        "created_at": _iso(created), "description": description, "id": str(uid),
        "name": name.title(), "profile_image_url": image, "protected": False,
        "public_metrics": {"followers_count": rng.randint(0, 50000),
                           "following_count": rng.randint(0, 5000),
                           "tweet_count": rng.randint(1, 200000),
                           "listed_count": rng.randint(0, 300)},
        "url": f"https://t.co/{uid % 99991:05d}" if rng.random() < 0.4 else "",
        "username": name, "verified": rng.random() < 0.02,
        "entities": {"description": {"hashtags": [
            {"start": 0, "end": 5, "tag": rng.choice(_WORDS)}]}},
        "location": rng.choice(["", "Earth", "Berlin", "São Paulo", "東京"]),
    }


def _tweet(tid: int, author: int, when: datetime, rng: random.Random,
           mentions: list[int], refs: list[tuple[str, int]], reply_to: int | None) -> dict:
    names = [f"user{m}" for m in mentions]
    text = _text(rng, names)
    tweet = {
        "edit_history_tweet_ids": [str(tid)],
        "source": rng.choice(["Twitter for Android", "Twitter for iPhone", "Twitter Web App"]),
        "possibly_sensitive": False, "conversation_id": str(refs[0][1] if reply_to else tid),
        "public_metrics": {"retweet_count": rng.randint(0, 500), "reply_count": rng.randint(0, 50),
                           "like_count": rng.randint(0, 2000), "quote_count": rng.randint(0, 20),
                           "impression_count": rng.randint(0, 90000)},
        "lang": rng.choice(_LANGS), "id": str(tid),
        "entities": {
            "annotations": [{"start": 10, "end": 16, "probability": round(rng.random(), 4),
                             "type": rng.choice(_ANNOTATION_TYPES),
                             "normalized_text": rng.choice(_WORDS).title()}
                            for _ in range(rng.randint(0, 3))],
            "mentions": [{"start": 0, "end": len(n) + 1, "username": n, "id": str(m)}
                         for n, m in zip(names, mentions)],
            "urls": [{"start": 50, "end": 73, "url": f"https://t.co/{tid % 999983:06d}",
                      "expanded_url": f"https://{rng.choice(_DOMAINS)}/{tid}",
                      "display_url": f"{rng.choice(_DOMAINS)}/…"}]
            if rng.random() < 0.3 else [],
        },
        "context_annotations": [
            {"domain": {"id": str(10 + k), "name": "Politics", "description": "Politics"},
             "entity": {"id": str(10**15 + k), "name": rng.choice(_WORDS).title()}}
            for k in range(rng.randint(0, 4))],
        "author_id": str(author), "reply_settings": "everyone", "created_at": _iso(when),
        "text": text,
    }
    if refs:
        tweet["referenced_tweets"] = [{"type": kind, "id": str(rid)} for kind, rid in refs]
    if reply_to is not None:
        tweet["in_reply_to_user_id"] = str(reply_to)
    return tweet


def generate(out_dir: str | Path, day: str | date, tweets: int = 20000, seed: int = 0,
             files: int = 24, faults: bool = True) -> dict:
    day = date.fromisoformat(day) if isinstance(day, str) else day
    out = Path(out_dir)
    folder = out / "incoming" / "twitter_v2" / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    start = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc)
    accounts = max(200, tweets // 3)
    first_uid, first_tid = 10**9, 1_400_000_000_000_000_000 + seed * 10**12
    old_tid = first_tid - 10**15  # referenced tweets from before the day
    users_cache: dict[int, dict] = {}
    truth = {"tweets": set(), "included": set(), "users": set(), "errors": 0,
             "lines": 0, "blank_lines": 0, "bad_lines": 0}

    def user(uid: int) -> dict:
        if uid not in users_cache:
            users_cache[uid] = _user(uid, random.Random(uid * 7919 + seed), start)
        return users_cache[uid]

    def account() -> int:  # a few accounts post much of the day, the rest now and then
        if rng.random() < 0.3:
            return first_uid + min(int(rng.paretovariate(1.2)) - 1, accounts - 1)
        return first_uid + rng.randrange(accounts)

    def make(tid: int, when: datetime) -> tuple[dict, list[dict], set[int], list[dict]]:
        author = account()
        mentions = [account() for _ in range(rng.choice([0, 0, 1, 1, 2, 3]))]
        roll, refs, reply_to, included, errors = rng.random(), [], None, [], []
        if roll < 0.55:
            kind = "retweeted" if roll < 0.35 else "replied_to" if roll < 0.5 else "quoted"
            rid, rauthor = old_tid + rng.randint(0, tweets * 3), account()
            refs = [(kind, rid)]
            if kind == "replied_to":
                reply_to = rauthor
            if rng.random() < 0.03:  # the referenced tweet is gone
                errors.append({"value": str(rid), "detail": f"Could not find tweet with "
                               f"referenced_tweets.id: [{rid}].", "title": "Not Found Error",
                               "resource_type": "tweet", "parameter": "referenced_tweets.id",
                               "resource_id": str(rid),
                               "type": "https://api.twitter.com/2/problems/resource-not-found"})
            else:
                included.append(_tweet(rid, rauthor, when - timedelta(hours=rng.randint(1, 90)),
                                       rng, [], [], None))
        tweet = _tweet(tid, author, when, rng, mentions, refs, reply_to)
        people = {author, *mentions, *(int(t["author_id"]) for t in included)}
        return tweet, included, people, errors

    def page_line(batch: list[tuple]) -> bytes:
        data = [b[0] for b in batch]
        included = list({t["id"]: t for b in batch for t in b[1]}.values())
        people = sorted({u for b in batch for u in b[2]})
        errors = [e for b in batch for e in b[3]]
        page = {"data": data, "includes": {"users": [user(u) for u in people],
                                           "tweets": included}}
        if errors:
            page["errors"] = errors
        page["meta"] = {"newest_id": data[0]["id"], "oldest_id": data[-1]["id"],
                        "result_count": len(data), "next_token": f"b26v89c19zqg8o3f{len(data)}"}
        page["__twarc"] = {"url": "https://api.twitter.com/2/tweets/search/all?...",
                           "version": "2.14.0", "retrieved_at": _iso(start + timedelta(days=1))}
        account_truth(batch, errors)
        return orjson.dumps(page)

    def account_truth(batch: list[tuple], errors: list[dict]) -> None:
        truth["tweets"].update(b[0]["id"] for b in batch)
        truth["included"].update(t["id"] for b in batch for t in b[1])
        truth["users"].update(str(u) for b in batch for u in b[2])
        truth["errors"] += len(errors)
        truth["lines"] += 1

    streamed = tweets // 10
    searched = tweets - streamed
    per_file = -(-searched // files)
    tid = first_tid
    for f in range(files):
        lines = []
        count = min(per_file, searched - f * per_file)
        made = []
        for k in range(max(count, 0)):
            when = start + timedelta(seconds=(f * 86400 // files)
                                     + k * (86400 // files) / max(count, 1))
            made.append(make(tid, when))
            tid += 1 + rng.randint(0, 3)
        made.reverse()  # search pages come newest first
        for i in range(0, len(made), 100):
            lines.append(page_line(made[i:i + 100]))
        if faults and f == files - 1:
            lines += [lines[-1][: len(lines[-1]) // 2], b'{"data": [{"id": "\xff\xfe"}]}',
                      b"[1, 2, 3]", b"", b""]
            truth["lines"] += 3
            truth["bad_lines"] += 3
            truth["blank_lines"] += 2
        (folder / f"search-{f:02d}.jsonl.gz").write_bytes(
            gzip.compress(b"\n".join(lines) + b"\n", compresslevel=6, mtime=0))
    stream = []
    for k in range(streamed):
        one = make(tid, start + timedelta(seconds=k * 86400 / max(streamed, 1)))
        tid += 1 + rng.randint(0, 3)
        tweet, included, people, errors = one
        line = {"data": tweet, "includes": {"users": [user(u) for u in sorted(people)],
                                            "tweets": included},
                "matching_rules": [{"id": "1380000000000000000", "tag": "election"}]}
        if errors:
            line["errors"] = errors
        account_truth([one], errors)
        stream.append(orjson.dumps(line))
    (folder / "stream.jsonl.gz").write_bytes(
        gzip.compress(b"\n".join(stream) + b"\n", compresslevel=6, mtime=0))

    summary = {"tweets": len(truth["tweets"]), "included_tweets": len(truth["included"]),
               "users": len(truth["users"]), "api_errors": truth["errors"],
               "lines": truth["lines"], "blank_lines": truth["blank_lines"],
               "bad_lines": truth["bad_lines"]}
    truth_dir = out / "truth" / "twitter_v2"
    truth_dir.mkdir(parents=True, exist_ok=True)
    (truth_dir / f"{day.isoformat()}.json").write_text(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--day", default="2021-04-08")
    parser.add_argument("--tweets", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(generate(args.out, args.day, args.tweets, args.seed), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
