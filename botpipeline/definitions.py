"""The code location: every domain's definitions plus the shared resources."""

import dagster as dg

from botpipeline.defs import (collectors, conversations, coordination, core, exports, features,
                              hydration, models, raw, scores, sharkey)
from botpipeline.defs.resources import Warehouse

defs = dg.Definitions.merge(
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
    # Runs launched from the UI or by sensors: each step in its own process, forked from a
    # server that has imported this code location once (Dagster's forkserver preload), so a
    # step does not pay the imports again. `botpipeline run` executes in process.
    dg.Definitions(resources={"warehouse": Warehouse()},
                   executor=dg.multiprocess_executor.configured(
                       {"start_method": {"forkserver": {"preload_modules": [
                           "botpipeline.definitions"]}}}, name="multiprocess_forkserver")),
)
