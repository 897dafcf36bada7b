"""What the forkserver of a launched run imports before it forks any step.

A step forked from it starts with the code location imported and resolved (repository, jobs,
asset graph) and with the Dagster instance's storage stack in memory (SQLAlchemy, Alembic, the
run, event-log and schedule storages: about 500 modules). Without the latter every step paid
them again when it opened the instance (1-2 s a step on the shared 2-core machine, most of a
launched run's overhead over `botpipeline run`).

It also imports the libraries that steps load on first use (numpy, pyarrow, scipy, scikit-learn,
matplotlib, networkx, ...): the code location defers them so that loading it stays cheap, and
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


# What step bodies import on first use, heaviest first; a missing optional one is skipped.
STEP_LIBRARIES = (
    "scipy.stats", "scipy.sparse.csgraph", "sklearn.linear_model", "sklearn.ensemble",
    "sklearn.calibration", "sklearn.metrics", "skops.io", "matplotlib.pyplot", "networkx",
    "numpy", "pyarrow", "pyarrow.json", "PIL.Image", "requests",
    "botpipeline.models.bot_classifier", "botpipeline.models.toxicity",
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
