"""The hydration domain: fetch posts the data references but does not hold."""

import dagster as dg

from botpipeline.defs.hydration.twitter import (TwitterApi, hydrate_job,
                                                hydrated_tweets,
                                                reconstruct_after_hydration)

defs = dg.Definitions(
    assets=[hydrated_tweets],
    jobs=[hydrate_job],
    sensors=[reconstruct_after_hydration],
    resources={"twitter_api": TwitterApi()},
)
