"""Benchmark: the ``raw/twitter_v2`` asset on one generated twarc2 day, beside its floors and
the reader it replaced.

    python benchmarks/ingest_twitter_v2.py [--tweets 1000000] [--only ...]

Contenders, each in its own process, on the same gzipped day (``samples/twitter_v2.py``:
search pages in 24 hourly files, a stream file, a few bad lines):
  floor-1      gzip decompression alone on one core, the project's decoder (ISA-L)
  floor-all    the same on every core (files spread over one thread per core)
  floor-parse  decompression and Arrow's JSON reader with the project's schema (the fields the
               tables keep) over 8 MB blocks, every core: the least a reader that parses what it
               stores spends before shaping or writing a row
  before       the reader this one replaced: each file decompressed whole, every line through
               orjson into Python dicts, frames built from the dicts (one process per core, as
               it did for big days), then de-duplicated, sorted and written by polars
  project      the asset as a user runs it: ``dagster asset materialize --select
               raw/twitter_v2`` (default executor, fresh DAGSTER_HOME and data dir); the time
               includes Dagster's start, the commit and the analysts' views
Prints seconds, CPU, peak RSS / PSS of each process tree, the ratios, and checks the project's
counts against the generator's truth. The input is cached outside the repository, in
$BOTPIPELINE_BENCH_CACHE or ~/.cache/botpipeline/bench.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from measure import in_child_with_scratch, materialize_day

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("BOTPIPELINE_BENCH_CACHE",
                           Path.home() / ".cache" / "botpipeline" / "bench"))
DAY = "2021-04-08"


def _day_files(day_dir: Path):
    from botpipeline.readers.twitter_v2.files import day_files

    return day_files(day_dir)


def run_floor(day_dir: Path, _out: Path, workers: int = 1) -> dict:
    """Decompression alone, the project's streaming decoder, files over ``workers`` threads."""
    from botpipeline.readers.twitter_v2.files import _decoded

    def size(path: Path) -> int:
        with open(path, "rb") as handle:
            return sum(len(p) for p in _decoded(handle, path.name.endswith(".gz")))

    with ThreadPoolExecutor(workers) as pool:
        raw = sum(pool.map(size, [p for p, _ in _day_files(day_dir)]))
    return {"bytes_decompressed": raw}


def run_floor_parse(day_dir: Path, _out: Path) -> dict:
    """Decompression and Arrow's parse of the kept fields, in the project's blocks."""
    from botpipeline.readers.arrow_json import NotFast, read_lines
    from botpipeline.readers.twitter_v2.files import Block, read_blocks
    from botpipeline.readers.twitter_v2.pages import _options

    def rows(block: Block) -> int:
        for stream_pages in (False, True):
            try:
                return read_lines(block.data, _options(stream_pages)).num_rows
            except NotFast:
                continue
        return 0  # the block with the bad lines: the exact path's, not counted here

    workers = os.cpu_count() or 1
    parsed = 0
    with ThreadPoolExecutor(workers) as pool:
        pending: deque = deque()
        for path, name in _day_files(day_dir):
            for block in read_blocks(path, name):
                if isinstance(block, Block):
                    pending.append(pool.submit(rows, block))
                while len(pending) > 2 * workers:
                    parsed += pending.popleft().result()
        parsed += sum(f.result() for f in pending)
    return {"lines_parsed": parsed}


def _before_file(path: Path, name: str):
    """The replaced reader's per-file work: the file whole, orjson line by line."""
    import polars as pl
    from isal import igzip

    from botpipeline.readers.arrow_json import line_count
    from botpipeline.readers.twitter_v2.pages import _exact, _numbered

    raw = path.read_bytes()
    data = igzip.decompress(raw) if name.endswith(".gz") else raw
    del raw
    parsed = _exact(_numbered(data, 1), None, line_count(data))
    source = pl.lit(name).alias("source_file")
    return (parsed.tweets.with_columns(source), parsed.users.with_columns(source),
            parsed.errors.with_columns(source), parsed.quarantine.with_columns(source))


def run_before(day_dir: Path, out: Path) -> dict:
    import multiprocessing as mp

    import polars as pl

    files = _day_files(day_dir)
    with ProcessPoolExecutor(os.cpu_count(), mp_context=mp.get_context("spawn")) as pool:
        parts = list(pool.map(_before_file, [p for p, _ in files], [n for _, n in files]))
    tweets = pl.concat([p[0] for p in parts]).unique(["post_id", "included"], keep="first",
                                                     maintain_order=True)
    users = pl.concat([p[1] for p in parts]).unique("account_id", keep="last",
                                                    maintain_order=True)
    tweets.sort("post_id").write_parquet(out / "v2_tweets.parquet", compression="zstd")
    users.sort("account_id").write_parquet(out / "v2_users.parquet", compression="zstd")
    pl.concat([p[2] for p in parts]).write_parquet(out / "v2_api_errors.parquet")
    pl.concat([p[3] for p in parts]).write_parquet(out / "v2_quarantine.parquet")
    return {"tweets": tweets.filter(~pl.col("included")).height, "users": users.height}


