"""raw/oasis_posts: one OASIS simulation run (a dynamic partition per run id).

One materialization reads ``incoming/oasis/<run_id>/`` and replaces the run's partition of
raw.oasis_posts, raw.oasis_personas, raw.oasis_follows and raw.oasis_quarantine.
"""

from datetime import datetime, timedelta

import dagster as dg
import polars as pl

from botpipeline.defs.partitions import oasis_runs
from botpipeline.defs.resources import Warehouse
from botpipeline.readers.oasis import StepClock, read_run

SOURCE = "oasis"


class OasisClockConfig(dg.Config):
    """How simulation steps become timestamps (see readers/oasis.py: StepClock)."""

    start: str = "2025-01-01T00:00:00"
    step_seconds: float = 3600.0

    def clock(self) -> StepClock:
        return StepClock(datetime.fromisoformat(self.start), timedelta(seconds=self.step_seconds))


@dg.asset(key=["raw", "oasis_posts"], group_name="raw", partitions_def=oasis_runs,
          kinds={"duckdb", "parquet", "polars"}, description=__doc__)
def raw_oasis_posts(context: dg.AssetExecutionContext, config: OasisClockConfig,
                    warehouse: Warehouse) -> dg.MaterializeResult:
    run_id = context.partition_key
    run = read_run(warehouse.incoming(SOURCE) / run_id, config.clock())
    lake, part = warehouse.lake, {"partition_column": "run_id"}
    tag = pl.lit(run_id).alias("run_id")
    rows = {
        "oasis_posts": lake.write("raw", "oasis_posts", run_id,
                                  run.posts.with_columns(tag), order_by="source_line", **part),
        "oasis_personas": lake.write("raw", "oasis_personas", run_id,
                                     run.personas.with_columns(tag), **part),
        "oasis_follows": lake.write("raw", "oasis_follows", run_id,
                                    run.follows.with_columns(tag), **part),
        "oasis_quarantine": lake.write("raw", "oasis_quarantine", run_id,
                                       run.quarantine.with_columns(tag), **part),
    }
    posts = run.posts
    reply_steps = posts.join(posts.select(pl.col("post_id").alias("parent_id"),
                                          pl.col("step").alias("parent_step")),
                             on="parent_id", how="inner")
    warehouse.refresh_catalog(context.log)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows["oasis_posts"],
        "run_id": run_id, "files": run.files,
        "rows_by_table": {f"raw.{t}": n for t, n in rows.items()},
        "roots": posts.filter(pl.col("parent_id").is_null()).height,
        "replies": posts.filter(pl.col("parent_id").is_not_null()).height,
        "users": run.personas.height, "follow_edges": run.follows.height,
        "steps": posts["step"].n_unique(),
        "quarantined_lines": run.quarantine.height,
        "empty_texts": posts.filter(pl.col("text").fill_null("").str.strip_chars() == "").height,
        "replies_with_earlier_step_than_parent":
            reply_steps.filter(pl.col("step") < pl.col("parent_step")).height,
        "clock": f"start {config.start}, {config.step_seconds:g} s per step",
    })
