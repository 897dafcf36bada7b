"""The conversations domain: reply trees reconstructed from the core posts."""

import dagster as dg

from botpipeline.defs.conversations.reconstruction import (daily_conversations,
                                                           simulated_conversations)
from botpipeline.defs.conversations.top_posts import daily_top_posts, simulated_top_posts

defs = dg.Definitions(assets=[daily_conversations, simulated_conversations, daily_top_posts,
                              simulated_top_posts])
