"""The coordination domain: engagements, identical-behaviour bins, co-action networks, groups."""

import dagster as dg

from botpipeline.defs.coordination.bins import coordination_behaviour_bins
from botpipeline.defs.coordination.correlations import account_correlations
from botpipeline.defs.coordination.engagements import raw_engagements
from botpipeline.defs.coordination.networks import co_action_edges, coordination_groups

defs = dg.Definitions(assets=[raw_engagements, coordination_behaviour_bins, co_action_edges,
                              coordination_groups, account_correlations])
