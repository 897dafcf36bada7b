"""Jobs: one per partitioning (collection dates, simulation runs)."""

import dagster as dg

from botpipeline.defs.raw.oasis import raw_oasis_posts
from botpipeline.defs.raw.twitter_v2 import raw_twitter_v2
from botpipeline.defs.raw.twitterstream import raw_tweets

# The main job: one collection date through every daily asset downstream of ingestion.
daily_pipeline_job = dg.define_asset_job(
    "daily_pipeline",
    selection=(dg.AssetSelection.assets(raw_tweets, raw_twitter_v2).downstream()
               - dg.AssetSelection.groups("hydration").downstream()
               - dg.AssetSelection.groups("models").downstream()),
    description="Ingest one collection date and refresh everything computed from it "
                "(hydration through the API and the learned model are their own jobs).",
)

simulation_pipeline_job = dg.define_asset_job(
    "simulation_pipeline",
    # Publishing to a server is its own job (sharkey_publish); the plan needs no network.
    selection=(dg.AssetSelection.assets(raw_oasis_posts).downstream()
               - (dg.AssetSelection.groups("sharkey") - dg.AssetSelection.assets(["sharkey", "plan"]))),
    description="Read one OASIS run and refresh everything computed from it (including the "
                "Sharkey publication plan, which calls nothing).",
)
