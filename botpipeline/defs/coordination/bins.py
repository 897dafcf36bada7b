"""coordination/behaviour_bins: accounts grouped by identical (and near-identical) liking and
reposting behaviour over a range of collection dates (the Danish election study's bins).

One row per (action, actor): the size of its set of liked / reposted posts, its exact bin (all
accounts with exactly the same set) and near-identical bin (sets joined at Jaccard >= the
threshold through MinHash LSH, verified exactly). See transforms/coordination/bins.py.
"""

import dagster as dg
import polars as pl

from botpipeline.defs.coordination.truth import planted_like_groups
from botpipeline.defs.metadata import markdown_preview, png_metadata
from botpipeline.defs.partitions import (checked_lookback, daily_partitions, lookback_mapping,
                                         lookback_sql)
from botpipeline.defs.resources import Warehouse
from botpipeline.plots import bin_sizes
from botpipeline.transforms.coordination.bins import BinConfig, behaviour_bins
from botpipeline.transforms.coordination.groups import recovery

ENGAGEMENTS = dg.AssetKey(["raw", "engagements"])


LOOKBACK_DAYS = 6  # the lineage's window over raw/engagements; lookback_days may not exceed it


class BehaviourBinsConfig(dg.Config):
    lookback_days: int = LOOKBACK_DAYS
    """Earlier collection dates pooled with the partition's (the study binned a whole
    observation period); at most 6."""
    min_set_size: int = BinConfig.min_set_size
    max_set_size: int = BinConfig.max_set_size
    """0: compare every set of at least min_set_size posts by MinHash; else only sets up to
    this size (a busy firehose day: its heaviest likers' sets cost items x num_perm rows)."""
    jaccard_threshold: float = BinConfig.jaccard_threshold
    num_perm: int = BinConfig.num_perm
    bands: int = BinConfig.bands
    min_group_size: int = 3
    """Bins of at least this many accounts (and sets of at least min_set_size posts) are
    reported as groups and compared with any planted truth."""


def _groups(bins: pl.DataFrame, column: str, size: str, config: BehaviourBinsConfig
            ) -> pl.DataFrame:
    return (bins.filter((pl.col(size) >= config.min_group_size)
                        & (pl.col("set_size") >= config.min_set_size))
            .select(pl.col(column).alias("group_id"), "actor"))


@dg.asset(key=["coordination", "behaviour_bins"], group_name="coordination",
          deps=[dg.AssetDep(ENGAGEMENTS,
                            partition_mapping=lookback_mapping(LOOKBACK_DAYS))],
          partitions_def=daily_partitions, kinds={"duckdb", "parquet", "scipy"},
          description=__doc__)
def coordination_behaviour_bins(context: dg.AssetExecutionContext, config: BehaviourBinsConfig,
                                warehouse: Warehouse) -> dg.MaterializeResult:
    key = context.partition_key
    window = lookback_sql(key, checked_lookback(config.lookback_days, LOOKBACK_DAYS,
                                                "coordination/behaviour_bins"))
    settings = BinConfig(min_set_size=config.min_set_size, max_set_size=config.max_set_size,
                         jaccard_threshold=config.jaccard_threshold,
                         num_perm=config.num_perm, bands=config.bands)
    with warehouse.get_connection() as con:
        con.execute(f"CREATE TEMP TABLE acts AS SELECT DISTINCT action, actor, post_id "
                    f"FROM raw.engagements WHERE {window}")
        bins, pairs = behaviour_bins(con, "acts", settings)
        rows = warehouse.lake.write("coordination", "behaviour_bins", key, bins.with_columns(
            pl.lit(key).str.to_date().alias("collection_date")).sort(
            "action", "bin_size", "bin_id", "actor", descending=[False, True, False, False]))
    warehouse.refresh_catalog(context.log)
    summary = (bins.group_by("action").agg(
        pl.len().alias("accounts"), pl.col("bin_id").n_unique().alias("exact_bins"),
        pl.col("bin_id").filter(pl.col("bin_size") > 1).n_unique().alias("shared_exact_bins"),
        pl.col("near_bin_id").n_unique().alias("near_bins"),
        pl.col("bin_size").max().alias("largest_exact_bin"),
        pl.col("near_bin_size").max().alias("largest_near_bin")).sort("action"))
    largest = (bins.filter(pl.col("set_size") >= config.min_set_size)
               .group_by("action", "near_bin_id")
               .agg(pl.len().alias("accounts"), pl.col("set_size").max().alias("max_set_size"),
                    pl.col("bin_id").n_unique().alias("exact_bins"))
               .sort("accounts", descending=True).head(10))
    metadata = {
        "dagster/row_count": rows, "near_identical_set_pairs": pairs.height,
        "summary": markdown_preview(summary), "largest_bins": markdown_preview(largest),
        "bin_sizes": png_metadata(bin_sizes(bins, f"Behaviour bins up to {key}"),
                                  warehouse.outputs / "plots" / f"behaviour_bins_{key}.png"),
    }
    truth = planted_like_groups(warehouse.data_path)
    if truth is not None and bins.height:
        # an actor is the account id when known, else @username
        planted = pl.concat([truth.select(pl.col("user_id").alias("actor"), "group", "exact"),
                             truth.select(pl.col("handle").alias("actor"), "group", "exact")])
        likes = bins.filter(pl.col("action") == "like")
        exact = recovery(_groups(likes, "bin_id", "bin_size", config),
                         planted.filter(pl.col("exact")).join(likes.select("actor"), on="actor"))
        near = recovery(_groups(likes, "near_bin_id", "near_bin_size", config),
                        planted.join(likes.select("actor"), on="actor"))
        metadata["planted_like_groups_exact_bins"] = exact
        metadata["planted_like_groups_near_bins"] = near
        context.log.info(f"planted like groups: exact bins {exact}; near bins {near}")
    return dg.MaterializeResult(metadata=metadata)
