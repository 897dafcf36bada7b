"""coordination/co_action_edges and coordination/groups: co-action networks and the groups
they reveal.

``coordination/co_action_edges`` holds, per collection date (pooling ``lookback_days`` earlier
dates), every pair of accounts that co-acted at least once, per kind (co-repost, co-reply,
co-link, co-post, co-similar), with its weight, timing, example targets and the Poisson null
model's expectation, p-value and verdict (transforms/coordination/null_model.py).
``coordination/groups`` holds the connected components of the significant edges and, per
group, the evidence: the kinds, the shared targets and when the co-actions happened.
"""

import dagster as dg
import polars as pl

from botpipeline.defs.conversations.reconstruction import has_table
from botpipeline.defs.coordination.truth import planted_coordination
from botpipeline.defs.metadata import markdown_preview, png_metadata
from botpipeline.defs.partitions import (checked_lookback, daily_partitions, lookback_mapping,
                                         lookback_sql)
from botpipeline.defs.resources import Warehouse
from botpipeline.plots import coordination_network
from botpipeline.transforms.coordination.co_action import (CoActionConfig, actions_sql,
                                                           similar_actions_sql)
from botpipeline.transforms.coordination.groups import coordinated_groups, recovery
from botpipeline.transforms.coordination.network import scored_network
from botpipeline.transforms.coordination.null_model import NullModelConfig

EDGES = dg.AssetKey(["coordination", "co_action_edges"])
DEFAULT = CoActionConfig()


LOOKBACK_DAYS = 2  # the lineage's window over posts and engagements; lookback_days <= it


class CoActionNetworkConfig(dg.Config):
    lookback_days: int = LOOKBACK_DAYS
    """Earlier collection dates pooled with the partition's (at most 2)."""
    windows: dict[str, int] = dict(DEFAULT.windows)
    """Seconds per kind (co_repost, co_reply, co_link, co_post, co_similar); leave a kind out
    to skip it."""
    min_text_chars: int = DEFAULT.min_text_chars
    similar_threshold: float = DEFAULT.similar_threshold
    alpha: float = NullModelConfig.alpha
    min_weight: int = NullModelConfig.min_weight
    keep_min_weight: int = 2
    """Edges lighter than this (single coincidences) are counted in the metadata and the null
    model but not stored."""


@dg.asset(key=EDGES.path, group_name="coordination",
          deps=[dg.AssetDep(dg.AssetKey(["core", "posts"]),
                            partition_mapping=lookback_mapping(LOOKBACK_DAYS)),
                dg.AssetDep(dg.AssetKey(["raw", "engagements"]),
                            partition_mapping=lookback_mapping(LOOKBACK_DAYS))],
          partitions_def=daily_partitions, kinds={"duckdb", "parquet", "scipy"},
          description=__doc__)
