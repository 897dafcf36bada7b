"""Which executor runs the steps of a launched job (UI, sensors, schedules, `dagster job
execute`, `execute_job`), chosen by the environment when the code location loads.

``BOTPIPELINE_EXECUTOR``:

- ``forkserver`` (default): every step in its own process on this machine, forked from a server
  that imported the code location once.
- ``in_process``: every step in the run's own process.
- ``dask``: every step on a Dask cluster through ``dagster-dask`` (the ``cluster`` extra).
  ``BOTPIPELINE_DASK_SCHEDULER=tcp://host:8786`` sends the steps to a running scheduler (one
  started by hand, by ``dask-jobqueue`` on Slurm/PBS, or by the Dask Helm chart); without it
  ``BOTPIPELINE_DASK_CLUSTER`` says which cluster each run starts for itself: ``local`` (default,
  ``BOTPIPELINE_DASK_WORKERS`` worker processes, 2 by default, one thread each), or ``slurm`` /
  ``pbs`` / ``sge`` / ``lsf`` (``dask-jobqueue``; queue, cores, memory and the job script come
  from its configuration file, ``~/.config/dask/jobqueue.yaml``, with
  ``BOTPIPELINE_DASK_WORKERS`` jobs). See ``deploy/cluster/README.md``.

Steps pass nothing through Dagster's IO managers (every asset writes the lake itself), so the
workers need only the same code, the same ``BOTPIPELINE_*`` variables and a lake they all reach
(``BOTPIPELINE_LAKE_URL`` on object storage, or a shared file system); the Dagster instance
they report to must be persistent (PostgreSQL, ``deploy/cluster/dagster.yaml``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

EXECUTOR_VAR = "BOTPIPELINE_EXECUTOR"
SCHEDULER_VAR = "BOTPIPELINE_DASK_SCHEDULER"
CLUSTER_VAR = "BOTPIPELINE_DASK_CLUSTER"
WORKERS_VAR = "BOTPIPELINE_DASK_WORKERS"

EXECUTORS = ("forkserver", "in_process", "dask")
# dagster-dask's cluster kinds that this project documents (it knows a few more).
DASK_CLUSTERS = ("local", "slurm", "pbs", "sge", "lsf")


def forkserver_executor() -> dg.ExecutorDefinition:
    """Dagster's multiprocess executor, each step forked from a server that preloaded the code
    location (so a step does not pay the imports again)."""
    return dg.multiprocess_executor.configured(
        {"start_method": {"forkserver": {"preload_modules": ["botpipeline.definitions"]}}},
        name="multiprocess_forkserver")


def dask_cluster_config(env: Mapping[str, str]) -> dict:
    """dagster-dask's ``cluster`` config from the environment."""
    address = env.get(SCHEDULER_VAR, "").strip()
    if address:
        return {"existing": {"address": address}}
    kind = env.get(CLUSTER_VAR, "local").strip() or "local"
    if kind not in DASK_CLUSTERS:
        raise ValueError(f"{CLUSTER_VAR}={kind!r}: expected one of {', '.join(DASK_CLUSTERS)} "
                         f"(or set {SCHEDULER_VAR} to a running scheduler)")
    raw = env.get(WORKERS_VAR, "2").strip() or "2"
    try:
        workers = int(raw)
    except ValueError:
        raise ValueError(f"{WORKERS_VAR}={raw!r}: expected a number of workers") from None
    if workers < 1:
        raise ValueError(f"{WORKERS_VAR}={workers}: expected at least 1 worker")
    if kind == "local":
        # Processes, not threads: Dagster steps are not thread-safe, and each step gets a
        # whole interpreter (dagster-dask forces one thread per worker too).
        return {"local": {"n_workers": workers, "threads_per_worker": 1, "processes": True}}
    # dask-jobqueue reads the rest (queue, cores, memory, walltime, job script prologue) from
    # its configuration file; dagster-dask does not scale the cluster, so start the jobs here.
    return {kind: {"n_workers": workers}}


def dask_executor(env: Mapping[str, str] | None = None) -> dg.ExecutorDefinition:
    try:
        from dagster_dask import dask_executor as dagster_dask_executor
    except ImportError as error:
        raise ImportError(f"{EXECUTOR_VAR}=dask needs dagster-dask: pip install "
                          f"'botpipeline[cluster]' ({error})") from error
    config = dask_cluster_config(os.environ if env is None else env)
    return dagster_dask_executor.configured({"cluster": config}, name="dask")


def executor_from_env(env: Mapping[str, str] | None = None) -> dg.ExecutorDefinition:
    """The executor named by ``BOTPIPELINE_EXECUTOR`` (default ``forkserver``)."""
    env = os.environ if env is None else env
    kind = env.get(EXECUTOR_VAR, "").strip() or "forkserver"
    if kind == "forkserver":
        return forkserver_executor()
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "dask":
        return dask_executor(env)
    raise ValueError(f"{EXECUTOR_VAR}={kind!r}: expected one of {', '.join(EXECUTORS)}")
