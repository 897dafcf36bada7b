"""Benchmark: co-repost networks and coordinated groups against planted truth, through the
assets, side by side with coordination-network-toolkit 1.5.2.

    python benchmarks/coordination.py [--volumes 1000000,4000000] [--toolkit-max 4000000]

For each volume a day of reposts is generated: Zipf-popular posts reposted after a
random delay by accounts with heavy-tailed activity, plus planted groups (8-30 members) that
each repost 12 campaign targets (half their own posts, half popular posts) within 45 s of a
trigger, each member joining 85% of the time, while also reposting like everyone else.

Contenders, each in its own process, one after the other on the same files:
  assets          the reposts landed as one date of core.posts (not timed: ingestion's work),
                  then coordination/co_action_edges (co-repost window 60 s, the Poisson null
                  model with a Bonferroni correction) and coordination/groups as a launched run
                  executes them: dg.execute_job on the code location's job with its executor
                  (Dagster's multiprocess executor, every step in its own process); timed from
                  the launch to the end of the run, in a fresh interpreter;
  transform       the same edges and null model in process without Dagster, and the toolkit's
                  fixed-weight rule (weight >= 2 and >= 10) on our edges (--skip-transform);
  toolkit         coordination-network-toolkit 1.5.2 itself (SQLite; ``pip install -e
                  ".[bench]"``): compute_co_retweet_parallel(60 s, min weight 2, 2 threads),
                  components at weight >= 2 and >= 10.
Peak RSS is sampled over each contender's process tree. Precision and recall are per account
(detected members that are planted / planted members detected) and per pair (pairs in one
detected group that share a planted group).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time

from measure import in_child

DAY0 = 1_609_459_200  # 2021-01-01T00:00:00Z


def generate(path: str, reposts: int, seed: int) -> dict:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    n_accounts = max(20_000, reposts // 20)
    n_posts = max(10_000, reposts // 40)
    popularity = 1.0 / np.arange(1, n_posts + 1) ** 0.8
    popularity /= popularity.sum()
    post_created = rng.uniform(0, 86_400, n_posts)
    activity = rng.pareto(1.2, n_accounts) + 1
    activity /= activity.sum()

    groups, members = [], []
    taken = set()
    g = 0
    while len(taken) < n_accounts // 200 and g < 400:
        size = int(rng.integers(8, 31))
        chosen = [int(a) for a in rng.choice(n_accounts, size * 2, replace=False)
                  if int(a) not in taken][:size]
        taken.update(chosen)
        members.append(chosen)
        groups += [(a, g) for a in chosen]
        g += 1
    rows_actor, rows_target, rows_time = [], [], []
    for g, chosen in enumerate(members):
        own = [f"g{g}_{s}" for s in range(6)]
        popular = [f"p{int(i)}" for i in rng.choice(n_posts, 6, p=popularity, replace=False)]
        for target in own + popular:
            trigger = rng.uniform(0, 86_000)
            for a in chosen:
                if rng.random() < 0.85:
                    rows_actor.append(a)
                    rows_target.append(target)
                    rows_time.append(trigger + rng.uniform(0, 45))
    planted = len(rows_actor)
    # oversample the background: an account reposts a post at most once, duplicates go
    background = int((reposts - planted) * 1.4)
    actor = rng.choice(n_accounts, background, p=activity)
    post = rng.choice(n_posts, background, p=popularity)
    delay = rng.exponential(4 * 3600, background)
    frame = pl.concat([
        pl.DataFrame({"actor": np.array(rows_actor, dtype=np.int64), "target": rows_target,
                      "t": np.array(rows_time)}),
        pl.DataFrame({"actor": actor.astype(np.int64), "target": post.astype(np.int64),
                      "t": post_created[post] + delay})
          .with_columns(pl.format("p{}", "target").alias("target")),
    ]).unique(["actor", "target"], keep="first", maintain_order=True).head(reposts).with_columns(
        pl.format("u{}", "actor").alias("actor"),
        pl.from_epoch((pl.col("t") + DAY0) * 1e6, time_unit="us").alias("acted_at"),
        pl.lit("co_repost").alias("kind")).with_row_index("message")
    frame.select("kind", "actor", "target", "acted_at", "message").write_parquet(
        f"{path}/actions.parquet")
    pl.DataFrame(groups, schema=["actor", "group"], orient="row").with_columns(
        pl.format("u{}", "actor")).write_parquet(f"{path}/truth.parquet")
    return {"reposts": frame.height, "planted_reposts": planted, "groups": len(members),
            "planted_accounts": len(groups), "accounts": n_accounts}


def run_project(path: str) -> dict:
    import duckdb
    import polars as pl

    from botpipeline.transforms.coordination.co_action import CoActionConfig
    from botpipeline.transforms.coordination.groups import coordinated_groups, recovery
    from botpipeline.transforms.coordination.network import scored_network

    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET memory_limit='6GB'; SET temp_directory='{path}/spill'")
    actions = f"read_parquet('{path}/actions.parquet')"
    network = scored_network(con, actions, CoActionConfig(windows={"co_repost": 60}))
    scored = network.edges
    groups = coordinated_groups(scored)
    seconds = time.perf_counter() - started
    truth = pl.read_parquet(f"{path}/truth.parquet")
    result = {"edges": int(network.totals["edges"].sum()), "kept_edges": scored.height,
              "significant": int(scored["significant"].sum()),
              "project_seconds": seconds, **recovery(groups, truth)}
    for weight in (2, 10):
        fixed = coordinated_groups(scored.with_columns(
            (pl.col("weight") >= weight).alias("significant")))
        result[f"fixed_{weight}"] = recovery(fixed, truth)
    return result


DATE = "2021-01-01"


def land_posts(path: str) -> dict:
    """The generated reposts as one date of core.posts in a fresh lake (what ingestion would
    have written), with its own Dagster home: the input of the launched run."""
    import os

    import polars as pl

    _environment(path)
    from botpipeline.defs.resources import Warehouse
    from botpipeline.transforms.core_model import POST_COLUMNS, conform

    started = time.perf_counter()
    posts = pl.read_parquet(f"{path}/actions.parquet").select(
        pl.lit("twitter").alias("platform"), pl.col("message").cast(pl.String).alias("post_id"),
        pl.col("actor").alias("author_id"), pl.lit("repost").alias("kind"),
        pl.col("target").alias("reposted_id"), pl.col("acted_at").alias("created_at"))
    posts = conform(posts, POST_COLUMNS).with_columns(
        pl.lit(DATE).str.to_date().alias("collection_date"))
    warehouse = Warehouse()
    rows = warehouse.lake.write("core", "posts", DATE, posts)
    warehouse.refresh_catalog(force=True)
    os.makedirs(os.environ["DAGSTER_HOME"], exist_ok=True)
    return {"rows": rows, "land_seconds": time.perf_counter() - started}


def _environment(path: str) -> None:
    import os
    import shutil as sh
    from pathlib import Path

    home = Path(path) / "home"
    home.mkdir(exist_ok=True)
    sh.copy(Path(__file__).resolve().parent.parent / "botpipeline" / "dagster.yaml",
            home / "dagster.yaml")
    os.environ.update({"BOTPIPELINE_DATA_DIR": f"{path}/data", "DAGSTER_HOME": str(home),
                       "BOTPIPELINE_DUCKDB": f"{path}/data/botpipeline.duckdb"})


def run_assets(path: str) -> dict:
    """coordination/co_action_edges and coordination/groups for the date as a launched run
    executes them: ``dg.execute_job`` with the code location's executor (every step in its own
    process, as from the UI), co-repost window 60 s, the date alone (no look-back)."""
    import dagster as dg
    import polars as pl

    _environment(path)
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    from botpipeline.defs.resources import Warehouse
    from botpipeline.transforms.coordination.groups import recovery

    selection = [dg.AssetKey(["coordination", "co_action_edges"]),
                 dg.AssetKey(["coordination", "groups"])]
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        with dg.execute_job(
                # The code location's pointer, as a run launched from the UI gets it.
                ReconstructableRepository.for_module("botpipeline.definitions", "defs")
                .get_reconstructable_job("daily_pipeline"), instance=instance,
                asset_selection=selection, tags={"dagster/partition": DATE},
                run_config={"ops": {"coordination__co_action_edges": {"config": {
                    "windows": {"co_repost": 60}, "lookback_days": 0}}}}) as result:
            assert result.success, "the launched run failed"
            steps = {e.step_key: e.event_specific_data.duration_ms / 1000
                     for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    seconds = time.perf_counter() - started
    with Warehouse().get_connection() as con:
        groups = con.sql(f"SELECT group_id, actor FROM coordination.groups "
                         f"WHERE collection_date = DATE '{DATE}'").pl()
        edges = con.sql(f"SELECT count(*), count(*) FILTER (WHERE significant) FROM "
                        f"coordination.co_action_edges WHERE collection_date = DATE '{DATE}'"
                        ).fetchall()[0]
    truth = pl.read_parquet(f"{path}/truth.parquet")
    return {"assets_seconds": seconds, "step_seconds": steps, "kept_edges": edges[0],
            "significant": edges[1], **recovery(groups, truth)}


def run_toolkit(path: str) -> dict:
    import networkx as nx
    import polars as pl
    from coordination_network_toolkit.compute_networks import compute_co_retweet_parallel
    from coordination_network_toolkit.graph import get_edge_rows
    from coordination_network_toolkit.preprocess import preprocess_data

    from botpipeline.transforms.coordination.groups import recovery

    actions = pl.read_parquet(f"{path}/actions.parquet")
    db = f"{path}/toolkit.db"
    started = time.perf_counter()
    preprocess_data(db, ((str(m), a, a, t, None, "", ts.timestamp(), [])
                         for m, a, t, ts in actions.select("message", "actor", "target",
                                                           "acted_at").iter_rows()))
    compute_co_retweet_parallel(db, 60, n_threads=2, min_edge_weight=2)
    rows = list(get_edge_rows(db, "co_retweet"))
    seconds = time.perf_counter() - started
    truth = pl.read_parquet(f"{path}/truth.parquet")
    result = {"toolkit_seconds": seconds, "toolkit_edges": len(rows)}
    for weight in (2, 10):
        graph = nx.Graph((u, v) for u, v, w, _ in rows if w >= weight)
        groups = pl.DataFrame(
            [(min(c), a) for c in nx.connected_components(graph) if len(c) >= 3 for a in c],
            schema=["group_id", "actor"], orient="row")
        result[f"toolkit_{weight}"] = recovery(groups, truth)
    return result


def row(label: str, r: dict) -> str:
    return (f"    {label:28s} accounts P {r['account_precision']:.3f} R {r['account_recall']:.3f}"
            f"   pairs P {r['pair_precision']:.3f} R {r['pair_recall']:.3f}   "
            f"groups {r['detected_groups']}/{r['planted_groups']}")


def _ratio(toolkit: dict, seconds: float) -> str:
    return f"{toolkit['toolkit_seconds'] / seconds:.2f}x"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volumes", default="1000000,4000000")
    parser.add_argument("--toolkit-max", type=int, default=4_000_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--skip-transform", action="store_true",
                        help="leave out the transform-only (in-process, no Dagster) line")
    args = parser.parse_args(argv)
    for volume in (int(v) for v in args.volumes.split(",")):
        root = tempfile.mkdtemp(prefix="bench-coord-")
        try:
            made = in_child(generate, root, volume, args.seed)
            print(f"\n{made['reposts']:,} reposts ({made['planted_reposts']:,} planted) by "
                  f"{made['accounts']:,} accounts; {made['groups']} planted groups, "
                  f"{made['planted_accounts']:,} members", flush=True)
            landed = in_child(land_posts, root)
            print(f"  core.posts for {DATE}: {landed['rows']:,} rows landed in "
                  f"{landed['land_seconds']:.1f}s (ingestion's work, not timed below)", flush=True)
            assets = in_child(run_assets, root)
            steps = ", ".join(f"{k} {v:.1f}s" for k, v in assets["step_seconds"].items())
            print(f"  botpipeline through the assets (launched run, multiprocess executor): "
                  f"{assets['assets_seconds']:.1f}s wall ({steps}), peak RSS "
                  f"{assets['peak_rss_mb']:,.0f} MB (run process tree), "
                  f"{assets['kept_edges']:,} edges of weight >= 2, "
                  f"{assets['significant']:,} significant")
            print(row("assets (null model)", assets), flush=True)
            project = None
            if not args.skip_transform:
                project = in_child(run_project, root)
                print(f"  transform alone (in process, no Dagster): "
                      f"{project['project_seconds']:.1f}s, peak RSS "
                      f"{project['peak_rss_mb']:,.0f} MB")
                print(row("fixed weight >= 2", project["fixed_2"]))
                print(row("fixed weight >= 10", project["fixed_10"]), flush=True)
            if volume <= args.toolkit_max:
                try:
                    toolkit = in_child(run_toolkit, root)
                except RuntimeError as exc:
                    print(f"  toolkit: failed ({exc}); pip install -e '.[bench]'")
                    continue
                print(f"  coordination-network-toolkit 1.5.2: {toolkit['toolkit_seconds']:.1f}s, "
                      f"peak RSS {toolkit['peak_rss_mb']:,.0f} MB, "
                      f"{toolkit['toolkit_edges']:,} edges")
                print(row("toolkit weight >= 2", toolkit["toolkit_2"]))
                print(row("toolkit weight >= 10", toolkit["toolkit_10"]))
                print(f"  => assets {_ratio(toolkit, assets['assets_seconds'])} faster than the "
                      f"toolkit" + (f" (transform alone {_ratio(toolkit, project['project_seconds'])})"
                                    if project else "")
                      + f"; peak RSS {assets['peak_rss_mb']:,.0f} vs "
                      f"{toolkit['peak_rss_mb']:,.0f} MB; groups P {assets['account_precision']:.3f}"
                      f" R {assets['account_recall']:.3f}", flush=True)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
