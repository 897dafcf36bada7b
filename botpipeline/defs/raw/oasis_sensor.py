"""Sensor: a new or changed run folder under incoming/oasis/ adds the run as a partition and
requests the simulation pipeline for it."""

import re

import dagster as dg

from botpipeline.defs.partitions import oasis_runs
from botpipeline.defs.raw.oasis import SOURCE
from botpipeline.defs.raw.sensors import changed_folders, written_after
from botpipeline.defs.resources import Warehouse

RUN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


@dg.sensor(job_name="simulation_pipeline", minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Adds each incoming/oasis/<run_id>/ folder as a partition and requests "
                       "a run when it is new or its files changed.")
def oasis_runs_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse):
    root = warehouse.incoming(SOURCE)
    changed, skipped = changed_folders(
        context, root, lambda name: bool(RUN_ID.match(name)),
        lambda run_id, newest: written_after(warehouse.lake, "raw", "oasis_posts", run_id,
                                             newest))
    known = set(context.instance.get_dynamic_partitions(oasis_runs.name))
    new_partitions = [run_id for run_id, _ in changed if run_id not in known]
    requests = [dg.RunRequest(partition_key=run_id, run_key=f"{run_id}:{fingerprint}")
                for run_id, fingerprint in changed]
    if skipped:
        context.log.warning(f"ignored run folders with unusable names: {skipped}")
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[oasis_runs.build_add_request(new_partitions)]
        if new_partitions else [],
        skip_reason=None if requests else f"no new or changed run folders under {root}")
