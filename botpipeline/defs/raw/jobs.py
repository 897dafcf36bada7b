"""Jobs: one per partitioning (collection dates, simulation runs)."""

import dagster as dg

from botpipeline.defs.raw.oasis import raw_oasis_posts
from botpipeline.defs.raw.twitterstream import raw_tweets

# The main job: one collection date through every daily asset downstream of ingestion.
daily_pipeline_job = dg.define_asset_job(
    "daily_pipeline",
    selection=dg.AssetSelection.assets(raw_tweets).downstream(),
    description="Ingest one collection date and refresh everything computed from it.",
)

simulation_pipeline_job = dg.define_asset_job(
    "simulation_pipeline",
    selection=dg.AssetSelection.assets(raw_oasis_posts).downstream(),
    description="Read one OASIS run and refresh everything computed from it.",
)
