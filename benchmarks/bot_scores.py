"""Benchmark: account features + the 13 signals, side by side with a per-account loop.

    python benchmarks/bot_scores.py [--accounts 1000000] [--posts 10000000] [--sample 5000]

One generated collection date of ``--posts`` posts by ``--accounts`` accounts (Zipf-like
activity, a share of automated accounts posting templated text around the clock, replies,
engagement counts) is written as core.posts / core.accounts partitions. Then:
  project   features/account_features and scores/bot_scores as the assets run them
            (DuckDB SQL over the lake), for every account;
  per-account  the seed's way: for each account, query its row and its posts from an indexed
            SQL database and compute the same features and signals in Python, on a sample
            of ``--sample`` accounts; the per-account time is extrapolated.
Both compute the same totals on the sample; the script checks they agree.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

from measure import in_child

DAY = date(2021, 3, 1)


def write_input(root: str, accounts: int, posts: int, seed: int) -> dict:
    import numpy as np
    import polars as pl

    from botpipeline.storage.lake import ParquetLake
    from botpipeline.transforms.core_model import ACCOUNT_COLUMNS, POST_COLUMNS, conform

    rng = np.random.default_rng(seed)
    bots = rng.random(accounts) < 0.1
    weight = rng.pareto(1.2, accounts) + 1 + bots * 20
    author = rng.choice(accounts, size=posts, p=weight / weight.sum())
    is_bot = bots[author]
    start = datetime.combine(DAY, datetime.min.time())
    seconds = np.where(is_bot, rng.uniform(0, 86_400, posts),
                       rng.normal(14 * 3600, 3 * 3600, posts).clip(0, 86_399))
    kind = np.where(rng.random(posts) < np.where(is_bot, 0.6, 0.3), "reply", "post")
    template = rng.integers(0, 3, posts)
    frame = pl.DataFrame({
        "author": author, "is_bot": is_bot, "seconds": seconds, "kind": kind,
        "template": template, "i": np.arange(posts),
        "likes": np.where(is_bot, 0, rng.poisson(3, posts)),
    }).select(
        pl.lit("twitter").alias("platform"), pl.format("p{}", "i").alias("post_id"),
        pl.format("a{}", "author").alias("author_id"), pl.col("kind"),
        pl.when(pl.col("kind") == "reply").then(pl.format("p{}", (pl.col("i") // 2)))
          .alias("parent_id"),
        (pl.lit(start) + pl.duration(seconds=pl.col("seconds"))).alias("created_at"),
        pl.when(pl.col("is_bot"))
          .then(pl.format("Daily signals #{} {} https://t.co/x", "template", "i"))
          .otherwise(pl.format("my own words number {} about topic {}", "i", "template"))
          .alias("text"),
        pl.col("likes").alias("like_count"), pl.lit(0).alias("repost_count"),
        pl.lit(0).alias("reply_count"),
    )
    lake = ParquetLake(Path(root) / "lake")
    key = DAY.isoformat()
    lake.write("core", "posts", key, conform(frame, POST_COLUMNS).with_columns(
        pl.lit(DAY).alias("collection_date")))
    ids = np.arange(accounts)
    users = pl.DataFrame({"i": ids, "bot": bots,
                          "age": np.where(bots, rng.uniform(1, 60, accounts),
                                          rng.uniform(30, 4000, accounts)),
                          "followers": np.where(bots, rng.integers(0, 20, accounts),
                                                rng.integers(5, 5000, accounts))}).select(
        pl.lit("twitter").alias("platform"), pl.format("a{}", "i").alias("account_id"),
        pl.when(pl.col("bot")).then(pl.format("user{}", "i")).otherwise(pl.format("name{}x", "i"))
          .alias("username"),
        pl.when(pl.col("bot")).then(pl.lit("")).otherwise(pl.lit("I like things"))
          .alias("description"),
        (pl.lit(start) - pl.duration(days=pl.col("age"))).alias("created_at"),
        pl.col("followers").alias("followers_count"),
        (pl.col("followers") * 2).alias("following_count"),
        pl.lit(False).alias("verified"), pl.col("bot").alias("default_profile_image"),
        pl.lit(start).alias("observed_at"))
    lake.write("core", "accounts", key, conform(users, ACCOUNT_COLUMNS).with_columns(
        pl.lit(DAY).alias("collection_date")))
    return {"posts": frame.height, "accounts": accounts}


def run_project(root: str) -> dict:
    import dagster as dg

    from botpipeline.defs.features.account_features import account_features
    from botpipeline.defs.resources import Warehouse
    from botpipeline.defs.scores.bot_scores import bot_scores

    warehouse = Warehouse(data_dir=root, analysts_database=str(Path(root) / "a.duckdb"),
                          memory_limit="4GB")
    with dg.instance_for_test() as instance:
        result = dg.materialize([account_features, bot_scores], partition_key=DAY.isoformat(),
                                resources={"warehouse": warehouse}, instance=instance)
    assert result.success
    with warehouse.get_connection() as con:
        rows, flagged = con.execute("SELECT count(*), count(*) FILTER (WHERE flagged) "
                                    "FROM scores.bot_scores").fetchall()[0]
    return {"accounts_scored": rows, "flagged": flagged}


_NORM = re.compile(r"https?://\S+|@\w+")
_NON_LETTERS = re.compile(r"[^\w\s]|\d|_")


def _normalize(text: str) -> str:
    return " ".join(_NON_LETTERS.sub(" ", _NORM.sub(" ", text.lower())).split())


def per_account_scores(account: dict, posts: list[dict], reference: datetime) -> float:
    """Seed 003's analyzer, one account at a time, in plain Python."""
    from botpipeline.transforms.bot_signals import SignalConfig

    c = SignalConfig()
    originals = [p for p in posts if p["kind"] in ("post", "quote")]
    comments = sorted((p for p in posts if p["kind"] == "reply"),
                      key=lambda p: (p["created_at"], p["post_id"]))
    score = 0.0
    age = (reference - account["created_at"]).total_seconds() / 86400
    score += c.new_account_max if age < c.new_account_days else 0
    score += c.high_frequency_max if len(posts) > c.high_frequency_posts_24h else 0

    def repeated_share(items):
        counts = Counter(_normalize(p["text"]) for p in items)
        counts.pop("", None)
        total = sum(counts.values())
        return sum(n for n in counts.values() if n > 1) / total if total else 0.0

    if len(originals) >= c.min_posts_for_repetition and \
            repeated_share(originals) > c.repetitive_share_above:
        score += c.repetitive_content_max
    if originals:
        engagement = sum(p["like_count"] + p["repost_count"] + p["reply_count"]
                         for p in originals) / len(originals)
        score += c.low_engagement_max if engagement < c.low_engagement_below else 0
    if re.search(c.generic_username_pattern, account["username"].lower()):
        score += c.generic_username_max
    score += c.incomplete_profile_max / 2 if not account["description"] else 0
    score += c.incomplete_profile_max / 2 if account["default_profile_image"] else 0
    hours = {p["created_at"].hour for p in posts}
    score += c.temporal_pattern_max if len(hours) > c.active_hours_above else 0
    score += c.unverified_account_max if account["verified"] is False else 0
    if len(comments) >= c.min_posts_for_repetition and \
            repeated_share(comments) > c.comment_repetitive_share_above:
        score += c.comment_repetitiveness_max
    gaps = [(b["created_at"] - a["created_at"]).total_seconds()
            for a, b in zip(comments, comments[1:])]
    if gaps and sum(g < 30 for g in gaps) / len(gaps) > c.rapid_comment_share_above:
        score += c.comment_timing_max
    if comments and not originals:
        score += c.comment_to_post_ratio_max
    if comments:
        engagement = sum(p["like_count"] + p["repost_count"] + p["reply_count"]
                         for p in comments) / len(comments)
        score += c.comment_engagement_max if engagement < c.comment_engagement_below else 0
    return round(score, 4)


