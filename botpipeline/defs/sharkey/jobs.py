"""sharkey_publish: plan and publish one OASIS run (a partition) to the configured server;
sharkey_threads: publish a date's scored conversations."""

import dagster as dg

from botpipeline.defs.sharkey.threads import THREADS

sharkey_publish_job = dg.define_asset_job(
    "sharkey_publish",
    selection=dg.AssetSelection.groups("sharkey") - dg.AssetSelection.assets(THREADS),
    description="Publish one OASIS run to the Sharkey instance at $SHARKEY_URL: plan, accounts, "
                "profiles, notes, renotes, follows, reactions, then verify on the server.",
)

sharkey_threads_job = dg.define_asset_job(
    "sharkey_threads",
    selection=dg.AssetSelection.assets(THREADS),
    description="Publish one date's scored conversations (threads with flagged accounts by "
                "default) to the Sharkey instance at $SHARKEY_URL, pseudonymously, with the "
                "detectors' verdicts on each profile.",
)
