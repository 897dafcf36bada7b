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
    location and the instance's storage stack (so a step pays neither again; see
    botpipeline/step_preload.py)."""
    return dg.multiprocess_executor.configured(
        {"start_method": {"forkserver": {"preload_modules": ["botpipeline.step_preload"]}}},
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


class _Opaque:
    """A value Dask passes to the task without looking inside it.

    ``Client.submit`` walks tuple arguments looking for futures (dask >= 2025.1), and Dagster's
    run and its records are tuples that forbid iteration, so dagster-dask 0.29's own executor
    fails on the first step ("Iteration is not allowed on `@record` RunOpConcurrency")."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return (_Opaque, (self.value,))


# The instance each worker process reports to, opened once (not once per step).
_WORKER_INSTANCES: dict[bytes, dg.DagsterInstance] = {}


def _run_step_on_worker(dependencies, packed: _Opaque) -> _Opaque:
    """The Dask task of one step, as dagster-dask's worker function: reconstruct the job from
    its module, execute the one step against the instance (the worker writes the step's events
    there itself) and return the events, opaque to Dask as well (``None``: not run).
    ``dependencies`` are the upstream steps' results: Dask runs this task after them."""
    import pickle

    from dagster._core.execution.api import create_execution_plan, execute_plan

    recon_job, run, run_config, step_keys, instance_ref, known_state = packed.value
    # An upstream step failed or was not run: do not run this one either. (dagster-dask runs
    # it anyway, and a step whose dependencies carry no data would compute on whatever the
    # lake holds.) The run fails on the upstream failure.
    for upstream in dependencies:
        if upstream.value is None or any(e.is_step_failure for e in upstream.value):
            return _Opaque(None)
    key = pickle.dumps(instance_ref)
    if key not in _WORKER_INSTANCES:
        _WORKER_INSTANCES[key] = dg.DagsterInstance.from_ref(instance_ref)
    instance = _WORKER_INSTANCES[key]
    job = recon_job.get_subset(op_selection=run.resolved_op_selection)
    plan = create_execution_plan(job, run_config=run_config, step_keys_to_execute=step_keys,
                                 known_state=known_state)
    return _Opaque(execute_plan(plan, job, instance, run, run_config=run_config))


def _dask_executor_class():
    import dask.distributed
    from dagster._core.errors import raise_execution_interrupts
    from dagster._utils import iterate_with_context
    from dagster_dask.executor import DaskExecutor, get_dask_resource_requirements

    class StepDaskExecutor(DaskExecutor):
        """dagster-dask's executor (its cluster kinds and config) submitting each step with its
        arguments kept opaque to Dask; otherwise the same scheduling: a step's future waits for
        the futures of the steps it depends on."""

        def _cluster(self, job_name: str):
            kind = self.cluster_type
            if kind == "existing":
                return self.cluster_configuration["address"]
            if kind == "local":
                from dask.distributed import LocalCluster

                return LocalCluster(**self.build_dict(job_name))
            import dask_jobqueue

            classes = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster",
                       "lsf": "LSFCluster", "moab": "MoabCluster", "oar": "OARCluster"}
            if kind not in classes:
                raise ValueError(f"dask cluster {kind!r}: botpipeline supports existing, "
                                 f"local and {', '.join(classes)}")
            return getattr(dask_jobqueue, classes[kind])(**self.build_dict(job_name))

        def execute(self, plan_context, execution_plan):
            if not plan_context.instance.is_persistent:
                raise dg.DagsterInvariantViolationError(
                    "Dask execution needs a persistent Dagster instance (set DAGSTER_HOME; "
                    "deploy/cluster/dagster.yaml for PostgreSQL)")
            job_name = plan_context.job_name
            instance_ref = plan_context.instance.get_ref()
            cluster = self._cluster(job_name)
            try:
                with dask.distributed.Client(cluster) as client:
                    futures, by_step = [], {}
                    for level in execution_plan.get_steps_to_execute_by_level():
                        for step in level:
                            dependencies = [by_step[key] for step_input in step.step_inputs
                                            for key in step_input.dependency_keys]
                            packed = _Opaque((plan_context.reconstructable_job,
                                              plan_context.dagster_run, plan_context.run_config,
                                              [step.key], instance_ref,
                                              execution_plan.known_state))
                            future = client.submit(
                                _run_step_on_worker, dependencies, packed,
                                key=f"{job_name}.{step.key}.{plan_context.run_id}",
                                resources=get_dask_resource_requirements(step.tags),
                                pure=False)
                            futures.append(future)
                            by_step[step.key] = future
                    completed = dask.distributed.as_completed(futures, with_results=True)
                    for _future, events in iterate_with_context(raise_execution_interrupts,
                                                                completed):
                        yield from events.value or ()
            finally:
                if not isinstance(cluster, str):
                    cluster.close()

    return StepDaskExecutor


def dask_executor(env: Mapping[str, str] | None = None) -> dg.ExecutorDefinition:
    """dagster-dask's executor definition (same config schema), running ``StepDaskExecutor``,
    configured from the environment."""
    try:
        from dagster_dask import dask_executor as dagster_dask_executor
    except ImportError as error:
        raise ImportError(f"{EXECUTOR_VAR}=dask needs dagster-dask: pip install "
                          f"'botpipeline[cluster]' ({error})") from error

    @dg.executor(name="dask", config_schema=dagster_dask_executor.config_schema,
                 requirements=dg.multiple_process_executor_requirements())
    def step_dask_executor(init_context):
        ((kind, config),) = init_context.executor_config["cluster"].items()
        return _dask_executor_class()(kind, config)

    config = dask_cluster_config(os.environ if env is None else env)
    return step_dask_executor.configured({"cluster": config}, name="dask")


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
