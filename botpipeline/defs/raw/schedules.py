"""Schedule: each morning, re-run yesterday's date to pick up files that arrived late."""


from datetime import timedelta

import dagster as dg

from botpipeline.defs.raw.jobs import daily_pipeline_job
from botpipeline.defs.raw.sensors import folder_fingerprint, written_after
from botpipeline.defs.raw.twitterstream import SOURCE
from botpipeline.defs.resources import Warehouse


@dg.schedule(job=daily_pipeline_job, cron_schedule="0 2 * * *", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED,
             description="Daily at 02:00 UTC: yesterday's collection date, if it has files "
                         "newer than its raw.tweets partition.")
def daily_refresh_schedule(context: dg.ScheduleEvaluationContext, warehouse: Warehouse):
    scheduled = context.scheduled_execution_time
    key = (scheduled - timedelta(days=1)).date().isoformat()
    folder = warehouse.incoming(SOURCE) / key
    if not folder.is_dir():
        return dg.SkipReason(f"no input folder for {key}")
    if written_after(warehouse.lake, "raw", "tweets", key, folder_fingerprint(folder)[1]):
        return dg.SkipReason(f"{key}: no file arrived after its last ingestion")
    return dg.RunRequest(partition_key=key, run_key=f"schedule:{key}:{scheduled.isoformat()}")
