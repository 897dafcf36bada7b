"""The features domain: per-account feature frames."""

import dagster as dg

from botpipeline.defs.features.account_features import account_features

defs = dg.Definitions(assets=[account_features])
