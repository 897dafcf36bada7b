"""Where conversation assets read posts from: daily collections, or simulation runs."""

from dataclasses import dataclass

import dagster as dg

from botpipeline.defs.partitions import (checked_lookback, daily_partitions, lookback_mapping,
                                         oasis_runs)

# Earlier daily partitions a conversation asset may read (its lineage); lookback_days <= this.
LOOKBACK_DAYS = 7
NODE_COLUMNS = "post_id, parent_id, author_id, created_at, conversation_id, source_step"


@dataclass(frozen=True)
class PostSource:
    prefix: str  # "" for the daily tables, "simulated_" for simulation runs
    posts_key: tuple[str, ...]
    partitions_def: dg.PartitionsDefinition
    partition_column: str

    @property
    def daily(self) -> bool:
        return self.partition_column == "collection_date"

    def tag(self, key: str) -> str:
        """The partition key as a SQL literal of the partition column's type."""
        return f"DATE '{key}'" if self.daily else "'" + key.replace("'", "''") + "'"

    def filter(self, key: str) -> str:
        return f"{self.partition_column} = {self.tag(key)}"

    def window(self, key: str, lookback_days: int) -> str:
        """The partition and, for daily data, the look-back days before it (at most
        LOOKBACK_DAYS, the window deps() declares)."""
        if not self.daily:
            return self.filter(key)
        checked_lookback(lookback_days, LOOKBACK_DAYS, ".".join(self.posts_key) + " readers")
        return (f"collection_date BETWEEN {self.tag(key)} - INTERVAL {int(lookback_days)} DAY "
                f"AND {self.tag(key)}")

    def deps(self) -> list[dg.AssetDep]:
        mapping = lookback_mapping(LOOKBACK_DAYS) if self.daily else None
        return [dg.AssetDep(dg.AssetKey(list(self.posts_key)), partition_mapping=mapping)]


DAILY = PostSource("", ("core", "posts"), daily_partitions, "collection_date")
SIMULATED = PostSource("simulated_", ("core", "simulated_posts"), oasis_runs, "run_id")
