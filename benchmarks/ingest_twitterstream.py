"""Benchmark: ingest one generated Stream Grab day, side by side with two references.

    python benchmarks/ingest_twitterstream.py [--tweets 1000000] [--workers 2]

Three contenders read the same per-minute ``.json.bz2`` / ``.json.gz`` members of one day:
  floor      pure decompression: each member through bz2/gzip, output thrown away
  seed       the Open Assistant scripts' approach: per file, json lines -> pandas DataFrame
             (standardized columns) -> one Parquet file per member
  project    botpipeline's ingest_day(): raw.* tables for the date, deduplicated
Each runs in its own process; peak RSS is sampled over that process and its children. Prints tweets/s, the ratios, and
peak memory. Needs the bench extra (pandas): pip install -e ".[bench]".
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import io
import json
import shutil
import sys
import tarfile
import tempfile
import time
from datetime import date
from pathlib import Path

from measure import in_child

CACHE = Path(__file__).resolve().parent / ".cache"
DAY = date(2021, 1, 1)


def _members(day_dir: Path):
    for archive in sorted(day_dir.glob("*.tar")):
        with tarfile.open(archive) as tar:
            for info in tar:
                base = info.name.rsplit("/", 1)[-1]
                if info.isfile() and info.size and not base.startswith("."):
                    yield info.name, tar.extractfile(info).read()


def run_floor(day_dir: Path, _out: Path) -> dict:
    raw = 0
    for name, data in _members(day_dir):
        raw += len(bz2.decompress(data) if name.endswith(".bz2") else gzip.decompress(data))
    return {"bytes_decompressed": raw}


SEED_COLUMNS = {  # the standardized columns the seed scripts keep
    "id_str": "tweet_id", "created_at": "created_at", "user.id_str": "user_id",
    "user.screen_name": "screen_name", "text": "text", "extended_tweet.full_text": "full_text",
    "lang": "lang", "in_reply_to_status_id_str": "in_reply_to_tweet_id",
    "in_reply_to_user_id_str": "in_reply_to_user_id", "retweeted_status.id_str": "retweeted_id",
    "quoted_status_id_str": "quoted_tweet_id",
}


def run_seed(day_dir: Path, out: Path) -> dict:
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    tweets = 0
    for i, (name, data) in enumerate(_members(day_dir)):
        opener = bz2.open if name.endswith(".bz2") else gzip.open
        rows = []
        with opener(io.BytesIO(data), "rt", encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    tweet = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if "id_str" in tweet:  # drop delete notices and other messages
                    rows.append(tweet)
        frame = pd.json_normalize(rows)
        frame = frame.reindex(columns=list(SEED_COLUMNS)).rename(columns=SEED_COLUMNS)
        frame["text"] = frame["full_text"].fillna(frame["text"])
        frame = frame.drop(columns=["full_text"])
        frame["created_at"] = pd.to_datetime(frame["created_at"],
                                             format="%a %b %d %H:%M:%S %z %Y")
        frame.to_parquet(out / f"part-{i:05d}.parquet", index=False)
        tweets += len(frame)
    return {"tweets": tweets}


def run_project(day_dir: Path, out: Path, workers: int = 2) -> dict:
    from botpipeline.readers.twitterstream.ingest import ingest_day
    from botpipeline.storage.lake import ParquetLake

    report = ingest_day(day_dir, DAY, ParquetLake(out), workers=workers, progress=lambda _: None)
    return {"tweets": report.rows["tweets"], "tweet_lines": report.tweet_lines,
            "balanced": report.accounting_balanced}


def measure(name: str, day_dir: Path, workers: int) -> dict:
    """One contender in a fresh process: seconds and peak RSS of its process tree."""
    fn = {"floor": run_floor, "seed": run_seed, "project": run_project}[name]
    out = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    try:
        args = (day_dir, out, workers) if name == "project" else (day_dir, out)
        return in_child(fn, *args)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def ensure_input(tweets: int, seed: int) -> tuple[Path, dict]:
    from botpipeline.samples.twitterstream import generate

    root = CACHE / f"twitterstream-{tweets}-{seed}"
    day_dir = root / "incoming" / "twitterstream" / DAY.isoformat()
    truth_file = root / "truth" / "twitterstream" / f"{DAY.isoformat()}.json"
    if not truth_file.exists():
        shutil.rmtree(root, ignore_errors=True)
        print(f"generating {tweets:,} tweets into {root} ...", flush=True)
        started = time.perf_counter()
        generate(root, DAY, days=1, tweets_per_day=tweets, seed=seed, workers=2)
        print(f"  generated in {time.perf_counter() - started:.0f}s", flush=True)
    return day_dir, json.loads(truth_file.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tweets", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    day_dir, truth = ensure_input(args.tweets, args.seed)
    size = sum(p.stat().st_size for p in day_dir.glob("*"))
    print(f"input: {size / 1e6:.0f} MB compressed, {truth['tweet_lines']:,} tweet lines, "
          f"{truth['members']} members")
    results = {}
    for name in ("floor", "seed", "project"):
        print(f"running {name} ...", flush=True)
        results[name] = measure(name, day_dir, args.workers)
        print(f"  {results[name]['seconds']:.1f}s, peak RSS "
              f"{results[name]['peak_rss_mb']:.0f} MB", flush=True)

    lines = truth["tweet_lines"]
    assert results["project"]["tweets"] == truth["unique_tweets"], results["project"]
    assert results["project"]["balanced"]
    print()
    print(f"{'approach':<10} {'seconds':>9} {'tweets/s':>11} {'peak RSS MB':>12}")
    for name, res in results.items():
        print(f"{name:<10} {res['seconds']:>9.1f} {lines / res['seconds']:>11,.0f} "
              f"{res['peak_rss_mb']:>12.0f}")
    project = results["project"]["seconds"]
    print()
    print(f"project vs seed (pandas):        {results['seed']['seconds'] / project:.2f}x faster "
          f"(target >= 5x)")
    print(f"project vs pure decompression:   {project / results['floor']['seconds']:.2f}x the "
          f"floor's time (target <= 2x)")
    print(f"project peak RSS:                {results['project']['peak_rss_mb']:.0f} MB "
          f"(target < 2048 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
