"""The sharkey domain: publish OASIS runs and scored conversations to a Sharkey sandbox,
with a resumable ledger."""

import dagster as dg

from botpipeline.defs.sharkey.jobs import sharkey_publish_job, sharkey_threads_job
from botpipeline.defs.sharkey.plan import sharkey_plan
from botpipeline.defs.sharkey.publish import sharkey_publication
from botpipeline.defs.sharkey.resources import SharkeyResource
from botpipeline.defs.sharkey.threads import sharkey_threads

defs = dg.Definitions(
    assets=[sharkey_plan, sharkey_publication, sharkey_threads],
    jobs=[sharkey_publish_job, sharkey_threads_job],
    resources={"sharkey": SharkeyResource()},
)
