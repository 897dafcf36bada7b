"""The sample generator's planted truth, where the data dir holds it (never in production)."""

from pathlib import Path

import polars as pl


def planted_coordination(data_dir: Path) -> pl.DataFrame | None:
    """Members of the planted co-action groups: actor, group."""
    path = data_dir / "truth" / "twitterstream" / "accounts.csv"
    if not path.exists():
        return None
    return (pl.read_csv(path, schema_overrides={"user_id": pl.String, "group_id": pl.String})
            .filter(pl.col("kind") == "coordinated")
            .select(pl.col("user_id").alias("actor"), pl.col("group_id").alias("group")))


def planted_like_groups(data_dir: Path) -> pl.DataFrame | None:
    """Members of the planted identical-liking groups: user_id, handle (@screen_name,
    lower-cased), group, exact (liked the full campaign set every day)."""
    path = data_dir / "truth" / "engagements" / "like_groups.csv"
    if not path.exists():
        return None
    return pl.read_csv(path, schema_overrides={"user_id": pl.String, "group_id": pl.String}
                       ).select(
        "user_id", ("@" + pl.col("screen_name").str.to_lowercase()).alias("handle"),
        pl.col("group_id").alias("group"), pl.col("exact").cast(pl.Boolean))
