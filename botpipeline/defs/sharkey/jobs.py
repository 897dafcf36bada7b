"""sharkey_publish: plan and publish one OASIS run (a partition) to the configured server."""

import dagster as dg

sharkey_publish_job = dg.define_asset_job(
    "sharkey_publish",
    selection=dg.AssetSelection.groups("sharkey"),
    description="Publish one OASIS run to the Sharkey instance at $SHARKEY_URL: plan, accounts, "
                "profiles, notes, renotes, follows, reactions, then verify on the server.",
)
