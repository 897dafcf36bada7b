"""The raw domain: source files as they arrived, one table per message kind."""

import dagster as dg

from botpipeline.defs.raw.bluesky_jetstream import (bluesky_jetstream_job,
                                                    bluesky_jetstream_sensor,
                                                    raw_bluesky_jetstream)
from botpipeline.defs.raw.jobs import daily_pipeline_job, simulation_pipeline_job
from botpipeline.defs.raw.oasis import raw_oasis_posts
from botpipeline.defs.raw.oasis_sensor import oasis_runs_sensor
from botpipeline.defs.raw.schedules import daily_refresh_schedule
from botpipeline.defs.raw.sensors import twitterstream_files_sensor
from botpipeline.defs.raw.twitter_v2 import raw_twitter_v2
from botpipeline.defs.raw.twitterstream import raw_tweets

defs = dg.Definitions(
    assets=[raw_tweets, raw_twitter_v2, raw_oasis_posts, raw_bluesky_jetstream],
    jobs=[daily_pipeline_job, simulation_pipeline_job, bluesky_jetstream_job],
    sensors=[twitterstream_files_sensor, oasis_runs_sensor, bluesky_jetstream_sensor],
    schedules=[daily_refresh_schedule],
)
