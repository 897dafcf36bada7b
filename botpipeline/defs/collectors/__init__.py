"""Platform collectors: Bluesky, Hacker News and Sharkey, by collection date."""

import dagster as dg

from botpipeline.defs.collectors.assets import raw_bluesky, raw_hackernews, raw_sharkey
from botpipeline.defs.collectors.jobs import collect_platforms_job, collect_platforms_schedule
from botpipeline.defs.collectors.resources import BlueskyResource, HackerNewsResource

defs = dg.Definitions(
    assets=[raw_bluesky, raw_hackernews, raw_sharkey],
    jobs=[collect_platforms_job], schedules=[collect_platforms_schedule],
    resources={"bluesky": BlueskyResource(), "hackernews": HackerNewsResource()},
)
