"""collect_platforms: the collectors for one date and everything computed from them."""

import dagster as dg

collect_platforms_job = dg.define_asset_job(
    "collect_platforms",
    selection=(dg.AssetSelection.groups("collectors").downstream()
               - dg.AssetSelection.groups("hydration").downstream()
               - dg.AssetSelection.groups("models").downstream()),
    description="Collect Bluesky, Hacker News and Sharkey for one date, then core, "
                "conversations, features, scores and the evaluation against known labels.",
)

collect_platforms_schedule = dg.build_schedule_from_partitioned_job(
    collect_platforms_job, hour_of_day=2, description="Yesterday's posts, every night "
    "(starts stopped: set the queries in the launchpad or a run config first).")
