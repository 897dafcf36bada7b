"""Coordinated groups: connected components of the significant co-action edges (any kind),
and how well they recover a known truth."""

from __future__ import annotations

import polars as pl

from botpipeline.transforms.coordination.components import component_labels


def coordinated_groups(edges: pl.DataFrame, min_group_size: int = 3) -> pl.DataFrame:
    """One row per member: group_id (the smallest member id), actor, group_size, kinds (the
    kinds of its significant edges), edges (its significant edges), max_weight."""
    significant = edges.filter(pl.col("significant"))
    labels = component_labels(significant.select(pl.col("actor_a").alias("a"),
                                                 pl.col("actor_b").alias("b")))
    per_actor = pl.concat([
        significant.select(pl.col("actor_a").alias("actor"), "kind", "weight"),
        significant.select(pl.col("actor_b").alias("actor"), "kind", "weight"),
    ]).group_by("actor").agg(pl.col("kind").unique().sort().alias("kinds"),
                             pl.len().alias("edges"), pl.col("weight").max().alias("max_weight"))
    return (labels.rename({"node": "actor", "label": "group_id"})
            .with_columns(pl.len().over("group_id").alias("group_size"))
            .filter(pl.col("group_size") >= min_group_size)
            .join(per_actor, on="actor")
            .select("group_id", "actor", "group_size", "kinds", "edges", "max_weight")
            .sort("group_id", "actor"))


def recovery(groups: pl.DataFrame, truth: pl.DataFrame) -> dict[str, float | int]:
    """Compare detected groups with planted ones. ``truth``: actor, group (planted members only).

    Account level: precision = detected members that are planted / detected members; recall =
    planted members detected / planted members. Pair level (stricter: merging two planted
    groups or splitting one costs): over pairs of accounts in the same detected group versus
    pairs in the same planted group."""
    detected = groups.select("actor", pl.col("group_id").cast(pl.String))
    planted = truth.select("actor", pl.col("group").cast(pl.String))
    hits = detected.join(planted, on="actor").height

    def pairs(sizes: pl.Series) -> int:
        """Pairs inside groups of these sizes, counted without listing them (a giant
        component of 100,000 accounts has 5e9)."""
        return int((sizes.cast(pl.Int64) * (sizes.cast(pl.Int64) - 1) // 2).sum())

    found = pairs(detected.group_by("group_id").len()["len"])
    true = pairs(planted.group_by("group").len()["len"])
    pair_hits = pairs(detected.join(planted, on="actor").group_by("group_id", "group").len()["len"])
    return {
        "detected_accounts": detected.height, "planted_accounts": planted.height,
        "account_precision": hits / detected.height if detected.height else 0.0,
        "account_recall": hits / planted.height if planted.height else 0.0,
        "detected_groups": detected["group_id"].n_unique(),
        "planted_groups": planted["group"].n_unique(),
        "pair_precision": pair_hits / found if found else 0.0,
        "pair_recall": pair_hits / true if true else 0.0,
    }