def run_per_account(root: str, sample: int) -> dict:
    """The seed's analyzer loop: per account, query its row and its posts from an indexed
    SQL database (SQLite here, as an ORM over SQLite/Postgres would), then score in Python."""
    import sqlite3

    import duckdb

    from botpipeline.storage.lake import ParquetLake

    lake = ParquetLake(Path(root) / "lake")
    con = duckdb.connect()
    lake.register_views(con)
    accounts = con.sql(f"SELECT * FROM core.accounts USING SAMPLE {sample} ROWS "
                       f"(reservoir, 7)").pl()
    ids = accounts["account_id"].to_list()
    con.execute("CREATE TABLE wanted AS SELECT unnest(?) AS author_id", [ids])
    posts = con.sql("SELECT p.post_id, p.author_id, p.kind, p.created_at, p.text, "
                    "p.like_count, p.repost_count, p.reply_count FROM core.posts p "
                    "JOIN wanted USING (author_id)").pl()
    db = sqlite3.connect(str(Path(root) / "seed.sqlite"))
    db.execute("CREATE TABLE accounts (account_id TEXT PRIMARY KEY, username TEXT, "
               "description TEXT, created_at TIMESTAMP, verified INT, "
               "default_profile_image INT)")
    db.execute("CREATE TABLE posts (post_id TEXT, author_id TEXT, kind TEXT, "
               "created_at TIMESTAMP, text TEXT, like_count INT, repost_count INT, "
               "reply_count INT)")
    db.executemany("INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?)", accounts.select(
        "account_id", "username", "description", pl_str("created_at"), "verified",
        "default_profile_image").rows())
    db.executemany("INSERT INTO posts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   posts.with_columns(created_at=pl_str("created_at")).rows())
    db.execute("CREATE INDEX posts_author ON posts (author_id)")
    db.commit()
    reference = datetime.combine(DAY + timedelta(days=1), datetime.min.time())
    columns = ["post_id", "author_id", "kind", "created_at", "text", "like_count",
               "repost_count", "reply_count"]
    started = time.perf_counter()
    totals = {}
    for (account_id,) in db.execute("SELECT account_id FROM accounts").fetchall():
        row = db.execute("SELECT username, description, created_at, verified, "
                         "default_profile_image FROM accounts WHERE account_id = ?",
                         (account_id,)).fetchone()
        account = {"username": row[0], "description": row[1],
                   "created_at": datetime.fromisoformat(row[2]), "verified": bool(row[3]),
                   "default_profile_image": bool(row[4])}
        mine = []
        for values in db.execute("SELECT * FROM posts WHERE author_id = ?", (account_id,)):
            post = dict(zip(columns, values))
            post["created_at"] = datetime.fromisoformat(post["created_at"])
            mine.append(post)
        totals[account_id] = per_account_scores(account, mine, reference)
    seconds = time.perf_counter() - started
    expected = dict(con.sql(
        f"SELECT account_id, total_score FROM read_parquet('{root}/lake/scores/bot_scores/*/"
        f"data.parquet') JOIN wanted ON author_id = account_id").fetchall())
    agree = sum(abs(totals[k] - v) < 1e-6 for k, v in expected.items())
    return {"loop_seconds": seconds, "sampled": len(ids), "compared": len(expected),
            "agree": agree}


def pl_str(column: str):
    import polars as pl

    return pl.col(column).dt.strftime("%Y-%m-%dT%H:%M:%S%.f").alias(column)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--posts", type=int, default=10_000_000)
    parser.add_argument("--sample", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args(argv)
    root = tempfile.mkdtemp(prefix="bench-scores-")
    try:
        print(f"generating {args.posts:,} posts by {args.accounts:,} accounts ...", flush=True)
        made = in_child(write_input, root, args.accounts, args.posts, args.seed)
        print(f"  {made['seconds']:.0f}s", flush=True)
        print("project: features + 13 signals for every active account ...", flush=True)
        project = in_child(run_project, root)
        print(f"  {project['seconds']:.1f}s, {project['accounts_scored']:,} accounts scored, "
              f"{project['flagged']:,} flagged, peak RSS {project['peak_rss_mb']:.0f} MB")
        print(f"per-account loop on a sample of {args.sample:,} accounts ...", flush=True)
        loop = in_child(run_per_account, root, args.sample)
        per_account_loop = loop["loop_seconds"] / loop["sampled"]
        per_account_project = project["seconds"] / project["accounts_scored"]
        print(f"  {loop['loop_seconds']:.1f}s for {loop['sampled']:,} accounts; totals agree "
              f"with the project's on {loop['agree']:,} of {loop['compared']:,}")
        print()
        print(f"project:      {per_account_project * 1e6:10.1f} us per account "
              f"({project['seconds']:.1f}s for {project['accounts_scored']:,}; target < 120 s)")
        print(f"per-account:  {per_account_loop * 1e6:10.1f} us per account "
              f"(would take {per_account_loop * project['accounts_scored']:.0f}s for all)")
        print(f"ratio:        {per_account_loop / per_account_project:10.0f}x faster per account "
              f"(target >= 50x)")
        print(f"peak RSS:     {project['peak_rss_mb']:10.0f} MB")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
