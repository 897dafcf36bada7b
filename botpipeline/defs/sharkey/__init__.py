"""The sharkey domain: publish OASIS runs and scored conversations to a Sharkey sandbox,
with a resumable ledger."""

import dagster as dg

from botpipeline.defs.sharkey.jobs import sharkey_publish_job, sharkey_threads_job
from botpipeline.defs.sharkey.plan import sharkey_plan
from botpipeline.defs.sharkey.publish import sharkey_publication
from botpipeline.defs.sharkey.resources import ADMIN_TOKEN_VARIABLE, SharkeyResource
from botpipeline.defs.sharkey.threads import sharkey_threads

defs = dg.Definitions(
    assets=[sharkey_plan, sharkey_publication, sharkey_threads],
    jobs=[sharkey_publish_job, sharkey_threads_job],
    # Publishing needs the admin token: bound as an EnvVar, so run config names the variable
    # and a launch without it is refused at once. The collector's resource reads the same
    # variable only when a step calls the server (a date with nothing to collect needs none).
    resources={"sharkey": SharkeyResource(admin_token=dg.EnvVar(ADMIN_TOKEN_VARIABLE)),
               "sharkey_reader": SharkeyResource()},
)
