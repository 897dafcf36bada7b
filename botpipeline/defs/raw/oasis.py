"""raw/oasis_posts: one OASIS simulation run (a dynamic partition per run id).

One materialization reads ``incoming/oasis/<run_id>/`` and replaces the run's partition of
raw.oasis_posts, raw.oasis_personas, raw.oasis_follows and raw.oasis_quarantine. The run's
files are found by content (readers/oasis.py); raw.oasis_personas holds one row per user with
the persona the dataset's ``persona_id`` gives it and the persona row matched to it, and the
rule used (transforms/oasis_personas.py). Two WARN checks: ``persona_rows_agree_with_dataset``
(row order, matched rows and each user's posts agree on the persona) and
``persona_rows_resolved`` (every labelled user has its own persona row).
"""

from datetime import datetime, timedelta

import dagster as dg
import polars as pl

from botpipeline.defs.partitions import oasis_runs
from botpipeline.defs.resources import Warehouse
from botpipeline.defs.metadata import markdown_preview
from botpipeline.readers.oasis import OasisRunError, StepClock, read_run

SOURCE = "oasis"
KEY = ["raw", "oasis_posts"]
CHECK_AGREE = "persona_rows_agree_with_dataset"
CHECK_RESOLVED = "persona_rows_resolved"


class OasisClockConfig(dg.Config):
    """How simulation steps become timestamps (see readers/oasis.py: StepClock), and which
    file plays which role where the folder alone is ambiguous."""

    start: str = "2025-01-01T00:00:00"
    step_seconds: float = 3600.0
    files: dict[str, str] = {}
    """Role -> file name in the run folder (dataset, personas, edges, manifest,
    post_usernames); roles left out are found by content."""

    def clock(self) -> StepClock:
        return StepClock(datetime.fromisoformat(self.start), timedelta(seconds=self.step_seconds))


@dg.asset(key=KEY, group_name="raw", partitions_def=oasis_runs,
          kinds={"duckdb", "parquet", "polars"}, description=__doc__,
          check_specs=[
              dg.AssetCheckSpec(CHECK_AGREE, asset=KEY, description=(
                  "The persona rows agree with the dataset's persona_id: row order (row i = "
                  "user i), the rows matched by username / id, and each user's own posts.")),
              dg.AssetCheckSpec(CHECK_RESOLVED, asset=KEY, description=(
                  "Every user with a persona label has its own persona row (no label shared "
                  "by several rows that the files cannot tell apart)."))])
def raw_oasis_posts(context: dg.AssetExecutionContext, config: OasisClockConfig,
                    warehouse: Warehouse):
    run_id = context.partition_key
    try:
        run = read_run(warehouse.incoming(SOURCE) / run_id, config.clock(), config.files)
    except OasisRunError as exc:
        raise dg.Failure(str(exc)) from exc
    part = {"partition_column": "run_id"}
    tag = pl.lit(run_id).alias("run_id")
    with warehouse.transaction(context) as lake:
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
    report = run.assignment.report
    order = report["row_order_disagreements"]
    yield dg.MaterializeResult(metadata={
        "dagster/row_count": rows["oasis_posts"],
        "run_id": run_id, "files": run.files,
        "rows_by_table": {f"raw.{t}": n for t, n in rows.items()},
        "roots": posts.filter(pl.col("parent_id").is_null()).height,
        "replies": posts.filter(pl.col("parent_id").is_not_null()).height,
        "repost_and_quote_roots": posts.filter(
            pl.col("parent_id").is_null() & (pl.col("thread_id") != pl.col("post_id"))).height,
        "users": run.personas.height, "persona_rows": report["persona_rows"],
        "follow_edges": run.follows.height,
        "steps": posts["step"].n_unique(),
        "quarantined_lines": run.quarantine.height,
        "empty_texts": posts.filter(pl.col("text").fill_null("").str.strip_chars() == "").height,
        "replies_with_earlier_step_than_parent":
            reply_steps.filter(pl.col("step") < pl.col("parent_step")).height,
        "clock": f"start {config.start}, {config.step_seconds:g} s per step",
        "ignored_files": run.ignored_files or "none",
        "persona_rule": report["rule"],
        "persona_assignment": report,
        "users_by_persona": report["users_by_persona"],
        "row_order_disagreeing_users": order["users"],
        "row_order_disagreeing_posts": order["posts"],
        "ambiguous_users": report["ambiguous_users"],
        "personas_preview": markdown_preview(run.personas.select(
            "user_id", "persona", "persona_match", "persona_row", "row_primary_label",
            "username"), rows=20),
    })
    yield dg.AssetCheckResult(
        check_name=CHECK_AGREE, passed=run.assignment.agrees,
        severity=dg.AssetCheckSeverity.WARN,
        description=(f"rule {report['rule']}: " + (
            "row order and matched rows agree with the dataset's persona_id"
            if run.assignment.agrees else
            f"{order['users']} users ({order['posts']} posts) disagree with row order, "
            f"{report['matched_row_label_disagreements']} matched rows carry another label, "
            f"{report['users_with_several_persona_ids']} users post under several persona "
            f"ids; labels follow the dataset's persona_id")),
        metadata={"rule": report["rule"],
                  "row_order_disagreeing_users": order["users"],
                  "row_order_disagreeing_posts": order["posts"],
                  "users_compared": order["users_compared"],
                  "matched_row_label_disagreements": report["matched_row_label_disagreements"],
                  "users_with_several_persona_ids": report["users_with_several_persona_ids"],
                  "users_by_match": report["users_by_match"]})
    yield dg.AssetCheckResult(
        check_name=CHECK_RESOLVED, passed=run.assignment.resolved,
        severity=dg.AssetCheckSeverity.WARN,
        description=(f"rule {report['rule']}: " + (
            "every labelled user has its own persona row" if run.assignment.resolved else
            "row order was not verified (the dataset carries no persona_id)"
            if report["rule"] == "row_order_unverified" else
            f"{report['ambiguous_users']} users keep the dataset's label but no persona row: "
            f"the files cannot tell rows of the same label apart")),
        metadata={"rule": report["rule"], "ambiguous_users": report["ambiguous_users"],
                  "ambiguous_labels": report["ambiguous_labels"] or "none",
                  "unmatched_persona_rows": report["unmatched_persona_rows"],
                  "users_without_label": report["users_without_label"]})
