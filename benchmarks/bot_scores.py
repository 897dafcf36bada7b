"""Benchmark: account features + the 13 signals, side by side with a per-account loop.

    python benchmarks/bot_scores.py [--accounts 1000000] [--posts 10000000] [--sample 5000]

One generated collection date of ``--posts`` posts by ``--accounts`` accounts (Zipf-like
activity, a share of automated accounts posting templated text around the clock, replies,
engagement counts) is written as core.posts / core.accounts partitions. Then:
  project   features/account_features and scores/bot_scores as the assets run them
            (DuckDB SQL over the lake), for every account;
  seed loop  seed 003's analyzer as it runs: the whole dataset in an indexed SQL database
            (SQLite); per account, load its row and posts through the SQLAlchemy ORM,
            compute the signals in Python, store a score, comment statistics and flags,
            commit. Timed on a sample of ``--sample`` active accounts, per account.
  raw loop  the lightest per-account loop, for scale: plain sqlite3 queries, nothing stored.
All three give the same totals on the sample; the script counts how many agree.
"""

from __future__ import annotations

import argparse
import itertools
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


def per_account_signals(account, posts: list, reference: datetime) -> dict[str, float]:
    """Seed 003's analyzer for one account, in plain Python, over objects with attributes
    (ORM rows or simple namespaces)."""
    from botpipeline.transforms.bot_signals import SignalConfig

    c = SignalConfig()
    originals = [p for p in posts if p.kind in ("post", "quote")]
    comments = sorted((p for p in posts if p.kind == "reply"),
                      key=lambda p: (p.created_at, p.post_id))

    def repeated_share(items):
        counts = Counter(_normalize(p.text) for p in items)
        counts.pop("", None)
        total = sum(counts.values())
        return sum(n for n in counts.values() if n > 1) / total if total else 0.0

    def engagement(items):
        return sum(p.like_count + p.repost_count + p.reply_count for p in items) / len(items)

    age = (reference - account.created_at).total_seconds() / 86400
    gaps = [(b.created_at - a.created_at).total_seconds() for a, b in itertools.pairwise(comments)]
    return {
        "new_account": c.new_account_max if age < c.new_account_days else 0.0,
        "high_frequency": c.high_frequency_max if len(posts) > c.high_frequency_posts_24h
        else 0.0,
        "repetitive_content": c.repetitive_content_max
        if len(originals) >= c.min_posts_for_repetition
        and repeated_share(originals) > c.repetitive_share_above else 0.0,
        "low_engagement": c.low_engagement_max
        if originals and engagement(originals) < c.low_engagement_below else 0.0,
        "generic_username": c.generic_username_max
        if re.search(c.generic_username_pattern, account.username.lower()) else 0.0,
        "incomplete_profile": (c.incomplete_profile_max / 2 if not account.description else 0)
        + (c.incomplete_profile_max / 2 if account.default_profile_image else 0),
        "temporal_pattern": c.temporal_pattern_max
        if len({p.created_at.hour for p in posts}) > c.active_hours_above else 0.0,
        "unverified_account": c.unverified_account_max if account.verified is False else 0.0,
        "comment_repetitiveness": c.comment_repetitiveness_max
        if len(comments) >= c.min_posts_for_repetition
        and repeated_share(comments) > c.comment_repetitive_share_above else 0.0,
        "comment_timing": c.comment_timing_max
        if gaps and sum(g < 30 for g in gaps) / len(gaps) > c.rapid_comment_share_above
        else 0.0,
        "comment_to_post_ratio": c.comment_to_post_ratio_max
        if comments and not originals else 0.0,
        "comment_engagement": c.comment_engagement_max
        if comments and engagement(comments) < c.comment_engagement_below else 0.0,
    }


POST_FIELDS = ["post_id", "author_id", "kind", "created_at", "text", "like_count",
               "repost_count", "reply_count"]


def build_seed_database(root: str) -> dict:
    """The seed's database holding the whole dataset: every account and every post, with the
    index on the author that its per-account queries use (SQLite, WAL journal)."""
    import sqlite3

    import duckdb

    from botpipeline.storage.lake import ParquetLake

    lake = ParquetLake(Path(root) / "lake")
    con = duckdb.connect()
    lake.register_views(con)
    from seed_orm import Base
    from sqlalchemy import create_engine

    path = Path(root) / "seed.sqlite"
    Base.metadata.create_all(create_engine(f"sqlite:///{path}"))
    db = sqlite3.connect(str(path))
    db.execute("PRAGMA journal_mode=WAL")
    loaded = {}
    for table, sql in [
        ("accounts", ("SELECT account_id, username, description, strftime(created_at, "
                     "'%Y-%m-%d %H:%M:%S.%f'), verified, default_profile_image, NULL "
                     "FROM core.accounts")),
        ("posts", ("SELECT post_id, author_id, kind, strftime(created_at, '%Y-%m-%d %H:%M:%S.%f'), "
                  "text, like_count, repost_count, reply_count FROM core.posts")),
    ]:
        reader = con.sql(sql).to_arrow_reader(200_000)
        marks = ", ".join("?" * len(reader.schema))
        loaded[table] = 0
        for batch in reader:
            rows = list(zip(*(column.to_pylist() for column in batch.columns)))
            db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
            loaded[table] += len(rows)
        db.commit()
    return loaded


