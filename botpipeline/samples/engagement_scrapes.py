"""Deterministic sample of engagement scrapes (who liked / retweeted which tweet) with planted
coordinated like groups, written in the two collectors' real layouts.

Why: coordinated groups show up in engagements as accounts that like the same tweets, which a
1 % stream never shows. The sample plants that behaviour on the shipped account population
(``truth/twitterstream/accounts.csv``) so group detection can be scored against
``truth/engagements/like_groups.csv``:

* each coordinated group likes the same 8-15 "campaign" tweets per day (and retweets the first
  two); about 20 % of each group's members skip 1-2 of them every day (Jaccard >= 0.8 to the
  campaign set, ``exact=false``), the rest like the full set every day (``exact=true``);
* active humans like 1-12 tweets drawn from a Zipf-popular pool (so some coincide by chance on a
  popular tweet) and retweet a few; active automated accounts like 10-20 random tweets.

Every tweet of a day is collected by exactly one of the two collectors, so the union of the two
readers' engagements is exactly the planted behaviour:

* ``incoming/engagements/<date>/likers_pull/CSVs/...``: the Danish election study's collector
  (github.com/humanplayer2/get-twitter-likers-data). Every ~5 minutes it writes the tweets that
  got new likes / retweets (``<iteration_time>.csv``, csv.writer, ``\\r\\n``) and, per alarm,
  the 100 most recent likers / retweeters of those tweets (pandas ``to_csv``: ``,delta,likers``,
  list literal, ``\\n``). A tweet liked again is scraped again with its older likers still in
  the list, so (tweet, user) pairs repeat across scrapes.
* ``incoming/engagements/<date>/twarc/liking_users.jsonl`` and ``retweeted_by.jsonl``: twarc2
  pages (``data`` of ``id, name, username`` users, ``meta``, ``__twarc``), one request per
  tweet and endpoint, empty ``result_count: 0`` pages included; the first liking_users page
  with users is fetched again 5 minutes later (a re-run), so twarc too holds duplicate
  sightings.

Planted faults, one each: 2021-01-02 a likers row whose only user is the collector's
deleted-tweet sentinel; 2021-01-03 a likers row with a cut-off list literal; 2021-01-04 a twarc
liking_users page answering ``Not Found Error`` for a deleted tweet. Accounts whose shipped
screen name breaks Twitter's username rule (non-ASCII letters) are left out of the sample and
of the truth: a real collector could not have seen such a name. Same seed, same bytes.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from botpipeline.readers.engagements import USERNAME

DATES = ("2021-01-02", "2021-01-03", "2021-01-04")
SCRAPES_PER_DAY = 4
SCRAPE_EVERY = timedelta(minutes=5)
FIRST_SCRAPE = timedelta(hours=10)  # after midnight UTC
POSTING_STARTS = timedelta(hours=9, minutes=40)
ACTIVE_HUMANS, ACTIVE_AUTOMATED = 80, 8
POPULAR_POOL, RANDOM_POOL = 60, 90
TWARC_SHARE = 0.15
LIST_CAP = 100  # the API returns the 100 most recent likers / retweeters
TWITTER_EPOCH_MS = 1288834974657
TRACKED_HEADER = ["author id", "created_at", "geo", "id", "lang", "like_count", "quote_count",
                  "reply_count", "retweet_count", "source", "tweet"]
DELETED_SENTINEL = "AwarenessRequired_Liking_Users_of_Deleted_Tweet"
TWARC_VERSION = "2.12.0"


@dataclass
class Tweet:
    post_id: str
    author_id: str
    posted: datetime
    events: dict[str, list[tuple[datetime, int]]] = field(
        default_factory=lambda: {"like": [], "repost": []})  # (time, account index)


def _snowflake(moment: datetime, rng: random.Random) -> str:
    """A 19-digit tweet id for ``moment``, built the way Twitter builds them."""
    ms = int(moment.replace(tzinfo=UTC).timestamp() * 1000) - TWITTER_EPOCH_MS
    return str((ms << 22) | rng.getrandbits(22))


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + ".000Z"


def _load_accounts(data_dir: Path) -> tuple[list[dict], list[dict]]:
    with open(data_dir / "truth" / "twitterstream" / "accounts.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    usable = [r for r in rows if USERNAME.fullmatch(r["screen_name"])]
    return usable, [r for r in rows if not USERNAME.fullmatch(r["screen_name"])]


def _display_name(screen_name: str) -> str:
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", screen_name.rstrip("0123456789"))
    words = words.replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else screen_name


def _plan_day(day: datetime, rng: random.Random, accounts: list[dict],
              groups: dict[str, list[int]], near: set[int]) -> tuple[list[Tweet], dict]:
    """The day's tweets with their like / retweet events, and each member's campaign outcome."""
    last = day + FIRST_SCRAPE + SCRAPE_EVERY * (SCRAPES_PER_DAY - 1) - timedelta(seconds=30)
    span = (last - day - POSTING_STARTS).total_seconds()

    def new_tweet(latest: float = 0.85) -> Tweet:
        posted = day + POSTING_STARTS + timedelta(seconds=int(rng.uniform(0, span * latest)))
        return Tweet(_snowflake(posted, rng), str(rng.randrange(10**7, 10**10)), posted)

    def event(tweet: Tweet, action: str, account: int, within_s: float) -> None:
        moment = tweet.posted + timedelta(seconds=int(rng.uniform(1, within_s)))
        tweet.events[action].append((min(moment, last), account))

    tweets: list[Tweet] = []
    outcome: dict[int, bool] = {}
    for members in groups.values():
        campaign = [new_tweet(0.6) for _ in range(rng.randint(8, 15))]
        tweets.extend(campaign)
        for member in members:
            liked = list(campaign)
            if member in near:
                skip = 1 if len(campaign) < 10 else rng.choice((1, 2))
                for gone in rng.sample(campaign, skip):
                    liked.remove(gone)
            outcome[member] = len(liked) == len(campaign)
            for tweet in liked:
                event(tweet, "like", member, 360)
                if tweet in campaign[:2]:
                    event(tweet, "repost", member, 420)
    popular = [new_tweet() for _ in range(POPULAR_POOL)]
    weights = [1 / (rank + 1) ** 1.1 for rank in range(POPULAR_POOL)]
    humans = [i for i, a in enumerate(accounts) if a["kind"] == "human"]
    for human in rng.sample(humans, ACTIVE_HUMANS):
        wanted = min(12, 1 + int(rng.expovariate(1 / 2.2)))
        liked: list[Tweet] = []
        while len(liked) < wanted:
            pick = rng.choices(popular, weights)[0]
            if pick not in liked:
                liked.append(pick)
        for tweet in liked:
            event(tweet, "like", human, 1200)
            if rng.random() < 0.1:
                event(tweet, "repost", human, 1200)
    noise = [new_tweet() for _ in range(RANDOM_POOL)]
    bots = [i for i, a in enumerate(accounts) if a["kind"] == "automated"]
    for bot in rng.sample(bots, ACTIVE_AUTOMATED):
        for tweet in rng.sample(noise, rng.randint(10, 20)):
            event(tweet, "like", bot, 180)
            if rng.random() < 0.3:
                event(tweet, "repost", bot, 240)
    tweets.extend(popular)
    tweets.extend(noise)
    tweets = [t for t in tweets if t.events["like"] or t.events["repost"]]
    for tweet in tweets:
        for events in tweet.events.values():
            events.sort()
    return tweets, outcome


def _csv_text(rows: list[list], terminator: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=terminator).writerows(rows)
    return buffer.getvalue()


def _write_likers_pull(root: Path, day: datetime, tweets: list[Tweet], accounts: list[dict],
                       rng: random.Random, fault: str | None) -> dict:
    """The collector's polls: tracked tweets, then likers and retweeters of tweets that moved.

    Returns the files written and the distinct (tweet, action, username) it wrote, which is what
    the reader must give back (a list capped at 100 can miss likers of a very busy tweet).
    """
    csvs = root / "CSVs"
    for sub in ("Likers_of_alarms", "Retweeters_of_alarms"):
        (csvs / sub).mkdir(parents=True, exist_ok=True)
    saved = {(t.post_id, a): 0 for t in tweets for a in ("like", "repost")}
    written: dict = {"files": 0, "engagements": set()}
    for k in range(SCRAPES_PER_DAY):
        iteration = day + FIRST_SCRAPE + SCRAPE_EVERY * k + timedelta(seconds=rng.randint(0, 3))
        likers_at = iteration + timedelta(seconds=rng.randint(6, 12))
        retweeters_at = likers_at + timedelta(seconds=rng.randint(5, 15))
        alarms: dict[str, list[list]] = {"like": [], "repost": []}
        tracked = []
        for tweet in sorted(tweets, key=lambda t: t.posted):
            if tweet.posted > iteration:
                continue
            counts = {a: sum(1 for when, _ in tweet.events[a] if when <= iteration)
                      for a in ("like", "repost")}
            moved = False
            for action, count in counts.items():
                delta = count - saved[(tweet.post_id, action)]
                if delta > 0:
                    seen = [accounts[who]["screen_name"] for when, who in
                            reversed(tweet.events[action]) if when <= iteration][:LIST_CAP]
                    alarms[action].append([tweet.post_id, f"{float(delta)}", str(seen)])
                    written["engagements"].update((tweet.post_id, action, name) for name in seen)
                    saved[(tweet.post_id, action)] = count
                    moved = True
            if moved:
                tracked.append(_tracked_row(tweet, counts, rng))
        if fault is not None and k == 2:
            ghost = Tweet(_snowflake(iteration - timedelta(minutes=7), rng),
                          str(rng.randrange(10**7, 10**10)), iteration - timedelta(minutes=7))
            tracked.append(_tracked_row(ghost, {"like": 2, "repost": 0}, rng))
            users = [DELETED_SENTINEL] if fault == "sentinel" else [
                accounts[i]["screen_name"] for i in (0, 1)]
            literal = str(users) if fault == "sentinel" else str(users)[:-4]  # cut off
            alarms["like"].append([ghost.post_id, f"{float(len(users))}", literal])
        (csvs / f"{_stamp(iteration)}.csv").write_text(
            _csv_text([TRACKED_HEADER, *tracked], "\r\n"), encoding="utf-8", newline="")
        written["files"] += 1
        for action, sub, column, moment in (("like", "Likers_of_alarms", "likers", likers_at),
                                            ("repost", "Retweeters_of_alarms", "retweeters",
                                             retweeters_at)):
            if not alarms[action]:
                continue
            rows = sorted(alarms[action], key=lambda r: (-float(r[1]), r[0]))
            (csvs / sub / f"{sub}_{_stamp(moment)}.csv").write_text(
                _csv_text([["", "delta", column], *rows], "\n"), encoding="utf-8", newline="")
            written["files"] += 1
    return written


def _tracked_row(tweet: Tweet, counts: dict[str, int], rng: random.Random) -> list:
    return [tweet.author_id, tweet.posted.strftime("%Y-%m-%d %H:%M:%S+00:00"), " ",
            tweet.post_id, "da", counts["like"], 0, rng.randint(0, 3), counts["repost"],
            "Twitter for iPhone", "#dkpol"]


def _write_twarc(root: Path, day: datetime, tweets: list[Tweet], accounts: list[dict],
                 rng: random.Random, fault: bool) -> None:
    """One twarc2 request per tweet and endpoint, pages of up to 100 users, newest first."""
    root.mkdir(parents=True, exist_ok=True)
    clock = day + timedelta(hours=23, minutes=50)
    for endpoint, action in (("liking_users", "like"), ("retweeted_by", "repost")):
        lines = []
        for tweet in tweets:
            users = [accounts[who] for _, who in reversed(tweet.events[action])]
            url = f"https://api.twitter.com/2/tweets/{tweet.post_id}/{endpoint}?max_results=100"
            token = None
            for start in range(0, max(len(users), 1), LIST_CAP):
                clock += timedelta(seconds=rng.randint(1, 3))
                chunk = users[start:start + LIST_CAP]
                page: dict = {}
                if chunk:
                    page["data"] = [{"id": a["user_id"], "name": _display_name(a["screen_name"]),
                                     "username": a["screen_name"]} for a in chunk]
                page["meta"] = {"result_count": len(chunk)}
                if start + LIST_CAP < len(users):
                    page["meta"]["next_token"] = "".join(
                        rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(13))
                page["__twarc"] = {"url": url + (f"&pagination_token={token}" if token else ""),
                                   "version": TWARC_VERSION, "retrieved_at":
                                   clock.replace(tzinfo=UTC).isoformat()}
                token = page["meta"].get("next_token")
                lines.append(json.dumps(page))
        first = next((line for line in lines if line.startswith('{"data"')), None)
        if action == "like" and first is not None:
            rerun = json.loads(first)
            rerun["__twarc"]["retrieved_at"] = (clock + timedelta(minutes=5)).replace(
                tzinfo=UTC).isoformat()
            lines.append(json.dumps(rerun))
        if action == "like" and fault:
            gone = _snowflake(day + timedelta(hours=9), rng)
            lines.insert(len(lines) // 2, json.dumps({
                "errors": [{"value": gone, "detail": f"Could not find tweet with id: [{gone}].",
                            "title": "Not Found Error", "resource_type": "tweet",
                            "parameter": "id", "resource_id": gone,
                            "type": "https://api.twitter.com/2/problems/resource-not-found"}],
                "__twarc": {"url": f"https://api.twitter.com/2/tweets/{gone}/{endpoint}"
                            "?max_results=100", "version": TWARC_VERSION,
                            "retrieved_at": clock.replace(tzinfo=UTC).isoformat()}}))
        (root / f"{endpoint}.jsonl").write_text("".join(line + "\n" for line in lines),
                                                encoding="utf-8")


def write_engagement_sample(data_dir: Path, seed: int = 11) -> dict:
    """Write the three sample days and the like-group truth under ``data_dir``.

    Returns what was planted: per date the distinct (tweet, action, account) engagements per
    collector (what the readers must return after dedupe) and the faults, plus totals.
    """
    data_dir = Path(data_dir)
    accounts, skipped = _load_accounts(data_dir)
    rng = random.Random(f"engagements:{seed}")
    groups: dict[str, list[int]] = {}
    for i, account in enumerate(accounts):
        if account["kind"] == "coordinated" and account["group_id"]:
            groups.setdefault(account["group_id"], []).append(i)
    groups = dict(sorted(groups.items(), key=lambda kv: int(kv[0])))
    near = {m for members in groups.values()
            for m in rng.sample(members, max(1, round(0.2 * len(members))))}
    faults = {DATES[0]: "sentinel", DATES[1]: "broken_literal", DATES[2]: "twarc_error"}
    exact = {m: True for members in groups.values() for m in members}
    summary: dict = {"dates": {}, "skipped_accounts": [a["screen_name"] for a in skipped]}
    incoming = data_dir / "incoming" / "engagements"
    for date in DATES:
        day = datetime.fromisoformat(date)
        day_rng = random.Random(f"engagements:{seed}:{date}")
        tweets, outcome = _plan_day(day, day_rng, accounts, groups, near)
        for member, full in outcome.items():
            exact[member] = exact[member] and full
        twarc = [t for t in tweets if day_rng.random() < TWARC_SHARE]
        in_twarc = {t.post_id for t in twarc}
        scraped = [t for t in tweets if t.post_id not in in_twarc]
        shutil.rmtree(incoming / date, ignore_errors=True)
        fault = faults[date]
        pull = _write_likers_pull(incoming / date / "likers_pull", day, scraped, accounts,
                                  day_rng, fault if fault != "twarc_error" else None)
        _write_twarc(incoming / date / "twarc", day, twarc, accounts, day_rng,
                     fault == "twarc_error")
        summary["dates"][date] = {
            "likers_scrape_engagements": len(pull["engagements"]),
            "twarc_engagements": sum(len({w for _, w in t.events[a]})
                                     for t in twarc for a in t.events),
            "likers_scrape_files": pull["files"], "fault": fault}
    truth = data_dir / "truth" / "engagements"
    truth.mkdir(parents=True, exist_ok=True)
    rows = [["screen_name", "user_id", "group_id", "exact"]]
    for group, members in groups.items():
        for m in sorted(members, key=lambda i: accounts[i]["screen_name"].lower()):
            rows.append([accounts[m]["screen_name"], accounts[m]["user_id"], group,
                         "true" if exact[m] else "false"])
    (truth / "like_groups.csv").write_text(_csv_text(rows, "\n"), encoding="utf-8", newline="")
    summary["group_members"] = len(rows) - 1
    summary["exact_members"] = sum(exact.values())
    summary["bytes"] = sum(p.stat().st_size for d in DATES for p in (incoming / d).rglob("*")
                           if p.is_file())
    return summary
