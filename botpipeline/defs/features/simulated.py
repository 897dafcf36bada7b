"""features/simulated_account_features: the feature frame of one OASIS run (no server).

The run is one partition, measured at the end of its last simulated day; ``posts_24h`` is the
account's busiest 24 h of simulated time. See transforms/oasis_scoring.py for what differs from
the daily frame and which inputs OASIS cannot supply.
"""

import dagster as dg
import polars as pl

from botpipeline.defs.metadata import markdown_preview
from botpipeline.defs.partitions import oasis_runs
from botpipeline.defs.resources import Warehouse
from botpipeline.transforms.oasis_scoring import reference_date, run_features

KEY = ["features", "simulated_account_features"]


def run_frame(con, table: str, run_id: str) -> pl.DataFrame:
    return con.sql(f"SELECT * EXCLUDE (run_id) FROM {table} WHERE run_id = ?",
                   params=[run_id]).pl()


@dg.asset(key=KEY, group_name="features", partitions_def=oasis_runs,
          deps=[dg.AssetKey(["core", "simulated_posts"]),
                dg.AssetKey(["core", "simulated_accounts"])],
          kinds={"duckdb", "parquet"}, description=__doc__)
def simulated_account_features(context: dg.AssetExecutionContext,
                               warehouse: Warehouse) -> dg.MaterializeResult:
    run_id = context.partition_key
    with warehouse.get_connection() as con:
        posts = run_frame(con, "core.simulated_posts", run_id)
        accounts = run_frame(con, "core.simulated_accounts", run_id)
    frame = run_features(posts, accounts)
    rows = warehouse.lake.write("features", "simulated_account_features", run_id,
                                frame.with_columns(run_id=pl.lit(run_id)),
                                partition_column="run_id", order_by="account_id")
    warehouse.refresh_catalog(context.log)
    missing = {c: int(frame[c].null_count()) for c in
               ("account_age_days", "followers_count", "like_count", "verified",
                "default_profile_image", "inflammatory_share", "username", "description")
               if c in frame.columns and frame[c].null_count()}
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows, "run_id": run_id,
        "accounts_in_run": accounts.height,
        "accounts_without_posts": accounts.height - rows,
        "measured_at": f"end of {reference_date(posts)} (the run's last simulated day)",
        "posts_24h_rule": "busiest 24 h of simulated time",
        "null_inputs": missing or "none",
        "preview": markdown_preview(frame.sort("posts_in_window", descending=True).select(
            "account_id", "username", "posts_in_window", "posts_24h", "comments", "reposts",
            "followers_count", "following_count", "repetitive_share"))})
