"""sharkey/plan: what publishing an OASIS run will create, computed without calling anything.

This is the dry run: materialize it alone to see the accounts (with their Sharkey usernames),
the notes in posting order, follows, reactions and renotes, what was quarantined, and the
least time the server's rate limits allow for the publish. The publish assets read this plan,
so a re-run publishes exactly the same objects.
"""

import dagster as dg
import polars as pl

from botpipeline.clients.sharkey.limits import SHARKEY_LIMITS, lower_bound_seconds
from botpipeline.defs.metadata import markdown_preview
from botpipeline.defs.partitions import oasis_runs
from botpipeline.defs.resources import Warehouse
from botpipeline.transforms.sharkey.plan import Plan, PlanSettings, plan_publication

PLAN_TABLES = ("accounts", "notes", "follows", "reactions", "quarantine")
SEED_HOURS = "5–6 hours (seed 000's sequential estimate)"


class SharkeyPlanConfig(dg.Config):
    seed: int = 314159
    """Seed of the reaction and renote draws."""
    username_prefix: str = ""
    """Prepended to every username (publish the same run twice on one server)."""
    empty_text: str = "…"
    """The text of a note whose dataset text is blank (Sharkey refuses blank notes)."""
    max_note_length: int = 3000
    """Longer texts are split into a self-reply chain (the server's maxNoteTextLength)."""
    reactions_per_account: int = 5
    viral_posts: int = 20
    """Roots by viral personas (most replied first) that get renoted."""
    renotes_per_post: int = 3

    def settings(self) -> PlanSettings:
        return PlanSettings(**self.model_dump())


def read_plan(con, run_id: str) -> Plan:
    frames = {name: con.sql(f"SELECT * EXCLUDE (run_id) FROM sharkey.plan_{name} "
                            f"WHERE run_id = ?", params=[run_id]).pl()
              for name in PLAN_TABLES}
    return Plan(**frames)


def _run_frame(con, table: str, run_id: str) -> pl.DataFrame:
    return con.sql(f"SELECT * EXCLUDE (run_id) FROM raw.{table} WHERE run_id = ?",
                   params=[run_id]).pl()


@dg.asset(key=["sharkey", "plan"], group_name="sharkey", partitions_def=oasis_runs,
          deps=[dg.AssetKey(["raw", "oasis_posts"])], kinds={"polars", "parquet"},
          description=__doc__)
def sharkey_plan(context: dg.AssetExecutionContext, config: SharkeyPlanConfig,
                 warehouse: Warehouse) -> dg.MaterializeResult:
    run_id = context.partition_key
    with warehouse.get_connection() as con:
        plan = plan_publication(_run_frame(con, "oasis_posts", run_id),
                                _run_frame(con, "oasis_personas", run_id),
                                _run_frame(con, "oasis_follows", run_id), config.settings())
    tag = pl.lit(run_id).alias("run_id")
    with warehouse.transaction(context) as lake:
        for name in PLAN_TABLES:
            lake.write("sharkey", f"plan_{name}", run_id,
                       getattr(plan, name).with_columns(tag), partition_column="run_id")
    warehouse.refresh_catalog(context.log)
    calls = plan.calls()
    bound = lower_bound_seconds(calls, limits=SHARKEY_LIMITS)
    by_endpoint: dict[str, int] = {}
    for (_, endpoint), n in calls.items():
        by_endpoint[endpoint] = by_endpoint.get(endpoint, 0) + n
    notes = plan.notes
    return dg.MaterializeResult(metadata={
        "dagster/row_count": notes.height,
        "accounts": plan.accounts.height,
        "notes_by_kind": dict(notes.group_by("kind").len().iter_rows()),
        "text_rules": dict(notes.group_by("text_rule").len().iter_rows()),
        "username_rules": dict(plan.accounts.group_by("username_rule").len().iter_rows()),
        "follows": plan.follows.height, "reactions": plan.reactions.height,
        "quarantined": plan.quarantine.height,
        "calls_by_endpoint": by_endpoint, "calls": sum(calls.values()),
        "lower_bound_seconds_at_sharkey_limits": round(bound["seconds"], 1),
        "seed_estimate": SEED_HOURS,
        "accounts_preview": markdown_preview(plan.accounts.select(
            "user_id", "username", "display_name", "persona", "username_rule")),
        "first_notes": markdown_preview(notes.select(
            "order", "note_key", "user_id", "kind", "step", "effective_step", "text")),
    })
