"""Where each platform's API is. Public endpoints need no credentials; tests point the base
URLs at local replay servers."""

import dagster as dg
from pydantic import Field


class BlueskyResource(dg.ConfigurableResource):
    base_url: str = Field(default="https://public.api.bsky.app",
                          description="AppView serving app.bsky.* (public, no login).")

    def adapter(self):
        from botpipeline.clients.platforms.bluesky import BlueskyAdapter

        return BlueskyAdapter(base_url=self.base_url)


class HackerNewsResource(dg.ConfigurableResource):
    base_url: str = Field(default="https://hn.algolia.com/api/v1",
                          description="The Algolia Hacker News API.")

    def adapter(self):
        from botpipeline.clients.platforms.hackernews import HackerNewsAdapter

        return HackerNewsAdapter(base_url=self.base_url)
