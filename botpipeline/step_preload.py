"""What the forkserver of a launched run imports before it forks any step.

A step forked from it starts with the code location imported and resolved (repository, jobs,
asset graph) and with the Dagster instance's storage stack in memory (SQLAlchemy, Alembic, the
run, event-log and schedule storages: about 500 modules). Without the latter every step paid
them again when it opened the instance (1-2 s a step on the shared 2-core machine, most of a
launched run's overhead over `botpipeline run`).

It also imports the libraries that many steps load on first use (scipy, matplotlib, networkx,
numpy, pyarrow, ...): the code location defers them so that loading it stays cheap, and
without this every step process would pay them again where `botpipeline run` pays them once
(a launched daily run's steps took 2-3x their in-process time).

Nothing here stays open: the instance is disposed before the first fork, so no connection,
file handle or thread is shared with the steps.
"""

from __future__ import annotations

import importlib
import logging
import os

from botpipeline.definitions import defs

log = logging.getLogger(__name__)


# What many steps import on first use (the null model and correlations: scipy; every figure:
# matplotlib), plus cheap common ones. Not scikit-learn or skops (~7 s with the torch they pull
# in, measured): only the model's own steps use them, and a launched run waits for this
# preload before its first step, so they are paid in those steps instead.
STEP_LIBRARIES = (
    "scipy.stats", "scipy.sparse.csgraph", "matplotlib.pyplot", "networkx", "numpy",
    "pyarrow", "pyarrow.json", "PIL.Image", "requests", "botpipeline.models.toxicity",
)


def import_step_libraries() -> None:
    import matplotlib

    matplotlib.use("Agg")  # as botpipeline.plots does: no display in a step
    for name in STEP_LIBRARIES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def warm() -> None:
    import dagster as dg
    from dagster._core.execution.api import create_execution_plan

    repository = defs.get_repository_def()
    jobs = repository.get_all_jobs()
    if os.environ.get("DAGSTER_HOME"):  # the storages this instance is configured with
        with dg.DagsterInstance.get():
            pass
    # Execution-plan building imports and caches on first use; one small job warms it.
    smallest = min(jobs, key=lambda job: len(job.nodes_in_topological_order))
    create_execution_plan(smallest, run_config={})


try:
    warm()
    import_step_libraries()
except Exception as exc:  # a cold step is slower, never wrong: the forkserver must start
    log.warning(f"step preload incomplete ({type(exc).__name__}: {exc}); steps load it "
                "themselves")
