"""Firehose-shaped days: Bluesky Jetstream events, deterministic by seed, with planted truth.

A day is a time-ordered list of Jetstream JSON events (``{"did", "time_us", "kind", ...}``)
with a realistic mix (likes >> posts > reposts > follows, profile updates, deletes of records
created earlier, identity and account events), bursts, a few events of the wrong shape and
(optionally) malformed frames, plus planted groups:

- co-liking groups: members like the same campaign posts within a minute of each other; an
  ``exact`` member likes the whole set and nothing else, the others miss one post (Jaccard
  to the set >= 0.9);
- co-reposting groups: members repost the same posts within 30 s.

``write_day`` writes the day the way the recorder does (``<out>/incoming/bluesky_jetstream/
<date>/<HH>.jsonl.zst`` plus ``_closed.json``) and the truth under
``<out>/truth/bluesky_jetstream/<date>/``: ``counts.json`` (events per kind / collection /
operation, malformed frames, wrong-shaped events), ``like_groups.csv`` and
``repost_groups.csv`` (actor, group, exact).

    python -m botpipeline.samples.jetstream OUT_DIR --date 2024-09-09 --events 200000
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

SOURCE = "bluesky_jetstream"
TID_ALPHABET = np.frombuffer(b"234567abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
B32 = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz234567", dtype=np.uint8)
WORDS = ("the vote today news bot sky post thread people city rain music game team art data "
         "science climate policy market open source code coffee morning night love hate "
         "election debate energy school health film book photo dog cat").split()
# Shares of the ordinary events (the planted groups come on top).
MIX = {"like": 0.70, "post": 0.105, "repost": 0.075, "follow": 0.055, "delete": 0.035,
       "profile": 0.006, "identity": 0.008, "account": 0.002, "block": 0.004}


@dataclass
class DayConfig:
    day: date = date(2024, 9, 9)
    events: int = 100_000
    seed: int = 20
    users: int | None = None
    """Accounts active in the day (default events // 40, at least 500)."""
    like_groups: int = 20
    like_group_size: int = 12
    like_campaign_posts: int = 25
    repost_groups: int = 8
    repost_group_size: int = 8
    repost_campaign_posts: int = 12
    wrong_shape_share: float = 0.0002
    """Valid JSON that is not a usable event (no time_us, a like without a subject, ...)."""
    malformed_share: float = 0.0
    """Frames that are not JSON at all (the recorder rejects them; the server sends them)."""
    skew: float = 3.0
    """Popularity of older posts: rank = pool * u**skew (u uniform), a long tail in which
    no single post takes more than about pool**(-1/skew) of the likes."""


@dataclass
class Day:
    events: list[tuple[int, bytes]]
    """(time_us or -1 for a malformed frame, the frame's bytes), in time order."""
    counts: Counter = field(default_factory=Counter)
    like_groups: list[tuple[str, str, bool]] = field(default_factory=list)
    repost_groups: list[tuple[str, str, bool]] = field(default_factory=list)


def _base32(ints: np.ndarray, alphabet: np.ndarray, width: int) -> list[str]:
    """Fixed-width base-32 strings of non-negative int64s, vectorised."""
    digits = np.empty((len(ints), width), dtype=np.uint8)
    value = ints.astype(np.uint64)
    for i in range(width - 1, -1, -1):
        digits[:, i] = alphabet[(value & np.uint64(31)).astype(np.int64)]
        value = value >> np.uint64(5)
    return digits.view(f"S{width}").ravel().astype(str).tolist()


def tids(time_us: np.ndarray, clock: np.ndarray) -> list[str]:
    """AT-proto TIDs (13 sortable base-32 chars: microseconds << 10 | clock id)."""
    return _base32((time_us.astype(np.uint64) << np.uint64(10)) | clock.astype(np.uint64),
                   TID_ALPHABET, 13)


def dids(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed + 7)
    return ["did:plc:" + s for s in _base32(rng.integers(0, 2**60, n, dtype=np.int64), B32, 12)
            ] if n else []


def _iso(time_us: int) -> str:
    return datetime.fromtimestamp(time_us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _times(rng: np.random.Generator, n: int, start_us: int, span_us: int) -> np.ndarray:
    """n sorted event times over the span with a daily rhythm and a few bursts."""
    hours = np.arange(24)
    weight = 1.0 + 0.6 * np.sin((hours - 8) / 24 * 2 * np.pi)
    burst_hours = rng.choice(24, 3, replace=False)
    weight[burst_hours] *= 2.5
    hour = rng.choice(24, n, p=weight / weight.sum())
    return np.sort(start_us + (hour * span_us // 24)
                   + rng.integers(0, span_us // 24, n, dtype=np.int64))


def generate(config: DayConfig) -> Day:
    rng = np.random.default_rng(config.seed)
    n = config.events
    n_users = config.users or max(500, n // 40)
    users = dids(n_users, config.seed)
    start_us = int(datetime(config.day.year, config.day.month, config.day.day,
                            tzinfo=UTC).timestamp() * 1_000_000)
    span_us = 86_400 * 1_000_000

    # Planted groups (accounts of their own, after the ordinary users).
    planted_like = config.like_groups * config.like_group_size
    planted_repost = config.repost_groups * config.repost_group_size
    bots = dids(planted_like + planted_repost, config.seed + 1000)
    groups_like = [bots[g * config.like_group_size:(g + 1) * config.like_group_size]
                   for g in range(config.like_groups)]
    groups_repost = [bots[planted_like + g * config.repost_group_size:
                          planted_like + (g + 1) * config.repost_group_size]
                     for g in range(config.repost_groups)]

    # Older posts (before the day) that likes, reposts and replies point at.
    n_old = max(200, n // 8)
    old_authors = rng.integers(0, n_users, n_old)
    old_rkeys = tids(start_us - rng.integers(1, 30 * span_us, n_old, dtype=np.int64),
                     rng.integers(0, 1024, n_old))
    old_posts = [f"at://{users[a]}/app.bsky.feed.post/{k}" for a, k in
                 zip(old_authors.tolist(), old_rkeys)]

    kinds = np.array(list(MIX))
    p = np.array(list(MIX.values()))
    kind = rng.choice(len(kinds), n, p=p / p.sum())
    times = _times(rng, n, start_us, span_us)
    actor = np.minimum((rng.pareto(1.2, n) * n_users / 50).astype(np.int64), n_users - 1)
    actor = rng.permutation(n_users)[actor]
    clock = rng.integers(0, 1024, n)
    rkeys = tids(times, clock)
    revs = tids(times + 3, clock)
    rank = np.minimum((n_old * rng.random(n) ** config.skew).astype(np.int64), n_old - 1)
    target_old = rng.permutation(n_old)[rank]
    uniform = rng.random(n)
    post_kind = rng.random(n)
    words = rng.integers(0, len(WORDS), (n, 8))
    seq = np.arange(n) + 10_000_000

    events: list[tuple[int, bytes]] = []
    counts: Counter = Counter()
    created: list[tuple[str, str, str]] = []  # (did, collection, rkey) created today
    today_posts: list[str] = []
    tolist = times.tolist()
    kind_l, actor_l, uni_l, pk_l = kind.tolist(), actor.tolist(), uniform.tolist(), \
        post_kind.tolist()
    target_l = target_old.tolist()
    names = kinds.tolist()
    for i in range(n):
        t = tolist[i]
        k = names[kind_l[i]]
        did = users[actor_l[i]]
        rkey = rkeys[i]
        head = f'{{"did":"{did}","time_us":{t},"kind":'
        commit = f'"commit","commit":{{"rev":"{revs[i]}","operation":"create","collection":"'
        cid = f'"cid":"bafyrei{rkey}{rkey}"'
        if k in ("like", "repost"):
            subject = (today_posts[int(uni_l[i] * len(today_posts))]
                       if today_posts and pk_l[i] < 0.3 else old_posts[target_l[i]])
            coll = f"app.bsky.feed.{k}"
            line = (f'{head}{commit}{coll}","rkey":"{rkey}","record":{{"$type":"{coll}",'
                    f'"createdAt":"{_iso(t)}","subject":{{"cid":"bafyreisubject",'
                    f'"uri":"{subject}"}}}},{cid}}}}}')
            created.append((did, coll, rkey))
            counts[f"commit/{coll}/create"] += 1
        elif k == "post":
            text = " ".join(WORDS[w] for w in words[i, :3 + i % 6])
            uri = f"at://{did}/app.bsky.feed.post/{rkey}"
            extra = ""
            if pk_l[i] < 0.35:  # a reply, to a post of today or an older one
                parent = (today_posts[int(uni_l[i] * len(today_posts))]
                          if today_posts and pk_l[i] < 0.25 else old_posts[target_l[i]])
                root = parent if i % 3 else old_posts[(target_l[i] + 1) % n_old]
                extra = (f',"reply":{{"parent":{{"cid":"bafyreip","uri":"{parent}"}},'
                         f'"root":{{"cid":"bafyreir","uri":"{root}"}}}}')
            elif pk_l[i] < 0.40:  # a quote
                extra = (f',"embed":{{"$type":"app.bsky.embed.record","record":'
                         f'{{"cid":"bafyreiq","uri":"{old_posts[target_l[i]]}"}}}}')
            elif pk_l[i] < 0.43:  # a link with its facet
                link = f"https://news.example/{i % 997}"
                text = f"{text} {link}"
                start = len(text.encode()) - len(link)
                extra = (f',"facets":[{{"features":[{{"$type":"app.bsky.richtext.facet#link",'
                         f'"uri":"{link}"}}],"index":{{"byteStart":{start},'
                         f'"byteEnd":{start + len(link)}}}}}]')
            line = (f'{head}{commit}app.bsky.feed.post","rkey":"{rkey}","record":{{"$type":'
                    f'"app.bsky.feed.post","createdAt":"{_iso(t)}","langs":["en"],'
                    f'"text":"{text}"{extra}}},{cid}}}}}')
            today_posts.append(uri)
            created.append((did, "app.bsky.feed.post", rkey))
            counts["commit/app.bsky.feed.post/create"] += 1
        elif k in ("follow", "block"):
            coll = f"app.bsky.graph.{k}"
            line = (f'{head}{commit}{coll}","rkey":"{rkey}","record":{{"$type":"{coll}",'
                    f'"createdAt":"{_iso(t)}","subject":"{users[target_l[i] % n_users]}"}},'
                    f'{cid}}}}}')
            created.append((did, coll, rkey))
            counts[f"commit/{coll}/create"] += 1
        elif k == "delete":
            if created and pk_l[i] < 0.7:
                d_did, coll, d_rkey = created[int(uni_l[i] * len(created))]
            else:
                d_did, coll, d_rkey = did, "app.bsky.feed.like", old_rkeys[target_l[i]]
            line = (f'{{"did":"{d_did}","time_us":{t},"kind":"commit","commit":{{"rev":'
                    f'"{revs[i]}","operation":"delete","collection":"{coll}",'
                    f'"rkey":"{d_rkey}"}}}}')
            counts[f"commit/{coll}/delete"] += 1
        elif k == "profile":
            op = "update" if i % 4 else "create"
            line = (f'{head}"commit","commit":{{"rev":"{revs[i]}","operation":"{op}",'
                    f'"collection":"app.bsky.actor.profile","rkey":"self","record":{{"$type":'
                    f'"app.bsky.actor.profile","displayName":"User {actor_l[i]}",'
                    f'"description":"{WORDS[i % len(WORDS)]} lover"}},{cid}}}}}')
            counts[f"commit/app.bsky.actor.profile/{op}"] += 1
        elif k == "identity":
            line = (f'{head}"identity","identity":{{"did":"{did}","handle":"user{actor_l[i]}'
                    f'.bsky.social","seq":{seq[i]},"time":"{_iso(t)}"}}}}')
            counts["identity"] += 1
        else:
            line = (f'{head}"account","account":{{"active":false,"did":"{did}","seq":'
                    f'{seq[i]},"status":"deactivated","time":"{_iso(t)}"}}}}')
            counts["account"] += 1
        events.append((t, line.encode()))

    planted = _planted(rng, config, groups_like, groups_repost, old_posts, start_us, span_us,
                       counts)
    events.extend(planted)
    bad = _bad_frames(rng, config, users, start_us, span_us, counts)
    events.extend(bad)
    events.sort(key=lambda e: e[0] if e[0] >= 0 else e[1].__len__())
    events = _place_malformed(events)
    like_truth = [(m, f"like-{g}", (j % 4) != 3) for g, members in enumerate(groups_like)
                  for j, m in enumerate(members)]
    repost_truth = [(m, f"repost-{g}", True) for g, members in enumerate(groups_repost)
                    for m in members]
    return Day(events=events, counts=counts, like_groups=like_truth, repost_groups=repost_truth)


def _planted(rng, config: DayConfig, groups_like, groups_repost, old_posts, start_us, span_us,
             counts: Counter) -> list[tuple[int, bytes]]:
    out = []
    pool = len(old_posts)

    def act(did: str, t: int, coll: str, subject: str) -> None:
        rkey = tids(np.array([t]), rng.integers(0, 1024, 1))[0]
        out.append((t, (f'{{"did":"{did}","time_us":{t},"kind":"commit","commit":{{"rev":'
                        f'"{rkey}","operation":"create","collection":"{coll}","rkey":"{rkey}",'
                        f'"record":{{"$type":"{coll}","createdAt":"{_iso(t)}","subject":'
                        f'{{"cid":"bafyreisubject","uri":"{subject}"}}}},'
                        f'"cid":"bafyrei{rkey}"}}}}').encode()))
        counts[f"commit/{coll}/create"] += 1

    for members in groups_like:
        campaign = rng.choice(pool, config.like_campaign_posts, replace=False)
        for j, did in enumerate(members):
            skip = -1 if (j % 4) != 3 else int(rng.integers(0, len(campaign)))
            for c, post in enumerate(campaign.tolist()):
                if c == skip:
                    continue
                base = start_us + (c * 7919 + int(post) * 104729) % (span_us - 120_000_000)
                act(did, base + int(rng.integers(0, 60_000_000)), "app.bsky.feed.like",
                    old_posts[post])
    for members in groups_repost:
        campaign = rng.choice(pool, config.repost_campaign_posts, replace=False)
        for did in members:
            for c, post in enumerate(campaign.tolist()):
                base = start_us + (c * 15485863 + int(post) * 7) % (span_us - 60_000_000)
                act(did, base + int(rng.integers(0, 30_000_000)), "app.bsky.feed.repost",
                    old_posts[post])
    return out


def _bad_frames(rng, config: DayConfig, users, start_us, span_us, counts: Counter
                ) -> list[tuple[int, bytes]]:
    """Wrong-shaped events (valid JSON, with a time) and malformed frames (time -1)."""
    out = []
    n_wrong = int(config.events * config.wrong_shape_share)
    for i in range(n_wrong):
        t = start_us + int(rng.integers(0, span_us))
        did = users[i % len(users)]
        shape = i % 4
        if shape == 0:   # a like without its subject
            line = (f'{{"did":"{did}","time_us":{t},"kind":"commit","commit":{{"rev":"x",'
                    f'"operation":"create","collection":"app.bsky.feed.like","rkey":"k{i}",'
                    f'"record":{{"$type":"app.bsky.feed.like"}}}}}}')
            counts["wrong_shape/like_without_subject"] += 1
        elif shape == 1:  # a commit without its collection
            line = (f'{{"did":"{did}","time_us":{t},"kind":"commit","commit":{{"rev":"x",'
                    f'"operation":"create","rkey":"k{i}"}}}}')
            counts["wrong_shape/commit_without_collection"] += 1
        elif shape == 2:  # an unknown event kind
            line = f'{{"did":"{did}","time_us":{t},"kind":"sync","sync":{{}}}}'
            counts["wrong_shape/unknown_kind"] += 1
        else:             # a did that is not a DID
            line = (f'{{"did":"nobody","time_us":{t},"kind":"identity","identity":'
                    f'{{"handle":"x.bsky.social"}}}}')
            counts["wrong_shape/bad_did"] += 1
        out.append((t, line.encode()))
    n_bad = int(config.events * config.malformed_share)
    for i in range(n_bad):
        frame = [b'{"did":"did:plc:broken","time_us":', b"\x00\xffnot json",
                 b'{"kind":"commit"'][i % 3]
        out.append((-1, frame))
        counts["malformed"] += 1
    return out


def _place_malformed(events: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """Malformed frames (time -1) sorted first: spread them through the day instead."""
    bad = [e for e in events if e[0] < 0]
    good = [e for e in events if e[0] >= 0]
    if not bad:
        return good
    step = max(1, len(good) // (len(bad) + 1))
    out: list[tuple[int, bytes]] = []
    b = 0
    for i, e in enumerate(good):
        if b < len(bad) and i and i % step == 0:
            out.append(bad[b])
            b += 1
        out.append(e)
    out.extend(bad[b:])
    return out


def truth_counts(day: Day) -> dict[str, int]:
    """Events per kind / collection / operation (wrong-shaped and malformed apart)."""
    return dict(sorted(day.counts.items()))


def write_day(out_dir: str | os.PathLike[str], config: DayConfig, level: int = 3) -> Path:
    """Write the day as the recorder would (hourly zstd files, malformed frames left out as
    the recorder rejects them), and its truth. Returns the day folder."""
    import zstandard

    day = generate(config)
    out = Path(out_dir)
    folder = out / "incoming" / SOURCE / config.day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    start_us = int(datetime(config.day.year, config.day.month, config.day.day,
                            tzinfo=UTC).timestamp() * 1_000_000)
    by_hour: dict[int, list[bytes]] = {}
    for t, line in day.events:
        if t < 0:
            continue
        hour = min(23, max(0, (t - start_us) // 3_600_000_000))
        by_hour.setdefault(hour, []).append(line)
    compressor = zstandard.ZstdCompressor(level=level, threads=-1)
    for hour, lines in sorted(by_hour.items()):
        target = folder / f"{hour:02d}.jsonl.zst"
        tmp = target.with_name(f".{target.name}.tmp")
        with open(tmp, "wb") as fh, compressor.stream_writer(fh) as writer:
            for start in range(0, len(lines), 50_000):
                writer.write(b"\n".join(lines[start:start + 50_000]) + b"\n")
        os.replace(tmp, target)
    (folder / "_closed.json").write_text(json.dumps(
        {"date": config.day.isoformat(), "hours": sorted(by_hour), "generator_seed": config.seed,
         "closed_at": datetime.now(UTC).isoformat()}))
    truth = out / "truth" / SOURCE / config.day.isoformat()
    truth.mkdir(parents=True, exist_ok=True)
    counts = truth_counts(day)
    (truth / "counts.json").write_text(json.dumps(counts, indent=1))
    for name, rows in (("like_groups.csv", day.like_groups),
                       ("repost_groups.csv", day.repost_groups)):
        with open(truth / name, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["actor", "group", "exact"])
            writer.writerows(rows)
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--date", default="2024-09-09")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args(argv)
    folder = write_day(args.out_dir, DayConfig(day=date.fromisoformat(args.date),
                                               events=args.events, seed=args.seed))
    print(folder)


if __name__ == "__main__":
    main()
