"""The core domain: every source in one post and account model."""

import dagster as dg

from botpipeline.defs.core.posts import core_accounts, core_posts
from botpipeline.defs.core.simulated import core_simulated_accounts, core_simulated_posts

defs = dg.Definitions(assets=[core_posts, core_accounts, core_simulated_posts,
                              core_simulated_accounts])