def co_action_edges(context: dg.AssetExecutionContext, config: CoActionNetworkConfig,
                    warehouse: Warehouse) -> dg.MaterializeResult:
    key = context.partition_key
    window = lookback_sql(key, checked_lookback(config.lookback_days, LOOKBACK_DAYS,
                                                "coordination/co_action_edges"))
    settings = CoActionConfig(windows=dict(config.windows), min_text_chars=config.min_text_chars,
                              similar_threshold=config.similar_threshold)
    with warehouse.get_connection() as con:
        con.execute(f"CREATE TEMP VIEW posts AS SELECT * FROM core.posts WHERE {window}")
        engagements = None
        if has_table(con, "raw", "engagements"):
            con.execute(f"CREATE TEMP VIEW engagements AS SELECT * FROM raw.engagements "
                        f"WHERE {window}")
            engagements = "engagements"
        body = actions_sql("posts", engagements, settings)
        if "co_similar" in settings.windows:
            body += f" UNION ALL ({similar_actions_sql('posts', settings)})"
        con.execute(f"CREATE TEMP TABLE actions AS {body}")
        context.log.info("actions per kind: " + ", ".join(
            f"{k} {n:,}" for k, n in con.sql("SELECT kind, count(*) FROM actions GROUP BY 1 "
                                             "ORDER BY 1").fetchall()))
        network = scored_network(con, "actions", settings,
                                 NullModelConfig(alpha=config.alpha, min_weight=config.min_weight),
                                 keep_min_weight=config.keep_min_weight, log=context.log)
    scored, counts = network.edges, network.counts
    rows = warehouse.lake.write("coordination", "co_action_edges", key, scored.with_columns(
        pl.lit(key).str.to_date().alias("collection_date")).sort("kind", "actor_a", "actor_b"))
    warehouse.refresh_catalog(context.log)
    per_kind = (scored.group_by("kind").agg(
        pl.len().alias("stored_edges"), pl.col("significant").sum().alias("significant"),
        pl.col("weight").max().alias("max_weight"),
        pl.col("weight").filter(pl.col("significant")).min().alias("min_significant_weight"))
        .join(counts.group_by("kind").agg(pl.len().alias("accounts"),
                                          pl.col("actions").sum().alias("actions")),
              on="kind", how="full", coalesce=True)
        .join(network.totals.rename({"edges": "all_edges"}), on="kind", how="full",
              coalesce=True).sort("kind"))
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows, "significant_edges": int(scored["significant"].sum()),
        "per_kind": markdown_preview(per_kind), "lookback_days": config.lookback_days})


class GroupsConfig(dg.Config):
    min_group_size: int = 3


@dg.asset(key=["coordination", "groups"], group_name="coordination", deps=[EDGES],
          partitions_def=daily_partitions, kinds={"duckdb", "parquet", "scipy"},
          description=__doc__)
def coordination_groups(context: dg.AssetExecutionContext, config: GroupsConfig,
                        warehouse: Warehouse) -> dg.MaterializeResult:
    key = context.partition_key
    with warehouse.transaction(context) as lake, warehouse.get_connection() as con:
        edges = con.sql(f"SELECT * FROM coordination.co_action_edges "
                        f"WHERE collection_date = DATE '{key}'").pl()
        groups = coordinated_groups(edges, config.min_group_size)
        stamp = pl.lit(key).str.to_date().alias("collection_date")
        rows = lake.write("coordination", "groups", key, groups.with_columns(stamp))
        con.register("_groups", groups)
        con.register("_edges", edges)
        # evidence per group: the significant edges between its own members
        evidence = con.sql("""
            WITH inside AS (
                SELECT g.group_id, e.*
                FROM _edges e
                JOIN _groups g ON g.actor = e.actor_a
                JOIN _groups h ON h.actor = e.actor_b AND h.group_id = g.group_id
                WHERE e.significant)
            SELECT group_id, kind, count(*) AS edges, sum(weight) AS total_weight,
                   max(weight) AS max_weight, min(first_at) AS first_at, max(last_at) AS last_at,
                   avg(mean_gap_s) AS mean_gap_s,
                   list_sort(list_distinct(list(example_target)))[1:10] AS shared_targets
            FROM inside GROUP BY group_id, kind ORDER BY group_id, kind""").pl()
        lake.write("coordination", "group_evidence", key, evidence.with_columns(stamp))
    warehouse.refresh_catalog(context.log)
    sizes = groups.group_by("group_id").agg(pl.len().alias("members"),
                                            pl.col("kinds").list.explode(keep_nulls=False, empty_as_null=False).unique().sort()
                                            .alias("kinds")).sort("members", descending=True)
    metadata = {
        "dagster/row_count": rows, "groups": sizes.height,
        "largest_groups": markdown_preview(sizes),
        "network": png_metadata(
            coordination_network(edges.filter(pl.col("significant")), groups,
                                 f"Coordinated groups, {key}"),
            warehouse.outputs / "plots" / f"coordination_groups_{key}.png"),
    }
    truth = planted_coordination(warehouse.data_path)
    if truth is not None:
        metadata["planted_groups_recovery"] = recovery(groups, truth)
        context.log.info(f"planted groups: {metadata['planted_groups_recovery']}")
    return dg.MaterializeResult(metadata=metadata)
