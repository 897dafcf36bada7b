"""The code location: every domain's definitions plus the shared resources."""

import dagster as dg

from botpipeline.defs import (collectors, conversations, coordination, core, exports, features,
                              hydration, models, raw, scores, sharkey)
from botpipeline.defs.executors import executor_from_env
from botpipeline.defs.governance import govern
from botpipeline.defs.resources import Warehouse

# Owners, tags, code versions and automation conditions: defs/governance.py.
defs = govern(dg.Definitions.merge(
    raw.defs,
    collectors.defs,
    core.defs,
    conversations.defs,
    exports.defs,
    hydration.defs,
    features.defs,
    scores.defs,
    models.defs,
    coordination.defs,
    sharkey.defs,
    # Runs launched from the UI or by sensors: by default each step in its own process, forked
    # from a server that has imported this code location once (Dagster's forkserver preload),
    # so a step does not pay the imports again; BOTPIPELINE_EXECUTOR=dask sends the steps to a
    # Dask cluster (defs/executors.py). `botpipeline run` executes in process.
    dg.Definitions(resources={"warehouse": Warehouse()}, executor=executor_from_env()),
))
