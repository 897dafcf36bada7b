"""Run a backfill of ``daily_pipeline`` with the code location's own executor, as a launched run
does (not in process): each date one run through ``execute_job`` on the instance in
``$DAGSTER_HOME``, the job loaded from ``botpipeline.definitions`` by module name, which is what
dagster-dask's workers import again for every step.

    BOTPIPELINE_EXECUTOR=dask BOTPIPELINE_DASK_SCHEDULER=tcp://... DAGSTER_HOME=... \\
        python -m botpipeline_tests.distributed 2021-01-02 2021-01-03 ...

Prints one JSON object: this process's pid, and per date the run id, success, seconds and the
pids that ran its steps (from the STEP_START events in the instance). Used by
``test_distributed_backfill.py`` and ``benchmarks/distributed_backfill.py``; a subprocess,
because the executor is chosen when the code location is imported.
"""

from __future__ import annotations

import json
import os
import sys
import time


def daily_pipeline_recon():
    """``daily_pipeline`` as a reconstructable job: a pointer to the ``defs`` of the importable
    module ``botpipeline.definitions`` (what ``dagster job execute -m`` and the daemon use)."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    return ReconstructableRepository.for_module(
        "botpipeline.definitions", "defs").get_reconstructable_job("daily_pipeline")


def step_pids(instance, run_id: str) -> dict[str, int]:
    """step key -> the pid of the process that started it."""
    import dagster as dg

    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.STEP_START, limit=10_000).records
    return {r.event_log_entry.dagster_event.step_key: r.event_log_entry.dagster_event.pid
            for r in records}


def _error(event):
    data = event.event_specific_data
    return getattr(data, "error", None) or getattr(data, "error_info", None)


def _failure(event) -> str:
    error = _error(event)
    text = error.to_string() if error is not None else ""
    return f"{event.event_type_value} {event.step_key or ''}: {event.message or ''} {text}"[-3000:]


def backfill(dates: list[str]) -> dict:
    import dagster as dg

    recon = daily_pipeline_recon()
    runs = []
    with dg.DagsterInstance.get() as instance:
        for key in dates:
            started = time.perf_counter()
            with dg.execute_job(recon, instance=instance,
                                tags={"dagster/partition": key}) as result:
                seconds = time.perf_counter() - started
                failures = [_failure(e) for e in result.all_events
                            if e.is_step_failure or e.is_run_failure
                            or (e.is_engine_event and _error(e))]
                runs.append({"date": key, "run_id": result.run_id, "success": result.success,
                             "seconds": seconds, "failures": failures,
                             "executor": result.job_def.executor_def.name,
                             "step_pids": step_pids(instance, result.run_id),
                             "step_seconds": sum(
                                 (e.event_specific_data.duration_ms or 0) / 1000
                                 for e in result.all_events if e.is_step_success)})
            if not result.success:
                break
    return {"driver_pid": os.getpid(), "runs": runs}


def main(argv: list[str]) -> int:
    out = backfill(argv)
    print(json.dumps(out))
    return 0 if all(r["success"] for r in out["runs"]) and len(out["runs"]) == len(argv) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
