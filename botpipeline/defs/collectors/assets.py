"""raw/bluesky, raw/hackernews, raw/sharkey: one collection date of a platform, in the core
columns (raw.<platform>_posts, raw.<platform>_accounts, raw.<platform>_quarantine).

Each runs seed 003's flow (clients/platforms/base.py: collect) over the platform's adapter:
search every query in the date's window, pick top performers by engagement score, harvest
their comments, fetch the commenters' profiles. core/posts and core/accounts pick the tables
up, so features, scores and evaluation follow as for any source.
"""

from datetime import datetime, timedelta

import dagster as dg
import polars as pl

from botpipeline.clients.platforms.base import Collected, CollectionSettings, collect
from botpipeline.defs.metadata import markdown_preview
from botpipeline.defs.partitions import daily_partitions
from botpipeline.defs.collectors.resources import BlueskyResource, HackerNewsResource
from botpipeline.defs.resources import Warehouse
from botpipeline.defs.sharkey.resources import SharkeyResource

CHECK = "quarantine_share_below_threshold"


class CollectorConfig(dg.Config):
    queries: list[str] = []
    """Search queries (Sharkey: @usernames)."""
    limit: int = 100
    """Posts to collect per query (seed 003's ``limit``)."""
    min_engagement_score: float = 0.01
    max_posts_for_comment_harvest: int = 50
    max_comments_per_post: int = 100
    fetch_commenter_profiles: bool = True
    window_days: int = 1
    """Posts created in the window ending with the collection date."""
    max_quarantine_share: float = 0.05

    def settings(self, queries: list[str] | None = None) -> CollectionSettings:
        return CollectionSettings(
            queries=tuple(queries if queries is not None else self.queries), limit=self.limit,
            min_engagement_score=self.min_engagement_score,
            max_posts_for_comment_harvest=self.max_posts_for_comment_harvest,
            max_comments_per_post=self.max_comments_per_post,
            fetch_commenter_profiles=self.fetch_commenter_profiles)


class SharkeyCollectorConfig(CollectorConfig):
    published_runs: list[str] = []
    """Also collect every account the publisher created for these OASIS runs."""
    max_comments_per_post: int = 0


def _window(key: str, days: int) -> tuple[datetime, datetime]:
    end = datetime.fromisoformat(key) + timedelta(days=1)
    return end - timedelta(days=days), end


def _land(context, warehouse: Warehouse, platform: str, collected, top, config):
    key = context.partition_key
    tag = pl.lit(datetime.fromisoformat(key).date()).alias("collection_date")
    with warehouse.transaction(context) as lake:
        rows = {name: lake.write("raw", f"{platform}_{name}", key,
                                 getattr(collected, name).with_columns(tag))
                for name in ("posts", "accounts", "quarantine")}
    warehouse.refresh_catalog(context.log)
    read = rows["posts"] + rows["quarantine"]
    share = rows["quarantine"] / read if read else 0.0
    kinds = dict(collected.posts.group_by("kind").len().iter_rows())
    yield dg.MaterializeResult(metadata={
        "dagster/row_count": rows["posts"], "accounts": rows["accounts"],
        "quarantined": rows["quarantine"], "posts_by_kind": kinds, "api_calls": collected.calls,
        "top_performers": markdown_preview(top.select(
            "post_id", "author_username", "engagement_score", "text")) if top.height else "none",
        "quarantine_reasons": dict(collected.quarantine.group_by("reason").len().iter_rows()),
    })
    yield dg.AssetCheckResult(check_name=CHECK, passed=share <= config.max_quarantine_share,
                              severity=dg.AssetCheckSeverity.WARN,
                              metadata={"share": round(share, 4)})


def _spec(platform: str) -> dict:
    return dict(key=["raw", platform], group_name="collectors", partitions_def=daily_partitions,
                kinds={"polars", "parquet"},
                check_specs=[dg.AssetCheckSpec(CHECK, asset=["raw", platform],
                                               description="Few quarantined items.")])


@dg.asset(**_spec("bluesky"), description="Bluesky posts by search query, top performers' "
          "threads (getPostThread), commenter profiles (getProfiles in 25s).")
def raw_bluesky(context: dg.AssetExecutionContext, config: CollectorConfig,
                warehouse: Warehouse, bluesky: BlueskyResource):
    since, until = _window(context.partition_key, config.window_days)
    collected, top = collect(bluesky.adapter(), config.settings(), since, until, context.log)
    yield from _land(context, warehouse, "bluesky", collected, top, config)


@dg.asset(**_spec("hackernews"), description="Hacker News stories by query through Algolia "
          "(paged by created_at_i windows past 1,000 hits), comment trees, users.")
def raw_hackernews(context: dg.AssetExecutionContext, config: CollectorConfig,
                   warehouse: Warehouse, hackernews: HackerNewsResource):
    since, until = _window(context.partition_key, config.window_days)
    collected, top = collect(hackernews.adapter(), config.settings(), since, until,
                             context.log)
    yield from _land(context, warehouse, "hackernews", collected, top, config)


@dg.asset(**_spec("sharkey"), description="Notes and users read back from the Sharkey "
          "instance ($SHARKEY_URL): the accounts of published OASIS runs and any @usernames.")
def raw_sharkey(context: dg.AssetExecutionContext, config: SharkeyCollectorConfig,
                warehouse: Warehouse, sharkey_reader: SharkeyResource):
    from botpipeline.clients.platforms.sharkey import SharkeyAdapter

    queries = list(config.queries)
    if config.published_runs:
        with warehouse.get_connection() as con:
            queries += [r[0] for r in con.execute(
                "SELECT DISTINCT username FROM sharkey.accounts WHERE server_user_id IS NOT "
                "NULL AND run_id IN (SELECT unnest(?)) ORDER BY 1",
                [config.published_runs]).fetchall()]
    since, until = _window(context.partition_key, config.window_days)
    if not queries:  # nothing asked of Sharkey: no server needed
        context.log.info("no @usernames or published runs configured: nothing to collect")
        yield from _land(context, warehouse, "sharkey", Collected(), Collected().posts, config)
        return
    client = sharkey_reader.client()
    try:
        collected, top = collect(SharkeyAdapter(client), config.settings(queries), since, until,
                                 context.log)
    finally:
        client.close()
    yield from _land(context, warehouse, "sharkey", collected, top, config)
