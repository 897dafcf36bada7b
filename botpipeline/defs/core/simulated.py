"""core/simulated_posts and core/simulated_accounts: OASIS runs in the core model."""

import dagster as dg
import polars as pl

from botpipeline.defs.partitions import oasis_runs
from botpipeline.defs.resources import Warehouse
from botpipeline.transforms.core_model import oasis_accounts, oasis_posts


def _run_frame(con, table: str, run_id: str):
    return con.sql(f"SELECT * EXCLUDE (run_id) FROM raw.{table} WHERE run_id = ?",
                   params=[run_id]).pl()


@dg.asset(key=["core", "simulated_posts"], deps=[dg.AssetKey(["raw", "oasis_posts"])],
          group_name="core", partitions_def=oasis_runs, kinds={"duckdb", "parquet"},
          description="OASIS posts in the core post model, one partition per run.")
def core_simulated_posts(context: dg.AssetExecutionContext,
                         warehouse: Warehouse) -> dg.MaterializeResult:
    run_id = context.partition_key
    with warehouse.get_connection() as con:
        posts = oasis_posts(_run_frame(con, "oasis_posts", run_id),
                            _run_frame(con, "oasis_personas", run_id))
    rows = warehouse.lake.write("core", "simulated_posts", run_id,
                                posts.with_columns(run_id=pl.lit(run_id)),
                                partition_column="run_id", order_by="post_id")
    kinds = dict(posts.group_by("kind").len().iter_rows())
    return dg.MaterializeResult(metadata={"dagster/row_count": rows, "posts_by_kind": kinds,
                                          "dagster/table_name": "core.simulated_posts"})


@dg.asset(key=["core", "simulated_accounts"], deps=[dg.AssetKey(["raw", "oasis_posts"])],
          group_name="core", partitions_def=oasis_runs, kinds={"duckdb", "parquet"},
          description="OASIS users as core accounts, one partition per run: the matched "
                      "persona row's username and description, follower / following counts "
                      "from the run's edges, post_count from its posts.")
def core_simulated_accounts(context: dg.AssetExecutionContext,
                            warehouse: Warehouse) -> dg.MaterializeResult:
    run_id = context.partition_key
    with warehouse.get_connection() as con:
        personas = _run_frame(con, "oasis_personas", run_id)
        follows = _run_frame(con, "oasis_follows", run_id)
        posts = con.sql("SELECT user_id, created_at FROM raw.oasis_posts WHERE run_id = ?",
                        params=[run_id]).pl()
    accounts = oasis_accounts(personas, posts["created_at"].max(), follows, posts)

    rows = warehouse.lake.write("core", "simulated_accounts", run_id,
                                accounts.with_columns(run_id=pl.lit(run_id)),
                                partition_column="run_id", order_by="account_id")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows, "dagster/table_name": "core.simulated_accounts",
        "accounts_without_username": int(accounts["username"].is_null().sum()),
        "followers_from": "the run's follow edges (distinct, no self-follows)"})
