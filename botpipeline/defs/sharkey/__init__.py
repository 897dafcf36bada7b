"""The sharkey domain: publish OASIS runs to a Sharkey sandbox, with a resumable ledger."""

import dagster as dg

from botpipeline.defs.sharkey.jobs import sharkey_publish_job
from botpipeline.defs.sharkey.plan import sharkey_plan
from botpipeline.defs.sharkey.publish import sharkey_publication
from botpipeline.defs.sharkey.resources import SharkeyResource

defs = dg.Definitions(
    assets=[sharkey_plan, sharkey_publication],
    jobs=[sharkey_publish_job],
    resources={"sharkey": SharkeyResource()},
)