def run_project(day_dir: Path, out: Path) -> dict:
    """The raw/twitter_v2 asset through Dagster's CLI; Dagster is imported only afterwards."""
    home = materialize_day(out, "twitter_v2", day_dir, DAY, "raw/twitter_v2")
    import dagster as dg
    import duckdb

    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(["raw", "twitter_v2"]))
        meta = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    with duckdb.connect(str(out / "data" / "botpipeline.duckdb"), read_only=True) as con:
        counts = con.execute(
            "SELECT count(*) FILTER (WHERE NOT included), count(*) FILTER (WHERE included),"
            " (SELECT count(*) FROM raw.v2_users), (SELECT count(*) FROM raw.v2_api_errors)"
            " FROM raw.v2_tweets").fetchall()[0]
    return {"tweets": counts[0], "included_tweets": counts[1], "users": counts[2],
            "api_errors": counts[3], "lines": meta["lines_read"],
            "blank_lines": meta["blank_lines"], "bad_lines": meta["quarantined_lines"],
            "ingest_seconds": meta["seconds"], "parse_cpu": meta["parse_cpu_seconds"]}


def measure(name: str, day_dir: Path) -> dict:
    fn, args = {"floor-1": (run_floor, (1,)), "floor-all": (run_floor, (os.cpu_count(),)),
                "floor-parse": (run_floor_parse, ()), "before": (run_before, ()),
                "project": (run_project, ())}[name]
    return in_child_with_scratch(f"bench-v2-{name}-", fn, day_dir, *args)


def ensure_input(tweets: int, seed: int) -> tuple[Path, dict]:
    from botpipeline.samples.twitter_v2 import generate

    root = CACHE / f"twitter_v2-{tweets}-{seed}"
    truth_file = root / "truth" / "twitter_v2" / f"{DAY}.json"
    if not truth_file.exists():
        shutil.rmtree(root, ignore_errors=True)
        print(f"generating {tweets:,} tweets into {root} ...", flush=True)
        started = time.perf_counter()
        generate(root, DAY, tweets=tweets, seed=seed)
        print(f"  generated in {time.perf_counter() - started:.0f}s", flush=True)
    return root / "incoming" / "twitter_v2" / DAY, json.loads(truth_file.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tweets", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated contenders to run "
                        "(floor-1,floor-all,floor-parse,before,project)")
    args = parser.parse_args(argv)

    day_dir, truth = ensure_input(args.tweets, args.seed)
    size = sum(p.stat().st_size for p in day_dir.iterdir())
    print(f"input: {size / 1e6:,.0f} MB gzipped in {len(list(day_dir.iterdir()))} files, "
          f"{truth['tweets']:,} tweets, {truth['included_tweets']:,} included, "
          f"{truth['users']:,} users, {truth['lines']:,} lines; {os.cpu_count()} cores")
    names = ["floor-1", "floor-all", "floor-parse", "before", "project"]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    results = {}
    for name in names:
        print(f"running {name} ...", flush=True)
        results[name] = measure(name, day_dir)
        res = results[name]
        print(f"  {res['seconds']:.1f}s, CPU {res['cpu_seconds']:.1f}s, peak RSS "
              f"{res['peak_rss_mb']:.0f} MB, PSS {res['peak_pss_mb']:.0f} MB", flush=True)

    print()
    if "floor-1" in results:
        print(f"{results['floor-1']['bytes_decompressed'] / 1e6:,.0f} MB of JSON")
    print(f"{'approach':<12} {'seconds':>9} {'CPU s':>8} {'tweets/s':>11} {'peak RSS MB':>12} "
          f"{'peak PSS MB':>12}")
    for name, res in results.items():
        print(f"{name:<12} {res['seconds']:>9.1f} {res['cpu_seconds']:>8.1f} "
              f"{truth['tweets'] / res['seconds']:>11,.0f} {res['peak_rss_mb']:>12.0f} "
              f"{res['peak_pss_mb']:>12.0f}")
    if "project" not in results:
        return 0
    project = results["project"]
    for key in ("tweets", "included_tweets", "users", "api_errors", "lines", "blank_lines",
                "bad_lines"):
        assert project[key] == truth[key], (key, project[key], truth[key])
    if "before" in results:
        assert results["before"]["tweets"] == truth["tweets"]
    wall = project["seconds"]
    print()
    print(f"raw/twitter_v2 through Dagster: {wall:.1f} s for the whole command (the ingest "
          f"inside the step: {project['ingest_seconds']:.1f} s, {project['parse_cpu']:.1f} "
          f"CPU-s in the parse workers); counts equal the generator's truth")
    if "before" in results:
        print(f"project vs the reader it replaced: {results['before']['seconds'] / wall:.2f}x "
              f"faster, peak RSS {results['before']['peak_rss_mb']:.0f} -> "
              f"{project['peak_rss_mb']:.0f} MB")
    for floor in ("floor-all", "floor-parse", "floor-1"):
        if floor in results:
            print(f"project vs {floor + ':':<13} {wall / results[floor]['seconds']:.2f}x its "
                  f"time; ingest step alone "
                  f"{project['ingest_seconds'] / results[floor]['seconds']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
