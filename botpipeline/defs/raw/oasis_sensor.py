"""Sensor: a new or changed run folder under incoming/oasis/ adds the run as a partition and
requests the simulation pipeline for it."""

import json
import re
import time

import dagster as dg

from botpipeline.defs.partitions import oasis_runs
from botpipeline.defs.raw.oasis import SOURCE
from botpipeline.defs.raw.sensors import SETTLE_SECONDS, folder_fingerprint
from botpipeline.defs.resources import Warehouse

RUN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


@dg.sensor(job_name="simulation_pipeline", minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Adds each incoming/oasis/<run_id>/ folder as a partition and requests "
                       "a run when it is new or its files changed.")
def oasis_runs_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse):
    root = warehouse.incoming(SOURCE)
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    known = set(context.instance.get_dynamic_partitions(oasis_runs.name))
    requests, new_partitions, skipped = [], [], []
    now = time.time()
    for run_dir in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []:
        run_id = run_dir.name
        if not RUN_ID.match(run_id):
            skipped.append(run_id)
            continue
        fingerprint, newest = folder_fingerprint(run_dir)
        if newest == 0.0 or seen.get(run_id) == fingerprint or now - newest < SETTLE_SECONDS:
            continue
        seen[run_id] = fingerprint
        if run_id not in known:
            new_partitions.append(run_id)
        requests.append(dg.RunRequest(partition_key=run_id, run_key=f"{run_id}:{fingerprint}"))
    if skipped:
        context.log.warning(f"ignored run folders with unusable names: {skipped}")
    context.update_cursor(json.dumps(seen, sort_keys=True))
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[oasis_runs.build_add_request(new_partitions)]
        if new_partitions else [],
        skip_reason=None if requests else f"no new or changed run folders under {root}")
