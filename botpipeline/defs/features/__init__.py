"""The features domain: per-account feature frames."""

import dagster as dg

from botpipeline.defs.features.account_features import account_features
from botpipeline.defs.features.simulated import simulated_account_features

defs = dg.Definitions(assets=[account_features, simulated_account_features])
