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
    dg.Definitions(resources={"warehouse": Warehouse()}),
)