def sample_accounts(root: str, sample: int) -> list[str]:
    import duckdb

    from botpipeline.storage.lake import ParquetLake

    con = duckdb.connect()
    ParquetLake(Path(root) / "lake").register_views(con)
    return [r[0] for r in con.sql(
        "SELECT DISTINCT author_id FROM core.posts ORDER BY hash(author_id, 7) "
        f"LIMIT {int(sample)}").fetchall()]


def run_raw_loop(root: str, ids: list[str]) -> dict:
    """The lightest per-account loop: sqlite3 queries per account, signals in Python,
    nothing stored."""
    import sqlite3
    from types import SimpleNamespace

    db = sqlite3.connect(str(Path(root) / "seed.sqlite"))
    reference = datetime.combine(DAY + timedelta(days=1), datetime.min.time())
    started = time.perf_counter()
    totals = {}
    for account_id in ids:
        row = db.execute("SELECT username, description, created_at, verified, "
                         "default_profile_image FROM accounts WHERE account_id = ?",
                         (account_id,)).fetchone()
        account = SimpleNamespace(username=row[0], description=row[1],
                                  created_at=datetime.fromisoformat(row[2]),
                                  verified=bool(row[3]), default_profile_image=bool(row[4]))
        mine = []
        for values in db.execute(f"SELECT {', '.join(POST_FIELDS)} FROM posts "
                                 "WHERE author_id = ?", (account_id,)):
            post = SimpleNamespace(**dict(zip(POST_FIELDS, values)))
            post.created_at = datetime.fromisoformat(post.created_at)
            mine.append(post)
        totals[account_id] = round(sum(per_account_signals(account, mine, reference).values()), 4)
    return {"loop_seconds": time.perf_counter() - started, "totals": totals}


def run_seed_orm_loop(root: str, ids: list[str]) -> dict:
    """Seed 003's analyzer as it runs: per account, load AccountDB and its PostDB rows through
    the SQLAlchemy ORM, compute the 13 signals, store ScoreDB, CommentStatsDB and a FlagDB row
    per significant signal, set last_analyzed, commit (WAL, synchronous=NORMAL: no fsync per
    commit)."""
    import json

    from seed_orm import AccountDB, CommentStatsDB, FlagDB, PostDB, ScoreDB
    from sqlalchemy import create_engine, event, select
    from sqlalchemy.orm import Session

    engine = create_engine(f"sqlite:///{Path(root) / 'seed.sqlite'}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    reference = datetime.combine(DAY + timedelta(days=1), datetime.min.time())
    started = time.perf_counter()
    totals = {}
    with Session(engine) as session:
        for account_id in ids:
            account = session.get(AccountDB, account_id)
            posts = session.scalars(select(PostDB).where(PostDB.author_id == account_id)).all()
            signals = per_account_signals(account, posts, reference)
            total = round(sum(signals.values()), 4)
            comments = [p for p in posts if p.kind == "reply"]
            session.add(ScoreDB(account_id=account_id, total_score=total,
                                signals=json.dumps(signals), flagged=total >= 7.0,
                                analyzed_at=reference))
            session.add(CommentStatsDB(account_id=account_id, comments=len(comments),
                                       repetitive_score=signals["comment_repetitiveness"],
                                       timing_score=signals["comment_timing"]))
            session.add_all(FlagDB(account_id=account_id, signal=name, score=value)
                            for name, value in signals.items() if value >= 1.0)
            account.last_analyzed = reference
            session.commit()
            totals[account_id] = total
    return {"loop_seconds": time.perf_counter() - started, "totals": totals}


def project_totals(root: str, ids: list[str]) -> dict[str, float]:
    import duckdb

    con = duckdb.connect()
    return dict(con.execute(
        f"SELECT account_id, total_score FROM read_parquet('{root}/lake/scores/bot_scores/*/"
        "data.parquet') WHERE list_contains(?, account_id)", [ids]).fetchall())


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
        print("loading the whole dataset into the seed's SQLite database ...", flush=True)
        loaded = in_child(build_seed_database, root)
        print(f"  {loaded['seconds']:.0f}s ({loaded['accounts']:,} accounts, "
              f"{loaded['posts']:,} posts)", flush=True)
        ids = sample_accounts(root, args.sample)
        expected = project_totals(root, ids)
        print(f"\nper-account loops on a sample of {len(ids):,} active accounts:")
        per_project = project["seconds"] / project["accounts_scored"]
        print(f"  {'project (all accounts)':34s} {per_project * 1e6:8.1f} us per account "
              f"({project['seconds']:.1f}s in all; target < 120 s)")
        for label, loop in [("seed: SQLAlchemy ORM, stores results", run_seed_orm_loop),
                            ("plain sqlite3 queries, stores nothing", run_raw_loop)]:
            result = in_child(loop, root, ids)
            per = result["loop_seconds"] / len(ids)
            agree = sum(abs(result["totals"][k] - v) < 1e-6 for k, v in expected.items())
            print(f"  {label:34s} {per * 1e6:8.1f} us per account -> project is "
                  f"{per / per_project:5.1f}x faster (target >= 50x); totals agree on "
                  f"{agree:,} of {len(expected):,}; would take "
                  f"{per * project['accounts_scored'] / 60:.0f} min for all", flush=True)
        print(f"\npeak RSS (project): {project['peak_rss_mb']:.0f} MB")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
