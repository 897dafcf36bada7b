"""Benchmark: conversation reconstruction, side by side with the seed's approach.

    python benchmarks/conversations.py [--sizes 1000000 10000000] [--seed-subset 20000]

1. For each size, generated posts with known trees (deep chains, branching, replies across
   days, missing parents) are written as 7 daily partitions of core.posts; the project's
   ``conversations`` asset then materializes each date with a 7-day look-back (the last
   date's window holds every post). Time and peak RSS (sampled over the process tree) of the
   whole 7-date run, and per million posts, show how cost grows.
2. On a subset, the Open Assistant seed's approach (for each root, filter the whole frame for
   its replies, recursively, in pandas) against the project's reconstruction of the same
   posts; both results are checked against the generator's truth.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from measure import in_child

DAYS = 7


def write_input(root: str, posts: int, seed: int) -> dict:
    from botpipeline.samples.conversations import TreeSpec, generate_trees, partitions
    from botpipeline.storage.lake import ParquetLake

    frame, truth = generate_trees(TreeSpec(posts=posts, days=DAYS, seed=seed))
    lake = ParquetLake(Path(root) / "lake")
    dates = []
    for key, part in sorted(partitions(frame).items()):
        lake.write("core", "posts", key, part)
        dates.append(key)
    truth.write_parquet(Path(root) / "truth.parquet")
    return {"dates": dates, "posts": frame.height}


def run_project(root: str, dates: list[str]) -> dict:
    import dagster as dg

    from botpipeline.defs.conversations.reconstruction import daily_conversations
    from botpipeline.defs.resources import Warehouse

    warehouse = Warehouse(data_dir=root, analysts_database=str(Path(root) / "a.duckdb"),
                          memory_limit="3GB")
    per_date = {}
    with dg.instance_for_test() as instance:
        for key in dates:
            started = time.perf_counter()
            result = dg.materialize([daily_conversations], partition_key=key,
                                    resources={"warehouse": warehouse}, instance=instance)
            assert result.success
            per_date[key] = time.perf_counter() - started
    with warehouse.get_connection() as con:
        wrong = con.execute(f"""
            SELECT count(*) FROM read_parquet('{root}/truth.parquet') t
            LEFT JOIN conversations.posts c USING (post_id)
            WHERE c.root_id IS DISTINCT FROM t.root_id OR c.depth IS DISTINCT FROM t.depth
        """).fetchall()[0][0]
    return {"per_date": per_date, "wrong": wrong}


def seed_approach(posts) -> dict:
    """The seed's way: for each root, filter the whole frame for its replies, recursively."""
    roots = posts[posts["parent_id"].isna()]
    found = {}

    def walk(post_id, root_id, depth):
        found[post_id] = (root_id, depth)
        for child in posts.loc[posts["parent_id"] == post_id, "post_id"]:
            walk(child, root_id, depth + 1)

    sys.setrecursionlimit(100_000)
    for root in roots["post_id"]:
        walk(root, root, 0)
    return found


def run_seed_subset(size: int, seed: int) -> dict:
    from botpipeline.samples.conversations import TreeSpec, generate_trees

    frame, truth = generate_trees(TreeSpec(posts=size, days=DAYS, seed=seed, missing_share=0,
                                           deep_chains=1, deep_chain_length=200))
    posts = frame.select("post_id", "parent_id").to_pandas()
    started = time.perf_counter()
    found = seed_approach(posts)
    seconds = time.perf_counter() - started
    correct = sum(found.get(p) == (r, d) for p, r, d in truth.iter_rows())
    return {"seed_seconds": seconds, "seed_correct": correct, "posts": frame.height}


def run_project_subset(size: int, seed: int) -> dict:
    import duckdb

    from botpipeline.samples.conversations import TreeSpec, generate_trees
    from botpipeline.transforms.conversations import reconstruct

    frame, truth = generate_trees(TreeSpec(posts=size, days=DAYS, seed=seed, missing_share=0,
                                           deep_chains=1, deep_chain_length=200))
    con = duckdb.connect()
    con.register("posts", frame)
    con.register("truth", truth)
    started = time.perf_counter()
    reconstruct(con, "SELECT post_id, parent_id, author_id, created_at, conversation_id, "
                     "source_step, true AS is_current FROM posts")
    seconds = time.perf_counter() - started
    correct = con.execute("SELECT count(*) FROM truth t JOIN conv_posts c USING (post_id) "
                          "WHERE c.root_id = t.root_id AND c.depth = t.depth").fetchall()[0][0]
    return {"project_seconds": seconds, "project_correct": correct}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--seed-subset", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)

    print(f"seed approach vs project on {args.seed_subset:,} posts ...", flush=True)
    seed = in_child(run_seed_subset, args.seed_subset, args.seed)
    project = in_child(run_project_subset, args.seed_subset, args.seed)
    print(f"  seed:    {seed['seed_seconds']:8.2f}s  correct {seed['seed_correct']:,} of "
          f"{seed['posts']:,}  peak RSS {seed['peak_rss_mb']:.0f} MB")
    print(f"  project: {project['project_seconds']:8.2f}s  correct "
          f"{project['project_correct']:,} of {seed['posts']:,}  peak RSS "
          f"{project['peak_rss_mb']:.0f} MB")
    print(f"  project is {seed['seed_seconds'] / project['project_seconds']:,.0f}x faster")

    rows = []
    for size in args.sizes:
        root = tempfile.mkdtemp(prefix=f"bench-conv-{size}-")
        try:
            print(f"{size:,} posts over {DAYS} daily partitions: generating ...", flush=True)
            made = in_child(write_input, root, size, args.seed)
            print(f"  reconstructing {len(made['dates'])} dates, 7-day look-back ...",
                  flush=True)
            run = in_child(run_project, root, made["dates"])
            rows.append((made["posts"], run))
            print(f"  {run['seconds']:.1f}s, peak RSS {run['peak_rss_mb']:.0f} MB, "
                  f"wrong roots/depths: {run['wrong']}, last date "
                  f"{list(run['per_date'].values())[-1]:.1f}s", flush=True)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print(f"{'posts':>12} {'seconds':>9} {'s per M posts':>14} {'peak RSS MB':>12} {'wrong':>6}")
    for posts, run in rows:
        print(f"{posts:>12,} {run['seconds']:>9.1f} {run['seconds'] / posts * 1e6:>14.2f} "
              f"{run['peak_rss_mb']:>12.0f} {run['wrong']:>6}")
    if len(rows) > 1:
        (small, a), (large, b) = rows[0], rows[-1]
        print(f"\ngrowth: {large / small:.0f}x the posts took {b['seconds'] / a['seconds']:.1f}x "
              f"the time (linear would be {large / small:.0f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
